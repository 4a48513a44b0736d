"""Typed use of ``asyncffi.demo``, checked by mypy (``pyproject.toml`` lists this file): the
generated ``demo.pyi`` must give these types, and must refuse the calls marked ``type: ignore``
(strict mypy reports an ignore that is not needed)."""

from __future__ import annotations

from typing import Any, AsyncIterator, List

import asyncffi
from asyncffi import demo


async def numbers() -> AsyncIterator[int]:
    yield 1


async def typed_calls() -> None:
    total: int = await demo.add(1, 2)
    offsets: List[float] = await demo.tick(0.1, 3)
    anything: Any = await demo.echo({"a": 1}, runtime="async-std")
    await demo.sleep(0.5, runtime="loop")
    items: asyncffi.RustStream[int] = demo.count(3, delay=0.1, buffer=8, runtime="tokio")
    async for i in items:
        total += i
    results: List[Any] = await demo.gather_python(lambda i: i, 3)
    summed: int = await demo.sum_stream(numbers(), prefetch=4)
    taken: List[Any] = await demo.take([1, 2, 3], 2, prefetch=1, runtime="loop")
    echoed: asyncffi.RustStream[Any] = demo.echo_stream([1], buffer=1, prefetch=1)
    produced: int = demo.count_produced()
    with demo.Counter() as counter:
        running: int = await counter.add(2)
    await demo.call_python(print, 1, "two", runtime="tokio")
    await demo.timeout_python(print, 0.1, 1, 2)
    await demo.fail("message", kind="custom")
    del offsets, anything, results, summed, taken, echoed, produced, running


def refused_calls() -> None:
    demo.add("1", 2)  # type: ignore[arg-type]
    demo.sleep(1, "tokio")  # type: ignore[call-arg]
    demo.count(3, buffer="8")  # type: ignore[arg-type]
    demo.fail("message", "kind")  # type: ignore[call-arg]
    demo.Counter(1)  # type: ignore[call-arg]
    demo.nope  # type: ignore[attr-defined]  # noqa: B018
