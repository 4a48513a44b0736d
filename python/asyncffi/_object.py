"""``RustObject``: a Python handle on an opaque Rust object of one library.

Python owns the handle and frees it exactly once: by ``close()``, by leaving a ``with`` or an
``async with`` block, or, as a fallback, when the wrapper is garbage-collected. Rust operations
already running keep the object alive until they finish; starting one after ``close()``
raises ``ClosedError``.

An object belongs to the library that made it: its handle means nothing to another library
(whose Rust core would refuse it as "belonging to another library"), and ``handle_for``
refuses it with a ``TypeError`` before any C call.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Optional, Type, TypeVar

from ._errors import ClosedError, check

if TYPE_CHECKING:
    from ._library import Library

Obj = TypeVar("Obj", bound="RustObject")


class RustObject:
    """An opaque Rust object of ``library``. Not thread-safe to close concurrently with use
    from another thread; each operation is otherwise safe from any thread."""

    __slots__ = ("__weakref__", "_handle", "_library")

    def __init__(self, library: Library, handle: int) -> None:
        self._library = library
        self._handle = handle

    @classmethod
    def _adopt(cls: Type[Obj], library: Library, handle: int) -> Obj:
        obj = cls.__new__(cls)
        obj._library = library
        obj._handle = handle
        return obj

    @property
    def library(self) -> Library:
        """The library the object belongs to."""
        return self._library

    @property
    def handle(self) -> int:
        """The object's handle for C calls of its own library.

        :raises ClosedError: the object is closed.
        """
        handle = self._handle
        if not handle:
            raise ClosedError(f"{type(self).__name__} is closed")
        return handle

    def handle_for(self, library: Library) -> int:
        """The object's handle for a C call of ``library``.

        :raises TypeError: the object belongs to another library.
        :raises ClosedError: the object is closed.
        """
        if library is not self._library:
            raise TypeError(
                f"{type(self).__name__} belongs to the library {self._library.name}, not to "
                f"{library.name}: an object can only be passed to functions of its own library"
            )
        return self.handle

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has run."""
        return not self._handle

    def close(self) -> None:
        """Releases the Rust object (once operations in flight finish). Idempotent.

        :raises ClosedError: the handle was already freed through another wrapper.
        """
        handle, self._handle = self._handle, 0
        if handle:
            lib = self._library.lib
            check(lib.affi_object_free(handle), lib)

    def __enter__(self: Obj) -> Obj:
        if not self._handle:
            raise ClosedError(f"{type(self).__name__} is closed")
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    async def __aenter__(self: Obj) -> Obj:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", 0)
        if handle:
            self._handle = 0
            # A stale handle only returns an error code: nothing to report.
            self._library.lib.affi_object_free(handle)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"handle {self._handle:#x}"
        return f"<{type(self).__name__} of {self._library.name} {state}>"
