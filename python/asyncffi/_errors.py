"""The exceptions asyncffi raises, and the mapping from C ABI status codes to them."""

from __future__ import annotations

from ._loader import ffi, lib


class Error(Exception):
    """Base class of the errors that come from the Rust side."""


class RustError(Error):
    """A Rust function returned an error.

    :ivar kind: the error's category as the Rust code named it (for example ``"overflow"``).
    """

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self) -> tuple[type[RustError], tuple[str, str]]:
        return (type(self), (str(self), self.kind))


class RustPanic(Error):
    """Rust code panicked. The panic was caught at the boundary; the process lives on."""


class ClosedError(Error):
    """A Rust object, port or task was used after it was closed or freed."""


def exception_fields(exc: BaseException) -> list[str]:
    """``[type_name, message]`` of a Python exception as Rust receives it: valid UTF-8 whatever
    the exception holds (lone surrogates escaped, unprintable messages replaced)."""
    try:
        message = str(exc)
    except Exception:
        try:
            message = repr(exc)
        except Exception:
            message = f"<unprintable {type(exc).__name__}>"
    return [_printable(type(exc).__name__), _printable(message)]


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def last_error() -> str:
    """This thread's last error message from the Rust library."""
    size = ffi.new("uintptr_t *")
    ptr = lib.affi_last_error(size)
    return bytes(ffi.buffer(ptr, size[0])).decode("utf-8", "replace")


_STATUS_EXCEPTIONS: dict[int, type[Exception]] = {
    lib.AFFI_STATUS_ERR_TYPE: TypeError,
    lib.AFFI_STATUS_ERR_VALUE: ValueError,
    lib.AFFI_STATUS_ERR_OVERFLOW: OverflowError,
    lib.AFFI_STATUS_ERR_CLOSED: ClosedError,
    lib.AFFI_STATUS_ERR_RUNTIME: RuntimeError,
    lib.AFFI_STATUS_ERR_PANIC: RustPanic,
}


def status_error(status: int) -> Exception:
    """The exception for a negative status returned by a C ABI call on this thread."""
    cls = _STATUS_EXCEPTIONS.get(status, Error)
    return cls(last_error())


def check(status: int) -> int:
    """Returns ``status`` if it is not an error, else raises the matching exception."""
    if status < 0:
        raise status_error(status)
    return status
