"""What a second library on the loop costs: ``gather`` of N calls all on one library, against
the same N calls split across two libraries, side by side in one run (repeats interleaved
in a shuffled order, medians reported).

    python benchmarks/libraries.py              # N = 10000, 15 repeats
    python benchmarks/libraries.py --n 2000 --repeats 3

The two libraries are the test library (``rust/testlib``, built with ``cargo build --release
-p asyncffi-testlib``; ``ASYNCFFI_TESTLIB`` overrides its path) and a copy of the same file at
another path, which the process loads as a second library with its own Rust core: the same
function, so only the number of libraries differs. A third pair mixes the built-ins with the
test library.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List

import asyncffi
from asyncffi import demo

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "rust" / "include" / "asyncffi_testlib.h"


def testlib_path() -> str:
    path = os.environ.get("ASYNCFFI_TESTLIB") or str(
        ROOT / "rust" / "target" / "release" / "libasyncffi_testlib.so"
    )
    if not os.path.exists(path):
        sys.exit(f"build the test library first: cd rust && cargo build --release (no {path})")
    return path


def scale(lib: asyncffi.Library, x: int, seconds: float) -> Any:
    return lib.call("testlib_scale", x, 1, seconds, 0)


def scenarios(
    one: asyncffi.Library, two: asyncffi.Library, n: int
) -> Dict[str, Callable[[], Awaitable[Any]]]:
    half = n // 2
    return {
        "ready at once, one library": lambda: asyncio.gather(
            *(scale(one, i, 0.0) for i in range(n))
        ),
        "ready at once, two libraries": lambda: asyncio.gather(
            *(scale(one if i % 2 else two, i, 0.0) for i in range(n))
        ),
        "1 ms on tokio, one library": lambda: asyncio.gather(
            *(scale(one, i, 0.001) for i in range(n))
        ),
        "1 ms on tokio, two libraries": lambda: asyncio.gather(
            *(scale(one if i % 2 else two, i, 0.001) for i in range(n))
        ),
        "built-ins demo.add only": lambda: asyncio.gather(*(demo.add(i, 1) for i in range(n))),
        "demo.add + testlib_scale": lambda: asyncio.gather(
            *(demo.add(i, 1) for i in range(half)), *(scale(one, i, 0.0) for i in range(n - half))
        ),
    }


async def run(n: int, repeats: int, one: asyncffi.Library, two: asyncffi.Library) -> None:
    cases = scenarios(one, two, n)
    times: Dict[str, List[float]] = {name: [] for name in cases}
    for make in cases.values():  # warm up: ports, runtimes, caches
        await make()
    order = list(cases.items())
    shuffle = random.Random(1).shuffle
    for _ in range(repeats):
        shuffle(order)  # no scenario always runs after the same one
        for name, make in order:
            start = time.perf_counter()
            await make()
            times[name].append(time.perf_counter() - start)
    version = sys.version.split()[0]
    print(f"gather of {n} calls, median of {repeats} interleaved repeats (Python {version})")
    print(f"{'scenario':34} {'us/call':>8} {'calls/s':>10}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:34} {median / n * 1e6:8.2f} {n / median:10.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    path = testlib_path()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "libasyncffi_testlib_copy.so"
        shutil.copy(path, copy)
        one = asyncffi.load(path, header=HEADER)
        two = asyncffi.load(copy, header=HEADER)
        asyncio.run(run(args.n, args.repeats, one, two))
    return 0


if __name__ == "__main__":
    sys.exit(main())
