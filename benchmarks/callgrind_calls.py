"""Instructions per call, for ``valgrind --tool=callgrind`` (``scripts/callgrind.sh`` runs it).

Ops: ``add`` and ``echo`` await ``demo.add`` / ``demo.echo`` one at a time (the hot path);
``gather-one`` and ``gather-two`` gather ``testlib_scale`` calls (ready at once) all on the test
library, or alternating between it and a copy of it at another path, which loads as a second
library with its own Rust core (the test library is ``rust/testlib``, built with ``cargo build
--release``; ``ASYNCFFI_TESTLIB`` overrides its path).

Usage: ``valgrind --tool=callgrind python benchmarks/callgrind_calls.py add 20000``. Run it
twice with two call counts and divide the difference of the instruction totals by the
difference of the counts: start-up and import cost cancel out.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

import asyncffi
from asyncffi import demo

ROOT = Path(__file__).resolve().parent.parent


async def one_at_a_time(op: str, n: int) -> None:
    if op == "add":
        for i in range(n):
            await demo.add(i, 1)
    else:
        for i in range(n):
            await demo.echo(i)


async def gathered(libraries: tuple, n: int) -> None:
    def calls(k: int) -> list:
        return [libraries[i % 2].call("testlib_scale", i, 1, 0.0, 0) for i in range(k)]

    await asyncio.gather(*calls(100))  # ports, runtimes and caches warm
    await asyncio.gather(*calls(n))


def main(op: str, n: int) -> None:
    if op in ("add", "echo"):
        asyncio.run(one_at_a_time(op, n))
        return
    if op not in ("gather-one", "gather-two"):
        raise SystemExit(f"unknown op {op!r}")
    path = os.environ.get("ASYNCFFI_TESTLIB") or str(
        ROOT / "rust" / "target" / "release" / "libasyncffi_testlib.so"
    )
    header = ROOT / "rust" / "include" / "asyncffi_testlib.h"
    one = asyncffi.load(path, header=header)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "libasyncffi_testlib_copy.so"
        shutil.copy(path, copy)
        two = asyncffi.load(copy, header=header) if op == "gather-two" else one
        asyncio.run(gathered((one, two), n))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
