"""Memory safety at exit and on re-entry, and bounded exit: each case runs in a subprocess,
where a crash or a hang is an exit status (or a timeout), and must exit 0 with nothing on
stderr."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import time
from typing import Dict, Optional

import pytest


def run(
    code: str, timeout: float = 60.0, env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` in a fresh interpreter with ``env`` added to the environment."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


#: Makes the collector run (and finalizers with it) at almost every allocation: CPython through
#: ``gc.set_threshold``; PyPy, which has no such call, through a tiny nursery (its minor
#: collections then run every few kilobytes, and finalizers after them).
COLLECT_OFTEN = {"PYPY_GC_NURSERY": "4k"}

#: glibc returns large blocks to the system at once (no dynamic threshold): a read of a freed
#: payload then faults instead of reading stale memory.
UNMAP_FREED = {"MALLOC_MMAP_THRESHOLD_": "65536"}

EXIT_WHILE_A_DAEMON_THREAD_READS_ITS_BATCH = """
    import atexit, time
    atexit.register(time.sleep, 1.0)  # runs after asyncffi's exit hook: the daemon goes on

    import asyncio, threading
    import asyncffi
    from asyncffi import demo
    from asyncffi._loader import lib
    current_port = asyncffi.demo.library.current_port

    started = threading.Event()

    def daemon():
        async def main():
            port = current_port().id

            def slow():
                # Called from Rust in the middle of a drained batch: returns only once the
                # interpreter's exit has closed the port, and its payloads had time to go.
                started.set()
                while lib.affi_port_fd(port) != lib.AFFI_STATUS_ERR_CLOSED:
                    pass
                values = asyncffi.stats()["live_values"]
                deadline = time.monotonic() + 0.5
                while asyncffi.stats()["live_values"] >= values and time.monotonic() < deadline:
                    pass
                return 1

            # Behind slow's request in the same batch: two large payloads (call arguments).
            await asyncio.gather(
                demo.call_python(slow),
                demo.call_python(len, b"x" * (32 << 20)),
                demo.call_python(len, "y" * (32 << 20)),
            )

        asyncio.run(main())

    threading.Thread(target=daemon, daemon=True).start()
    assert started.wait(30)
"""


@pytest.mark.parametrize("attempt", range(3))
def test_exit_while_a_daemon_thread_reads_a_drained_batch_does_not_crash(attempt: int) -> None:
    proc = run(EXIT_WHILE_A_DAEMON_THREAD_READS_ITS_BATCH, env=UNMAP_FREED)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_finalizers_that_start_calls_while_an_inline_result_is_decoded() -> None:
    # A garbage cycle whose finalizer starts (and drops) a call that finishes inline, on the
    # same loop, and leaves more such garbage: with the collector run at every allocation, it
    # runs while each large inline result is decoded.
    proc = run(
        """
        import asyncio, gc
        from asyncffi import demo
        set_threshold = getattr(gc, "set_threshold", lambda n: None)  # PyPy: COLLECT_OFTEN

        BIG = [b"x" * 300_000] * 20 + [[i] for i in range(2000)] + [b"y" * 300_000] * 20

        class StartsACall:
            def __init__(self):
                self.me = self

            def __del__(self):
                StartsACall()
                call = demo.echo([b"z" * 1000, [1, 2]])
                asyncio.isfuture(call)  # starts it; it finishes inline
                del call

        async def main():
            await demo.echo(BIG)  # cffi realizes its types before the collector runs often
            asyncio.isfuture(demo.echo([1]))
            StartsACall()
            set_threshold(1)
            try:
                for _ in range(20):
                    assert await demo.echo(BIG) == BIG
            finally:
                set_threshold(700)

        asyncio.run(main())
        """,
        env={**UNMAP_FREED, **COLLECT_OFTEN},
    )
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.skipif(
    not hasattr(gc, "set_threshold"),
    reason="needs gc.set_threshold (CPython's generational collector) to make the collector run "
    "inside the wake callback; PyPy's collector runs finalizers where it chooses",
)
def test_exit_is_bounded_while_a_wake_callback_blocks() -> None:
    # A finalizer run by the collector inside the wake callback (on the notifier thread)
    # blocks for good: exit must not wait for it beyond the shutdown timeout.
    code = """
        import asyncio, gc, threading, time
        import asyncffi
        from asyncffi import demo
        set_threshold = gc.set_threshold

        blocked = threading.Event()

        class Garbage:
            def __init__(self):
                self.me = self

            def __del__(self):
                if isinstance(threading.current_thread(), threading._DummyThread):
                    blocked.set()
                    threading.Event().wait()  # never set
                else:
                    Garbage()

        async def main():
            asyncffi.configure(wake="threadsafe")
            Garbage()
            set_threshold(1)
            calls = []
            deadline = time.monotonic() + 20
            while not blocked.is_set() and time.monotonic() < deadline:
                calls.append(asyncio.ensure_future(demo.sleep(0.001)))
                await asyncio.sleep(0.01)
            set_threshold(700)
            assert blocked.is_set(), "the wake callback never ran the finalizer"

        asyncio.run(main())
        print(time.time())  # exit starts
        """
    proc = run(code, timeout=30)
    assert (proc.returncode, proc.stderr) == (0, "")
    # The notifier's stop waits 2 s at most, the runtime's shutdown as long: well under 10 s.
    assert time.time() - float(proc.stdout) < 10
