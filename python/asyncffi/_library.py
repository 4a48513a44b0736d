"""``Library``: one loaded cdylib built on asyncffi, and ``load``, which opens one.

Any number of libraries live in one process. Each links its own copy of the Rust core, so each
has its own runtimes, ports, task and object tables, counters and last-error slot; on this
side a ``Library`` owns everything that is per library:

- its cffi handle on the core ABI (``lib``) and on its own functions (``functions``), its path
  and name, and the ABI version check done when it is opened;
- its wake callback and its ports, one per event loop (``Library`` is a ``Ports`` registry),
  with a per-thread cache of the current loop's port (``current_port``) so a call costs no
  lookup;
- its counters (``stats()``; ``asyncffi.stats()`` sums every library's) and its shutdown:
  at interpreter exit every library is shut down, in reverse load order.

What the library's functions return is made with the same machinery as the built-ins'
(``asyncffi.demo`` is a library like any other): ``call`` makes a ``RustCall``, ``stream`` a
``RustStream``, ``adopt`` wraps an object handle. Their arguments are passed to the C function
after ``(port, token)`` as they are, except ``RustObject``s (replaced by their handle, refused
with ``TypeError`` if they belong to another library) and ``PyCallableArg`` / ``PyStreamArg``
(lent to Rust on the loop's port when the call starts).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from . import _manifest, _stubs
from ._call import PyCallableArg, RustCall, RustCallWithCallables
from ._errors import ShutDownError, check, last_error, status_error
from ._ffi import ffi as _builtin_ffi
from ._loader import ABI_VERSION, ffi, open_native
from ._logbridge import LogBridge, register
from ._object import RustObject
from ._port import Ports
from ._pystream import PyStreamArg
from ._runtime import (
    SHUTDOWN_TIMEOUT_MS,
    STATS_FIELDS,
    learn_runtimes,
    library_runtimes,
    state,
)
from ._stream import RustStream

if TYPE_CHECKING:
    from ._loader import NativeLib

Obj = TypeVar("Obj", bound=RustObject)

#: Held while a library is being opened: two threads loading one path get one ``Library``.
_load_lock = threading.Lock()
_builtins: Optional[Library] = None


class Library(Ports):
    """One loaded asyncffi cdylib. Made by ``load`` or ``load_packaged`` (once per file: loading
    a path again returns the same ``Library``); never unloaded. Thread-safe.

    :ivar name: a short name, used in messages (``"asyncffi._native"``, ``"mylib"``).
    :ivar path: the absolute path of the cdylib.
    :ivar lib: the library's core C ABI (``affi_*``), through cffi.
    :ivar functions: the library's own C functions, as declared to ``load``.
    :ivar abi_version: the C ABI version it speaks (checked when opened).
    """

    def __init__(self, name: str, path: str, native: NativeLib, functions: Any, cdef: str) -> None:
        # The port registry: ``current_port(loop=None)`` is this library's port of ``loop``
        # (default: the running loop), opened on first use. ``shut_down`` is set by
        # ``shutdown`` (or at exit): no new port opens, calls raise ``ShutDownError``.
        super().__init__(name, native)
        self.path = path
        self.functions = functions
        self.abi_version = ABI_VERSION
        self._cdef = cdef
        self._names: Dict[Any, str] = {}
        #: The Python names of the functions the manifest exports, by C function.
        self.python_names: Dict[int, str] = {}
        #: The functions looked up by name so far.
        self._by_name: Dict[str, Callable[..., Any]] = {}
        #: The functions and object classes built from the library's manifest, by name.
        self.exports: Dict[str, Any] = {}
        #: The cffi handle on the symbols the manifest lists (``None`` without a manifest).
        self.manifest_functions: Any = None
        #: The runtimes calls can run on, by name: the built-in ones and the library's own.
        self.runtimes: Dict[str, int] = library_runtimes(native)
        #: The types of the records the manifest describes (``#[derive(asyncffi::Record)]``),
        #: by name: ``TypedDict`` classes for structs, ``Union`` aliases for enums (the names
        #: the library's stubs declare).
        self.types: Dict[str, Any] = {}
        #: Where the library's Rust ``log``/``tracing`` records enter Python's ``logging``.
        self.logging = LogBridge(name, native)
        register(self.logging)

    # --- the exports of the manifest, as attributes --------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not attributes of the Library itself.
        for table in ("exports", "types"):
            exports = self.__dict__.get(table)
            if exports is not None and name in exports:
                return exports[name]
        raise AttributeError(f"the library {self.__dict__.get('name')} exports no {name!r}")

    def __dir__(self) -> List[str]:
        return sorted(set(super().__dir__()) | set(self.exports) | set(self.types))

    # --- making awaitables -----------------------------------------------------------------

    def function(self, name: str) -> Callable[..., Any]:
        """The library's C function ``name`` (declared to ``load``, or listed by its
        manifest).

        :raises AttributeError: the library does not declare or export it.
        """
        fn: Optional[Callable[..., Any]] = None
        for functions in (self.functions, self.manifest_functions):
            try:
                fn = getattr(functions, name) if functions is not None else None
            except (AttributeError, ffi.error):
                continue
            if fn is not None:
                break
        if fn is None:
            raise AttributeError(
                f"the library {self.name} has no function {name!r} (declared to cffi and "
                "exported by the cdylib)"
            ) from None
        self._names[fn] = name
        self._by_name[name] = fn
        return fn

    def _arguments(self, args: Tuple[Any, ...]) -> Tuple[Tuple[Any, ...], bool]:
        """The C arguments for ``args``: objects replaced by their handles (refused if they
        belong to another library), and whether Python callables or iterators are lent."""
        out = []
        lends = False
        for arg in args:
            if isinstance(arg, RustObject):
                arg = arg.handle_for(self)
            elif type(arg) is PyCallableArg or type(arg) is PyStreamArg:
                lends = True
            out.append(arg)
        return tuple(out), lends

    def call(self, fn: Union[str, Callable[..., int]], *args: Any) -> RustCall[Any]:
        """A call of the exported async function ``fn`` (its name, or the C function) with the
        C arguments ``args``: ``int64_t fn(port, token, *args)``. Nothing runs until it is
        awaited.

        :raises TypeError: an object of another library among ``args``.
        :raises ClosedError: a closed object among ``args``.
        """
        if isinstance(fn, str):
            fn = self._by_name.get(fn) or self.function(fn)
        c_args, lends = self._arguments(args)
        if lends:
            return RustCallWithCallables(self, fn, c_args)
        return RustCall(self, fn, c_args)

    def stream(
        self, fn: Union[str, Callable[..., int]], *args: Any, buffer: Optional[int] = None
    ) -> RustStream[Any]:
        """A stream of the exported stream function ``fn``:
        ``int64_t fn(port, token, *args, uint64_t buffer)``. Nothing runs until it is iterated.

        :raises TypeError: an object of another library among ``args``.
        """
        if isinstance(fn, str):
            fn = self._by_name.get(fn) or self.function(fn)
        c_args, _ = self._arguments(args)
        return RustStream(self, fn, c_args, buffer)

    def adopt(self, handle: int, cls: Type[Obj] = RustObject) -> Obj:  # type: ignore[assignment]
        """Wraps ``handle`` (a status returned by a C function of this library that makes an
        object: the handle, or a negative status, raised here) in ``cls``, which then owns it.

        :raises Exception: the status is an error: the exception ``check`` raises for it
            (``TypeError``, ``ValueError``, ``OverflowError``, ``ClosedError``,
            ``RuntimeError`` or ``RustPanic``).
        """
        return cls._adopt(self, self.check(handle))

    def function_name(self, fn: Any) -> str:
        """The C name of one of the library's functions (cffi's function objects have none)."""
        name = self._names.get(fn)
        if name is None:
            for functions in (self.functions, self.manifest_functions):
                for candidate in dir(functions) if functions is not None else ():
                    if not candidate.startswith("AFFI_"):
                        try:
                            self._names[getattr(functions, candidate)] = candidate
                        except (AttributeError, ffi.error):  # declared, not exported
                            pass
            name = self._names.get(fn, "rust function")
        return name

    @staticmethod
    def address(fn: Any) -> int:
        """The address of one of the library's functions (a cffi function pointer): what
        ``python_names`` is keyed by, which no other attribute of the library can equal."""
        return int(ffi.cast("uintptr_t", fn))

    def python_name(self, fn: Any) -> str:
        """The Python name of one of the library's functions (``Store.push``), else its C
        name."""
        return self.python_names.get(self.address(fn)) or self.function_name(fn)

    # --- state -----------------------------------------------------------------------------

    def stats(self) -> Dict[str, int]:
        """This library's counters (see ``asyncffi.stats``). Thread-safe."""
        out = ffi.new("AffiStats *")
        check(self.lib.affi_stats(out), self.lib)
        return {name: int(getattr(out, name)) for name in STATS_FIELDS}

    def last_error(self) -> str:
        """This thread's last error message from this library."""
        return last_error(self.lib)

    def check(self, status: int) -> int:
        """``status`` (returned by a C function of this library) if it is not an error; else
        raises the matching exception with the library's message."""
        if status < 0:
            raise status_error(status, self.lib)
        return status

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT_MS / 1000) -> None:
        """Shuts this library down for good, leaving every other library running: its ports
        close (their Rust tasks are cancelled), calls waiting on them raise ``ShutDownError``,
        and its runtimes stop within about twice ``timeout`` seconds. Later calls raise
        ``ShutDownError``. Idempotent. Call it from a loop's thread or from a thread that runs
        no loop; calls waiting on other loops learn of it from their loop's next turn.
        """
        with state.lock:
            if self.shut_down or state.shut_down:
                return
            self.shut_down = True
        error = ShutDownError(f"the library {self.name} has shut down")
        waiting = []
        for port in self.open_ports():
            loop = port.loop_ref()
            pending = list(port.pending.values())
            port.close()
            if loop is not None and pending:
                waiting.append((loop, pending))
        self.lib.affi_shutdown(max(0, int(timeout * 1000)))
        self.logging.flush()
        for loop, pending in waiting:
            _fail_on(loop, pending, error)

    def _stop(self, at_exit: bool, forked: bool) -> None:
        """At interpreter exit: forgets the ports (nothing may call into Python any more) and
        shuts the Rust side down within a bounded time."""
        self.shut_down = True
        self.forget_ports(at_exit=at_exit)
        if not forked:  # a forked child's Rust state belongs to threads that do not exist here
            self.lib.affi_shutdown(SHUTDOWN_TIMEOUT_MS)
            # After the runtimes stopped (nothing logs any more), before logging.shutdown.
            self.logging.close()

    def __repr__(self) -> str:
        return f"<asyncffi.Library {self.name} from {self.path}>"


def _fail_on(loop: Any, pending: Any, error: BaseException) -> None:
    """Fails the futures and stream inboxes in ``pending`` with ``error``, on ``loop``."""

    def fail() -> None:
        for waiting in pending:
            if not waiting.done():
                waiting.set_exception(error)

    try:
        import asyncio

        if asyncio._get_running_loop() is loop:
            fail()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(fail)
    except RuntimeError:  # the loop closed meanwhile: nobody waits any more
        pass


def _name_of(path: str) -> str:
    base = os.path.basename(path)
    stem = base.split(".", 1)[0]
    return stem[3:] if stem.startswith("lib") and len(stem) > 3 else stem


def load(
    path: Union[str, os.PathLike[str]],
    *,
    cdef: Optional[str] = None,
    header: Union[str, os.PathLike[str], None] = None,
    ffi: Any = None,
    name: Optional[str] = None,
) -> Library:
    """Opens the asyncffi cdylib at ``path`` and returns its ``Library`` (the same one if it
    is loaded already).

    Its own functions are declared to cffi by ``cdef`` (C declarations, e.g. a header generated
    by cbindgen with no preprocessor lines), or ``header`` (the path of such a header), or
    ``ffi`` (an out-of-line cffi ``FFI`` that declares them, as a build step generates); with
    none of them only the core ABI is declared.

    :raises ImportError: the file cannot be opened, is not an asyncffi library, speaks
        another C ABI version than this package (the message names both), or exports a
        manifest of an unknown format or version.
    :raises ValueError: ``path`` is loaded already with other declarations.
    :raises ShutDownError: the interpreter is exiting.
    """
    real = os.path.realpath(os.fspath(path))
    if header is not None:
        if cdef is not None:
            raise ValueError("give cdef or header, not both")
        with open(header, encoding="utf-8") as f:
            cdef = f.read()
    declared = cdef or ""
    with _load_lock:
        for library in state.libraries:
            if library.path == real:
                if cdef is not None and declared != library._cdef:
                    raise ValueError(
                        f"the library {library.name} is loaded already, with other declarations"
                    )
                return library
        if state.shut_down:
            raise ShutDownError("asyncffi has shut down: the interpreter is exiting")
        native = open_native(real)
        learn_runtimes(native)
        if cdef is not None:
            import cffi  # type: ignore[import-untyped]

            own = cffi.FFI()
            own.cdef(cdef)
            functions: Any = own.dlopen(real)
        elif ffi is not None and ffi is not _builtin_ffi:
            functions = ffi.dlopen(real)
        else:
            functions = native
        manifest = _manifest.read(native, real)
        library = Library(name or _name_of(real), real, native, functions, declared)
        if manifest is not None:
            library.exports, library.manifest_functions = _manifest.build(manifest, library)
            library.types = _stubs.types(manifest)
        with state.lock:
            if state.runtime_config is not None:
                check(native.affi_configure(*state.runtime_config), native)
            state.libraries.append(library)
    return library


def _is_path(package: str) -> bool:
    """Whether ``package`` names a file or directory rather than a module."""
    return os.sep in package or "/" in package or package.endswith(".py")


def packaged_path(package: str, module: str = "_native") -> str:
    """The path of the cdylib a package ships as maturin lays out cffi bindings:
    ``<package>/<module>/lib<module>.*``. ``package`` is a module name (``"mypkg"``) or a file
    of the package (its ``__file__``).

    :raises ImportError: no such library there.
    """
    if _is_path(package):
        directory = package if os.path.isdir(package) else os.path.dirname(package)
    else:
        spec = importlib.util.find_spec(package)
        if spec is None:
            raise ImportError(f"no package named {package!r}")
        if spec.submodule_search_locations:
            directory = next(iter(spec.submodule_search_locations))
        elif spec.origin:
            directory = os.path.dirname(spec.origin)
        else:
            raise ImportError(f"the package {package!r} has no directory")
    where = os.path.join(os.path.abspath(directory), module)
    prefix = f"lib{module}."
    try:
        names = sorted(
            n for n in os.listdir(where) if n.startswith(prefix) and not n.endswith(".py")
        )
    except FileNotFoundError:
        names = []
    if not names:
        raise ImportError(
            f"the native library {prefix}* is missing from {where}: install the package with "
            "`pip install .` (which builds it), not by putting its sources on sys.path"
        )
    return os.path.join(where, names[0])


def load_packaged(
    package: str,
    module: str = "_native",
    *,
    cdef: Optional[str] = None,
    header: Union[str, os.PathLike[str], None] = None,
    ffi: Any = None,
) -> Library:
    """Loads the cdylib shipped inside ``package`` (see ``packaged_path``), named
    ``<package>.<module>`` if ``package`` is a module name. Otherwise as ``load``."""
    name = None if _is_path(package) else f"{package}.{module}"
    return load(packaged_path(package, module), cdef=cdef, header=header, ffi=ffi, name=name)


def builtins() -> Library:
    """The library of the built-ins (``asyncffi.demo``): the cdylib this package ships,
    loaded like any other."""
    global _builtins
    if _builtins is None:
        _builtins = load_packaged("asyncffi", "_native", ffi=_builtin_ffi)
    return _builtins


def libraries() -> Tuple[Library, ...]:
    """Every loaded library, in load order."""
    return tuple(state.libraries)
