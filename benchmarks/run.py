"""Side-by-side benchmarks: asyncffi, pyo3-async-runtimes, the naive executor approach and the
bare-asyncio floor, on the same machine, same Python, same run.

    python benchmarks/run.py            # full run (several minutes)
    python benchmarks/run.py --quick    # small sizes, one repeat: proves it works (CI)
    python benchmarks/run.py --only stream   # only the scenarios named so; prints, writes nothing

Systems with ``trio`` in their name run the scenarios under ``trio.run`` (concurrent calls as
one nursery task each); the memory and scale scenarios are asyncio's only.

Each (system, scenario) pair runs in a fresh interpreter (asyncffi's configuration is fixed per
process) and reports the median of its repeats. The table is printed and written to
``benchmarks/results/`` as Markdown and JSON, with a chart of ops/s (PNG) when matplotlib is
installed. The pyo3-async-runtimes peer (``benchmarks/peers/pyo3_peer``) is built with
``pip install ./benchmarks/peers/pyo3_peer`` when missing; ``--no-peer`` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Any,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
)

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
PEER = ROOT / "peers" / "pyo3_peer"


# --- systems ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class System:
    """One way of awaiting native work from asyncio."""

    name: str
    kind: str  # "floor", "asyncffi", "peer", "naive"
    wake: str = "threadsafe"
    flavor: str = "multi_thread"
    runtime: str = "tokio"
    loop: str = "asyncio"


SYSTEMS = [
    System("asyncio floor", "floor"),
    System("thread floor", "thread-floor", wake="fd"),
    System("asyncffi threadsafe tokio", "asyncffi"),
    System("asyncffi fd tokio", "asyncffi", wake="fd"),
    System("asyncffi threadsafe tokio-ct", "asyncffi", flavor="current_thread"),
    System("asyncffi threadsafe async-std", "asyncffi", runtime="async-std"),
    System("asyncffi threadsafe tokio uvloop", "asyncffi", loop="uvloop"),
    System("trio floor", "floor", loop="trio"),
    System("asyncffi threadsafe tokio trio", "asyncffi", loop="trio"),
    System("asyncffi fd tokio trio", "asyncffi", wake="fd", loop="trio"),
    System("asyncffi threadsafe loop", "asyncffi", runtime="loop"),
    System("asyncffi fd loop", "asyncffi", wake="fd", runtime="loop"),
    System("pyo3-async-runtimes", "peer"),
    System("run_in_executor", "naive"),
]


class Calls:
    """The awaitables a system offers; ``None`` where it has no equivalent."""

    def __init__(self, system: System) -> None:
        self.trivial: Optional[Callable[[], Awaitable[Any]]] = None
        self.sleep: Optional[Callable[[float], Awaitable[Any]]] = None
        self.py_seq: Optional[Callable[[Any, int], Awaitable[Any]]] = None
        self.py_gather: Optional[Callable[[Any, int], Awaitable[Any]]] = None
        #: Completes ``n`` futures at once (systems whose "trivial" call is not an awaitable).
        self.many: Optional[Callable[[int], Awaitable[Any]]] = None
        #: An async iterator of ``0..n-1`` produced natively (Rust -> Python).
        self.stream_out: Optional[Callable[[int], AsyncIterator[int]]] = None
        #: Natively sums what a Python async iterator yields (Python -> Rust).
        self.stream_in: Optional[Callable[[AsyncIterable[int]], Awaitable[int]]] = None
        if system.kind == "floor" and system.loop == "trio":
            import trio

            # A task switch through trio's scheduler: what any trio await that waits costs.
            self.trivial = trio.lowlevel.checkpoint
            self.sleep = trio.sleep
            self.stream_out = _count
            self.stream_in = _sum_in_python
        elif system.kind == "floor":

            def trivial() -> Awaitable[Any]:
                loop = asyncio.get_running_loop()
                fut = loop.create_future()
                loop.call_soon(fut.set_result, 3)
                return fut

            self.trivial = trivial
            self.sleep = asyncio.sleep
            # Both stream floors are one Python async generator step per item, no native side.
            self.stream_out = _count
            self.stream_in = _sum_in_python
        elif system.kind == "thread-floor":
            import asyncffi

            asyncffi.configure(wake=system.wake)
            self.many = _thread_floor
        elif system.kind == "asyncffi":
            import asyncffi
            from asyncffi import demo

            asyncffi.configure(wake=system.wake, flavor=system.flavor)
            rt = system.runtime
            self.trivial = lambda: demo.echo(3, runtime=rt)
            self.sleep = lambda s: demo.sleep(s, runtime=rt)
            self.py_seq = lambda f, n: demo.call_python_n(f, n, runtime=rt)
            self.py_gather = lambda f, n: demo.gather_python(f, n, runtime=rt)
            self.stream_out = lambda n: demo.count(n, runtime=rt)
            self.stream_in = lambda items: demo.sum_stream(items, runtime=rt)
        elif system.kind == "peer":
            import pyo3_peer

            self.trivial = lambda: pyo3_peer.add(1, 2)
            self.sleep = pyo3_peer.sleep
            self.py_seq = pyo3_peer.call_python_n
            self.py_gather = pyo3_peer.gather_python
            self.stream_out = pyo3_peer.count  # one future_into_py per item
            self.stream_in = pyo3_peer.sum_stream  # into_stream_v2
        elif system.kind == "naive":
            import pyo3_peer

            def naive() -> Awaitable[Any]:
                return asyncio.get_running_loop().run_in_executor(
                    None, pyo3_peer.add_blocking, 1, 2
                )

            self.trivial = naive


# --- scenarios ---------------------------------------------------------------------------------


async def _identity(i: int) -> int:
    return i


async def _gather(awaitables: Iterable[Awaitable[Any]]) -> None:
    """``asyncio.gather``, or under trio a nursery with one task per awaitable."""
    if asyncio._get_running_loop() is not None:
        await asyncio.gather(*awaitables)
        return
    import trio

    async with trio.open_nursery() as nursery:
        for awaitable in awaitables:
            nursery.start_soon(_await, awaitable)


async def _await(awaitable: Awaitable[Any]) -> None:
    await awaitable


async def _count(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


async def _sum_in_python(items: AsyncIterable[int]) -> int:
    total = 0
    async for i in items:
        total += i
    return total


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _thread_floor(n: int) -> None:
    """A plain Rust thread completes ``n`` futures through a completion port (fd wake): the
    cheapest cross-thread completion, with no runtime and no task in between."""
    from asyncffi import demo
    from asyncffi._errors import check
    from asyncffi._loader import ffi, lib

    current_port = demo.library.current_port

    loop = asyncio.get_running_loop()
    port = current_port()
    first = next(port.tokens)
    futures = []
    for k in range(n):
        fut = loop.create_future()
        port.pending[first + k] = fut
        futures.append(fut)
    for _ in range(n - 1):  # keep the port's tokens ahead of the ones used here
        next(port.tokens)
    out = ffi.new("AffiCompletion *")
    complete = demo.library.manifest_functions.asyncffi_native_bench_complete_from_thread
    check(complete(port.id, first, n, out), lib)
    if out.status != lib.AFFI_OUTCOME_OK:
        raise RuntimeError("bench_complete_from_thread failed")
    await asyncio.gather(*futures)


async def gather_trivial(calls: Calls, n: int) -> float:
    start = time.perf_counter()
    if calls.many is not None:
        await calls.many(n)
    else:
        assert calls.trivial is not None
        await _gather(calls.trivial() for _ in range(n))
    return time.perf_counter() - start


async def sequential_trivial(calls: Calls, n: int) -> float:
    assert calls.trivial is not None
    start = time.perf_counter()
    for _ in range(n):
        await calls.trivial()
    return time.perf_counter() - start


async def gather_sleep(calls: Calls, n: int) -> float:
    assert calls.sleep is not None
    start = time.perf_counter()
    await _gather(calls.sleep(0.001) for _ in range(n))
    return time.perf_counter() - start


async def rust_awaits_python_seq(calls: Calls, n: int) -> float:
    assert calls.py_seq is not None
    start = time.perf_counter()
    assert await calls.py_seq(_identity, n) == sum(range(n))
    return time.perf_counter() - start


async def rust_awaits_python_gather(calls: Calls, n: int) -> float:
    assert calls.py_gather is not None
    start = time.perf_counter()
    assert len(await calls.py_gather(_identity, n)) == n
    return time.perf_counter() - start


async def stream_rust_to_python(calls: Calls, n: int) -> float:
    """Python consumes ``n`` items of a native stream with ``async for``."""
    assert calls.stream_out is not None
    start = time.perf_counter()
    total = 0
    async for i in calls.stream_out(n):
        total += i
    elapsed = time.perf_counter() - start
    assert total == n * (n - 1) // 2
    return elapsed


async def stream_python_to_rust(calls: Calls, n: int) -> float:
    """Native code consumes ``n`` items of a Python async generator and returns their sum."""
    assert calls.stream_in is not None
    start = time.perf_counter()
    total = await calls.stream_in(_count(n))
    elapsed = time.perf_counter() - start
    assert total == n * (n - 1) // 2
    return elapsed


async def memory_per_pending_call(calls: Calls, n: int) -> float:
    """Bytes of RSS per pending 10-second sleep (reported in the 'per op' column)."""
    assert calls.sleep is not None
    before = _rss_bytes()
    waiting = asyncio.gather(*(calls.sleep(10) for _ in range(n)))
    await asyncio.sleep(0.3)  # every call started
    after = _rss_bytes()
    waiting.cancel()
    try:
        await waiting
    except asyncio.CancelledError:
        pass
    return float(after - before)  # the worker divides by n


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Calls, int], Awaitable[float]]
    needs: str
    full: int
    quick: int
    unit: str = "us/op"  # or "us/item", or "bytes/op"
    #: Kinds of system measured (the slow ones are left out of the largest run).
    kinds: tuple = ("floor", "thread-floor", "asyncffi", "peer", "naive")
    #: One run and no warm-up (a scale test, too large to repeat).
    once: bool = False

    @property
    def memory(self) -> bool:
        """Measured once, cold: a warm-up would leave freed pages for the run to reuse."""
        return self.unit == "bytes/op"

    @property
    def timed(self) -> bool:
        return self.unit.startswith("us/")


SCENARIOS = [
    Scenario("gather 10k trivial", gather_trivial, "trivial", 10_000, 2_000),
    Scenario("gather 100k trivial", gather_trivial, "trivial", 100_000, 5_000),
    Scenario("one at a time", sequential_trivial, "trivial", 5_000, 500),
    Scenario("gather 100k sleep(1ms)", gather_sleep, "sleep", 100_000, 5_000),
    Scenario("Rust awaits Python, sequential", rust_awaits_python_seq, "py_seq", 5_000, 500),
    Scenario(
        "Rust awaits Python, concurrent", rust_awaits_python_gather, "py_gather", 10_000, 1_000
    ),
    Scenario(
        "stream Rust -> Python",
        stream_rust_to_python,
        "stream_out",
        1_000_000,
        20_000,
        "us/item",
        kinds=("floor", "asyncffi", "peer"),
    ),
    Scenario(
        "stream Python -> Rust",
        stream_python_to_rust,
        "stream_in",
        1_000_000,
        20_000,
        "us/item",
        kinds=("floor", "asyncffi", "peer"),
    ),
    Scenario(
        "memory per pending sleep", memory_per_pending_call, "sleep", 100_000, 5_000, "bytes/op"
    ),
    Scenario(
        "gather 1M trivial (scale)",
        gather_trivial,
        "trivial",
        1_000_000,
        0,
        kinds=("floor", "asyncffi"),
        once=True,
    ),
]


# --- worker: one (system, scenario) in this process ----------------------------------------------


def worker(system_name: str, scenario_name: str, n: int, repeats: int) -> Dict[str, Any]:
    system = next(s for s in SYSTEMS if s.name == system_name)
    scenario = next(s for s in SCENARIOS if s.name == scenario_name)
    calls = Calls(system)
    needs = "many" if calls.many is not None and scenario.run is gather_trivial else scenario.needs
    if getattr(calls, needs) is None:
        return {"skipped": "no equivalent"}
    if system.loop == "trio":
        if scenario.memory or scenario.once:
            return {"skipped": "asyncio only"}
        import trio

        trio.run(scenario.run, calls, max(1, min(n // 10, 10_000)))  # warm-up
        samples = [trio.run(scenario.run, calls, n) / n for _ in range(repeats)]
        return {"per_op": statistics.median(samples) * 1e6, "samples": samples, "n": n}
    if system.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        if scenario.memory or scenario.once:
            repeats = 1
        else:
            loop.run_until_complete(scenario.run(calls, max(1, min(n // 10, 10_000))))  # warm-up
        samples = [loop.run_until_complete(scenario.run(calls, n)) / n for _ in range(repeats)]
    finally:
        loop.close()
    per_op = statistics.median(samples)
    if scenario.timed:
        per_op *= 1e6
    return {"per_op": per_op, "samples": samples, "n": n}


# --- driver -----------------------------------------------------------------------------------


def ensure_peer() -> bool:
    try:
        import pyo3_peer  # noqa: F401

        return True
    except ImportError:
        pass
    print("building the pyo3-async-runtimes peer (benchmarks/peers/pyo3_peer) ...", flush=True)
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", str(PEER)])
    return result.returncode == 0


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{cpu}, {os.cpu_count()} cores, {python}"


def run_all(quick: bool, peer: bool, repeats: int, scenarios: List[Scenario]) -> Dict[str, Any]:
    systems = [s for s in SYSTEMS if peer or s.kind not in ("peer", "naive")]
    results: Dict[str, Dict[str, Any]] = {}
    for scenario in scenarios:
        n = scenario.quick if quick else scenario.full
        if n == 0:
            continue
        row: Dict[str, Any] = {}
        for system in (s for s in systems if s.kind in scenario.kinds):
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                system.name,
                scenario.name,
                str(n),
                str(repeats),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            lines = proc.stdout.strip().splitlines()
            if lines and lines[-1].startswith("{"):
                row[system.name] = json.loads(lines[-1])
                if proc.returncode != 0:  # measured, then died on the way out: worth knowing
                    row[system.name]["exit_status"] = proc.returncode
            else:
                tail = proc.stderr.strip().splitlines()[-3:]
                row[system.name] = {"error": f"exit status {proc.returncode}: {tail}"}
            r = row[system.name]
            shown = f"{r['per_op']:10.2f} {scenario.unit}" if "per_op" in r else str(r)
            if "exit_status" in r:
                shown += f"  (then exited with status {r['exit_status']})"
            print(f"  {scenario.name:<34} {system.name:<32} {shown}", flush=True)
        results[scenario.name] = {"unit": scenario.unit, "n": n, "systems": row}
    return {
        "machine": machine(),
        "quick": quick,
        "repeats": repeats,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "results": results,
    }


def markdown(report: Dict[str, Any]) -> str:
    systems: List[str] = []
    for data in report["results"].values():
        for name in data["systems"]:
            if name not in systems:
                systems.append(name)
    lines = [
        f"Measured {report['date']} on {report['machine']}"
        + (" (quick mode: small sizes, not for quoting)" if report["quick"] else "")
        + f"; median of {report['repeats']} runs, each pair in a fresh interpreter.",
        "",
        "| scenario | " + " | ".join(systems) + " |",
        "|---|" + "---|" * len(systems),
    ]
    for name, data in report["results"].items():
        cells = []
        for system in systems:
            r = data["systems"].get(system, {})
            cells.append(f"{r['per_op']:.2f}" if "per_op" in r else "-")
        lines.append(f"| {name} ({data['unit']}, n={data['n']:,}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chart(report: Dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    scenarios = [k for k, v in report["results"].items() if v["unit"].startswith("us/")]
    systems = sorted(
        {s for k in scenarios for s in report["results"][k]["systems"]},
        key=[s.name for s in SYSTEMS].index,
    )
    fig, ax = plt.subplots(figsize=(11, 0.6 * len(scenarios) * len(systems) / 3 + 2))
    height = 0.8 / len(systems)
    for j, system in enumerate(systems):
        values = []
        for k in scenarios:
            r = report["results"][k]["systems"].get(system, {})
            values.append(1e6 / r["per_op"] if "per_op" in r else 0)
        ax.barh([i + j * height for i in range(len(scenarios))], values, height, label=system)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(scenarios))], scenarios)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("operations (or stream items) per second (log scale, higher is better)")
    ax.set_title(f"asyncffi benchmarks — {report['machine']}", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--no-peer", action="store_true", help="skip pyo3-async-runtimes")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--only",
        action="append",
        metavar="SCENARIO",
        help="run only the scenarios whose name contains SCENARIO (repeatable); "
        "prints the table and writes no files",
    )
    parser.add_argument(
        "--worker", nargs=4, metavar=("SYSTEM", "SCENARIO", "N", "REPEATS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        system, scenario, n, repeats = args.worker
        print(json.dumps(worker(system, scenario, int(n), int(repeats))))
        return 0

    scenarios = [
        s for s in SCENARIOS if not args.only or any(o.lower() in s.name.lower() for o in args.only)
    ]
    if not scenarios:
        parser.error(f"no scenario matches {args.only}")
    peer = not args.no_peer and ensure_peer()
    repeats = args.repeats or (1 if args.quick else 3)
    report = run_all(args.quick, peer, repeats, scenarios)
    print()
    print(markdown(report))
    if args.only:  # a partial run never takes the place of a full one
        print("partial run (--only): no files written")
    else:
        RESULTS.mkdir(exist_ok=True)
        stem = "quick" if args.quick else "latest"
        (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
        (RESULTS / f"{stem}.md").write_text(markdown(report))
        drawn = chart(report, RESULTS / f"{stem}.png")
        print(
            f"wrote {RESULTS / (stem + '.md')}, .json"
            + (", .png" if drawn else " (no matplotlib: no chart)")
        )
    failed = [
        (k, s)
        for k, v in report["results"].items()
        for s, r in v["systems"].items()
        if "error" in r
    ]
    for k, s in failed:
        print(f"FAILED: {s} / {k}: {report['results'][k]['systems'][s]['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
