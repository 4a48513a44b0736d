#!/usr/bin/env bash
# Instructions per call of demo.add and demo.echo, counted by valgrind's callgrind: each call
# count runs twice (N1 and N2 calls, awaited one at a time) and the difference of the totals,
# divided by N2 - N1, is the cost of one call without start-up and imports. Deterministic
# enough to compare two builds of the hot path (wall-clock timings on a shared machine are not).
#
#   scripts/callgrind.sh                 # the installed asyncffi, with `python` on PATH
#   PYTHON=.venv/bin/python scripts/callgrind.sh add
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
N1=${N1:-2000}
N2=${N2:-6000}
OUT=$(mktemp -d -t asyncffi-callgrind.XXXXXX)
OPS=${*:-add echo}
# Totals of one run: every thread's, or the main thread's (file -01; the runtime workers' share
# depends on timing, the main thread's hardly does).
total() { for f in "$OUT/$1"-*; do grep -m1 '^summary:\|^totals:' "$f"; done | awk '{s += $2} END {print s}'; }
main() { grep -m1 '^summary:\|^totals:' "$OUT/$1-01" | awk '{print $2}'; }
for op in $OPS; do
    for n in "$N1" "$N2"; do
        valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/$op.$n" \
            "$PYTHON" benchmarks/callgrind_calls.py "$op" "$n" >/dev/null 2>"$OUT/$op.$n.log"
    done
    a=$(total "$op.$N1")
    b=$(total "$op.$N2")
    m=$((($(main "$op.$N2") - $(main "$op.$N1")) / (N2 - N1)))
    echo "$op: $m instructions per call on the main thread, $(((b - a) / (N2 - N1))) in all threads"
done
rm -rf "$OUT"
