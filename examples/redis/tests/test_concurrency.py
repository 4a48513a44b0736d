"""One client under load and under failure: 1,000 concurrent tasks, cancelled commands, a
server killed mid-run and restarted, and an interpreter leaving with the client busy."""

from __future__ import annotations

import asyncio
import random

import asyncffi
import asyncffi_redis
import pytest
from conftest import RedisServer, run_python


@pytest.mark.uvloop
async def test_a_thousand_concurrent_mixed_tasks_on_one_client(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:

        async def worker(i: int) -> None:
            key = f"k{i}"
            assert await r.set(key, i) is True
            await asyncio.sleep(random.random() / 100)
            assert await r.get(key) == str(i).encode()
            assert await r.incr("shared") >= 1
            assert await r.hset(f"h{i}", mapping={"i": i}) == 1
            assert await r.hgetall(f"h{i}") == {b"i": str(i).encode()}
            assert await r.pipeline([["INCR", key], ["GET", key]]) == [i + 1, str(i + 1).encode()]
            assert await r.mget([key, "missing"]) == [str(i + 1).encode(), None]
            assert await r.delete(key) == 1

        await asyncio.gather(*(worker(i) for i in range(1000)))
        assert await r.get("shared") == b"1000"
        assert await r.execute_command("DBSIZE") == 1001  # "shared" and the hashes


@pytest.mark.uvloop
async def test_cancelling_a_pending_get_leaves_the_client_usable(url: str) -> None:
    async with asyncffi_redis.connect(url, response_timeout=0) as r:
        async with asyncffi_redis.connect(url, response_timeout=0) as other:
            await r.set("first", "1")
            await r.set("second", "2")
            # The server is busy for 0.5 s: the GET waits for it, and is cancelled first.
            sleeping = asyncio.ensure_future(other.execute_command("DEBUG", "SLEEP", "0.5"))
            await asyncio.sleep(0.05)
            before = asyncffi.stats()["cancelled"]
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(r.get("first"), 0.1)
            # The Rust future is dropped on its runtime's thread, just after the cancel.
            for _ in range(200):
                if asyncffi.stats()["cancelled"] > before:
                    break
                await asyncio.sleep(0.01)
            assert asyncffi.stats()["cancelled"] == before + 1
            assert await sleeping is True
            # The cancelled GET's reply arrives and is dropped: the next reply is its own.
            assert await r.get("second") == b"2"
            assert await asyncio.gather(r.get("first"), r.get("second")) == [b"1", b"2"]


async def test_cancelling_a_blocking_pop(url: str) -> None:
    async with asyncffi_redis.connect(url, response_timeout=0) as r:
        task = asyncio.ensure_future(r.execute_command("BLPOP", "queue", "0.3"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The connection waits for the BLPOP to time out on the server, then goes on.
        assert await asyncio.wait_for(r.set("k", "v"), 5) is True
        assert await r.get("k") == b"v"


async def test_server_killed_mid_run_fails_fast_then_recovers(own_server: RedisServer) -> None:
    r = await asyncffi_redis.connect(
        own_server.url, response_timeout=1, connection_timeout=1, retries=1
    )
    async with r:
        await r.set("k", "v")
        errors: list[asyncffi.RustError] = []
        done = 0

        async def hammer() -> None:
            nonlocal done
            while not errors:
                try:
                    await r.get("k")
                    done += 1
                except asyncffi.RustError as e:
                    errors.append(e)

        loop = asyncio.get_running_loop()
        tasks = [asyncio.ensure_future(hammer()) for _ in range(50)]
        await asyncio.sleep(0.2)
        killed = loop.time()
        own_server.kill()
        # Every task sees its command fail within the response timeout (plus slack): no hang.
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert loop.time() - killed < 3
        assert done > 0
        kinds = {e.kind for e in errors}
        assert kinds <= {"connection_dropped", "io", "timeout", "connection_refused"}, errors
        assert all(str(e) for e in errors)
        # While it is down, calls keep failing quickly with a clear error.
        with pytest.raises(asyncffi.RustError) as info:
            await asyncio.wait_for(r.get("k"), 5)
        assert info.value.kind in {"connection_dropped", "io", "timeout", "connection_refused"}
        # Back up (empty: no persistence), the same client reconnects by itself.
        own_server.start()
        deadline = loop.time() + 15
        while True:
            try:
                assert await asyncio.wait_for(r.set("k", "again"), 5) is True
                break
            except asyncffi.RustError:
                assert loop.time() < deadline, "the client did not reconnect"
                await asyncio.sleep(0.1)
        assert await r.get("k") == b"again"


def test_exit_with_the_client_busy(server: RedisServer) -> None:
    proc = run_python(
        f"""
        import asyncio
        import asyncffi_redis

        async def start():
            r = await asyncffi_redis.connect({server.url!r}, response_timeout=0)
            other = await asyncffi_redis.connect({server.url!r}, response_timeout=0)
            # gather takes the calls as futures (no Task each, so nothing to report at exit)
            busy = [asyncio.gather(other.execute_command("DEBUG", "SLEEP", "0.5"))]
            await asyncio.sleep(0.02)
            busy.append(asyncio.gather(*(r.get(f"k{{i}}") for i in range(2000))))
            busy.append(asyncio.gather(r.execute_command("BLPOP", "q", "0")))
            await asyncio.sleep(0.05)
            return r, other, busy

        loop = asyncio.new_event_loop()
        kept = loop.run_until_complete(start())
        print("leaving")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "leaving\n"
    assert proc.stderr == ""
