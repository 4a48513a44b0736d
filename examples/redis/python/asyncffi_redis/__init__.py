"""An async Redis client for asyncio: the Rust ``redis`` crate, exported with asyncffi.

.. code-block:: python

    import asyncffi_redis

    async with await asyncffi_redis.connect("redis://127.0.0.1:6379") as r:
        await r.set("k", "v", ex=10)
        assert await r.get("k") == b"v"

Values come back as ``bytes`` (as redis-py with ``decode_responses=False``); keys, values and
command words may be ``bytes``, ``str``, ``int`` or ``float``. Every method returns an
awaitable (``subscribe`` and ``scan_iter``: async iterators); errors are
``asyncffi.RustError`` with a ``kind`` (see the package README).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Dict, List, Optional, Type, Union

import asyncffi

_library = asyncffi.load_packaged(__name__, "_native")
_Native: Any = _library.Client

Arg = Union[bytes, str, int, float]

__all__ = ["Client", "connect"]


class Client(_Native):  # type: ignore[misc]
    """An async Redis client over one multiplexed connection (see ``connect``).

    Any number of tasks may use one client at once: their commands are pipelined on its
    connection. ``close()`` (or leaving ``async with``) releases it once the commands in
    flight finish.
    """

    __slots__ = ()

    async def __aenter__(self) -> Client:
        return self.__enter__()  # type: ignore[no-any-return]

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def delete(self, *keys: Arg) -> Any:
        """DEL: how many of ``keys`` existed (an awaitable)."""
        return self._delete(keys)

    def execute_command(self, *args: Arg) -> Any:
        """Any command, as its words (``"HSET", "h", "f", "v"``): its reply (an awaitable)."""
        return self._execute_command(args)

    def hset(
        self,
        key: Arg,
        field: Optional[Arg] = None,
        value: Optional[Arg] = None,
        mapping: Optional[Dict[Any, Arg]] = None,
    ) -> Any:
        """HSET ``field`` to ``value`` and/or every item of ``mapping``: how many fields
        were new (an awaitable)."""
        pairs: List[Any] = [] if field is None else [(field, value)]
        if mapping:
            pairs.extend(mapping.items())
        return self._hset(key, pairs)

    async def hgetall(self, key: Arg) -> Dict[bytes, bytes]:
        """HGETALL: every field of the hash ``key`` and its value, as ``bytes``."""
        flat = iter(await self._hgetall(key))
        return dict(zip(flat, flat))

    def subscribe(self, *channels: Arg) -> Any:
        """An async iterator of the messages published on ``channels``, over a connection
        of its own: first one ``{"type": "subscribe", "channel": ..., "data": n}`` per
        channel, then ``{"type": "message", "channel": ..., "data": ...}`` per message.
        Close it with ``aclose()`` or ``async with`` when you stop early; it ends with a
        ``RustError`` of kind ``connection_dropped`` if the server closes the connection."""
        return self._subscribe(channels)


async def connect(
    url: str = "redis://127.0.0.1:6379",
    *,
    response_timeout: Optional[float] = None,
    connection_timeout: Optional[float] = None,
    retries: Optional[int] = None,
) -> Client:
    """A connected ``Client`` of the server at ``url``.

    ``response_timeout`` and ``connection_timeout`` in seconds (``None``: the crate's
    defaults, 0.5 s and 1 s; ``0``: none), ``retries``: how often a lost connection is tried
    again (``None``: 6, with an exponential backoff from 100 ms).

    :raises asyncffi.RustError: kind ``connection_refused``, ``timeout``, ``auth``,
        ``invalid_config``, ...
    """
    client = Client(url, response_timeout, connection_timeout, retries)
    try:
        await client.open()
    except BaseException:
        client.close()
        raise
    return client
