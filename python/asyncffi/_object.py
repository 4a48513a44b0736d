"""``RustObject``: a Python handle on an opaque Rust object.

Python owns the handle and frees it exactly once: by ``close()``, by leaving a ``with`` block,
or, as a fallback, when the wrapper is garbage-collected. Rust operations already running keep
the object alive until they finish; starting one after ``close()`` raises ``ClosedError``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Optional, Type, TypeVar

from ._errors import ClosedError, check
from ._loader import lib

Obj = TypeVar("Obj", bound="RustObject")

_free = lib.affi_object_free


class RustObject:
    """An opaque Rust object. Not thread-safe to close concurrently with use from another
    thread; each operation is otherwise safe from any thread."""

    __slots__ = ("__weakref__", "_handle")

    def __init__(self, handle: int) -> None:
        self._handle = handle

    @classmethod
    def _adopt(cls: Type[Obj], handle: int) -> Obj:
        obj = cls.__new__(cls)
        obj._handle = handle
        return obj

    @property
    def handle(self) -> int:
        """The object's handle for C calls.

        :raises ClosedError: the object is closed.
        """
        handle = self._handle
        if not handle:
            raise ClosedError(f"{type(self).__name__} is closed")
        return handle

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
            check(_free(handle))

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

    def __del__(self) -> None:
        handle = getattr(self, "_handle", 0)
        if handle:
            self._handle = 0
            _free(handle)  # a stale handle only returns an error code: nothing to report

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"handle {self._handle:#x}"
        return f"<{type(self).__name__} {state}>"
