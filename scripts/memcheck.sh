#!/usr/bin/env bash
# Runs the Rust core's tests (`cargo test -p asyncffi`: unit and integration tests) under
# valgrind's memcheck; fails on any invalid read or write, use of uninitialised memory or bad
# free (memcheck's errors; leaks are not counted: the runtimes live for the process).
#
#   scripts/memcheck.sh                  # every test of the crate
#   scripts/memcheck.sh codec            # only tests whose name contains "codec"
#
# The tests are built in release mode with line tables (memcheck on an unoptimised build is
# several times slower; the line tables keep its reports readable), in a target directory of
# their own so that normal builds are not invalidated. MEMCHECK_LINE_TABLES=0 runs the release
# test binaries of the usual target instead (CARGO_TARGET_DIR or rust/target; CI does, after
# `cargo test --release` built them): no build, and reports name functions without lines.
# Known, harmless reports from the standard library or runtimes go in scripts/memcheck.supp,
# one commented entry each.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/rust"
command -v valgrind >/dev/null || { echo "memcheck: valgrind is not installed" >&2; exit 1; }

if [ "${MEMCHECK_LINE_TABLES:-1}" != 0 ]; then
    export CARGO_TARGET_DIR="$root/rust/target/memcheck"
    export CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
    export CARGO_PROFILE_RELEASE_STRIP=none
fi

mapfile -t binaries < <(
    cargo test --release -p asyncffi --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["profile"]["test"]:
        print(msg["executable"])
'
)
[ ${#binaries[@]} -gt 0 ] || { echo "memcheck: no test binaries were built" >&2; exit 1; }

suppressions=()
[ -s "$root/scripts/memcheck.supp" ] && suppressions=(--suppressions="$root/scripts/memcheck.supp")

# valgrind exits MEMORY_ERROR when it saw a memory error: that fails at once. A test that fails
# for another reason (an assertion on timing, under memcheck's 20-50x slowdown) runs its binary
# once more; failing twice fails too.
MEMORY_ERROR=99
memcheck() {
    valgrind --tool=memcheck --error-exitcode="$MEMORY_ERROR" --leak-check=no --num-callers=30 \
        "${suppressions[@]}" "$@"
}
status=0
for binary in "${binaries[@]}"; do
    echo "memcheck: $(basename "$binary")"
    # The tests are timing-tolerant; one thread at a time keeps memcheck's slowdown fair to
    # each of them.
    code=0
    memcheck "$binary" --test-threads=1 -q "$@" || code=$?
    if [ "$code" -ne 0 ] && [ "$code" -ne "$MEMORY_ERROR" ]; then
        echo "memcheck: $(basename "$binary"): a test failed without a memory error; once more" >&2
        code=0
        memcheck "$binary" --test-threads=1 -q "$@" || code=$?
        [ "$code" -eq 0 ] && echo "memcheck: FLAKY under memcheck, passed on a rerun: $(basename "$binary")"
    fi
    if [ "$code" -ne 0 ]; then
        echo "memcheck: $(basename "$binary") FAILED (status $code)" >&2
        status=1
    fi
done
[ "$status" -eq 0 ] && echo "memcheck: no memory errors"
exit "$status"
