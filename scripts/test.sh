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
