"""Instructions per operation of asyncffi, the bare-asyncio floor and pyo3-async-runtimes,
counted by valgrind's callgrind: deterministic enough to compare two builds, or two systems,
on a shared machine where wall-clock timings are not.

    python benchmarks/callgrind.py               # every row, full sizes (about 20 minutes)
    python benchmarks/callgrind.py --quick       # small sizes (about 3 minutes on 2 idle cores)
    python benchmarks/callgrind.py --breakdown   # and where a gathered echo's instructions go
    python benchmarks/callgrind.py --rows echo,add --n1 2000 --n2 6000 --json out.json

Each row runs its workload (``benchmarks/callgrind_calls.py OP N``) twice under ``valgrind
--tool=callgrind --dump-instr=no --collect-jumps=no --separate-threads=yes``, with ``N1`` and
``N2`` operations; ``(total2 - total1) / (N2 - N1)`` is the cost of one operation, without
start-up, imports and warm-up. It is given for the main thread (the event loop's: this is
where Python runs, and it hardly depends on timing) and for all threads (with the runtime
workers', whose share depends on how the threads interleave).

Rows: ``gather-echo`` (``asyncio.gather`` of N ``demo.echo(None)``), ``gather-floor`` (bare
asyncio, the same gather of futures resolved by ``loop.call_soon(fut.set_result, None)``),
``gather-peer`` (pyo3-async-runtimes' trivial call, gathered), ``gather-sleep`` and
``gather-peer-sleep`` (N gathered 1 ms sleeps on tokio's timer), ``echo`` (``await
demo.echo(None)`` one at a time: the eager path); ``add``, ``gather-one`` and ``gather-two``
are on request (``--rows``). The peer is ``benchmarks/peers/pyo3_peer``: ``pip install
./benchmarks/peers/pyo3_peer``; ``--quick`` skips its rows when it is not installed, the full
run requires it. Rust awaiting Python is a program of its own
(``benchmarks/rust_awaits_python.py``) and is not counted here.

``--breakdown`` annotates both runs of ``gather-echo`` (``callgrind_annotate
--inclusive=yes``, main thread), takes the difference per function, and groups the inclusive
costs per call into stages by the C and Rust functions that can be told apart (see
``STAGES``); Python code has no functions of its own under callgrind (it all runs in the
interpreter's ``_PyEval_EvalFrameDefault``), so the wrapper's and ``gather``'s bytecode is in
the remainder.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "callgrind_calls.py"
VALGRIND_OPTIONS = (
    "--tool=callgrind",
    "--dump-instr=no",
    "--collect-jumps=no",
    "--separate-threads=yes",
    # The peer's runtime starts hundreds of blocking threads under valgrind (default limit 500).
    "--max-threads=5000",
)


@dataclass(frozen=True)
class Row:
    """One measured operation: its workload op, what it is, and its two sizes per mode."""

    op: str
    label: str
    full: Tuple[int, int]
    quick: Tuple[int, int]
    peer: bool = False


ROWS: Dict[str, Row] = {
    row.op: row
    for row in (
        Row("gather-echo", "gather of demo.echo(None)", (10_000, 50_000), (200, 1_000)),
        Row("gather-floor", "gather, bare asyncio floor", (10_000, 50_000), (200, 1_000)),
        Row("gather-peer", "gather, pyo3-async-runtimes", (2_000, 10_000), (100, 500), peer=True),
        Row("gather-sleep", "gather of demo.sleep(1 ms)", (10_000, 50_000), (200, 1_000)),
        Row(
            "gather-peer-sleep",
            "gather of sleep(1 ms), pyo3-async-runtimes",
            (2_000, 10_000),
            (100, 500),
            peer=True,
        ),
        Row("echo", "await demo.echo(None), one at a time", (10_000, 50_000), (200, 1_000)),
        Row("add", "await demo.add(i, 1), one at a time", (10_000, 50_000), (200, 1_000)),
        Row("gather-one", "gather of testlib_scale, one library", (3_000, 9_000), (500, 2_500)),
        Row("gather-two", "gather of testlib_scale, two libraries", (3_000, 9_000), (500, 2_500)),
    )
}
DEFAULT_ROWS = ("gather-echo", "gather-floor", "gather-peer", "gather-sleep",
                "gather-peer-sleep", "echo")  # fmt: skip
#: The row each row's peer ratio is taken against.
PEER_OF = {"gather-echo": "gather-peer", "gather-sleep": "gather-peer-sleep"}
FLOOR = "gather-floor"


# --- callgrind output ----------------------------------------------------------------------------

_TOTAL = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)
_THREAD = re.compile(r"^thread:\s+(\d+)", re.MULTILINE)


def thread_totals(base: Path) -> Dict[int, int]:
    """The instruction total of each thread of one callgrind run whose output file was
    ``base`` (with ``--separate-threads=yes`` callgrind writes ``base-01``, ``base-02``, ...:
    one per thread, numbered in order of creation, 1 being the main thread)."""
    totals: Dict[int, int] = {}
    for path in sorted(base.parent.glob(base.name + "-*")):
        if not re.fullmatch(r"-\d+", path.name[len(base.name) :]):
            continue
        text = path.read_text(errors="replace")
        total = _TOTAL.search(text)
        thread = _THREAD.search(text)
        if total is None:
            raise ValueError(f"{path}: no 'summary:' or 'totals:' line")
        number = int(thread.group(1)) if thread else int(path.name.rsplit("-", 1)[1])
        totals[number] = totals.get(number, 0) + int(total.group(1))
    if not totals:
        raise ValueError(f"no callgrind output {base}-NN")
    return totals


def per_op(total1: int, total2: int, n1: int, n2: int) -> float:
    """The difference method: instructions of one operation from two runs of ``n1`` and ``n2``
    operations (start-up and warm-up, the same in both, cancel out)."""
    if n2 <= n1:
        raise ValueError(f"n2 ({n2}) must be greater than n1 ({n1})")
    return (total2 - total1) / (n2 - n1)


def run_callgrind(argv: Sequence[str], base: Path, reuse: bool = False) -> Dict[int, int]:
    """Runs ``argv`` under callgrind (output files ``base-NN``); its thread totals. With
    ``reuse``, the files of an earlier run at ``base`` are read instead, when they exist."""
    if reuse and base.with_name(base.name + "-01").exists():
        return thread_totals(base)
    log = base.with_name(base.name + ".log")
    cmd = ["valgrind", *VALGRIND_OPTIONS, f"--callgrind-out-file={base}", *argv]
    with open(log, "w") as err:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err)
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise RuntimeError(
            f"{' '.join(argv)} failed under callgrind (exit {proc.returncode}):\n{tail}"
        )
    return thread_totals(base)


@dataclass
class Measured:
    """Instructions per operation of one row: main thread and all threads."""

    op: str
    label: str
    n1: int
    n2: int
    main: float
    all_threads: float
    threads: Tuple[int, int] = (0, 0)
    files: Tuple[str, str] = ("", "")
    ratio_floor: Optional[float] = None
    ratio_peer: Optional[float] = None


def measure(
    python: str, op: str, n1: int, n2: int, workdir: Path, label: str = "", reuse: bool = False
) -> Measured:
    """Counts ``op`` with ``n1`` and ``n2`` operations; instructions per operation."""
    bases = [workdir / f"{op}.{n}" for n in (n1, n2)]
    first, second = (
        run_callgrind([python, str(WORKLOAD), op, str(n)], b, reuse)
        for b, n in zip(bases, (n1, n2))
    )
    return Measured(
        op=op,
        label=label or op,
        n1=n1,
        n2=n2,
        main=per_op(first[1], second[1], n1, n2),
        all_threads=per_op(sum(first.values()), sum(second.values()), n1, n2),
        threads=(len(first), len(second)),
        files=(f"{bases[0]}-01", f"{bases[1]}-01"),
    )


# --- the breakdown -------------------------------------------------------------------------------

_ANNOTATED = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*?)(?:\s+\[(.*)\])?\s*$")


def inclusive_costs(path: str) -> Dict[str, int]:
    """Inclusive instructions per function of one callgrind output file, read from
    ``callgrind_annotate --inclusive=yes``: keys are function names (without their source
    file; inlined copies attributed to several source files are summed under one name by
    keeping the largest, which is the function itself)."""
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_annotate(out)


def parse_annotate(text: str) -> Dict[str, int]:
    """The function table of ``callgrind_annotate`` output: name -> instructions. Recursive
    entries (``name'2``: cycles callgrind separates) are left out: the outermost entry holds
    them."""
    costs: Dict[str, int] = {}
    for line in text.splitlines():
        m = _ANNOTATED.match(line)
        if m is None or m.group(2) == "PROGRAM TOTALS":
            continue
        # "file:function": the function may hold "::" (Rust), the file none.
        name = m.group(2).split(":", 1)[1] if ":" in m.group(2) else m.group(2)
        if re.search(r"'\d+$", name):
            continue
        value = int(m.group(1).replace(",", ""))
        costs[name] = max(costs.get(name, 0), value)
    return costs


@dataclass(frozen=True)
class Stage:
    """A stage of a call: the sum of the inclusive costs of ``plus`` (names, or regular
    expressions when they start with ``~``) minus those of ``minus`` (functions nested in
    ``plus`` that belong to another stage)."""

    name: str
    plus: Tuple[str, ...]
    minus: Tuple[str, ...] = ()


RUST = "asyncffi::boundary::guard"
SPAWN = "asyncffi::task::spawn_task"
DELIVER = "asyncffi::port::Port::deliver_inline"
WAKE = "~^asyncffi::.*(wake|notify|Notifier)"
DRAIN = "~^asyncffi::.*drain"

#: The stages of a gathered call, by the functions that identify them (in the order a call
#: goes through them). What no stage names is the remainder: the Python bytecode of the
#: generated wrapper, of ``RustCall._start`` and of ``gather``, and the interpreter's frames.
STAGES: Tuple[Stage, ...] = (
    Stage(
        "Python object creation and destruction (type_call: RustCall() with its __init__; "
        "FutureObj_dealloc)",
        ("type_call", "FutureObj_dealloc"),
    ),
    Stage(
        "argument encoding (cffi converts each argument)",
        ("convert_from_object", "_prepare_pointer_call_argument"),
    ),
    Stage(
        "the cffi call into Rust (cdata_call minus argument conversion and Rust: libffi's "
        "ffi_call with examine_argument/classify_argument, cffi's result conversion)",
        ("cdata_call",),
        ("convert_from_object", "_prepare_pointer_call_argument", RUST),
    ),
    Stage(
        "Rust entry (the boundary guard, port and runtime lookup, argument decoding)",
        (RUST,),
        (SPAWN, DELIVER, WAKE, DRAIN),
    ),
    Stage("Rust spawn and first poll (asyncffi::task::spawn_task)", (SPAWN,)),
    Stage("wake / notify (asyncffi's wake and notifier functions)", (WAKE,)),
    Stage("drain of completions (asyncffi's drain functions)", (DRAIN,)),
    Stage(
        "decoding (Port::deliver_inline; cffi reads the completion struct)",
        (DELIVER, "cdata_getattro", "cdataowning_subscript"),
    ),
    Stage(
        "future resolution (Future.__init__, set_result; gather's add_done_callback on the done "
        "future -> call_soon)",
        ("future_init", "_asyncio_Future_set_result", "future_add_done_callback"),
    ),
    Stage(
        "the loop's callback runs (context_run minus the task step: gather's _done_callback)",
        ("context_run",),
        ("task_step",),
    ),
    Stage("garbage collection (gc_collect_main)", ("gc_collect_main",)),
)


def _cost(costs: Dict[str, float], spec: str) -> Tuple[float, List[str]]:
    if not spec.startswith("~"):
        return costs.get(spec, 0.0), [spec] if spec in costs else []
    pattern = re.compile(spec[1:])
    names = [name for name in costs if pattern.search(name) and costs[name] > 0]
    if not names:
        return 0.0, []
    # Matches of a pattern may call each other (a drain and its helpers): the largest, the
    # outermost, stands for them all (an undercount if they were called apart).
    top = max(names, key=lambda name: costs[name])
    return costs[top], [top]


def breakdown(
    first: Dict[str, int], second: Dict[str, int], n1: int, n2: int, total: float
) -> List[Tuple[str, float, List[str]]]:
    """Instructions per call per stage (the difference of the two runs' inclusive costs, per
    call), with the functions matched; the last line is the remainder of ``total``."""
    costs = {name: per_op(first.get(name, 0), value, n1, n2) for name, value in second.items()}
    lines: List[Tuple[str, float, List[str]]] = []
    for stage in STAGES:
        value = 0.0
        matched: List[str] = []
        for spec in stage.plus:
            cost, names = _cost(costs, spec)
            value += cost
            matched += names
        for spec in stage.minus:
            cost, names = _cost(costs, spec)
            value -= cost
            matched += ["-" + name for name in names]
        lines.append((stage.name, value, matched))
    lines.append(("remainder (Python bytecode of the wrapper, _start, gather; frames)",
                  total - sum(v for _, v, _ in lines), []))  # fmt: skip
    return lines


_PROFILE = """
import cProfile, json, pstats, sys
sys.path.insert(0, sys.argv[1])
import callgrind_calls
profile = cProfile.Profile()
profile.runcall(callgrind_calls.main, sys.argv[2], int(sys.argv[3]))
stats = pstats.Stats(profile).stats
counts = {f"{path}:{line}({name})": calls[1] for (path, line, name), calls in stats.items()}
print(json.dumps(counts))
"""


def python_calls(python: str, op: str, n1: int, n2: int) -> Dict[str, float]:
    """Python-level calls per operation of ``op`` (``cProfile``, no callgrind; the difference
    of two runs): which Python functions of the remainder run, and how often."""

    def count(n: int) -> Dict[str, int]:
        out = subprocess.run(
            [python, "-c", _PROFILE, str(HERE), op, str(n)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        counts: Dict[str, int] = json.loads(out.splitlines()[-1])
        return counts

    first, second = count(n1), count(n2)
    calls = {name: per_op(first.get(name, 0), value, n1, n2) for name, value in second.items()}
    return {name: value for name, value in calls.items() if value >= 0.5}


def _short(name: str) -> str:
    """``/long/path/asyncio/tasks.py:721(gather)`` -> ``asyncio/tasks.py:721(gather)``."""
    name = re.sub(r" at 0x[0-9a-f]+", "", name)
    path, _, rest = name.partition(":")
    parts = Path(path).parts
    return "/".join(parts[-2:]) + (":" + rest if rest else "")


# --- the command ---------------------------------------------------------------------------------


def _peer_installed(python: str) -> bool:
    probe = "import importlib.util as u, sys; sys.exit(u.find_spec('pyo3_peer') is None)"
    return subprocess.run([python, "-c", probe]).returncode == 0


def _fmt(value: Optional[float], digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def table(results: List[Measured]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| row | N1 / N2 | instructions per op, main thread | all threads | x floor | x peer |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.n1:,} / {r.n2:,} | {_fmt(r.main)} | {_fmt(r.all_threads)} | "
            f"{_fmt(r.ratio_floor, 2)} | {_fmt(r.ratio_peer, 2)} |"
        )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about 3 minutes)")
    parser.add_argument("--rows", help=f"comma-separated, of: {', '.join(ROWS)}")
    parser.add_argument("--n1", type=int, help="the smaller count, for every row")
    parser.add_argument("--n2", type=int, help="the larger count, for every row")
    parser.add_argument("--breakdown", action="store_true", help="stages of a gathered echo")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--python", default=sys.executable, help="the interpreter measured")
    parser.add_argument("--jobs", type=int, default=2, help="callgrind runs at a time")
    parser.add_argument("--keep", type=Path, help="keep the callgrind files in this directory")
    parser.add_argument(
        "--reuse", action="store_true", help="with --keep: read the files of an earlier run"
    )
    args = parser.parse_args(argv)

    if shutil.which("valgrind") is None:
        parser.error("valgrind is not on PATH")
    names = args.rows.split(",") if args.rows else list(DEFAULT_ROWS)
    if args.breakdown and "gather-echo" not in names:
        names.insert(0, "gather-echo")
    unknown = [name for name in names if name not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {', '.join(ROWS)}")
    if any(ROWS[name].peer for name in names) and not _peer_installed(args.python):
        if not args.quick:
            parser.error("pyo3_peer is not installed: pip install ./benchmarks/peers/pyo3_peer")
        skipped = [name for name in names if ROWS[name].peer]
        print(f"pyo3_peer is not installed: skipping {', '.join(skipped)}")
        names = [name for name in names if not ROWS[name].peer]

    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="asyncffi-callgrind."))
    workdir.mkdir(parents=True, exist_ok=True)
    try:

        def one(name: str) -> Measured:
            row = ROWS[name]
            n1, n2 = row.quick if args.quick else row.full
            n1, n2 = args.n1 or n1, args.n2 or n2
            result = measure(args.python, name, n1, n2, workdir, row.label, args.reuse)
            print(f"  {name}: {result.main:,.0f} / {result.all_threads:,.0f}", flush=True)
            return result

        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            results = list(pool.map(one, names))
        by_op = {r.op: r for r in results}
        for r in results:
            floor = by_op.get(FLOOR)
            if floor is not None and r.op != FLOOR:
                r.ratio_floor = r.main / floor.main
            peer = by_op.get(PEER_OF.get(r.op, ""))
            if peer is not None:
                r.ratio_peer = r.main / peer.main
        print()
        print(table(results))
        print("\nratios: main-thread instructions against the floor's and the peer's row")

        report: Dict[str, object] = {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "quick": args.quick,
            "rows": [asdict(r) for r in results],
        }
        if args.breakdown:
            echo = by_op["gather-echo"]
            stages = breakdown(
                inclusive_costs(echo.files[0]),
                inclusive_costs(echo.files[1]),
                echo.n1,
                echo.n2,
                echo.main,
            )
            print(
                f"\nwhere a gathered demo.echo(None) goes (main thread, {echo.main:,.0f} per call)"
            )
            print("\n| stage | instructions per call | functions |\n|---|---|---|")
            for name, value, matched in stages:
                print(f"| {name} | {value:,.0f} | {', '.join(matched) or '-'} |")
            report["breakdown"] = [
                {"stage": name, "per_call": value, "functions": matched}
                for name, value, matched in stages
            ]
            calls = python_calls(args.python, "gather-echo", echo.n1, echo.n2)
            print("\nPython functions called per gathered call (cProfile, without callgrind)\n")
            print("| calls per call | function |\n|---|---|")
            for name, value in sorted(calls.items(), key=lambda kv: (-kv[1], kv[0])):
                print(f"| {value:.2f} | {_short(name)} |")
            report["python_calls"] = calls
        if args.json:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
