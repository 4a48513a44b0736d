"""store: an async Rust library (``src/lib.rs``) for asyncio, exported with asyncffi.

Everything below comes from the manifest the Rust library exports: ``asyncffi`` builds each
function and class with its real signature, argument checks and the Rust doc comment.
"""

import asyncffi

_lib = asyncffi.load_packaged(__name__, "_native")

fetch_lines = _lib.fetch_lines
events = _lib.events
for_each = _lib.for_each
version = _lib.version
Store = _lib.Store

__all__ = ["Store", "events", "fetch_lines", "for_each", "version"]
