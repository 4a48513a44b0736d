"""Every command of the Redis example against a real server, and its errors as RustErrors
with a meaningful ``kind``."""

from __future__ import annotations

import asyncio

import asyncffi
import asyncffi_redis
import pytest
from conftest import RedisServer


@pytest.mark.uvloop
async def test_strings_round_trip_as_bytes(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:
        assert await r.ping() is True
        assert await r.get("missing") is None
        assert await r.set("k", "välue") is True
        assert await r.get("k") == "välue".encode()
        assert await r.set(b"bin\x00key", b"\x00\xff") is True
        assert await r.get(b"bin\x00key") == b"\x00\xff"
        assert await r.set("n", 42) is True
        assert await r.get("n") == b"42"
        assert await r.set("f", 1.5) is True
        assert await r.get("f") == b"1.5"
        big = bytes(range(256)) * 4096  # 1 MiB
        assert await r.set("big", big) is True
        assert await r.get("big") == big


@pytest.mark.uvloop
async def test_empty_values_are_not_none(url: str) -> None:
    """An empty reply that is there (b"", an empty list or hash) stays itself: only a
    missing key is None."""
    async with asyncffi_redis.connect(url) as r:
        assert await r.set("empty", b"") is True
        assert await r.get("empty") == b""
        assert await r.get("missing") is None
        assert await r.set("", "empty key") is True
        assert await r.get("") == b"empty key"
        assert await r.mget(["empty", "missing", ""]) == [b"", None, b"empty key"]
        assert await r.execute_command("GET", "empty") == b""
        assert await r.execute_command("LRANGE", "nolist", 0, -1) == []
        assert await r.pipeline([["GET", "empty"], ["GET", "missing"]]) == [b"", None]
        assert await r.hset("h", "f", b"") == 1
        assert await r.hgetall("h") == {b"f": b""}
        assert await r.incr("zero", 0) == 0


async def test_connect_awaited_or_entered(url: str) -> None:
    r = await asyncffi_redis.connect(url)  # awaited: the caller closes it
    assert isinstance(r, asyncffi_redis.Client)
    assert await r.set("k", "v") is True
    async with r:  # a client is a context manager too (closed on leaving)
        assert await r.get("k") == b"v"
    assert r.closed
    async with asyncffi_redis.connect(url) as entered:
        assert isinstance(entered, asyncffi_redis.Client)
        assert await entered.get("k") == b"v"
    assert entered.closed
    async with await asyncffi_redis.connect(url) as both:
        assert await both.get("k") == b"v"
    assert both.closed
    once = asyncffi_redis.connect(url)
    (await once).close()
    with pytest.raises(RuntimeError, match="once"):
        await once
    with pytest.raises(RuntimeError, match="once"):
        async with once:
            pass
    # A refused connection raises when awaited or entered, and leaves nothing open.
    from conftest import free_port

    with pytest.raises(asyncffi.RustError) as info:
        async with asyncffi_redis.connect(f"redis://127.0.0.1:{free_port()}", retries=0):
            pass
    assert info.value.kind == "connection_refused"


async def test_set_options(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:
        assert await r.set("k", "a", nx=True) is True
        assert await r.set("k", "b", nx=True) is None
        assert await r.get("k") == b"a"
        assert await r.set("other", "x", xx=True) is None
        assert await r.get("other") is None
        assert await r.set("k", "c", xx=True) is True
        assert await r.set("e", "v", ex=100) is True
        ttl = await r.execute_command("TTL", "e")
        assert 99 <= ttl <= 100
        assert await r.set("p", "v", px=50_000) is True
        assert 49_000 <= await r.execute_command("PTTL", "p") <= 50_000
        assert await r.set("short", "v", ex=0.05) is True  # a fraction goes as PX 50
        assert 0 < await r.execute_command("PTTL", "short") <= 50
        await asyncio.sleep(0.2)
        assert await r.get("short") is None
        with pytest.raises(asyncffi.RustError) as info:
            await r.set("k", "v", ex=-1)
        assert info.value.kind == "value"


async def test_mget_delete_incr(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:
        await r.set("a", "1")
        await r.set("b", "2")
        assert await r.mget(["a", "missing", b"b"]) == [b"1", None, b"2"]
        assert await r.mget([]) == []
        keys = [f"key{i}" for i in range(1000)]
        await r.pipeline([["SET", k, i] for i, k in enumerate(keys)])
        assert await r.mget(keys) == [str(i).encode() for i in range(1000)]
        assert await r.incr("counter") == 1
        assert await r.incr("counter", 41) == 42
        assert await r.incr("counter", -2) == 40
        assert await r.delete("a", "b", "missing") == 2
        assert await r.delete(*keys) == 1000
        assert await r.mget(["a", "b"]) == [None, None]


async def test_hashes(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:
        assert await r.hgetall("nothing") == {}
        assert await r.hset("h", "f", "v") == 1
        assert await r.hset("h", mapping={"a": 1, b"b\xff": b"\x00"}) == 2
        assert await r.hset("h", "f", "w") == 0
        assert await r.hgetall("h") == {b"f": b"w", b"a": b"1", b"b\xff": b"\x00"}


@pytest.mark.uvloop
async def test_pipeline_and_transaction(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:
        replies = await r.pipeline(
            [["SET", "a", 1], ["GET", "a"], ["INCRBY", "a", 9], ["RPUSH", "l", "x", "y"],
             ["LRANGE", "l", 0, -1], ["GET", "missing"], ["PING"]]
        )  # fmt: skip
        assert replies == [True, b"1", 10, 2, [b"x", b"y"], None, "PONG"]
        assert await r.pipeline([]) == []
        assert await r.pipeline([["INCR", "t"], ["INCR", "t"]], transaction=True) == [1, 2]
        many = await r.pipeline([["INCR", "many"] for _ in range(1000)])
        assert many == list(range(1, 1001))
        with pytest.raises(asyncffi.RustError) as info:
            await r.pipeline([["SET", "s", "v"], ["INCR", "s"]])
        assert info.value.kind == "response"
        assert "not an integer" in str(info.value)


async def test_execute_command(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:
        assert await r.execute_command("SET", "k", "v") is True
        assert await r.execute_command("EXISTS", "k", "nope") == 1
        assert await r.execute_command("ECHO", b"\x00hi") == b"\x00hi"
        info = await r.execute_command("INFO", "server")
        assert b"redis_version" in info


async def test_errors_have_kinds(url: str) -> None:
    async with asyncffi_redis.connect(url) as r:
        await r.execute_command("RPUSH", "list", "x")
        with pytest.raises(asyncffi.RustError) as info:
            await r.get("list")
        assert info.value.kind == "wrong_type"
        assert "WRONGTYPE" in str(info.value)
        with pytest.raises(asyncffi.RustError) as info:
            await r.incr("list")
        assert info.value.kind == "wrong_type"
        with pytest.raises(asyncffi.RustError) as info:
            await r.execute_command("NOSUCHCOMMAND", "x")
        assert info.value.kind == "response"
        assert "unknown command" in str(info.value)
        with pytest.raises(TypeError, match="key"):
            await r.get(None)
        with pytest.raises(TypeError):
            await r.mget("not a list")
        assert await r.get("list2") is None  # still usable


async def test_connection_refused() -> None:
    from conftest import free_port

    with pytest.raises(asyncffi.RustError) as info:
        await asyncffi_redis.connect(f"redis://127.0.0.1:{free_port()}", retries=0)
    assert info.value.kind == "connection_refused"
    assert "refused" in str(info.value).lower()


async def test_invalid_url() -> None:
    with pytest.raises(asyncffi.RustError) as info:
        await asyncffi_redis.connect("http://127.0.0.1:6379")
    assert info.value.kind == "invalid_config"
    with pytest.raises(asyncffi.RustError) as info:
        await asyncffi_redis.connect("redis://127.0.0.1", response_timeout=-1)
    assert info.value.kind == "value"


async def test_response_timeout(url: str) -> None:
    async with asyncffi_redis.connect(url, response_timeout=0.2) as r:
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(asyncffi.RustError) as info:
            await r.execute_command("DEBUG", "SLEEP", "1")
        assert info.value.kind == "timeout"
        assert loop.time() - began < 0.9


async def test_auth(own_server: RedisServer) -> None:
    async with asyncffi_redis.connect(own_server.url) as admin:
        assert await admin.execute_command("CONFIG", "SET", "requirepass", "s3cret") is True
        async with asyncffi_redis.connect(own_server.url) as anonymous:
            with pytest.raises(asyncffi.RustError) as info:
                await anonymous.get("k")
            assert info.value.kind == "auth"
        with pytest.raises(asyncffi.RustError) as info:
            await asyncffi_redis.connect(f"redis://:wrong@127.0.0.1:{own_server.port}", retries=0)
        assert info.value.kind == "auth"
        url = f"redis://:s3cret@127.0.0.1:{own_server.port}"
        async with asyncffi_redis.connect(url) as user:
            assert await user.set("k", "v") is True
            assert await user.get("k") == b"v"


async def test_closed_client_refuses_calls(url: str) -> None:
    r = await asyncffi_redis.connect(url)
    await r.set("k", "v")
    r.close()
    r.close()  # idempotent
    with pytest.raises(asyncffi.ClosedError):
        await r.get("k")
    with pytest.raises(asyncffi.ClosedError):
        async with r:
            pass
