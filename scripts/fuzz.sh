#!/usr/bin/env bash
# Runs each fuzz target under rust/fuzz for a short, bounded time; fails on any crash, panic,
# timeout or memory blow-up (libFuzzer then leaves the input under rust/fuzz/artifacts/).
#
#   scripts/fuzz.sh                  # 60 s of fuzzing in all, shared by the targets
#   FUZZ_SECONDS=3600 scripts/fuzz.sh   # longer
#   scripts/fuzz.sh decode           # only the named targets
#
# cargo-fuzz is installed from crates.io if missing. It needs nightly-only compiler flags
# (sanitizers); on a stable toolchain RUSTC_BOOTSTRAP=1 lets rustc accept them. Inputs found
# along the way go to rust/fuzz/target/corpus/ (not committed); the committed seeds in
# rust/fuzz/corpus/ are read, never written.
set -euo pipefail

cd "$(dirname "$0")/../rust/fuzz"
export RUSTC_BOOTSTRAP=1
export PATH="$HOME/.cargo/bin:$PATH"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
total=${FUZZ_SECONDS:-60}
per_target=$(( total / ${#targets[@]} ))
[ "$per_target" -ge 1 ] || per_target=1

cargo fuzz build -O
mkdir -p target/logs

for target in "${targets[@]}"; do
    mkdir -p "target/corpus/$target"
    echo "fuzz: $target for ${per_target}s"
    # -timeout: one input running 10 s is a hang; -rss_limit_mb allows for AddressSanitizer.
    log="target/logs/$target.log"
    if ! cargo fuzz run -O "$target" "target/corpus/$target" "corpus/$target" -- \
        -max_total_time="$per_target" -timeout=10 -rss_limit_mb=3072 >"$log" 2>&1; then
        grep -v -E '^"|Uses:' "$log" | tail -n 80 >&2
        echo "fuzz: $target FAILED (full log: rust/fuzz/$log; input under rust/fuzz/artifacts/$target)" >&2
        exit 1
    fi
    grep -E '^#[0-9]+\s+DONE' "$log" || tail -n 3 "$log"
done
echo "fuzz: all targets ran ${per_target}s each without a crash"
