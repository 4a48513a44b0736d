"""The workloads that ``benchmarks/callgrind.py`` counts under ``valgrind --tool=callgrind``.

``python benchmarks/callgrind_calls.py OP N`` runs ``N`` operations of kind ``OP`` after a
short warm-up, and nothing else; run under callgrind twice with two counts, the difference of
the instruction totals divided by the difference of the counts is the cost of one operation
without start-up, imports and the warm-up (``benchmarks/callgrind.py`` does that).

Ops:

- ``echo`` and ``add``: ``await demo.echo(None)`` / ``await demo.add(i, 1)`` one at a time (a
  call ready on its first poll is delivered inline: the eager path);
- ``gather-echo``: ``asyncio.gather`` of ``N`` ``demo.echo(None)`` calls (on tokio);
- ``gather-floor``: bare asyncio, the same gather shape, each item a future resolved by
  ``loop.call_soon(fut.set_result, None)``;
- ``gather-peer``: pyo3-async-runtimes (``benchmarks/peers/pyo3_peer``), ``N`` gathered
  ``pyo3_peer.add(1, 2)`` (its trivial call: a ``future_into_py`` that returns at once);
- ``gather-sleep`` and ``gather-peer-sleep``: ``N`` gathered 1 ms sleeps on tokio's timer,
  ``demo.sleep(0.001)`` and ``pyo3_peer.sleep(0.001)``;
- ``gather-one`` and ``gather-two``: ``N`` gathered ``testlib_scale`` calls (ready at once),
  all on the test library, or alternating between it and a copy of it at another path, which
  loads as a second library with its own Rust core (the test library is ``rust/testlib``,
  built with ``cargo build --release -p asyncffi-testlib``; ``ASYNCFFI_TESTLIB`` overrides its
  path).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict

ROOT = Path(__file__).resolve().parent.parent
#: Operations run before the measured ones: ports, runtimes, caches and free lists warm.
WARM_UP = 200


async def one_at_a_time(op: str, n: int) -> None:
    from asyncffi import demo

    for _ in range(WARM_UP):
        await demo.echo(None)
    if op == "add":
        for i in range(n):
            await demo.add(i, 1)
    else:
        for _ in range(n):
            await demo.echo(None)


def _floor() -> Awaitable[Any]:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.call_soon(fut.set_result, None)
    return fut


def _makers() -> Dict[str, Callable[[], Callable[[int], Awaitable[Any]]]]:
    """For each gathered op, a function that imports what it needs and returns ``item(i)``."""

    def echo() -> Callable[[int], Awaitable[Any]]:
        from asyncffi import demo

        return lambda i: demo.echo(None)

    def sleep() -> Callable[[int], Awaitable[Any]]:
        from asyncffi import demo

        return lambda i: demo.sleep(0.001)

    def peer() -> Callable[[int], Awaitable[Any]]:
        import pyo3_peer

        return lambda i: pyo3_peer.add(1, 2)

    def peer_sleep() -> Callable[[int], Awaitable[Any]]:
        import pyo3_peer

        return lambda i: pyo3_peer.sleep(0.001)

    def floor() -> Callable[[int], Awaitable[Any]]:
        return lambda i: _floor()

    return {
        "gather-echo": echo,
        "gather-floor": floor,
        "gather-peer": peer,
        "gather-sleep": sleep,
        "gather-peer-sleep": peer_sleep,
    }


async def gathered(item: Callable[[int], Awaitable[Any]], n: int) -> None:
    await asyncio.gather(*[item(i) for i in range(WARM_UP)])
    await asyncio.gather(*[item(i) for i in range(n)])


def two_libraries(op: str, n: int) -> None:
    import asyncffi

    path = os.environ.get("ASYNCFFI_TESTLIB") or str(
        ROOT / "rust" / "target" / "release" / "libasyncffi_testlib.so"
    )
    header = ROOT / "rust" / "include" / "asyncffi_testlib.h"
    one = asyncffi.load(path, header=header)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "libasyncffi_testlib_copy.so"
        shutil.copy(path, copy)
        libraries = (one, asyncffi.load(copy, header=header) if op == "gather-two" else one)

        def item(i: int) -> Awaitable[Any]:
            return libraries[i % 2].call("testlib_scale", i, 1, 0.0, 0)  # type: ignore[no-any-return]

        asyncio.run(gathered(item, n))


#: Every op this script runs.
OPS = ("echo", "add", *_makers(), "gather-one", "gather-two")


def main(op: str, n: int) -> None:
    if op in ("echo", "add"):
        asyncio.run(one_at_a_time(op, n))
    elif op in ("gather-one", "gather-two"):
        two_libraries(op, n)
    elif op in _makers():
        asyncio.run(gathered(_makers()[op](), n))
    else:
        raise SystemExit(f"unknown op {op!r}; one of {', '.join(OPS)}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
