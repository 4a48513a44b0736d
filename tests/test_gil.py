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
    ticks = asyncio.ensure_future(demo.tick(0.01, 100))  # 1 s of 10 ms ticks on tokio
    await wait_for_stat("live_tasks", 1)
    await asyncio.sleep(0.1)
    held = hold_gil(0.5)
    offsets = await ticks
    gaps = [b - a for a, b in zip([0.0, *offsets], offsets)]
    # A worker waiting for the GIL would show one gap as long as the regex held it.
    assert held >= 0.5
    assert max(gaps) < 0.2, f"a Rust timer stalled for {max(gaps):.3f} s while the GIL was held"
    # And no drift as long as the hold: on a loaded machine the ticks drift a little (each
    # sleep ends a scheduling delay late), but a worker that waited out the hold drifts by it.
    assert offsets[-1] < 1.0 + held


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
