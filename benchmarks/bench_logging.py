"""Records per second through the log bridge: a Rust sync call logs ``N`` WARNING records
(queued in Rust, no GIL), then the bridge hands them to a ``logging`` handler that counts
them. Reports the median of 5 runs of: the burst alone, and burst to last record handled.

    ASYNCFFI_TESTLIB=rust/target/release/libasyncffi_testlib.so python benchmarks/bench_logging.py
"""

from __future__ import annotations

import logging
import os
import statistics
import time

import asyncffi

N = 100_000


class Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.n += 1


def main() -> None:
    lib = asyncffi.load(os.environ["ASYNCFFI_TESTLIB"])
    lib.logging.set_capacity(2 * N)
    handler = Count()
    logger = logging.getLogger("asyncffi_testlib")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    bursts, totals = [], []
    for _ in range(5):
        handler.n = 0
        start = time.perf_counter()
        lib.log_burst(0, N)
        burst = time.perf_counter() - start
        while handler.n < N:
            lib.logging.flush()
        totals.append(time.perf_counter() - start)
        bursts.append(burst)
    print(
        f"{N} records: Rust side {N / statistics.median(bursts):,.0f} records/s queued, "
        f"{N / statistics.median(totals):,.0f} records/s handled by logging "
        f"(dropped {lib.logging.stats()['dropped']})"
    )


if __name__ == "__main__":
    main()
