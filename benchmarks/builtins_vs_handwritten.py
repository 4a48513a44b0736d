"""Wall time of the built-ins exported with ``#[asyncffi::export]`` (``demo.add``, ``demo.echo``,
wrappers generated from the manifest) against the hand-written shims and wrappers they replace,
side by side in one process (repeats interleaved, medians reported).

    python benchmarks/builtins_vs_handwritten.py --old /path/to/old/lib_native.so \\
        --header /path/to/old/rust/include/asyncffi_native.h

``--old`` is the cdylib of a build with the hand-written built-ins (commit e9e2eba: build it in
a throwaway worktree with ``maturin develop --release``; it is then
``python/asyncffi/_native/lib_native.so`` there), loaded as a second library with its own Rust
core and declared with its header; the old wrappers are copied here from that commit's
``demo.py``. Every call is ready inline (no thread hop): this measures the wrapper, the shim and
the outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from typing import Any, Awaitable, Callable, Dict, List

import asyncffi
from asyncffi import RustCall, demo
from asyncffi._runtime import runtime_id
from asyncffi._values import i64, value_args


def old_wrappers(old: asyncffi.Library) -> Dict[str, Callable[..., Any]]:
    """``add`` and ``echo`` as commit e9e2eba's ``demo.py`` wrote them."""
    lib = old.functions

    def add(a: int, b: int) -> RustCall[int]:
        return RustCall(old, lib.affi_demo_add, (i64(a, "a"), i64(b, "b")))

    def echo(value: Any, *, runtime: str = "tokio") -> RustCall[Any]:
        return RustCall(old, lib.affi_demo_echo, (*value_args(value), runtime_id(runtime)))

    return {"add": add, "echo": echo}


async def awaited(call: Callable[[int], Awaitable[Any]], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        await call(i)
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the old build's lib_native.so")
    parser.add_argument("--header", required=True, help="its asyncffi_native.h")
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    old = asyncffi.load(args.old, header=args.header, name="old_native")
    before = old_wrappers(old)
    cases: Dict[str, Callable[[int], Awaitable[Any]]] = {
        "add, hand-written": lambda i: before["add"](i, 1),
        "add, exported": lambda i: demo.add(i, 1),
        "echo, hand-written": lambda i: before["echo"](i),
        "echo, exported": lambda i: demo.echo(i),
    }
    times: Dict[str, List[float]] = {name: [] for name in cases}

    async def run() -> None:
        for name, call in cases.items():  # warm up; and both give the same answers
            assert await call(41) == (42 if name.startswith("add") else 41), name
            await awaited(call, 2000)
        order = list(cases.items())
        for _ in range(args.repeats):
            random.shuffle(order)
            for name, call in order:
                times[name].append(await awaited(call, args.n))

    asyncio.run(run())
    print(f"{'call':<22}{'median (ns)':>12}")
    medians = {name: statistics.median(t) * 1e9 for name, t in times.items()}
    for name, ns in medians.items():
        print(f"{name:<22}{ns:>12.0f}")
    for op in ("add", "echo"):
        ratio = medians[f"{op}, exported"] / medians[f"{op}, hand-written"]
        print(f"{op}: exported / hand-written = {ratio:.3f}")


if __name__ == "__main__":
    main()
