"""A blocking call (``call.wait()``) against the awaited one, medians side by side in one run.

``python benchmarks/blocking.py [--n 2000] [--rounds 7]``: per call, in microseconds, for a
call ready on its first poll (``add``) and one that waits in Rust (``sleep(0)`` on tokio).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from asyncffi import demo


def blocking(make, n):
    t = time.perf_counter()
    for _ in range(n):
        make().wait()
    return (time.perf_counter() - t) / n * 1e6


def awaited(make, n):
    async def run():
        t = time.perf_counter()
        for _ in range(n):
            await make()
        return (time.perf_counter() - t) / n * 1e6

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    cases = {
        "add (ready at once)": lambda: demo.add(1, 2),
        "sleep(0) (waits)": lambda: demo.sleep(0),
    }
    print(f"{'case':<22} {'awaited us':>11} {'wait() us':>10}")
    for name, make in cases.items():
        a = statistics.median(awaited(make, args.n) for _ in range(args.rounds))
        b = statistics.median(blocking(make, args.n) for _ in range(args.rounds))
        print(f"{name:<22} {a:>11.2f} {b:>10.2f}")


if __name__ == "__main__":
    main()
