"""The GIL rule: no runtime worker ever waits for the GIL. While Python holds the GIL for a long
time in one C call, Rust timers keep their pace and completions pile up without blocking."""

from __future__ import annotations

import asyncio
import re
import time

import asyncffi
import pytest
from asyncffi import demo
from conftest import wait_for_stat

# Catastrophic backtracking: the regex engine holds the GIL for the whole match.
_PATTERN = re.compile(r"(a+)+$")


def hold_gil(seconds: float) -> float:
    """Holds the GIL in one C call for at least ``seconds``; returns how long it took."""
    n = 18
    while True:
        start = time.perf_counter()
        assert _PATTERN.match("a" * n + "b") is None
        took = time.perf_counter() - start
        if took >= seconds:
            return took
        n += 1


async def test_rust_timers_keep_pace_while_python_holds_the_gil(wake: str) -> None:
    before = time.monotonic()  # the ticks' start, at most ``started - before`` earlier
    # 2.5 s of 10 ms ticks on tokio: they outlast the hold (which may take over a second on a
    # loaded machine) by far, so some surely fall inside it.
    ticks = asyncio.ensure_future(demo.tick(0.01, 250))
    await wait_for_stat("live_tasks", 1)
    await asyncio.sleep(0.1)
    started = time.monotonic()
    held = hold_gil(0.5)
    released = time.monotonic()
    offsets = await ticks
    gaps = [b - a for a, b in zip([0.0, *offsets], offsets)]
    # A worker waiting for the GIL would show one gap as long as the regex held it.
    assert held >= 0.5
    assert max(gaps) < 0.2, f"a Rust timer stalled for {max(gaps):.3f} s while the GIL was held"
    # And the ticks went on *during* the hold (the last ``held`` seconds before ``released``):
    # Rust's Instant and time.monotonic() read the same clock; a tick's time is known to
    # within ``started - before`` (when the task took its start), so only ticks surely inside
    # the hold count. A worker that waited out the hold has none there.
    hold_begin, hold_end = released - held, released - (started - before)
    during = [t for t in (before + off for off in offsets) if hold_begin <= t <= hold_end]
    assert len(during) >= 3, f"{len(during)} ticks while the GIL was held for {held:.3f} s"


# Not the ``loop`` runtime: its futures run on the event loop's thread, by design.
@pytest.mark.parametrize("runtime", ["tokio", "async-std"])
async def test_completions_pile_up_while_the_gil_is_held_and_then_drain(
    runtime: str, wake: str
) -> None:
    before = asyncffi.stats()["completed"]
    calls = asyncio.gather(*(demo.sleep(0.05, runtime=runtime) for _ in range(2_000)))
    await wait_for_stat("live_tasks", 2_000)
    hold_gil(0.3)
    # Every Rust task finished while Python was busy: nothing needed the GIL to complete.
    assert asyncffi.stats()["completed"] == before + 2_000
    assert await calls == [None] * 2_000
