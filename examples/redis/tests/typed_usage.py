"""A correct use of the client, for mypy (``mypy`` at the repository's root checks it, strict,
against the package's stubs): what the types of the calls are. Not run."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

import asyncffi
import asyncffi_redis


async def main(url: str) -> None:
    async with asyncffi_redis.connect(url, response_timeout=1.0) as r:
        ok: Optional[bool] = await r.set("k", b"v", ex=10)
        value: Optional[bytes] = await r.get("k")
        values: List[Optional[bytes]] = await r.mget(["k", b"other", 1])
        count: int = await r.incr("n", 2) + await r.delete("a", "b") + await r.hset("h", "f", 1)
        fields: Dict[bytes, bytes] = await r.hgetall("h")
        replies: Any = await r.pipeline([["SET", "a", 1], ["GET", "a"]], transaction=True)
        pong: bool = await r.ping()
        keys: List[bytes] = [key async for key in r.scan_iter("user:*", count=100)]
        async with r.subscribe("news") as messages:
            async for message in messages:
                print(message["type"])
                break
        print(ok, value, values, count, fields, replies, pong, keys)
    client: asyncffi_redis.Client = await asyncffi_redis.connect(url)
    try:
        print(await client.execute_command("PING"))
    except asyncffi.RustError as e:
        print(e.kind)
    finally:
        client.close()


if __name__ == "__main__":
    asyncio.run(main("redis://127.0.0.1:6379"))
