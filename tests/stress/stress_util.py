"""Shared pieces of the stress suite: the scale knob, the seed, RSS readings, the counter
balance, and running many subprocesses at once.

``ASYNCFFI_STRESS_SCALE`` (a float, default 1) multiplies every repeat count and duration of
the suite: at 1 the whole suite fits in about three minutes on a 2-core machine; 10 runs it
about ten times longer. ``ASYNCFFI_STRESS_SEED`` fixes the random seed (every randomised test
prints the seed it used, so a failure can be replayed).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Sequence, Tuple

import asyncffi

SCALE = float(os.environ.get("ASYNCFFI_STRESS_SCALE", "1"))
if not SCALE > 0:
    raise ValueError(f"ASYNCFFI_STRESS_SCALE must be > 0, got {SCALE}")

#: Subprocesses run at once by ``run_scripts`` (they mostly wait on Rust timers and exit).
PARALLEL = 4


def scaled(n: float, minimum: int = 1) -> int:
    """``n`` times the scale knob, at least ``minimum``."""
    return max(minimum, round(n * SCALE))


def seed() -> int:
    """The seed of a randomised test: ``ASYNCFFI_STRESS_SEED`` or a fresh one."""
    fixed = os.environ.get("ASYNCFFI_STRESS_SEED")
    return int(fixed) if fixed else random.SystemRandom().randrange(1 << 32)


def rss_bytes() -> int:
    """This process's resident set size now (Linux: ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


TALLIES = ("spawned", "completed", "cancelled")


def tallies() -> Dict[str, int]:
    """The counters that only grow and must balance: every spawned task either completed or
    was cancelled."""
    s = asyncffi.stats()
    return {k: s[k] for k in TALLIES}


def unbalanced(before: Dict[str, int], after: Dict[str, int]) -> int:
    """Tasks spawned between two readings that neither completed nor were cancelled (0 once
    ``live_tasks`` is 0)."""
    d = {k: after[k] - before[k] for k in TALLIES}
    return d["spawned"] - d["completed"] - d["cancelled"]


def run_script(code: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` in a fresh interpreter (a hang becomes a failed process, not a hung
    suite)."""
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        return subprocess.CompletedProcess(
            e.cmd, -999, out, err + f"\n[hung: killed after {timeout} s]"
        )


def run_scripts(
    scripts: Sequence[str], timeout: float = 60.0
) -> List[Tuple[int, subprocess.CompletedProcess[str]]]:
    """Runs every script, ``PARALLEL`` at a time; returns ``(index, process)`` pairs in order."""
    with ThreadPoolExecutor(PARALLEL) as pool:
        procs = list(pool.map(lambda code: run_script(code, timeout), scripts))
    return list(enumerate(procs))
