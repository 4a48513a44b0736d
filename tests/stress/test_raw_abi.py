"""Random raw C-ABI calls through ``asyncffi._loader.lib``, as a careless or hostile caller
would make them: bad, stale and forged ids, ids of the wrong kind, double releases and
closes, closed ports, unknown tags, statuses and runtimes, garbage payloads, NULL data with a
non-zero length. Every call must return an error code with an ``affi_last_error`` text (or
succeed where the arguments happen to be valid), and never crash. Runs in subprocesses, so a
crash fails the test with its seed; seeded and reproducible (``ASYNCFFI_STRESS_SEED``)."""

from __future__ import annotations

import pytest
from stress_util import run_scripts, scaled, seed

pytestmark = pytest.mark.stress

#: Raw calls per subprocess at scale 1.
CALLS = 150_000

SCRIPT = r"""
import asyncio, random, sys, time
import asyncffi
from asyncffi import demo
from asyncffi._loader import ffi, lib
b = demo.library.manifest_functions  # the built-ins' own symbols (asyncffi_native_*)

SEED, CALLS = {seed}, {calls}
rng = random.Random(SEED)
buf = ffi.new("AffiCompletion[]", 64)
one = ffi.new("AffiCompletion *")
size = ffi.new("uintptr_t *")
bad = []

def last_error():
    p = lib.affi_last_error(size)
    return bytes(ffi.buffer(p, size[0])).decode("utf-8")

def check(name, status, may_succeed=False):
    if status < 0:
        try:
            text = last_error()
        except UnicodeDecodeError as e:
            bad.append((name, status, f"last_error is not UTF-8: {{e}}"))
            return status
        if not text:
            bad.append((name, status, "no last_error text"))
        elif status < lib.AFFI_STATUS_ERR_PANIC:
            bad.append((name, status, f"unknown status: {{text}}"))
    elif not may_succeed:
        bad.append((name, status, "succeeded with bad arguments"))
    return status

ports = [check("open", lib.affi_port_open(w), True) for w in (0, 1, 0, 1)]
closed_ports = [ports.pop(), ports.pop()]
for p in closed_ports:
    check("close", lib.affi_port_close(p), True)
def new_counter():
    # The constructor is a sync export: the object handle comes in the completion.
    check("Counter_new", b.asyncffi_native_Counter_new(one), True)
    assert one.tag == lib.AFFI_TAG_OBJECT, one.tag
    return one.int_value
counter = new_counter()
freed_counter = new_counter()
check("free", lib.affi_object_free(freed_counter), True)
tasks = []        # ids of tasks spawned on live ports (cancelled or ended later)
ended = []        # ids of tasks cancelled already (stale)
tokens = iter(range(1, 1 << 62))

def u64():
    return rng.choice([0, 1, 2, 3, 2**32, 2**32 + 1, 2**63 - 1, 2**63, 2**64 - 1,
                       rng.randrange(2**64), rng.randrange(1000)])

def any_id():
    pools = [ports, closed_ports, tasks, ended, [counter, freed_counter]]
    pool = rng.choice(pools)
    if pool and rng.random() < 0.7:
        x = rng.choice(pool)
        return x if rng.random() < 0.8 else x ^ (1 << rng.randrange(64))  # forged neighbour
    return u64()

def data():
    k = rng.randrange(5)
    if k == 0:
        return ffi.NULL, rng.choice([1, 7, 2**16, 2**40])  # NULL with a length: refused
    if k == 1:
        return ffi.NULL, 0
    raw = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
    if k == 2 and raw:
        raw = bytes([rng.choice([0x91, 0x92, 0x81, 0xdc, 0xde, 0xc4, 0xd9])]) + raw  # msgpack-ish
    return raw, len(raw) if rng.random() < 0.9 else rng.randrange(len(raw) + 1)

def tag():
    return rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 255, 2**31, 2**32 - 1])

def runtime():
    return rng.choice([0, 1, 2, 3, 7, 2**32 - 1])

def spawned(name, status, port):
    # A spawn may succeed (the arguments happened to be valid): keep its task, or take its
    # inline outcome as the package does.
    if status > 0:
        tasks.append(status)
    elif status == 0:
        t = lib.affi_port_take_inline(port, last_token, one)
        if t < 0:
            bad.append((name, t, "returned 0 but holds no inline outcome: " + last_error()))
        if one.tag == lib.AFFI_TAG_OBJECT:
            lib.affi_object_free(one.int_value)
        lib.affi_port_release_inline(port, last_token)

def spawn_port():
    return rng.choice(ports) if rng.random() < 0.6 else any_id()

OPS = []
def op(f):
    OPS.append(f)
    return f

@op
def drain():
    p = any_id()
    check("drain", lib.affi_port_drain(p, buf, rng.choice([0, 1, 64])), True)
    check("release", lib.affi_port_release(p), True)
@op
def drain_null():
    p = rng.choice(ports)
    check("drain NULL", lib.affi_port_drain(p, ffi.NULL, rng.choice([1, 64])))
@op
def release():
    check("release", lib.affi_port_release(any_id()), True)
    check("release_inline", lib.affi_port_release_inline(any_id(), any_id()), True)
@op
def take_inline():
    check("take_inline", lib.affi_port_take_inline(any_id(), u64(), one))
    check("take_inline NULL", lib.affi_port_take_inline(any_id(), u64(), ffi.NULL))
@op
def close():
    p = any_id()
    if p in ports:
        return  # live ports are closed at the end
    check("close", lib.affi_port_close(p))
@op
def fd():
    check("fd", lib.affi_port_fd(any_id()), True)
@op
def open_bad():
    check("open", lib.affi_port_open(rng.choice([3, 4, 255, 2**32 - 1])))
@op
def cancel():
    t = any_id()
    if check("cancel", lib.affi_task_cancel(t), True) >= 0:
        if t in tasks:
            tasks.remove(t)
        ended.append(t)
@op
def poll():
    t = any_id()
    if t not in tasks:
        check("poll", lib.affi_task_poll(t), True)
@op
def free():
    h = any_id()
    if h != counter:
        check("free", lib.affi_object_free(h))
@op
def grant():
    check("grant", lib.affi_stream_grant(any_id(), u64()), True)
@op
def call_complete():
    d, n = data()
    status = rng.choice([0, 1, 2, 3, 16, -1, 99])
    # A small id may name a real call of an adopted callable (answering it is then valid).
    check("call_complete", lib.affi_call_complete(any_id(), u64(), status, tag(), u64() - 2**63,
                                                  rng.random(), d, n), True)
@op
def pystream_items():
    d, n = data()
    # A small id may name an iterator Rust adopted above (feeding it is then valid).
    check("pystream_items", lib.affi_pystream_items(any_id(), d, n), True)
@op
def pystream_end():
    d, n = data()
    check("pystream_end", lib.affi_pystream_end(any_id(), rng.choice([0, 1, 2, 5, -3]), d, n,
                                                u64()), True)
@op
def echo():
    global last_token
    p = spawn_port()
    d, n = data()
    last_token = next(tokens)
    s = check("echo", b.asyncffi_native_echo(p, last_token, tag(), u64() - 2**63, rng.random(), d,
                                             n, runtime()), True)
    spawned("echo", s, p)
@op
def text_args():
    global last_token
    p = spawn_port()
    d, n = data()
    k, m = data()
    last_token = next(tokens)
    s = check("fail", b.asyncffi_native_fail(p, last_token, d, n, k, m), True)
    spawned("fail", s, p)
    last_token = next(tokens)
    s = check("panic", b.asyncffi_native_panic(p, last_token, d, n), True)
    spawned("panic", s, p)
@op
def spawns():
    global last_token
    p = spawn_port()
    last_token = next(tokens)
    k = rng.randrange(5)
    if k == 0:
        secs = rng.choice([-1.0, float("nan"), float("inf"), 0.0, 1e300, 0.001])
        s = b.asyncffi_native_sleep(p, last_token, secs, runtime())
    elif k == 1:
        s = b.asyncffi_native_pending(p, last_token, runtime())
    elif k == 2:
        s = b.asyncffi_native_Counter_add(p, last_token, any_id(), u64() - 2**63)
    elif k == 3:
        n, delay = rng.choice([-1, 0, 5, 2**62]), rng.choice([0.0, -1.0, float("nan")])
        s = b.asyncffi_native_count(p, last_token, n, delay, runtime(), u64())
    else:
        interval = rng.choice([-1.0, 0.0, float("nan")])
        s = b.asyncffi_native_tick(p, last_token, interval, rng.choice([0, 1, 2**32 - 1, -1]))
    spawned("spawn", check("spawn", s, True), p)
@op
def adopt_forged():
    # Python object ids Rust is told to adopt that Python never lent (or lent as another kind).
    global last_token
    p = spawn_port()
    last_token = next(tokens)
    k = rng.randrange(4)
    obj = any_id()
    d, n = data()
    if k == 0:
        s = b.asyncffi_native_call_python(p, last_token, obj, d, n, runtime())
    elif k == 1:
        s = b.asyncffi_native_sum_stream(p, last_token, obj, u64(), runtime())
    elif k == 2:
        s = b.asyncffi_native_take(p, last_token, obj, u64(), u64(), runtime())
    else:
        s = b.asyncffi_native_gather_python(p, last_token, obj, rng.choice([0, 1, 5]),
                                           runtime())
    spawned("adopt", check("adopt", s, True), p)
@op
def misc():
    check("stats NULL", lib.affi_stats(ffi.NULL))
    lib.affi_last_error(ffi.NULL)  # must not write through NULL
    check("configure", lib.affi_configure(rng.choice([0, 1, 4]), rng.choice([2, 7, 2**32 - 1])))

last_token = 0
for i in range(CALLS // 3):
    rng.choice(OPS)()
    if len(tasks) > 2000:  # bound the work left in flight: cancel the oldest half
        for t in tasks[:1000]:
            lib.affi_task_cancel(t)
        ended.extend(tasks[:1000])
        del tasks[:1000]

for p in ports:
    for _ in range(3):
        lib.affi_port_drain(p, buf, 64)
        lib.affi_port_release(p)
    check("close", lib.affi_port_close(p), True)
    check("close twice", lib.affi_port_close(p))
check("free", lib.affi_object_free(counter), True)
check("free twice", lib.affi_object_free(counter))

# The library still works, and nothing is left alive.
assert asyncio.run(demo.echo([1, "x"])) == [1, "x"]
deadline = time.monotonic() + 10
while True:
    live = {{k: v for k, v in asyncffi.stats().items() if k.startswith("live_") and v}}
    if not live or time.monotonic() > deadline:
        break
    time.sleep(0.02)
if live:
    bad.append(("end", 0, f"live counters left: {{live}}"))
for b in bad[:20]:
    print("BAD", b)
print(f"seed={{SEED}} calls={{CALLS}} bad={{len(bad)}}")
sys.exit(1 if bad else 0)
"""


def test_random_raw_abi_calls_return_errors_and_never_crash() -> None:
    base = seed()
    seeds = [base + k for k in range(4)]
    scripts = [SCRIPT.format(seed=s, calls=scaled(CALLS)) for s in seeds]
    bad = []
    for i, proc in run_scripts(scripts, timeout=120):
        if proc.returncode != 0 or proc.stderr:
            bad.append(
                f"seed={seeds[i]} (ASYNCFFI_STRESS_SEED={base} replays the run): "
                f"status {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
    assert not bad, "\n\n".join(bad)
