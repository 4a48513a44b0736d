"""The instruction-count benchmark's own arithmetic (``benchmarks/callgrind.py``): its reading
of callgrind's output files and of ``callgrind_annotate``, and the difference method, checked
on a tiny real callgrind run of a Python snippet (needs valgrind on PATH)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Dict, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The counting and parsing are the same on every interpreter: run on one (--lean-matrix).
pytestmark = [
    pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not on PATH"),
    pytest.mark.interpreter_independent,
]

# The main thread starts a second one (a file of its own), then adds up N numbers in a loop.
SNIPPET = """
import sys, threading
t = threading.Thread(target=sum, args=(range(100),))
t.start()
t.join()
x = 0
for i in range(int(sys.argv[1])):
    x += i
"""


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "callgrind_bench", ROOT / "benchmarks" / "callgrind.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


cg = _load()


def _collected(log: Path) -> int:
    """valgrind's own count of every thread's instructions, from its log."""
    match = re.search(r"Collected\s*:\s*([\d,]+)", log.read_text())
    assert match is not None, log.read_text()[-2000:]
    return int(match.group(1).replace(",", ""))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Dict[int, Tuple[Path, Dict[int, int]]]:
    """The snippet under callgrind with 2000 and 6000 loop iterations (side by side)."""
    out = tmp_path_factory.mktemp("callgrind")

    def run(n: int) -> Tuple[Path, Dict[int, int]]:
        base = out / f"snippet.{n}"
        argv = [sys.executable, "-I", "-S", "-c", SNIPPET, str(n)]
        return base, cg.run_callgrind(argv, base)

    with ThreadPoolExecutor(2) as pool:
        return dict(zip((2000, 6000), pool.map(run, (2000, 6000))))


def test_thread_totals_read_every_thread_file(
    runs: Dict[int, Tuple[Path, Dict[int, int]]],
) -> None:
    for base, totals in runs.values():
        assert sorted(totals) == [1, 2]  # the main thread and the one it started
        assert totals[1] > totals[2] > 0
        assert sum(totals.values()) == _collected(base.with_name(base.name + ".log"))


def test_difference_method_gives_the_cost_of_one_iteration(
    runs: Dict[int, Tuple[Path, Dict[int, int]]],
) -> None:
    (_, first), (_, second) = runs[2000], runs[6000]
    per_iteration = cg.per_op(first[1], second[1], 2000, 6000)
    # A `for` step and an add, on module globals: hundreds of instructions, where the totals
    # (with the start-up both runs share) are tens of millions.
    assert 10 < per_iteration < 5000 < first[1] // 1000
    # The second thread does the same work in both runs: its difference is start-up noise.
    assert abs(cg.per_op(first[2], second[2], 2000, 6000)) < per_iteration
    assert cg.per_op(100, 300, 10, 30) == 10.0
    with pytest.raises(ValueError, match="greater"):
        cg.per_op(1, 2, 5, 5)


def test_annotate_table_is_parsed(runs: Dict[int, Tuple[Path, Dict[int, int]]]) -> None:
    base, totals = runs[6000]
    costs = cg.inclusive_costs(f"{base}-01")
    assert costs
    assert not any(re.search(r"'\d+$", name) for name in costs)  # recursion entries left out
    # Inclusive: the outermost frame holds nearly all the main thread's instructions.
    assert totals[1] * 0.9 <= max(costs.values()) <= totals[1]
    if sys.implementation.name == "cpython":
        assert "_PyEval_EvalFrameDefault" in costs


def test_parse_annotate_lines() -> None:
    text = (
        "10,000 (100.0%)  PROGRAM TOTALS\n"
        "--------------------------------------------------------------------------------\n"
        "   9,500 (95.00%)  /src/ceval.c:_PyEval_EvalFrameDefault [/lib/libpython3.11.so]\n"
        "   9,400 (94.00%)  /src/ceval.c:_PyEval_EvalFrameDefault'2 [/lib/libpython3.11.so]\n"
        "     700 ( 7.00%)  ???:asyncffi::task::spawn_task [/x/lib_native.so]\n"
        "     650 ( 6.50%)  ???:asyncffi::task::spawn_task'2 [/x/lib_native.so]\n"
        "     300 ( 3.00%)  /src/inline.h:cdata_call\n"
        "     900 ( 9.00%)  ???:cdata_call [/x/_cffi_backend.so]\n"
    )
    assert cg.parse_annotate(text) == {
        "_PyEval_EvalFrameDefault": 9500,
        "asyncffi::task::spawn_task": 700,
        "cdata_call": 900,
    }


def test_breakdown_subtracts_nested_stages_and_keeps_a_remainder() -> None:
    first = {"cdata_call": 1000, "convert_from_object": 100, cg.RUST: 200, cg.SPAWN: 50}
    second = {"cdata_call": 5000, "convert_from_object": 500, cg.RUST: 1000, cg.SPAWN: 450}
    lines = cg.breakdown(first, second, 10, 50, total=500.0)
    by_name = {name.split(" (")[0]: value for name, value, _ in lines}
    assert by_name["argument encoding"] == 10.0
    assert by_name["the cffi call into Rust"] == 100.0 - 10.0 - 20.0
    assert by_name["Rust entry"] == 20.0 - 10.0
    assert by_name["Rust spawn and first poll"] == 10.0
    assert lines[-1][1] == 500.0 - sum(value for _, value, _ in lines[:-1])
