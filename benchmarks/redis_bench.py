"""Redis clients side by side, against one local ``redis-server``, in one run:
``asyncffi_redis`` (the example in ``examples/redis``: the Rust ``redis`` crate exported with
asyncffi) and redis-py's ``redis.asyncio``, with the hiredis parser and with its Python parser,
each over a ``BlockingConnectionPool`` of 100 connections and over a single connection.

    pip install ./examples/redis "redis>=5" hiredis
    python benchmarks/redis_bench.py              # about 10 minutes; prints a Markdown table
    python benchmarks/redis_bench.py --quick      # small sizes, one round: proves it works

Each system runs in a fresh interpreter (so its RSS is its own) and repeats every scenario
``--rounds`` times; the table shows the medians. The server is started here (no persistence,
no output-buffer limit for subscribers) on a free loopback port, unless ``--url`` names one.
Pub/sub messages come from a separate process writing pipelined PUBLISH commands over a plain
socket as fast as the server takes them; the rate is counted from the first message received
to the last.

(Not ``benchmarks/redis.py``: a script named so would shadow the ``redis`` package it imports.)

redis-py's default pool is not among the systems: it opens a connection per command in flight
and, since redis-py 8, refuses more than its ``max_connections`` (``MaxConnectionsError`` on a
100,000-task gather), so the pool here is the blocking one, which makes tasks wait for one of
its 100 connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional

SYSTEMS = [
    "asyncffi_redis",
    "redis-py hiredis pool",
    "redis-py hiredis single",
    "redis-py python pool",
    "redis-py python single",
]

# (key, label, unit, higher is better)
ROWS = [
    ("seq_get", "GET one at a time", "us/op", False),
    ("gather_get", "GETs with asyncio.gather on one client", "GET/s", True),
    ("mget", "MGET of 1,000 keys", "ms/op", False),
    ("pipeline", "pipeline of 1,000 GETs", "ms/op", False),
    ("pubsub", "pub/sub messages received", "msg/s", True),
    ("rss", "RSS after the run", "MB", False),
]

KEYS = [f"bench:{i}" for i in range(1000)]
VALUE = b"v" * 100
CHANNEL = "bench:channel"


# --- the clients -----------------------------------------------------------------------------


class Client:
    """One system's client, with the operations the scenarios time."""

    def __init__(self, system: str, url: str) -> None:
        self.system = system
        self.url = url
        self.r: Any = None

    async def open(self) -> None:
        if self.system == "asyncffi_redis":
            import asyncffi_redis

            self.r = await asyncffi_redis.connect(self.url, response_timeout=0)
            return
        import redis.asyncio as aioredis
        from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser

        parser = _AsyncHiredisParser if "hiredis" in self.system else _AsyncRESP2Parser
        if "single" in self.system:
            self.r = aioredis.Redis.from_url(
                self.url, single_connection_client=True, parser_class=parser
            )
        else:
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url,
                max_connections=100,
                timeout=None,
                parser_class=parser,
                socket_connect_timeout=60,
            )
            self.r = aioredis.Redis(connection_pool=pool)
        # Open the pool's connections before timing (a connection opened during a large
        # gather waits behind its tasks, past the default connect timeout).
        await asyncio.gather(*(self.r.ping() for _ in range(100)))

    async def close(self) -> None:
        if self.system == "asyncffi_redis":
            self.r.close()
        else:
            await self.r.aclose()

    def get(self, key: str) -> Awaitable[Any]:
        return self.r.get(key)  # type: ignore[no-any-return]

    def mget(self, keys: List[str]) -> Awaitable[Any]:
        return self.r.mget(keys)  # type: ignore[no-any-return]

    async def pipeline_get(self, keys: List[str]) -> List[Any]:
        if self.system == "asyncffi_redis":
            return await self.r.pipeline([["GET", k] for k in keys])  # type: ignore[no-any-return]
        async with self.r.pipeline(transaction=False) as pipe:
            for k in keys:
                pipe.get(k)
            return await pipe.execute()  # type: ignore[no-any-return]

    async def receive(self, n: int, started: Callable[[], None]) -> float:
        """Subscribes, calls ``started`` once subscribed, and receives ``n`` messages: the
        seconds from the first to the last."""
        first = 0.0
        count = 0
        if self.system == "asyncffi_redis":
            async with self.r.subscribe(CHANNEL) as messages:
                async for message in messages:
                    if message["type"] != "message":
                        started()
                        continue
                    if count == 0:
                        first = time.perf_counter()
                    count += 1
                    if count == n:
                        break
            return time.perf_counter() - first
        pubsub = self.r.pubsub()
        await pubsub.subscribe(CHANNEL)
        try:
            async for message in pubsub.listen():
                if message["type"] != "message":
                    started()
                    continue
                if count == 0:
                    first = time.perf_counter()
                count += 1
                if count == n:
                    break
            return time.perf_counter() - first
        finally:
            await pubsub.aclose()


# --- the scenarios ---------------------------------------------------------------------------

PUBLISHER = r"""
import socket, sys
port, n, channel = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
s = socket.create_connection(("127.0.0.1", port))
def command(*words):
    out = [b"*%d\r\n" % len(words)]
    for w in words:
        out.append(b"$%d\r\n%s\r\n" % (len(w), w))
    return b"".join(out)
def reply_lines(count):
    buf = b""
    while buf.count(b"\r\n") < count:
        buf += s.recv(1 << 20)
    return buf
# wait until the subscriber is there
while True:
    s.sendall(command(b"PUBSUB", b"NUMSUB", channel))
    if not reply_lines(4).endswith(b":0\r\n"):  # *2, $len, the channel, :count
        break
batch = 1000
for start in range(0, n, batch):
    end = min(start + batch, n)
    s.sendall(b"".join(command(b"PUBLISH", channel, b"%d" % i) for i in range(start, end)))
    reply_lines(min(batch, n - start))
"""


async def timed(make: Callable[[], Awaitable[Any]], repeat: int) -> float:
    began = time.perf_counter()
    for _ in range(repeat):
        await make()
    return (time.perf_counter() - began) / repeat


async def run_system(system: str, url: str, sizes: Dict[str, int], rounds: int) -> Dict[str, Any]:
    client = Client(system, url)
    await client.open()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    results: Dict[str, List[float]] = {key: [] for key, *_ in ROWS if key != "rss"}
    check = await client.mget(KEYS[:3])
    assert check == [VALUE] * 3, check
    for _ in range(rounds):
        n = sizes["seq_get"]
        began = time.perf_counter()
        for i in range(n):
            await client.get(KEYS[i % 1000])
        results["seq_get"].append((time.perf_counter() - began) / n * 1e6)

        n = sizes["gather_get"]
        began = time.perf_counter()
        replies = await asyncio.gather(*(client.get(KEYS[i % 1000]) for i in range(n)))
        results["gather_get"].append(n / (time.perf_counter() - began))
        assert len(replies) == n and replies[-1] == VALUE

        results["mget"].append(await timed(lambda: client.mget(KEYS), sizes["mget"]) * 1e3)
        results["pipeline"].append(
            await timed(lambda: client.pipeline_get(KEYS), sizes["pipeline"]) * 1e3
        )

        n = sizes["pubsub"]
        publisher: List[subprocess.Popen[bytes]] = []

        def started(publisher: List[subprocess.Popen[bytes]] = publisher, n: int = n) -> None:
            if not publisher:
                publisher.append(
                    subprocess.Popen(
                        [sys.executable, "-c", PUBLISHER, str(port), str(n), CHANNEL],
                        stdout=subprocess.DEVNULL,
                    )
                )

        try:
            seconds = await asyncio.wait_for(client.receive(n, started), 120)
            assert publisher[0].wait(60) == 0
        finally:
            for p in publisher:
                p.kill()
        results["pubsub"].append(n / seconds)
    await client.close()
    medians: Dict[str, Any] = {k: statistics.median(v) for k, v in results.items()}
    medians["rss"] = rss_mb()
    medians["rounds"] = results
    return medians


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- the server and the driver ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", "",
         "--appendonly", "no", "--client-output-buffer-limit", "pubsub 0 0 0",
         "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    sys.exit("redis-server did not start")


def fill(url: str) -> None:
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port.split("/")[0]))) as s:
        out = []
        for k in KEYS:
            kb = k.encode()
            out.append(
                b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(kb), kb, len(VALUE), VALUE)
            )
        s.sendall(b"".join(out))
        got = b""
        while got.count(b"+OK\r\n") < len(KEYS):
            got += s.recv(65536)


def cell(value: Optional[float], unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("GET/s", "msg/s"):
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 100 else f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def table(results: Dict[str, Dict[str, Any]]) -> str:
    names = [s for s in SYSTEMS if s in results]
    peers = [s for s in names if s != "asyncffi_redis"]
    head = ["row", *names, "fastest redis-py", "asyncffi_redis vs it"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, unit, higher in ROWS:
        values = {s: results[s].get(key) for s in names}
        row = [f"{label} ({unit})", *(cell(values[s], unit) for s in names)]
        known = [s for s in peers if values[s] is not None]
        ours = values.get("asyncffi_redis")
        if known and ours is not None:
            best = (max if higher else min)(known, key=lambda s: values[s])
            ratio = ours / values[best] if higher else values[best] / ours
            row += [f"{best}: {cell(values[best], unit)}", f"{ratio:.2f}x"]
        else:
            row += ["-", "-"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per system (5)")
    parser.add_argument("--url", help="an existing server (its keys bench:* are overwritten)")
    parser.add_argument("--only", action="append", help="run only these systems")
    parser.add_argument("--json", help="write the results there too")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sizes = json.loads(args.sizes)
        out = asyncio.run(run_system(args.worker, args.url, sizes, args.rounds))
        print(json.dumps(out))
        return
    if args.quick:
        sizes = {"seq_get": 500, "gather_get": 10_000, "mget": 10, "pipeline": 10, "pubsub": 10_000}
    else:
        sizes = {"seq_get": 5000, "gather_get": 100_000, "mget": 100, "pipeline": 50,
                 "pubsub": 100_000}  # fmt: skip
    rounds = args.rounds or (1 if args.quick else 5)
    systems = args.only or SYSTEMS
    with tempfile.TemporaryDirectory(prefix="asyncffi-redis-bench-") as directory:
        server = None
        url = args.url
        if url is None:
            server, url = start_server(directory)
        try:
            fill(url)
            results: Dict[str, Dict[str, Any]] = {}
            for system in systems:
                began = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, __file__, "--worker", system, "--url", url,
                     "--sizes", json.dumps(sizes), "--rounds", str(rounds)],
                    capture_output=True, text=True,
                )  # fmt: skip
                if proc.returncode != 0:
                    sys.exit(f"{system} failed:\n{proc.stderr}")
                results[system] = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"{system}: {time.perf_counter() - began:.0f} s", file=sys.stderr)
        finally:
            if server is not None:
                server.terminate()
                server.wait(10)
    import redis

    sizes_text = ", ".join(f"{k}={v:,}" for k, v in sizes.items())
    print(
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
        f"cores, Python {sys.version.split()[0]}, redis-py {redis.__version__}; median of "
        f"{rounds} round(s), each system in a fresh interpreter ({sizes_text}).\n"
    )
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"sizes": sizes, "rounds": rounds, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
