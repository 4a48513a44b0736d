"""The client's Rust streams: pub/sub messages (in order, none lost; closed by ``aclose``,
``break`` in ``async with``, cancellation, or the server) and ``scan_iter``."""

from __future__ import annotations

import asyncio
import contextlib

import asyncffi
import asyncffi_redis
import pytest
from conftest import RedisServer


async def numsub(r: asyncffi_redis.Client, channel: str) -> int:
    reply = await r.execute_command("PUBSUB", "NUMSUB", channel)
    return int(reply[1])


async def wait_numsub(r: asyncffi_redis.Client, channel: str, want: int) -> None:
    for _ in range(500):
        if await numsub(r, channel) == want:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{channel}: {await numsub(r, channel)} subscribers, not {want}")


@pytest.mark.uvloop
async def test_subscribe_confirms_then_delivers(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:
        async with r.subscribe("a", b"b") as messages:
            it = messages.__aiter__()
            assert await it.__anext__() == {"type": "subscribe", "channel": b"a", "data": 1}
            assert await it.__anext__() == {"type": "subscribe", "channel": b"b", "data": 2}
            assert await r.execute_command("PUBLISH", "a", "x") == 1
            assert await r.execute_command("PUBLISH", "b", b"\x00y") == 1
            assert await it.__anext__() == {"type": "message", "channel": b"a", "data": b"x"}
            assert await it.__anext__() == {"type": "message", "channel": b"b", "data": b"\x00y"}
        await wait_numsub(r, "a", 0)


async def test_a_hundred_thousand_messages_in_order(url: str) -> None:
    n = 100_000
    async with asyncffi_redis.connect(url) as r:
        received: list[bytes] = []
        async with r.subscribe("bulk") as messages:
            async for message in messages:
                if message["type"] == "subscribe":
                    break
            publishing = asyncio.ensure_future(
                publish_all(r, "bulk", n)
            )  # from the client's own multiplexed connection
            async for message in messages:
                received.append(message["data"])
                if len(received) == n:
                    break
            assert await publishing == n
        assert received == [str(i).encode() for i in range(n)]


async def publish_all(r: asyncffi_redis.Client, channel: str, n: int) -> int:
    delivered = 0
    for start in range(0, n, 1000):
        replies = await r.pipeline(
            [["PUBLISH", channel, i] for i in range(start, min(start + 1000, n))]
        )
        delivered += sum(replies)
    return delivered


@pytest.mark.uvloop
async def test_break_and_aclose_unsubscribe(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:
        messages = r.subscribe("c")
        async for message in messages:
            assert message["type"] == "subscribe"
            break
        await wait_numsub(r, "c", 1)
        await messages.aclose()
        await wait_numsub(r, "c", 0)
        async with contextlib.aclosing(r.subscribe("c")) as again:
            async for _ in again:
                break
        await wait_numsub(r, "c", 0)


@pytest.mark.uvloop
async def test_cancelling_the_reader_closes_the_subscription(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:
        started = asyncio.Event()

        async def read() -> None:
            async with r.subscribe("d") as messages:
                async for _ in messages:
                    started.set()

        task = asyncio.ensure_future(read())
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_numsub(r, "d", 0)


async def test_a_dropped_connection_ends_the_stream_with_an_error(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:
        async with r.subscribe("e") as messages:
            it = messages.__aiter__()
            assert (await it.__anext__())["type"] == "subscribe"
            assert await r.execute_command("CLIENT", "KILL", "TYPE", "pubsub") == 1
            with pytest.raises(asyncffi.RustError) as info:
                await asyncio.wait_for(it.__anext__(), 5)
            assert info.value.kind == "connection_dropped"
            with pytest.raises(StopAsyncIteration):
                await it.__anext__()


async def test_subscribe_errors(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:
        with pytest.raises(asyncffi.RustError) as info:
            async for _ in r.subscribe():
                pass
        assert info.value.kind == "value"
    from conftest import free_port

    r = asyncffi_redis.Client(f"redis://127.0.0.1:{free_port()}")
    with r, pytest.raises(asyncffi.RustError) as info:
        async for _ in r.subscribe("x"):
            pass
    assert info.value.kind == "connection_refused"


@pytest.mark.uvloop
async def test_scan_iter(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:
        assert [k async for k in r.scan_iter()] == []
        await r.pipeline([["SET", f"user:{i}", i] for i in range(250)])
        await r.pipeline([["SET", f"other:{i}", i] for i in range(50)])
        users = [k async for k in r.scan_iter("user:*", 10)]
        assert sorted(users) == sorted(f"user:{i}".encode() for i in range(250))
        assert len([k async for k in r.scan_iter()]) == 300
        async with r.scan_iter(count=1) as keys:  # stopped early: closed
            async for _ in keys:
                break
        await r.execute_command("RPUSH", "list", "x")
        with pytest.raises(asyncffi.RustError) as info:
            async for _ in r.scan_iter("*", 0):
                pass
        assert info.value.kind == "response"


async def test_scan_iter_needs_an_open_client(server: RedisServer) -> None:
    with asyncffi_redis.Client(server.url) as r, pytest.raises(asyncffi.RustError) as info:
        async for _ in r.scan_iter():
            pass
    assert info.value.kind == "client"
