"""The exit matrix: interpreters that exit in the middle of asyncffi work, in every way a
program can exit, each run several times (alternating the wake strategy) in fresh
subprocesses, several at once. Each must end with its expected status and print NOTHING on
stderr: no traceback, no "Task was destroyed", no warning, no crash."""

from __future__ import annotations

from typing import Dict, Tuple

import pytest
from stress_util import run_scripts, scaled

pytestmark = pytest.mark.stress

#: Runs of each scenario (half with each wake strategy).
REPEATS = 6

HEADER = """
import asyncio, atexit, os, random, sys, threading, time
import asyncffi
from asyncffi import demo
asyncffi.configure(wake={wake!r})
try:
    import uvloop
except ImportError:
    uvloop = None
new_loop = uvloop.new_event_loop if {loop!r} == "uvloop" else asyncio.new_event_loop
RUNTIMES = ["tokio", "async-std", "loop"]

async def forever_agen():
    i = 0
    while True:
        yield i
        i += 1
        if i % 100 == 0:
            await asyncio.sleep(0)

def start_calls(n):
    # Futures only (RustCall is an asyncio.Future, started by get_loop()): no user Task is
    # left for asyncio to report, so any report is about asyncffi's own work.
    for i in range(n):
        rt = RUNTIMES[i % 3]
        demo.sleep(random.random() * 0.05, runtime=rt).get_loop()
        demo.pending(runtime=rt).get_loop()
        demo.echo([b"x" * 1000, "y" * 100], runtime=rt).get_loop()
"""

#: name -> (code after HEADER, expected exit status, expected stdout or None)
SCENARIOS: Dict[str, Tuple[str, int, str]] = {
    "sys.exit-mid-call": (
        """
async def main():
    start_calls(1000)
    demo.cpu(3_000_000_000).get_loop()  # blocking-pool work that outlives exit
    await asyncio.sleep(0.02)
    sys.exit(7)
loop = new_loop()
try:
    loop.run_until_complete(main())
finally:
    loop.close()
""",
        7,
        "",
    ),
    "unclosed-loop-mid-call": (
        """
async def main():
    start_calls(1000)
    demo.call_python(asyncio.sleep, 100).get_loop()
    demo.gather_python(asyncio.sleep, 50).get_loop()
    await asyncio.sleep(0.02)
loop = new_loop()
loop.run_until_complete(main())
print("done")
""",
        0,
        "done\n",
    ),
    "unclosed-loop-mid-stream": (
        """
async def main():
    demo.sum_stream(forever_agen()).get_loop()
    demo.take(forever_agen(), 10**12, runtime="loop").get_loop()
    async for x in demo.count(10**9, runtime="async-std"):
        if x == 5_000:
            sys.exit(0)
loop = new_loop()
loop.run_until_complete(main())
""",
        0,
        "",
    ),
    "closed-loop-mid-stream": (
        """
async def main():
    demo.sum_stream(forever_agen()).get_loop()
    async for x in demo.echo_stream(forever_agen(), runtime="tokio"):
        if x == 5_000:
            sys.exit(3)
loop = new_loop()
try:
    loop.run_until_complete(main())
finally:
    loop.close()
""",
        3,
        "",
    ),
    "daemon-thread-mid-batch": (
        # Daemon threads' loops are in the middle of drained batches (a sync Python callable
        # called from Rust is running, 1 MiB payloads queued behind it) when the main thread
        # exits: the batch must stay readable until no thread can read it.
        """
BIG = b"p" * (1 << 20)
def f(i):
    if i % 2:
        return BIG
    time.sleep(0.005)
    return i
async def busy():
    while True:
        await asyncio.gather(*(demo.call_python(f, i) for i in range(64)))
for _ in range(2):
    threading.Thread(target=lambda: new_loop().run_until_complete(busy()), daemon=True).start()
time.sleep(0.3)
print("done")
""",
        0,
        "done\n",
    ),
    "daemon-threads-busy": (
        """
async def ident(x):
    await asyncio.sleep(0)
    return x
async def busy(k):
    while True:
        rt = RUNTIMES[k % 3]
        await asyncio.gather(
            demo.call_python(ident, k, runtime=rt),
            demo.gather_python(ident, 20, runtime=rt),
            demo.sum_stream(range(100), runtime=rt),
            demo.take(forever_agen(), 10, runtime=rt),
            demo.sleep(0.001, runtime=rt),
            demo.echo({"k": [k]}, runtime=rt),
        )
        async for _ in demo.count(20, runtime=rt):
            pass
def run(k):
    loop = new_loop()
    loop.run_until_complete(busy(k))
for k in range(3):
    threading.Thread(target=run, args=(k,), daemon=True).start()
time.sleep(0.3)
print("done")
""",
        0,
        "done\n",
    ),
    "atexit-after-import": (
        # Registered after asyncffi's own hook, so it runs first: asyncffi still works.
        """
def at_exit():
    async def use():
        assert await demo.echo([1, "a"]) == [1, "a"]
        assert await demo.call_python(lambda x: x, 5) == 5
        assert await demo.sum_stream(range(10)) == 45
        assert [x async for x in demo.count(3)] == [0, 1, 2]
    loop = new_loop()
    try:
        loop.run_until_complete(use())
    finally:
        loop.close()
    print("worked", flush=True)
atexit.register(at_exit)
asyncio.run(demo.sleep(0))
""",
        0,
        "worked\n",
    ),
    "sys.exit-from-sync-callable": (
        """
def bye():
    sys.exit(5)
async def main():
    start_calls(200)
    await demo.call_python(bye, runtime=RUNTIMES[random.randrange(3)])
loop = new_loop()
try:
    loop.run_until_complete(main())
finally:
    loop.close()
""",
        5,
        "",
    ),
    "sys.exit-from-async-callable": (
        """
async def bye():
    await asyncio.sleep(0.01)
    sys.exit(6)
async def main():
    start_calls(200)
    await demo.gather_python(lambda i: bye() if i == 7 else asyncio.sleep(10), 20,
                             runtime=RUNTIMES[random.randrange(3)])
loop = new_loop()
try:
    loop.run_until_complete(main())
finally:
    loop.close()
""",
        6,
        "",
    ),
    "os._exit-mid-call": (
        """
def work():
    new_loop().run_until_complete(demo.gather_python(asyncio.sleep, 1000))
threading.Thread(target=work, daemon=True).start()
async def main():
    start_calls(1000)
    await asyncio.sleep(0.05)
    sys.stdout.flush()
    os._exit(4)
new_loop().run_until_complete(main())
""",
        4,
        "",
    ),
    "os._exit-from-callable": (
        """
def bye():
    os._exit(9)
async def main():
    start_calls(200)
    await demo.call_python(bye, runtime=RUNTIMES[random.randrange(3)])
new_loop().run_until_complete(main())
""",
        9,
        "",
    ),
}

#: Scenarios whose failure is intermittent: run this many times more.
MORE = {"daemon-thread-mid-batch": 2, "daemon-threads-busy": 2}

#: Scenarios that do not depend on which loop runs (asyncio only).
ASYNCIO_ONLY = {"atexit-after-import", "os._exit-from-callable", "os._exit-mid-call"}

#: An atexit handler registered before ``import asyncffi`` runs after asyncffi's own exit
#: hook: a call made there must fail at once with ClosedError, never hang.
ATEXIT_BEFORE_IMPORT = """
import asyncio, atexit, time
def at_exit():
    from asyncffi import ClosedError, demo
    t0 = time.monotonic()
    for call in (lambda: demo.sleep(0), lambda: demo.call_python(print),
                 lambda: demo.sum_stream(range(3))):
        try:
            asyncio.run(asyncio.wait_for(call(), 1))
        except ClosedError as e:
            print("ClosedError", flush=True)
        except asyncio.TimeoutError:
            print("hung", flush=True)
    print("fast" if time.monotonic() - t0 < 1 else "slow", flush=True)
atexit.register(at_exit)
import asyncffi
from asyncffi import demo
asyncffi.configure(wake={wake!r})
asyncio.run(demo.sleep(0))
"""


def cases() -> list:
    out = []
    for name in SCENARIOS:
        for loop in ["asyncio"] if name in ASYNCIO_ONLY else ["asyncio", "uvloop"]:
            out.append(pytest.param(name, loop, id=f"{name}-{loop}"))
    return out


def check_runs(scripts: list, status: int, stdout: str) -> None:
    results = run_scripts(scripts, timeout=30)
    bad = [
        (i, p.returncode, p.stdout[-300:], p.stderr[-1500:])
        for i, p in results
        if p.returncode != status or p.stderr != "" or (stdout is not None and p.stdout != stdout)
    ]
    assert not bad, (
        f"{len(bad)} of {len(results)} runs went wrong (run, status, stdout, stderr); "
        f"the first: {bad[0]}"
    )


@pytest.mark.parametrize("name, loop", cases())
def test_exit(name: str, loop: str) -> None:
    code, status, stdout = SCENARIOS[name]
    scripts = [
        HEADER.format(wake=("threadsafe", "fd")[i % 2], loop=loop) + code
        for i in range(scaled(REPEATS * MORE.get(name, 1), minimum=2))
    ]
    check_runs(scripts, status, stdout)


def test_exit_atexit_handler_registered_before_import() -> None:
    scripts = [
        ATEXIT_BEFORE_IMPORT.format(wake=("threadsafe", "fd")[i % 2])
        for i in range(scaled(REPEATS, minimum=2))
    ]
    check_runs(scripts, 0, "ClosedError\nClosedError\nClosedError\nfast\n")
