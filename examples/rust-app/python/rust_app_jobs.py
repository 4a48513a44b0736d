"""The Python half of the example program: awaited by the Rust main, it calls back into the
program's own exported functions."""

import asyncio
import atexit
import os

import asyncffi


async def fetch(url: str, parts: int) -> str:
    """Pretends to fetch ``url`` in ``parts`` steps, reporting progress to the program."""
    program = asyncffi.program()
    for done in range(1, parts + 1):
        await asyncio.sleep(0.01)
        await program.progress(done, parts)
    return f"body of {url}"


def loop_name() -> str:
    """The module of the running event loop's class (``uvloop`` here)."""
    return type(asyncio.get_running_loop()).__module__


def _report_live() -> None:
    """At exit, with ``RUST_APP_LIVE`` set: the program's live counters (all 0: no leak), once
    the Rust side has dropped what the closed loop left (at most 2 s)."""
    import time

    deadline = time.monotonic() + 2
    while True:
        stats = asyncffi.program().stats()
        live = {k: v for k, v in stats.items() if k.startswith("live_") and v}
        if not live or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    print(f"live {live}", flush=True)


if os.environ.get("RUST_APP_LIVE"):
    atexit.register(_report_live)
