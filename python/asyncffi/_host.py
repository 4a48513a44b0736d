"""The Python side of a Rust program that runs Python (``asyncffi::python::run``).

The program starts the interpreter and calls ``main`` on its main thread. ``main`` loads the
program itself as a ``Library`` (``dlopen(NULL)``: the program's exports and its manifest),
makes the event loop (asyncio's, uvloop's, or any factory's), and awaits the program's
``affi_host_main``, which runs the Rust main on its runtime with ``invoke`` lent to it: every
Python object the Rust main reaches by import path is reached through ``invoke``. ``main``
returns the process's exit status: 0 (the Rust main returned ``Ok``), 1 (it returned an error,
printed here), 101 (it panicked), 130 (SIGINT cancelled it).
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import json
import signal
import sys
import traceback
import types
from typing import Any, Callable, Dict, List, Optional

from ._call import PyCallableArg
from ._errors import RustError, RustPanic
from ._library import Library, _load_lock
from ._loader import open_native
from ._manifest import build, read
from ._runtime import runtime_id, state

HOST_CDEF = (
    "int64_t affi_host_main(uint64_t port, uint64_t token, uint64_t invoke, uint32_t runtime);"
)

_program: Optional[Library] = None


def program() -> Library:
    """The running Rust program as a ``Library``: its ``#[asyncffi::export]`` functions and
    objects are its attributes.

    :raises RuntimeError: this process is not a Rust program run by ``asyncffi::python``.
    """
    if _program is None:
        raise RuntimeError("this process is not a Rust program run by asyncffi::python::run")
    return _program


def _load_program() -> Library:
    """Opens the main program (``dlopen(NULL)``) as a library, as ``load`` opens a file."""
    import cffi  # type: ignore[import-untyped]

    name = sys.argv[0] if sys.argv and sys.argv[0] else "program"
    with _load_lock:
        native = open_native(None)  # type: ignore[arg-type]
        own = cffi.FFI()
        own.cdef(HOST_CDEF)
        functions = own.dlopen(None)
        manifest = read(native, name)
        library = Library(name.rsplit("/", 1)[-1], None, native, functions, "")  # type: ignore[arg-type]
        if manifest is not None:
            library.exports, library.manifest_functions = build(manifest, library)
        with state.lock:
            state.libraries.append(library)
    return library


_resolved: Dict[Any, Any] = {}


def _resolve(module: str, attrs: List[str]) -> Any:
    key = (module, tuple(attrs))
    try:
        return _resolved[key]
    except KeyError:
        pass
    obj = importlib.import_module(module)
    for attr in attrs:
        obj = getattr(obj, attr)
    _resolved[key] = obj
    return obj


def invoke(
    module: str, attrs: List[str], call: bool, args: List[Any], kwargs: Dict[str, Any]
) -> Any:
    """What the Rust main asks of Python: ``module.attrs...``, called with ``args`` and
    ``kwargs`` if ``call``. Lent to Rust as a callable, so an awaitable result is awaited by
    the port, as a task of the loop (a coroutine is that task itself, with no wrapper around
    it), and any other result answers the call at once."""
    result = _resolve(module, attrs)
    if call:
        return result(*args, **kwargs)
    return result


def lend(module: str, attrs: List[str]) -> int:
    """``module.attrs...`` lent to the Rust main as a callable, for its calls to go to directly
    (each in a copy of the current context); returns its id on the running loop's port."""
    obj = _resolve(module, attrs)
    if not callable(obj):
        raise TypeError(f"'{type(obj).__name__}' object is not callable")
    port = program().current_port(asyncio.get_running_loop())
    return port.register(obj, contextvars.copy_context())


def define(name: str, source: str) -> None:
    """Makes the module ``name`` from Python source text (registered in ``sys.modules``, so
    the Rust main then imports it by name)."""
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    sys.modules[name] = module
    for key in [key for key in _resolved if key[0] == name]:
        del _resolved[key]


def _loop_factory(spec: Optional[str]) -> Callable[[], asyncio.AbstractEventLoop]:
    if spec is None:
        return asyncio.new_event_loop
    if spec == "uvloop":
        spec = "uvloop:new_event_loop"
    module, _, attrs = spec.partition(":")
    if not attrs:
        module, _, attrs = spec.rpartition(".")
    factory: Callable[[], asyncio.AbstractEventLoop] = _resolve(module, attrs.split("."))
    return factory


def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """Cancels what is left, shuts down async generators and the default executor, closes."""
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _package(frame: types.FrameType) -> str:
    """The top-level package of the module whose code ``frame`` runs."""
    name = frame.f_globals.get("__name__")
    return name.partition(".")[0] if isinstance(name, str) else ""


def _report(exc: BaseException, loop: asyncio.AbstractEventLoop) -> int:
    if isinstance(exc, RustPanic):
        print(f"panic: {exc}", file=sys.stderr)
        return 101
    if isinstance(exc, RustError):
        print(f"Error: {exc.kind}: {exc}", file=sys.stderr)
        return 1
    # From the code the Rust main called: the frames before it are the loop's, asyncio's and
    # asyncffi's (``invoke`` for a function, none for a coroutine, run as a task of its own).
    internal = {"asyncffi", "asyncio", type(loop).__module__.partition(".")[0]}
    tb = exc.__traceback__
    while tb is not None and _package(tb.tb_frame) in internal:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb if tb is not None else exc.__traceback__)
    return 1


def main(config_json: str) -> int:
    """Runs the Rust program's main; returns the exit status."""
    global _program
    config = json.loads(config_json)
    sys.argv = list(config["argv"]) or [""]
    sys.path[0:0] = config["path"]
    try:
        library = _load_program()
        make_loop = _loop_factory(config["loop"])
        runtime = runtime_id(config["runtime"])
    except Exception as exc:
        print(f"error: cannot run Python: {exc}", file=sys.stderr)
        return 1
    _program = library
    loop = make_loop()
    asyncio.set_event_loop(loop)
    interrupted = False
    status = 0

    async def run_main() -> None:
        fn = library.functions.affi_host_main
        await library.call(fn, PyCallableArg(invoke, "invoke"), runtime)

    task = loop.create_task(run_main())

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            status = 130 if interrupted else 1
        except BaseException as exc:  # every failure is an exit status
            status = _report(exc, loop)
        finally:
            loop.remove_signal_handler(signal.SIGINT)
    finally:
        _finish(loop)
    return status
