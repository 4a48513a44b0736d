"""Built-in Rust functions, implemented in ``rust/native`` with ``#[asyncffi::export]``: the
demo, the tests and the benchmarks use them, and they show what an exported function looks
like from Python.

The functions are built from the shipped cdylib's manifest, as any library's are (``Library``);
their types are in ``demo.pyi``, generated from the same manifest (``python -m asyncffi stubs``).
Every function checks its arguments when called (``TypeError``, ``ValueError``,
``OverflowError``, naming the parameter) and returns a ``RustCall`` (a ``RustStream`` for
streams): nothing runs in Rust until it is awaited. ``runtime`` is ``"tokio"`` (default),
``"async-std"``, or ``"loop"`` (the Rust future is polled on the event loop's own thread,
inside tokio's context: no thread hop, best for Rust code that awaits Python one call after
another).

Rust awaiting Python: ``fn`` may be an ``async def`` function, any callable returning an
awaitable, or a plain function. Each call runs on the event loop awaiting the Rust call, as an
asyncio task, in a copy of the contextvars context of the code that called the ``demo``
function.

Streams, Rust -> Python: the function returns a ``RustStream``, an async iterator; ``buffer``
bounds how many items the Rust producer runs ahead of the consumer (default 1024). Python ->
Rust: ``aiter`` may be an async iterator, an async generator or a plain iterable; Rust reads it
as a stream, asking for up to ``prefetch`` items ahead (default 1024). When Rust drops it, the
iterator is closed (an async generator's ``finally`` blocks run).
"""

from __future__ import annotations

from typing import Any, Dict

from ._library import builtins

#: The library of the built-ins: the cdylib the package ships, loaded as any other.
library = builtins()


def _public(exports: Dict[str, Any]) -> Dict[str, Any]:
    """The exports that are the module's API (``_``-names stay on ``library``), re-homed here."""
    public = {}
    for name, export in exports.items():
        if name.startswith("_") or name.startswith("bench_"):
            continue
        export.__module__ = __name__
        public[name] = export
    return public


globals().update(_public(library.exports))

__all__ = sorted(_public(library.exports))
