"""A Rust program that runs Python, awaiting a trivial Python coroutine (``async def noop(i):
return i``): asyncffi (``examples/rust-app``'s ``rust-app-bench``, the Rust main on the default
runtime, ``loop``, and on tokio) next to pyo3-async-runtimes (``benchmarks/peers/pyo3_app``:
``#[pyo3_async_runtimes::tokio::main]`` and ``into_future``), in one run, with the same
interpreter (this one).

    python benchmarks/rust_awaits_python.py              # builds both programs, ~2 min
    python benchmarks/rust_awaits_python.py --rounds 3   # fewer rounds
    /path/to/venv312/bin/python benchmarks/rust_awaits_python.py   # another CPython (asyncffi
                                                                   # installed in its venv)

Rows: one call after another, and 1,000 at a time (``join_all`` of 1,000 calls, in batches).
The programs run alternately, one round per process, so that a noisy machine slows them alike;
each figure is the median over the rounds, in microseconds per await. Start-up is the median
wall time of a program that starts Python, runs an empty main and exits.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "rust-app"
PEER = ROOT / "benchmarks" / "peers" / "pyo3_app"


def build() -> Dict[str, Path]:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "rust" / "target")
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--bin", "rust-app-bench"],
        cwd=APP,
        check=True,
        env={**os.environ, "CARGO_TARGET_DIR": str(target)},
    )
    # The peer is built against this interpreter's libpython: one target per version.
    peer_target = PEER / "target" / f"py{sys.version_info[0]}{sys.version_info[1]}"
    subprocess.run(
        ["cargo", "build", "--release", "--quiet"],
        cwd=PEER,
        check=True,
        env={**os.environ, "PYO3_PYTHON": sys.executable, "CARGO_TARGET_DIR": str(peer_target)},
    )
    return {
        "asyncffi": target / "release" / "rust-app-bench",
        "peer": peer_target / "release" / "pyo3-app",
    }


def environment() -> Dict[str, str]:
    env = dict(os.environ)
    env["ASYNCFFI_PYTHON"] = sys.executable
    # The peer links libpython: this interpreter's, found where sysconfig says it is.
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [libdir, env.get("LD_LIBRARY_PATH")]))
    return env


#: The default first: what a program that chooses no runtime gets (``Runtime::Loop``).
DEFAULT = "asyncffi, default (loop)"
PEER_NAME = "pyo3-async-runtimes"
SYSTEMS = {
    DEFAULT: ("asyncffi", ["default"]),
    "asyncffi, runtime = tokio": ("asyncffi", ["tokio"]),
    PEER_NAME: ("peer", []),
}


def command(programs: Dict[str, Path], system: str, *args: str) -> List[str]:
    which, prefix = SYSTEMS[system]
    return [str(programs[which]), *prefix, *args]


def one_round(programs: Dict[str, Path], system: str, mode: str, n: int) -> float:
    out = subprocess.run(
        command(programs, system, mode, str(n), "2"),
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout.split("\n")
    # Two rounds per process: the first warms up (imports, allocator, caches).
    return float(out[1].split()[0]) / 1000


def start_up(programs: Dict[str, Path], system: str) -> float:
    started = time.perf_counter()
    subprocess.run(command(programs, system, "start"), env=environment(), check=True)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seq", type=int, default=5_000, help="calls per sequential round")
    parser.add_argument("--conc", type=int, default=20_000, help="calls per concurrent round")
    parser.add_argument("--starts", type=int, default=15)
    args = parser.parse_args()
    programs = build()
    rows = {"one after another": ("seq", args.seq), "1,000 at a time": ("conc", args.conc)}
    figures: Dict[str, Dict[str, List[float]]] = {r: {s: [] for s in SYSTEMS} for r in rows}
    for _ in range(args.rounds):
        for row, (mode, n) in rows.items():
            for system in SYSTEMS:
                figures[row][system].append(one_round(programs, system, mode, n))
    starts: Dict[str, List[float]] = {s: [] for s in SYSTEMS}
    for _ in range(args.starts):
        for system in SYSTEMS:
            starts[system].append(start_up(programs, system))
    load = os.getloadavg()[0]
    print(
        f"CPython {sys.version.split()[0]}, {os.cpu_count()} cores, load {load:.1f}; medians of "
        f"{args.rounds} rounds (us per await) and of {args.starts} starts (ms)\n"
    )
    print("| | " + " | ".join(SYSTEMS) + " | peer / asyncffi default |")
    print("|---" * (len(SYSTEMS) + 2) + "|")
    for row, (_mode, n) in rows.items():
        med = {s: statistics.median(v) for s, v in figures[row].items()}
        cells = " | ".join(f"{med[s]:.1f}" for s in SYSTEMS)
        print(f"| {row} (us/await, n={n:,}) | {cells} | {med[PEER_NAME] / med[DEFAULT]:.2f}x |")
    med = {s: statistics.median(v) for s, v in starts.items()}
    print("| start-up (ms) | " + " | ".join(f"{med[s]:.0f}" for s in SYSTEMS) + " | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
