#!/usr/bin/env bash
# Runs every check: the C headers and the cffi module match the Rust code, Rust lints and tests
# (without Python), Python lints, the benchmark in quick mode, and the pytest suite on every
# interpreter asyncffi supports, each in its own venv with the one wheel built here installed.
# After the builds, two lanes run side by side: the suites (the full matrix on one interpreter,
# the lean one on the others: see tests/conftest.py) and the checks that need one interpreter.
#
# Needs Rust (cargo) and a Python 3.9+ with pip as `python` (it builds the wheel and runs the
# lints), plus the interpreters the suite runs on: by default CPython 3.9, 3.10, 3.11, 3.12,
# 3.13 and PyPy 3 (`pypy3`), all required. Each entry of ASYNCFFI_PYTHONS is a version ("3.9":
# ~/.pyenv/versions/3.9.*/bin/python, else python3.9 on PATH), "pypy3", or a path:
#
#   scripts/test.sh                              # the full matrix (what CI runs)
#   ASYNCFFI_PYTHONS="3.11" scripts/test.sh      # only the interpreters this machine has
#   scripts/test.sh -k cancel                    # extra arguments go to every pytest run
#
# ASYNCFFI_JOBS (default 2) suites run at a time. Logs, venvs and the wheel are kept under
# ASYNCFFI_WORK (default: a new temporary directory, printed at the start).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

CBINDGEN_VERSION=0.29.4
ZIGLANG=ziglang==0.17.1 # zig as maturin's linker; the same in scripts/wheels.sh
PYTHONS=${ASYNCFFI_PYTHONS:-3.9 3.10 3.11 3.12 3.13 pypy3}
JOBS=${ASYNCFFI_JOBS:-2}
STRESS_PYTHON=3.11 # the one interpreter the stress suite runs on
WORK=${ASYNCFFI_WORK:-$(mktemp -d -t asyncffi-test.XXXXXX)}
mkdir -p "$WORK"
export PIP_DISABLE_PIP_VERSION_CHECK=1
START=$SECONDS

step() { printf '\n=== [%d s] %s\n' "$((SECONDS - START))" "$*"; }

# The interpreter an ASYNCFFI_PYTHONS entry names, or nothing.
find_python() {
    local want=$1 found
    case "$want" in
    */*) [ -x "$want" ] && echo "$want" ;;
    pypy*) command -v "$want" || true ;;
    *)
        found=$(ls -d "$HOME"/.pyenv/versions/"$want".*/bin/python 2>/dev/null | sort -V | tail -n 1)
        [ -n "$found" ] && echo "$found" || command -v "python$want" || true
        ;;
    esac
}

step "interpreters for the test suite (ASYNCFFI_PYTHONS=\"$PYTHONS\"), work directory $WORK"
declare -a SUITE_PYTHONS=()
missing=()
for want in $PYTHONS; do
    exe=$(find_python "$want")
    if [ -z "$exe" ]; then
        missing+=("$want")
        continue
    fi
    SUITE_PYTHONS+=("$exe")
    echo "$want: $exe ($("$exe" -c 'import sys; print(sys.version.split()[0], sys.implementation.name)'))"
done
if [ "${#missing[@]}" -gt 0 ]; then
    cat >&2 <<EOF
missing interpreter(s): ${missing[*]}
  CPython: pyenv install <version> (found under ~/.pyenv/versions/), or python3.X on PATH;
  PyPy: apt-get install pypy3. CI needs them all; on a machine without some of them, choose
  what runs with ASYNCFFI_PYTHONS, e.g. ASYNCFFI_PYTHONS="3.11" scripts/test.sh
EOF
    exit 1
fi

step "install cbindgen $CBINDGEN_VERSION (generates the C headers)"
export PATH="$HOME/.cargo/bin:$PATH"
if ! cbindgen --version 2>/dev/null | grep -q "$CBINDGEN_VERSION"; then
    cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --quiet
fi

step "build the wheel once, as it ships: manylinux2014 (zig links against glibc 2.17's symbols)"
# The same command as scripts/wheels.sh, so the suite below tests the wheel that ships; auditwheel
# checks that it is the manylinux2014 wheel its name claims.
python -m pip install --quiet "maturin>=1.5,<2" "cffi>=1.15" "$ZIGLANG" auditwheel
rm -rf "$WORK/dist"
ARCH=$(uname -m)
python -m maturin build --release --quiet --zig --compatibility manylinux2014 \
    --target "$ARCH-unknown-linux-gnu" --out "$WORK/dist"
WHEEL=$(ls "$WORK"/dist/asyncffi-*.whl)
echo "$WHEEL"
python -m auditwheel show --json "$WHEEL" | python -c '
import json, sys
info, want = json.load(sys.stdin), "manylinux_2_17_" + sys.argv[1]
print("auditwheel:", info["overall_tag"], "external libraries:", sorted(info["external_libs"]) or "none")
sys.exit(info["overall_tag"] != want or bool(info["external_libs"]))
' "$ARCH"
python -m pip install --quiet --force-reinstall --no-deps "$WHEEL"
python -m pip install --quiet "$WHEEL[lint]"

step "build the test library once (rust/testlib, release): the suites load it next to the built-ins"
# The suites load copies of what is built here (in $WORK/bin): the checks that run beside them
# build in the same target directory, and a workspace `cargo test` may link the test library
# again with other features while a suite has it loaded.
mkdir -p "$WORK/bin"
(cd rust && cargo build --release --quiet -p asyncffi-testlib)
built="${CARGO_TARGET_DIR:-$ROOT/rust/target}/release/libasyncffi_testlib.so"
[ -f "$built" ] || { echo "the test library was not built at $built" >&2; exit 1; }
cp "$built" "$WORK/bin/"
export ASYNCFFI_TESTLIB="$WORK/bin/libasyncffi_testlib.so"
echo "$ASYNCFFI_TESTLIB"

# --- examples/store: the library an outside author writes with asyncffi ----------------------
step "examples/store: lints, its wheel built once (sharing the test library's target), installed"
# Its own workspace and Cargo.lock, built into the same target directory so that the crates it
# shares with the test library are compiled once. tests/test_example_store.py imports the package
# from ASYNCFFI_EXAMPLE_STORE (and fails if it is not there).
(cd examples/store && cargo fmt --check \
    && CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/rust/target}" cargo clippy --release \
        --all-targets --quiet -- -D warnings)
ruff check examples && ruff format --check examples
rm -rf "$WORK/dist-store" "$WORK/example-store"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/rust/target}" python -m maturin build --release \
    --quiet -m examples/store/Cargo.toml --out "$WORK/dist-store"
python -m pip install --quiet --no-deps --target "$WORK/example-store" "$WORK"/dist-store/store-*.whl
export ASYNCFFI_EXAMPLE_STORE="$WORK/example-store"
echo "$ASYNCFFI_EXAMPLE_STORE"

step "build the example Rust program and its asyncffi::testing tests once (examples/rust-app), lint them"
(cd examples/rust-app && export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/rust/target}" \
    && cargo fmt --check && cargo clippy --release --all-targets --quiet -- -D warnings \
    && cargo build --release --quiet && cargo test --release --no-run --quiet)
built="${CARGO_TARGET_DIR:-$ROOT/rust/target}/release"
[ -f "$built/rust-app" ] || { echo "the example was not built at $built/rust-app" >&2; exit 1; }
# The harness: the newest test binary of the example (cargo names it with a hash).
harness=$(ls -t "$built"/deps/rust_app_harness-* | grep -v '\.d$' | head -n 1)
# The program and its other binaries (src/bin), which the tests find beside it.
for program in "$built"/rust-app "$built"/rust-app-*; do
    if [ -f "$program" ] && [ -x "$program" ]; then cp "$program" "$WORK/bin/"; fi
done
cp "$harness" "$WORK/bin/rust-app-harness"
export ASYNCFFI_RUST_APP="$WORK/bin/rust-app" ASYNCFFI_RUST_APP_HARNESS="$WORK/bin/rust-app-harness"
echo "$ASYNCFFI_RUST_APP"

step "C headers and _ffi.py match the Rust code"
python build_ffi.py --check

step "Python: ruff, mypy"
ruff check python tests build_ffi.py
ruff format --check python tests build_ffi.py
mypy

# --- the test suite on every interpreter ------------------------------------------------------

# The venv for one interpreter, with the wheel and its test extra (reused once made): prints
# its python. The suite runs from this checkout, so tests/ is the repository's.
suite_venv() {
    local exe=$1 name venv
    name=$(suite_name "$exe")
    venv="$WORK/venv-$name"
    if [ ! -x "$venv/bin/python" ]; then
        "$exe" -m venv "$venv" >&2
        "$venv/bin/python" -m pip install --quiet "$WHEEL[test]" >&2
    fi
    echo "$venv/bin/python"
}

# What a suite ran on: the interpreter's version and its pytest-asyncio.
ABOUT='import sys, importlib.metadata as m
print("Python", sys.version.split()[0], "pytest-asyncio", m.version("pytest-asyncio"))'

# cpython3.11, pypy3.9, ...: one word, used in file names and in the result lines.
suite_name() {
    "$1" -c 'import sys; print("%s%d.%d" % ((sys.implementation.name,) + sys.version_info[:2]))'
}

# A suite whose run failed on at most MAX_RERUNS (5) tests runs those tests once more, alone: a test
# that fails twice fails the suite; one that passes the second time is named as flaky in the
# results, with its first failure kept in the log. More failures than that are breakage, not
# flakiness, and are not run again. The first run's FAILED/ERROR summary lines name the tests.
MAX_RERUNS=5
rerun_failed() { # PYTHON LOG FLAKY_FILE: 0 when every failed test passed the second time
    local py=$1 log=$2 flaky=$3 ids=()
    # "FAILED <node id> - <message>": a node id may hold spaces (in its parameters).
    mapfile -t ids < <(grep -oP '^(FAILED|ERROR) \K.+?(?= - |$)' "$log" | sort -u)
    [ "${#ids[@]}" -gt 0 ] && [ "${#ids[@]}" -le "$MAX_RERUNS" ] || return 1
    echo "=== rerunning the ${#ids[@]} failed test(s) once: ${ids[*]}" >>"$log"
    "$py" -m pytest -q -p no:cacheprovider "${ids[@]}" >>"$log" 2>&1 || return 1
    printf '%s\n' "${ids[@]}" >"$flaky"
}

# Runs pytest in the interpreter's venv; writes <name>.log, <name>.xml and <name>.result (the
# result line: "<name>: N passed, N failed, N skipped", and why it failed if it did).
run_suite() {
    local exe=$1 name py status=0 began=$SECONDS
    shift
    name=$(suite_name "$exe")
    rm -f "$WORK/$name.flaky"
    {
        py=$(suite_venv "$exe") && "$py" -c "$ABOUT" >"$WORK/$name.about" && "$py" -m pytest -q -p no:cacheprovider -m "not stress and not interrupts and not scaffold" \
            --junitxml="$WORK/$name.xml" "$@"
    } >"$WORK/$name.log" 2>&1 || status=$?
    if [ "$status" -eq 1 ] && rerun_failed "$py" "$WORK/$name.log" "$WORK/$name.flaky"; then
        status=0
    fi
    result_line "$name" "$status" >"$WORK/$name.result"
    echo "$((SECONDS - began))" >"$WORK/$name.seconds"
}

# "<name>: N passed, N failed, N skipped" from the junit report; exit status 5 (no test ran),
# any other non-zero status, or no report at all count as a failure. Tests named in <name>.flaky
# (failed once, passed on their rerun) count as passed and are named after the counts.
result_line() {
    python - "$WORK/$1.xml" "$1" "$2" "$WORK/$1.flaky" <<'EOF'
import sys
import xml.etree.ElementTree as ET

path, name, status, flaky_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
try:
    suites = ET.parse(path).getroot()
    suite = suites if suites.tag == "testsuite" else suites.find("testsuite")
    count = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
except (OSError, ET.ParseError, AttributeError):
    count = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
failed = count["failures"] + count["errors"]
passed = count["tests"] - failed - count["skipped"]
why = ""
try:
    flaky = open(flaky_path).read().split()
except OSError:
    flaky = []
if flaky and status == 0 and failed <= len(flaky):
    passed, failed = passed + failed, 0
    why = f"  ({len(flaky)} flaky, failed once and passed on a rerun: {' '.join(flaky)})"
if status == 5 or count["tests"] == 0:
    failed, why = max(failed, 1), "  (no test ran)"
elif status != 0 and failed == 0:
    failed, why = 1, f"  (pytest exited with status {status})"
print(f"{name}: {passed} passed, {failed} failed, {count['skipped']} skipped{why}")
EOF
}

# Prints a finished suite's result line, its skip reasons, and on failure the end of its log.
report_suite() {
    local name=$1
    cat "$WORK/$name.result"
    echo "    ($(cat "$WORK/$name.about" 2>/dev/null); venv and suite in $(cat "$WORK/$name.seconds") s)"
    grep -E '^SKIPPED ' "$WORK/$name.log" | sed 's/^/    /' || true
    if [ -f "$WORK/$name.flaky" ]; then
        echo "    --- flaky (their first failure is in $WORK/$name.log):"
        grep -E '^(FAILED|ERROR) ' "$WORK/$name.log" | sed 's/^/    /' || true
    fi
    if ! grep -q ' 0 failed,' "$WORK/$name.result"; then
        echo "    --- $WORK/$name.log, from pytest's summary on:"
        sed -n '/short test summary info/,$p' "$WORK/$name.log" | grep -v '^SKIPPED ' \
            | tail -n 60 | sed 's/^/    /'
        [ -n "$(sed -n '/short test summary info/,$p' "$WORK/$name.log")" ] \
            || tail -n 30 "$WORK/$name.log" | sed 's/^/    /'
    fi
}

# Runs a check with the stress interpreter's test venv first on PATH (its `python` has the wheel
# and the test tools); only when that interpreter is in the matrix.
with_stress_python() {
    local exe
    exe=$(find_python "$STRESS_PYTHON")
    if [ -z "$exe" ] || ! printf '%s\n' "${SUITE_PYTHONS[@]}" | grep -qxF "$exe"; then
        echo "Python $STRESS_PYTHON is not among ASYNCFFI_PYTHONS: not run"
        return 0
    fi
    PATH="$(dirname "$(suite_venv "$exe")"):$PATH" "$@"
}

# --- the checks beside the suites -----------------------------------------------------------------
#
# What needs the toolchains or one interpreter (Rust lints and tests, the reference site, the
# scaffolded project, the Redis example, fuzzing, memcheck, the benchmark in
# quick mode) runs as one lane beside the suites, which mostly wait on timers, sleeps and
# subprocesses. A failed check is written to checks.failed, a check whose tests passed only on
# their rerun to checks.flaky; the lane's output goes to checks.log, printed once it is done.

failed_step() { echo "$*" >>"$WORK/checks.failed"; }
flaky_step() { echo "$*" >>"$WORK/checks.flaky"; }

# The Rust workspace: formatting, lints, tests (no Python involved), the reference, packaging.
rust_checks() {
    (cd rust && cargo fmt --check && cargo clippy --release --all-targets --quiet -- -D warnings \
        && cargo test --release --quiet) || return 1
    # The core's feature testing (and python, which it implies): lints and unit tests, no Python.
    (cd rust && cargo clippy --release --all-targets --quiet --features asyncffi/testing -- -D warnings \
        && cargo test --release --quiet -p asyncffi --lib --features testing -- python:: testing::) \
        || return 1
    # Both crates package for crates.io (metadata, include lists, the macros' exact version; the
    # core is checked against the macros packaged beside it). No verify build: it compiles every
    # dependency again in the dev profile (30 s of CPU); run without --no-verify by hand.
    # The Rust reference (every public item documented: #![deny(missing_docs)]) builds clean.
    (cd rust && RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet -p asyncffi -p asyncffi-macros \
        --features asyncffi/testing) || return 1
    (cd rust && cargo publish --dry-run --no-verify --allow-dirty --quiet -p asyncffi-macros -p asyncffi)
}

# Warnings are errors: a broken link or anchor, a page left out of the nav, a docstring griffe
# cannot read. The site goes to $WORK/site. Its tools need Python 3.11+.
reference_site() {
    if python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        python -m pip install --quiet "$WHEEL[docs]"
        NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict --quiet --site-dir "$WORK/site"
        echo "$WORK/site"
    else
        echo "python is $(python -c 'import sys; print(sys.version.split()[0])'), the site needs 3.11+: not run"
    fi
}

bench_quick() {
    python -m pip install --quiet "$WHEEL[bench]" ./benchmarks/peers/pyo3_peer || return 1
    python benchmarks/run.py --quick >"$WORK/bench-quick.log" 2>&1 \
        || { cat "$WORK/bench-quick.log"; return 1; }
    tail -n 12 "$WORK/bench-quick.log"
}

checks() {
    step "Rust: fmt, clippy, tests (no Python involved)"
    rust_checks || failed_step "Rust checks"

    step "the reference site: mkdocs build --strict (mkdocs.yml, docs/, the package's docstrings)"
    reference_site || failed_step "the reference site"

    step "the project python -m asyncffi new writes: built (sharing the target) and its tests run, on Python $STRESS_PYTHON"
    # Depends on this checkout's crate (--asyncffi-path); pip builds it with maturin as a user's
    # `pip install .` does. Shares CARGO_TARGET_DIR and starts from rust/Cargo.lock, so only the
    # core, the macros and the new crate compile.
    scaffold() {
        local status=0
        CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/rust/target}" python -m pytest -q \
            -p no:cacheprovider -m scaffold tests/test_scaffold.py || status=$?
        [ "$status" -eq 5 ] && echo "pytest collected no scaffold test: failing" >&2
        return "$status"
    }
    with_stress_python scaffold || failed_step "scaffold"

    step "the Redis example (examples/redis): its wheel (release), cargo test, its suite against redis-server on Python $STRESS_PYTHON"
    # Its tests start their own redis-server (Debian's package; .ci/run installs it) and fail,
    # rather than skip, when it or the example's package is missing. Its own workspace and lock
    # file, built into the shared target directory as the store example is: the crates it shares
    # with the builds above are compiled once, and `cargo test` reuses the wheel build's
    # dependencies (same profile and features), compiling only the example's own crate again. No
    # clippy here: on a clean target it costs about 100 s more (its checks share nothing with the
    # build); run it by hand. Its stubs (examples/redis/python/asyncffi_redis/_exports.pyi) are
    # checked against the built library by its tests, and typed by `mypy` above.
    # The example has its own leak check and runs on asyncio: the root pytest.ini's plugin settings
    # (every loop, every counter) are the core suite's, not the example's.
    redis_example_suite() {
        local status=0
        python -m pip install --quiet --force-reinstall --no-deps "$WORK"/dist-redis/asyncffi_redis-*.whl \
            && python -m pytest -q -p no:cacheprovider -o asyncffi_leaks=false -o asyncffi_loops= \
                examples/redis/tests 2>&1 | tee "$WORK/redis.log" || status=$?
        [ "$status" -eq 5 ] && echo "pytest collected no test of the Redis example: failing" >&2
        if [ "$status" -eq 1 ] && rerun_failed python "$WORK/redis.log" "$WORK/redis.flaky"; then
            echo "flaky, passed on a rerun: $(cat "$WORK/redis.flaky")"
            flaky_step "Redis example: $(cat "$WORK/redis.flaky")"
            status=0
        fi
        return "$status"
    }
    redis_example() {
        rm -rf "$WORK/dist-redis"
        (cd examples/redis && cargo fmt --check) \
            && CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/rust/target}" python -m maturin build \
                --release --quiet -m examples/redis/Cargo.toml --out "$WORK/dist-redis" \
            && (cd examples/redis && CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/rust/target}" \
                cargo test --release --quiet) \
            && with_stress_python redis_example_suite
    }
    redis_example || failed_step "Redis example"
    for script in scripts/fuzz.sh scripts/memcheck.sh; do
        step "$script"
        MEMCHECK_LINE_TABLES=0 bash "$script" || failed_step "$script"
    done

    step "benchmarks, quick mode (builds the pyo3-async-runtimes peer; proves the benchmark works)"
    bench_quick || failed_step "benchmarks, quick mode"
    step "checks done"
    touch "$WORK/checks.done"
}

# The stress suite and the KeyboardInterrupt sweep, once, on the stress interpreter: a job of
# the suites' queue (it waits as they do), its output in stress-job.log.
stress() {
    local status=0
    # Each swept point is bounded (ASYNCFFI_INTERRUPT_BOUND, 60 s): a hang fails with stacks.
    python -m pytest -q -p no:cacheprovider -m "stress or interrupts" tests/stress \
        tests/test_interrupts.py 2>&1 | tee "$WORK/stress.log" || status=$?
    [ "$status" -eq 5 ] && echo "pytest collected no stress test: failing" >&2
    if [ "$status" -eq 1 ] && rerun_failed python "$WORK/stress.log" "$WORK/stress.flaky"; then
        echo "flaky, passed on a rerun: $(cat "$WORK/stress.flaky")"
        flaky_step "stress: $(cat "$WORK/stress.flaky")"
        status=0
    fi
    return "$status"
}
stress_job() {
    step "stress suite and the KeyboardInterrupt sweep, once, on Python $STRESS_PYTHON"
    with_stress_python stress || failed_step "stress suite"
}

# --- the two lanes ----------------------------------------------------------------------------------

# The full matrix runs on one interpreter (the stress suite's, else the first); the others run
# the lean one (`--lean-matrix`, tests/conftest.py: no async-std variants, no test marked
# interpreter_independent), full suite first since it is the longest.
FULL_PYTHON=$(find_python "$STRESS_PYTHON")
printf '%s\n' "${SUITE_PYTHONS[@]}" | grep -qxF "$FULL_PYTHON" || FULL_PYTHON=${SUITE_PYTHONS[0]}
declare -a ORDER=("$FULL_PYTHON" stress)
for exe in "${SUITE_PYTHONS[@]}"; do
    [ "$exe" = "$FULL_PYTHON" ] || ORDER+=("$exe")
done

# Runs the suites, JOBS at a time, one more once the checks lane is done (in a subshell of
# their own: `wait -n` there waits for its suites only, not for the checks lane).
suites() {
    local exe running=0 limit
    for exe in "${ORDER[@]}"; do
        limit=$JOBS
        [ -e "$WORK/checks.done" ] && limit=$((JOBS + 1))
        while [ "$running" -ge "$limit" ]; do
            wait -n || true
            running=$((running - 1))
            [ -e "$WORK/checks.done" ] && limit=$((JOBS + 1))
        done
        if [ "$exe" = stress ]; then
            stress_job >"$WORK/stress-job.log" 2>&1 &
        elif [ "$exe" = "$FULL_PYTHON" ]; then
            run_suite "$exe" "$@" &
        else
            run_suite "$exe" --lean-matrix "$@" &
        fi
        running=$((running + 1))
    done
    wait || true
}

step "pytest on ${#SUITE_PYTHONS[@]} interpreter(s), $JOBS at a time, against the installed wheel (the full matrix on $(suite_name "$FULL_PYTHON")), and the checks beside them"
# The package lives in python/, which is not on sys.path: the installed wheel is tested. The
# stress interpreter's venv is made first: both lanes use it.
with_stress_python true
rm -f "$WORK/checks.failed" "$WORK/checks.flaky" "$WORK/checks.done"
checks >"$WORK/checks.log" 2>&1 &
checks_pid=$!
(suites "$@")
step "the suites are done; waiting for the checks ($WORK/checks.log)"
wait "$checks_pid" || failed_step "the checks lane stopped early (status $?): see $WORK/checks.log"
cat "$WORK/checks.log"

cat "$WORK/stress-job.log"
declare -a NAMES=()
for exe in "${SUITE_PYTHONS[@]}"; do
    NAMES+=("$(suite_name "$exe")")
done
for name in "${NAMES[@]}"; do
    report_suite "$name"
done

step "results ($((SECONDS - START)) s in all; logs in $WORK)"
failed_checks=0
if [ -s "$WORK/checks.failed" ]; then
    failed_checks=1
    sed 's/^/FAILED: /' "$WORK/checks.failed"
fi
[ -s "$WORK/checks.flaky" ] && sed 's/^/FLAKY (failed once, passed on a rerun): /' "$WORK/checks.flaky"
# One line per interpreter, then the sum: "all: N passed, N failed, N skipped".
suites=0
python - "${NAMES[@]/#/$WORK/}" <<'EOF' || suites=1
import re
import sys

total = [0, 0, 0]
for base in sys.argv[1:]:
    line = open(base + ".result").read().strip()
    print(line)
    numbers = re.search(r"(\d+) passed, (\d+) failed, (\d+) skipped", line)
    total = [t + int(n) for t, n in zip(total, numbers.groups())]
print("all: %d passed, %d failed, %d skipped" % tuple(total))
sys.exit(1 if total[1] else 0)
EOF
[ "$failed_checks" -eq 0 ] && exit "$suites" || exit 1
