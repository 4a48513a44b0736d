"""What closing a port does to each feature bound to it: the registry of close hooks.

A feature that keeps state on a port (the Rust streams read on its loop, the tasks running
calls from Rust, the iterators lent to Rust, ...) registers a hook here when its module is
imported; the port runs every hook when it closes, or when it is forgotten (at exit, at a
library's shutdown, after fork). The port names no feature, and a new feature needs no change
to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, List

if TYPE_CHECKING:
    from ._port import Port

#: A close hook: called with the port and whether the tasks the feature runs for Rust on that
#: port are to be abandoned too (forgotten without a report: their loop will not run them
#: again). Runs on any thread, after the Rust port is closed (or while Rust closes them all);
#: must never raise.
CloseHook = Callable[["Port", bool], None]

_hooks: List[CloseHook] = []


def on_close(hook: CloseHook) -> CloseHook:
    """Registers ``hook`` (usable as a decorator); hooks run in registration order."""
    _hooks.append(hook)
    return hook


def run_close_hooks(port: Port, abandon: bool) -> None:
    """Runs every registered hook for ``port``."""
    for hook in _hooks:
        hook(port, abandon)
