"""Loads the shipped cdylib with the cffi module built from its headers (``_ffi.py``).

maturin places the library in ``asyncffi/_native/``; it is opened by explicit path, never by
a search, and its ABI version must match the one this package speaks.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Optional, Protocol, cast

from ._ffi import ffi

ABI_VERSION = 2

if TYPE_CHECKING:
    CData = Any

    class NativeLib(Protocol):
        """The functions and constants of the shipped cdylib (``rust/include/*.h``)."""

        AFFI_STATUS_OK: int
        AFFI_STATUS_ERR_TYPE: int
        AFFI_STATUS_ERR_VALUE: int
        AFFI_STATUS_ERR_OVERFLOW: int
        AFFI_STATUS_ERR_CLOSED: int
        AFFI_STATUS_ERR_RUNTIME: int
        AFFI_STATUS_ERR_PANIC: int
        AFFI_TAG_NONE: int
        AFFI_TAG_BOOL: int
        AFFI_TAG_INT: int
        AFFI_TAG_FLOAT: int
        AFFI_TAG_BYTES: int
        AFFI_TAG_STR: int
        AFFI_TAG_PACKED: int
        AFFI_TAG_OBJECT: int
        AFFI_OUTCOME_OK: int
        AFFI_OUTCOME_ERROR: int
        AFFI_OUTCOME_PANIC: int
        AFFI_OUTCOME_CANCELLED: int
        AFFI_OUTCOME_ITEM: int
        AFFI_OUTCOME_ITEMS: int
        AFFI_REQUEST_CALL: int
        AFFI_REQUEST_CANCEL: int
        AFFI_REQUEST_RELEASE: int
        AFFI_REQUEST_PULL: int
        AFFI_REQUEST_POLL: int
        AFFI_WAKE_THREADSAFE: int
        AFFI_WAKE_FD: int
        AFFI_RUNTIME_TOKIO: int
        AFFI_RUNTIME_ASYNC_STD: int
        AFFI_RUNTIME_LOOP: int
        AFFI_FLAVOR_MULTI_THREAD: int
        AFFI_FLAVOR_CURRENT_THREAD: int

        # Core ABI (asyncffi.h)
        def affi_abi_version(self) -> int: ...
        def affi_configure(self, worker_threads: int, flavor: int) -> int: ...
        def affi_set_wake_callback(self, callback: CData) -> int: ...
        def affi_port_open(self, wake: int) -> int: ...
        def affi_port_fd(self, port: int) -> int: ...
        def affi_port_drain(self, port: int, out: CData, cap: int) -> int: ...
        def affi_port_release(self, port: int) -> int: ...
        def affi_port_take_inline(self, port: int, token: int, out: CData) -> int: ...
        def affi_port_release_inline(self, port: int) -> int: ...
        def affi_port_close(self, port: int) -> int: ...
        def affi_task_cancel(self, task: int) -> int: ...
        def affi_task_poll(self, task: int) -> int: ...
        def affi_object_free(self, handle: int) -> int: ...
        def affi_call_complete(
            self,
            port: int,
            call: int,
            status: int,
            tag: int,
            int_value: int,
            float_value: float,
            data: bytes | CData,
            len: int,
        ) -> int: ...
        def affi_stream_grant(self, task: int, n: int) -> int: ...
        def affi_pystream_items(self, object: int, data: bytes, len: int) -> int: ...
        def affi_pystream_end(
            self, object: int, status: int, data: bytes | CData, len: int, exception: int
        ) -> int: ...
        def affi_stats(self, out: CData) -> int: ...
        def affi_shutdown(self, timeout_ms: int) -> int: ...
        def affi_last_error(self, len: CData) -> CData: ...

        # Built-ins (asyncffi_native.h)
        def affi_demo_sleep(
            self, port: int, token: int, seconds: float, runtime_id: int
        ) -> int: ...
        def affi_demo_echo(
            self,
            port: int,
            token: int,
            tag: int,
            int_value: int,
            float_value: float,
            data: bytes | CData,
            len: int,
            runtime_id: int,
        ) -> int: ...
        def affi_demo_add(self, port: int, token: int, a: int, b: int) -> int: ...
        def affi_demo_fail(
            self,
            port: int,
            token: int,
            message: bytes,
            message_len: int,
            kind: bytes,
            kind_len: int,
        ) -> int: ...
        def affi_demo_panic(
            self, port: int, token: int, message: bytes, message_len: int
        ) -> int: ...
        def affi_demo_pending(self, port: int, token: int, runtime_id: int) -> int: ...
        def affi_demo_cpu(self, port: int, token: int, n: int) -> int: ...
        def affi_demo_tick(self, port: int, token: int, interval: float, count: int) -> int: ...
        def affi_demo_counter_new(self) -> int: ...
        def affi_demo_counter_add(self, port: int, token: int, counter: int, n: int) -> int: ...
        def affi_bench_complete_from_thread(
            self, port: int, first_token: int, count: int
        ) -> int: ...
        def affi_demo_call_python(
            self,
            port: int,
            token: int,
            callable: int,
            tag: int,
            data: bytes | CData,
            len: int,
            runtime_id: int,
        ) -> int: ...
        def affi_demo_call_python_n(
            self, port: int, token: int, callable: int, n: int, runtime_id: int
        ) -> int: ...
        def affi_demo_gather_python(
            self, port: int, token: int, callable: int, n: int, runtime_id: int
        ) -> int: ...
        def affi_demo_timeout_python(
            self,
            port: int,
            token: int,
            callable: int,
            seconds: float,
            tag: int,
            data: bytes | CData,
            len: int,
            runtime_id: int,
        ) -> int: ...
        def affi_demo_count(
            self, port: int, token: int, n: int, delay: float, runtime_id: int, buffer: int
        ) -> int: ...
        def affi_demo_count_produced(self) -> int: ...
        def affi_demo_fail_after(
            self, port: int, token: int, n: int, message: bytes, message_len: int, buffer: int
        ) -> int: ...
        def affi_demo_sum_stream(
            self, port: int, token: int, iterator: int, prefetch: int, runtime_id: int
        ) -> int: ...
        def affi_demo_echo_stream(
            self,
            port: int,
            token: int,
            iterator: int,
            prefetch: int,
            runtime_id: int,
            buffer: int,
        ) -> int: ...
        def affi_demo_take(
            self, port: int, token: int, iterator: int, k: int, prefetch: int, runtime_id: int
        ) -> int: ...


def library_path(directory: Optional[str] = None) -> str:
    """The path of the shipped cdylib (``asyncffi/_native/lib_native.*``)."""
    directory = directory or os.path.join(os.path.dirname(os.path.abspath(__file__)), "_native")
    try:
        names = sorted(n for n in os.listdir(directory) if n.startswith("lib_native."))
    except FileNotFoundError:
        names = []
    if not names:
        raise ImportError(
            f"asyncffi's native library is missing from {directory}: install the package with "
            "`pip install .` (which builds it), not by putting python/ on sys.path"
        )
    return os.path.join(directory, names[0])


def _open() -> NativeLib:
    native = ffi.dlopen(library_path())
    version = native.affi_abi_version()
    if version != ABI_VERSION:
        raise ImportError(
            f"asyncffi's native library speaks C ABI version {version}, this package speaks "
            f"{ABI_VERSION}: reinstall asyncffi"
        )
    return cast("NativeLib", native)


lib = _open()

__all__ = ["ffi", "lib", "library_path", "ABI_VERSION"]
