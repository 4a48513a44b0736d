"""Counts the lines of the two versions of the example library: ``examples/store`` (asyncffi)
and ``examples/store_pyo3`` (PyO3 + pyo3-async-runtimes), as the README's table shows them.

The rule: every line that is neither blank nor a comment. Comments are Rust's ``//`` lines
(``///`` and ``//!`` doc comments too), ``#`` lines in Python and TOML, and Python docstrings;
both versions carry the same doc text, so leaving it out compares the code alone. Lock files
are generated and not counted.

    python scripts/count_lines.py          # prints the Markdown table
"""

from __future__ import annotations

import ast
import pathlib
import sys
from typing import Dict, List, Set, Tuple

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: (column, directory) of each version.
VERSIONS = [("asyncffi", "examples/store"), ("PyO3 + pyo3-async-runtimes", "examples/store_pyo3")]
#: (row, glob patterns) counted in each version's directory.
KINDS: List[Tuple[str, List[str]]] = [
    ("Rust", ["src/**/*.rs"]),
    ("Python", ["python/**/*.py"]),
    ("config (Cargo.toml, pyproject.toml)", ["Cargo.toml", "pyproject.toml"]),
]


def docstring_lines(source: str) -> Set[int]:
    """The line numbers (1-based) of the docstrings in Python ``source``."""
    lines: Set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                end = first.end_lineno or first.lineno
                lines.update(range(first.lineno, end + 1))
    return lines


def count(path: pathlib.Path) -> int:
    """The lines of ``path`` that are neither blank nor comments."""
    text = path.read_text(encoding="utf-8")
    comment = "//" if path.suffix == ".rs" else "#"
    skip = docstring_lines(text) if path.suffix == ".py" else set()
    return sum(
        1
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.strip().startswith(comment) and number not in skip
    )


def table() -> str:
    """The Markdown table: one row per kind of file and the total, one column per version."""
    counts: Dict[str, List[int]] = {}
    for _, directory in VERSIONS:
        base = ROOT / directory
        column = [
            sum(count(p) for pattern in patterns for p in sorted(base.glob(pattern)))
            for _, patterns in KINDS
        ]
        counts[directory] = [*column, sum(column)]
    rows = ["| lines | " + " | ".join(name for name, _ in VERSIONS) + " |"]
    rows.append("|---|" + "---|" * len(VERSIONS))
    for i, label in enumerate([kind for kind, _ in KINDS] + ["**total**"]):
        cells = [str(counts[directory][i]) for _, directory in VERSIONS]
        if label == "**total**":
            cells = [f"**{c}**" for c in cells]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.stdout.write(table() + "\n")
