"""An async Redis client for asyncio: the Rust ``redis`` crate, exported with asyncffi.

.. code-block:: python

    import asyncffi_redis

    async with asyncffi_redis.connect("redis://127.0.0.1:6379") as r:
        await r.set("k", "v", ex=10)
        assert await r.get("k") == b"v"

    r = await asyncffi_redis.connect("redis://127.0.0.1:6379")  # or without async with
    ...
    r.close()

Values come back as ``bytes`` (as redis-py with ``decode_responses=False``); keys, values and
command words may be ``bytes``, ``str``, ``int`` or ``float``. Every method returns an
awaitable (``subscribe`` and ``scan_iter``: async iterators); errors are
``asyncffi.RustError`` with a ``kind`` (see the package README).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Dict, Generator, List, Optional, Tuple, Type, Union

from asyncffi import RustCall, RustStream

from . import _exports

#: What a Redis argument may be: keys, values and command words.
Arg = Union[bytes, str, int, float]

__all__ = ["Arg", "Client", "Connect", "connect"]


class Client(_exports.Client):
    """An async Redis client over one multiplexed connection (see ``connect``).

    Any number of tasks may use one client at once: their commands are pipelined on its
    connection. ``close()`` (or leaving ``async with``) releases it once the commands in
    flight finish.
    """

    __slots__ = ()

    async def __aenter__(self) -> Client:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def delete(self, *keys: Arg) -> RustCall[int]:
        """DEL: how many of ``keys`` existed (an awaitable)."""
        return self._delete(list(keys))

    def execute_command(self, *args: Arg) -> RustCall[Any]:
        """Any command, as its words (``"HSET", "h", "f", "v"``): its reply (an awaitable)."""
        return self._execute_command(list(args))

    def hset(
        self,
        key: Arg,
        field: Optional[Arg] = None,
        value: Optional[Arg] = None,
        mapping: Optional[Dict[Any, Arg]] = None,
    ) -> RustCall[int]:
        """HSET ``field`` to ``value`` and/or every item of ``mapping``: how many fields
        were new (an awaitable)."""
        pairs: List[Tuple[Any, Any]] = [] if field is None else [(field, value)]
        if mapping:
            pairs.extend(mapping.items())
        return self._hset(key, pairs)

    async def hgetall(self, key: Arg) -> Dict[bytes, bytes]:
        """HGETALL: every field of the hash ``key`` and its value, as ``bytes``."""
        flat = iter(await self._hgetall(key))
        return dict(zip(flat, flat))

    def subscribe(self, *channels: Arg) -> RustStream[Any]:
        """An async iterator of the messages published on ``channels``, over a connection
        of its own: first one ``{"type": "subscribe", "channel": ..., "data": n}`` per
        channel, then ``{"type": "message", "channel": ..., "data": ...}`` per message.
        Close it with ``aclose()`` or ``async with`` when you stop early; it ends with a
        ``RustError`` of kind ``connection_dropped`` if the server closes the connection."""
        return self._subscribe(list(channels))


class Connect:
    """What ``connect()`` returns: await it for a connected ``Client`` (yours to
    ``close()``), or enter it with ``async with`` for one closed on leaving. Used once."""

    __slots__ = ("_args", "_client", "_used")

    def __init__(self, args: Tuple[str, Optional[float], Optional[float], Optional[int]]) -> None:
        self._args = args
        self._client: Optional[Client] = None
        self._used = False

    async def _open(self) -> Client:
        if self._used:
            raise RuntimeError("connect(...) can be awaited or entered once")
        self._used = True
        client = Client(*self._args)
        try:
            await client.open()
        except BaseException:
            client.close()
            raise
        return client

    def __await__(self) -> Generator[Any, None, Client]:
        return self._open().__await__()

    async def __aenter__(self) -> Client:
        self._client = await self._open()
        return self._client

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._client is not None:
            self._client.close()


def connect(
    url: str = "redis://127.0.0.1:6379",
    *,
    response_timeout: Optional[float] = None,
    connection_timeout: Optional[float] = None,
    retries: Optional[int] = None,
) -> Connect:
    """A connected ``Client`` of the server at ``url``: ``client = await connect(url)``, or
    ``async with connect(url) as client:`` to close it on leaving the block.

    ``response_timeout`` and ``connection_timeout`` in seconds (``None``: the crate's
    defaults, 0.5 s and 1 s; ``0``: none), ``retries``: how often a lost connection is tried
    again (``None``: 6, with an exponential backoff from 100 ms).

    :raises asyncffi.RustError: (when awaited) kind ``connection_refused``, ``timeout``,
        ``auth``, ``invalid_config``, ...
    """
    return Connect((url, response_timeout, connection_timeout, retries))
