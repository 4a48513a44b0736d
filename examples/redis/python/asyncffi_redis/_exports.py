"""What the Rust cdylib (``_native``) exports, built at import time from its manifest: the
``Client`` class the package's own ``Client`` extends. Its types are in ``_exports.pyi``,
generated from the same manifest (``python -m asyncffi stubs``; the tests fail when it drifts).
"""

from __future__ import annotations

import asyncffi

#: The package's cdylib, loaded as any asyncffi library.
library = asyncffi.load_packaged("asyncffi_redis", "_native")

Client = library.Client

__all__ = ["Client"]
