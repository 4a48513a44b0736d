#!/usr/bin/env bash
# Installs asyncffi with its test and lint tools, then runs every check: the C headers and the
# cffi module match the Rust code, Rust lints and tests (without Python), Python lints, and the
# pytest suite against the installed package. Works on a fresh machine with Rust and Python.
set -euo pipefail
cd "$(dirname "$0")/.."

CBINDGEN_VERSION=0.29.4

step() { printf '\n=== %s\n' "$*"; }

step "install cbindgen $CBINDGEN_VERSION (generates the C headers)"
if ! cbindgen --version 2>/dev/null | grep -q "$CBINDGEN_VERSION"; then
    cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --quiet
fi
export PATH="$HOME/.cargo/bin:$PATH"

step "install asyncffi (release build of the cdylib) with test and lint tools"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet ".[test,lint]"

step "C headers and _ffi.py match the Rust code"
python build_ffi.py --check

step "Rust: fmt, clippy, tests (no Python involved)"
(cd rust && cargo fmt --check && cargo clippy --release --all-targets --quiet -- -D warnings \
    && cargo test --release --quiet)

step "Python: ruff, mypy"
ruff check python tests build_ffi.py
ruff format --check python tests build_ffi.py
mypy

step "the same wheel on PyPy: install it and run the demo with both wake strategies"
if command -v pypy3 >/dev/null; then
    python -m pip install --quiet "maturin>=1.5,<2"
    work=$(mktemp -d)
    python -m maturin build --release --quiet --out "$work/dist"
    pypy3 -m venv "$work/venv"
    "$work/venv/bin/python" -m pip install --quiet "$work"/dist/asyncffi-*.whl
    for wake in threadsafe fd; do
        "$work/venv/bin/python" -m asyncffi demo --wake "$wake" > "$work/out" 2> "$work/err" \
            || { cat "$work/out" "$work/err"; exit 1; }
        if [ -s "$work/err" ]; then cat "$work/err"; exit 1; fi
        if ! grep -q "round-trips" "$work/out" || ! grep -q "live_tasks': 0" "$work/out"; then
            cat "$work/out"
            exit 1
        fi
        echo "PyPy demo (wake=$wake): ok"
    done
    rm -rf "$work"
elif [ -n "${ASYNCFFI_REQUIRE_PYPY:-}" ]; then
    echo "pypy3 is required here but not installed" >&2
    exit 1
else
    echo "pypy3 is not installed: PyPy check not run (apt-get install pypy3; CI installs it)"
fi

step "benchmarks, quick mode (builds the pyo3-async-runtimes peer; proves the benchmark works)"
python -m pip install --quiet "matplotlib>=3.5" ./benchmarks/peers/pyo3_peer
python benchmarks/run.py --quick > /tmp/asyncffi-bench-quick.log 2>&1 \
    || { cat /tmp/asyncffi-bench-quick.log; exit 1; }
tail -n 12 /tmp/asyncffi-bench-quick.log

step "pytest (against the installed package)"
# The package lives in python/, which is not on sys.path: the installed build is tested.
set +e
python -m pytest -q "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
fi
exit "$status"
