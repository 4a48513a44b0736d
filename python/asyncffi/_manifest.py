"""Wrappers built from a library's manifest (``affi_manifest``, written by the Rust macros
``#[asyncffi::export]`` and ``#[asyncffi::object]``; the format is in
``rust/asyncffi/src/manifest.rs``).

``read`` fetches and checks the manifest; ``build`` declares every exported symbol to a cffi
``FFI`` of the library's own (its C signature made from the parameters' ``abi`` fields, so
several libraries never share declarations) and makes one Python function per export, from
source text generated for that function alone: the argument checks and conversions are
written out per parameter, so a call interprets no description of its signature. Each
function has its real signature (names, annotations, ``None`` defaults), name, qualified name
and doc comment. Objects become ``RustObject`` subclasses with their constructor as
``__init__``, their methods and static methods.

Argument checks happen at call time: ``TypeError`` and ``OverflowError`` name the function,
the parameter and what it expects. Async functions return a ``RustCall``, streams a
``RustStream``, sync functions their value (or raise ``RustError`` / ``RustPanic``).
"""

from __future__ import annotations

import json
import keyword
import operator
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterable,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Tuple,
    Type,
    Union,
)

import msgpack

from ._call import PyCallableArg, RustCall, RustCallWithCallables
from ._errors import RustPanic, rust_error, status_error
from ._loader import ABI_VERSION, abi, ffi
from ._object import RustObject
from ._port import wrap_object
from ._pystream import PyStreamArg
from ._runtime import runtime_id
from ._stream import RustStream
from ._values import bytes_at, packb, text_at, u64, unpack, value_args

if TYPE_CHECKING:
    from ._library import Library
    from ._loader import NativeLib

#: The manifest format this package reads.
FORMAT = "asyncffi-manifest"
VERSION = 1

_C_TYPES = {"i64": "int64_t", "u64": "uint64_t", "f64": "double", "u32": "uint32_t"}


def read(native: NativeLib, path: str) -> Optional[Dict[str, Any]]:
    """The manifest of the library ``native`` (opened from ``path``), or ``None`` if it has
    no exports made by the macros.

    :raises ImportError: the manifest is not JSON, of another format or version, or of
        another C ABI version.
    """
    size = ffi.new("uintptr_t *")
    ptr = native.affi_manifest(size)
    if ptr == ffi.NULL or size[0] == 0:
        return None
    try:
        manifest = json.loads(bytes(ffi.buffer(ptr, size[0])).decode("utf-8"))
    except ValueError as e:
        raise ImportError(f"the library {path} exports a manifest that is not JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ImportError(f"the library {path} exports no {FORMAT} (its format is unknown)")
    if manifest.get("version") != VERSION:
        raise ImportError(
            f"the library {path} exports manifest version {manifest.get('version')}, this "
            f"asyncffi package reads version {VERSION}: rebuild the library against this asyncffi"
        )
    if manifest.get("abi") != ABI_VERSION:
        raise ImportError(
            f"the manifest of {path} is for C ABI version {manifest.get('abi')}, this asyncffi "
            f"package speaks version {ABI_VERSION}"
        )
    if not manifest.get("functions") and not manifest.get("objects"):
        return None
    _check_names(manifest, path)
    return manifest


def _check_names(manifest: Dict[str, Any], path: str) -> None:
    """Every name that ends up in generated C declarations or Python source is an identifier
    (the macros only write Rust identifiers; anything else is a damaged manifest).

    :raises ImportError: a name that is not one.
    """
    functions = list(manifest.get("functions") or [])
    names: List[Any] = []
    for obj in manifest.get("objects") or []:
        names.append(obj.get("name"))
        functions += obj.get("methods") or []
    for fn in functions:
        names += [fn.get("name"), fn.get("symbol")]
        names += [p.get("name") for p in fn.get("params") or []]
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ImportError(f"the manifest of {path} names {name!r}, not an identifier")


# --- C declarations --------------------------------------------------------------------------


#: The C keywords a Rust parameter name may be (Rust's own keywords it cannot be, bar ``r#``).
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto "
    "if inline int long register restrict return short signed sizeof static struct switch "
    "typedef union unsigned void volatile while _Bool _Complex _Imaginary bool".split()
)


#: The C arguments of each parameter ``abi``: ``(C type, suffix of the name)`` pairs.
_C_SHAPES: Dict[str, List[Tuple[str, str]]] = {
    **{abi: [(c_type, "")] for abi, c_type in _C_TYPES.items()},
    "buffer": [("const uint8_t *", "_data"), ("size_t", "_len")],
    "value": [
        ("uint32_t", "_tag"),
        ("int64_t", "_int"),
        ("double", "_float"),
        ("const uint8_t *", "_data"),
        ("size_t", "_len"),
    ],
    "aiter": [("uint64_t", ""), ("uint64_t", "_prefetch")],
    "handle": [("uint64_t", "")],
    "callable": [("uint64_t", "")],
    "runtime": [("uint32_t", "")],
}


def c_signature(
    fn: Dict[str, Any], completion: str = "void *"
) -> Tuple[str, List[Tuple[str, str]]]:
    """The C signature of export ``fn``: its return type and its ``(C type, name)``
    parameters, in order (see "C shapes" in ``rust/asyncffi/src/manifest.rs``). Both the cffi
    declarations and the C header (``_header.py``) are made from it.

    Parameter names are the Rust ones; a name that is a C keyword or that collides with a
    name of the shape (``port``, ``token``, ``self``, ``buffer``, ``out``, a buffer's
    ``<name>_data`` / ``<name>_len``) gets trailing ``_``s. A sync function's
    ``AffiCompletion *out`` is typed ``completion`` (``void *`` for cffi, whose declarations of
    each library are kept apart from the core ones).

    :raises ImportError: an unknown parameter ``abi`` or function ``kind``.
    """
    kind = fn["kind"]
    if kind not in ("sync", "async", "stream"):
        raise ImportError(f"unknown function kind {kind!r} of {fn['symbol']}")
    head = [] if kind == "sync" else [("uint64_t", "port"), ("uint64_t", "token")]
    if fn["role"] == "method":
        head.append(("uint64_t", "self"))
    tail = {"sync": [(completion, "out")], "stream": [("uint64_t", "buffer")]}.get(kind, [])
    taken = {name for _, name in head + tail}
    params: List[Tuple[str, str]] = []
    for i, p in enumerate(fn["params"]):
        kind_of = p["abi"]
        name = p.get("name", f"p{i}")
        if name in _C_KEYWORDS:
            name += "_"
        if kind_of not in _C_SHAPES:
            raise ImportError(f"unknown parameter abi {kind_of!r} in {p}")
        shape = _C_SHAPES[kind_of]
        while ({name} | {name + suffix for _, suffix in shape}) & taken:
            name += "_"
        out = [(c_type, name + suffix) for c_type, suffix in shape]
        taken.update(n for _, n in out)
        params += out
    return ("int32_t" if kind == "sync" else "int64_t"), head + params + tail


def c_declaration(fn: Dict[str, Any], completion: str = "void *") -> str:
    """``fn``'s C prototype on one line, from ``c_signature``."""
    ret, params = c_signature(fn, completion)
    args = ", ".join(t + n if t.endswith("*") else f"{t} {n}" for t, n in params)
    return f"{ret} {fn['symbol']}({args or 'void'});"


def declaration(fn: Dict[str, Any]) -> str:
    """The cffi declaration of export ``fn`` (a sync function's ``AffiCompletion *`` as
    ``void *``: the completion is allocated with the core declarations)."""
    return c_declaration(fn)


def _all_functions(manifest: Dict[str, Any]) -> List[Dict[str, Any]]:
    out = list(manifest.get("functions", []))
    for obj in manifest.get("objects", []):
        out += obj.get("methods", [])
    return out


# --- types -------------------------------------------------------------------------------------


def annotation(ty: Dict[str, Any], classes: Dict[str, type]) -> Any:
    """The Python annotation of a manifest type."""
    t = ty["type"]
    simple = {"none": None, "bool": bool, "str": str, "bytes": bytes, "any": Any}
    if t in simple:
        return simple[t]
    if t == "int":
        return int
    if t in ("float", "duration"):
        return float
    if t == "runtime":
        return str
    if t == "args":
        return Any
    if t == "callable":
        return Callable[..., Any]
    if t == "aiter":
        return Union[AsyncIterable[Any], Iterable[Any]]
    if t == "list":
        return List[annotation(ty["item"], classes)]  # type: ignore[misc]
    if t == "optional":
        return Optional[annotation(ty["item"], classes)]
    if t == "dict":
        return Dict[str, annotation(ty["value"], classes)]  # type: ignore[misc]
    if t == "tuple":
        items = tuple(annotation(item, classes) for item in ty["items"])
        return Tuple[items] if items else Tuple[()]
    if t == "object":
        return classes.get(ty["name"], RustObject)
    if t == "serde":
        return Dict[str, Any]
    return Any


def describe(ty: Dict[str, Any]) -> str:
    """What a manifest type expects, for messages: ``int (u8)``, ``list[str]``, ..."""
    t = ty["type"]
    if t == "int":
        return f"int ({ty['rust']})"
    if t == "float":
        return "float"
    if t == "duration":
        return "float (seconds)"
    if t == "runtime":
        return "'tokio', 'async-std' or 'loop'"
    if t == "list":
        return f"list[{describe(ty['item'])}]"
    if t == "optional":
        return f"{describe(ty['item'])} or None"
    if t == "dict":
        return f"dict[str, {describe(ty['value'])}]"
    if t == "tuple":
        return f"tuple[{', '.join(describe(i) for i in ty['items'])}]"
    if t == "object":
        return str(ty["name"])
    if t == "serde":
        return f"{ty['rust']} (serde)"
    if t == "aiter":
        return "async iterable or iterable"
    return str(t)


# --- helpers the generated code calls ----------------------------------------------------------


def _wrong(where: str, name: str, expected: str, value: Any) -> TypeError:
    return TypeError(f"{where}() argument {name!r} must be {expected}, not {type(value).__name__}")


def _as_int(value: Any, where: str, name: str, expected: str) -> int:
    if isinstance(value, float) or not hasattr(type(value), "__index__"):
        raise _wrong(where, name, expected, value)
    return operator.index(value)


def _as_float(value: Any, where: str, name: str, expected: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise _wrong(where, name, expected, value)


def _range(where: str, name: str, value: int, ty: Dict[str, Any]) -> OverflowError:
    return OverflowError(
        f"{where}() argument {name!r}: {value} is out of range for {ty['rust']} "
        f"({ty['min']}..={ty['max']})"
    )


def _below(where: str, name: str, value: int, least: int) -> ValueError:
    return ValueError(f"{where}() argument {name!r} must be >= {least}, got {value}")


def _prefetch(prefetch: Any, where: str) -> int:
    """A ``prefetch=`` keyword as its C argument (0: the default)."""
    if prefetch is None:
        return 0
    n = u64(prefetch, "prefetch")
    if n < 1:
        raise ValueError(f"{where}(): prefetch must be >= 1, got {n}")
    return n


def _pack_str(value: str) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


class _Held(int):
    """An object's handle that keeps the object alive, for a call that starts later: until
    the call starts and Rust holds the object, the wrapper must not be collected (which would
    free the handle)."""

    obj: RustObject

    def __new__(cls, handle: int, obj: RustObject) -> _Held:
        held = super().__new__(cls, handle)
        held.obj = obj
        return held


def _object_handle(value: Any, cls: type, library: Library, where: str, name: str) -> int:
    if isinstance(value, RustObject):
        handle = value.handle_for(library)  # TypeError for an object of another library
        if isinstance(value, cls):
            return handle
    raise _wrong(where, name, cls.__name__, value)


def _held_handle(value: Any, cls: type, library: Library, where: str, name: str) -> int:
    return _Held(_object_handle(value, cls, library, where, name), value)


def _self_handle(obj: RustObject) -> int:
    return _Held(obj.handle, obj)


_OK = abi.AFFI_OUTCOME_OK
_ERROR = abi.AFFI_OUTCOME_ERROR
_TAG_NONE = abi.AFFI_TAG_NONE
_TAG_BOOL = abi.AFFI_TAG_BOOL
_TAG_INT = abi.AFFI_TAG_INT
_TAG_FLOAT = abi.AFFI_TAG_FLOAT
_TAG_BYTES = abi.AFFI_TAG_BYTES
_TAG_STR = abi.AFFI_TAG_STR
_TAG_OBJECT = abi.AFFI_TAG_OBJECT


def _sync_outcome(out: Any, library: Library) -> Any:
    """The value of a sync call's completion ``out`` (its payload freed), or raises its
    error; an object becomes an instance of its class (``wrap_object``)."""
    c = out[0]
    data = c.data
    try:
        status = c.status
        if status == _OK:
            tag = c.tag
            if tag == _TAG_INT:
                return c.int_value
            if tag == _TAG_NONE:
                return None
            if tag == _TAG_STR:
                return text_at(data, c.len)
            if tag == _TAG_FLOAT:
                return c.float_value
            if tag == _TAG_BOOL:
                return c.int_value != 0
            if tag == _TAG_BYTES:
                return bytes_at(data, c.len)
            if tag == _TAG_OBJECT:
                return wrap_object(library, c.int_value, c.len)
            return unpack(data, c.len)
        if status == _ERROR:
            fields = unpack(data, c.len)
            raise rust_error(fields[1], fields[0])
        raise RustPanic(text_at(data, c.len))
    finally:
        if data != ffi.NULL:
            library.lib.affi_result_free(data)


# --- code generation ---------------------------------------------------------------------------


def _py_name(name: str) -> str:
    """A Rust parameter name as a Python identifier (a keyword gets a trailing ``_``)."""
    return name + "_" if keyword.iskeyword(name) else name


class _Source:
    """The source text of one generated function, and the values it refers to."""

    def __init__(self, where: str, env: Dict[str, Any]) -> None:
        self.where = where
        self.lines: List[str] = []
        self.env = env
        self.lends = False
        #: Whether the call is made at once (else it starts when awaited or iterated).
        self.sync = False

    def const(self, value: Any) -> str:
        name = f"_affi_k{len(self.env)}"
        self.env[name] = value
        return name

    def check(
        self,
        var: str,
        name: str,
        ty: Dict[str, Any],
        indent: str,
        what: str = "",
        least: Optional[int] = None,
    ) -> None:
        """Lines that check and convert ``var`` (of manifest type ``ty``) in place; an int
        below ``least`` is a ``ValueError`` (before the type's range, an ``OverflowError``)."""
        t = ty["type"]
        w = repr(self.where)
        n = repr(name)
        add = self.lines.append
        e = repr(what or describe(ty))
        if t == "int":
            add(f"{indent}if type({var}) is not int:")
            add(f"{indent}    {var} = _affi_as_int({var}, {w}, {n}, {e})")
            if least is not None:
                add(f"{indent}if {var} < {int(least)}:")
                add(f"{indent}    raise _affi_below({w}, {n}, {var}, {int(least)})")
            add(f"{indent}if not {ty['min']} <= {var} <= {ty['max']}:")
            add(f"{indent}    raise _affi_range({w}, {n}, {var}, {self.const(ty)})")
        elif t in ("float", "duration"):
            add(f"{indent}if type({var}) is not float:")
            add(f"{indent}    {var} = _affi_as_float({var}, {w}, {n}, {e})")
        elif t == "bool":
            add(f"{indent}if {var} is not True and {var} is not False:")
            add(f"{indent}    raise _affi_wrong({w}, {n}, {e}, {var})")
        elif t == "str":
            add(f"{indent}if type({var}) is not str and not isinstance({var}, str):")
            add(f"{indent}    raise _affi_wrong({w}, {n}, {e}, {var})")
        elif t == "bytes":
            add(f"{indent}if type({var}) is not bytes:")
            add(f"{indent}    if not isinstance({var}, (bytes, bytearray, memoryview)):")
            add(f"{indent}        raise _affi_wrong({w}, {n}, {e}, {var})")
            add(f"{indent}    {var} = bytes({var})")
        elif t == "list":
            add(f"{indent}if not isinstance({var}, (list, tuple)):")
            add(f"{indent}    raise _affi_wrong({w}, {n}, {e}, {var})")
        # A serde type is not checked here: serde renders enums as str or dict, tuple structs
        # as lists, newtypes as their inner value; Rust's decoding says what is wrong.
        elif t == "dict":
            add(f"{indent}if not isinstance({var}, dict):")
            add(f"{indent}    raise _affi_wrong({w}, {n}, {e}, {var})")
        elif t == "tuple":
            count = len(ty["items"])
            add(f"{indent}if not isinstance({var}, (list, tuple)) or len({var}) != {count}:")
            add(f"{indent}    raise _affi_wrong({w}, {n}, {e}, {var})")
        elif t == "optional":
            add(f"{indent}if {var} is not None:")
            self.check(var, name, ty["item"], indent + "    ", describe(ty))

    def param(self, var: str, p: Dict[str, Any], library: Library, classes: Dict[str, type]) -> str:
        """Checks parameter ``var``; returns the C arguments it becomes."""
        ty, kind = p["type"], p["abi"]
        name = p["name"]
        w, n = repr(self.where), repr(name)
        add = self.lines.append
        label = f"{self.where}() argument {name!r}"
        if kind == "handle":
            cls = classes.get(ty.get("name", ""), RustObject)
            k = self.const(cls)
            check = "_affi_handle" if self.sync else "_affi_held"
            add(f"    {var}_h = {check}({var}, {k}, _affi_library, {w}, {n})")
            return f"{var}_h"
        if kind == "callable":
            self.lends = True
            add(f"    {var} = _affi_PyCallableArg({var}, {label!r})")
            return var
        if kind == "aiter":
            self.lends = True
            add(f"    {var} = _affi_PyStreamArg({var}, {label!r})")
            return f"{var}, prefetch_c"
        if kind == "runtime":
            # A dict lookup inline; ``runtime_id`` only to raise the error.
            add("    try:")
            add(f"        {var}_c = _affi_RUNTIMES[{var}]")
            add("    except (KeyError, TypeError):")
            add(f"        {var}_c = _affi_runtime_id({var}, _affi_RUNTIMES)")
            return f"{var}_c"
        if kind == "value":
            # An int in range inline (the commonest value); anything else through value_args.
            in_range = f"{-(2**63)} <= {var} <= {2**63 - 1}"
            add(f"    if type({var}) is int and {in_range}:")
            add(f"        {var}_c = (_affi_TAG_INT, {var}, 0.0, _affi_NULL, 0)")
            add("    else:")
            add(f"        {var}_c = _affi_value_args({var})")
            return f"*{var}_c"
        if ty["type"] == "args":
            add(f"    {var} = _affi_packb(list({var}))")
            return f"{var}, len({var})"
        self.check(var, name, ty, "    ", least=p.get("min"))
        if kind != "buffer":
            return var
        inner = ty["item"] if ty["type"] == "optional" else ty
        pack = "_affi_pack_str" if inner["type"] == "str" else "_affi_packb"
        if ty["type"] == "optional":
            add(f"    {var} = _affi_NULL if {var} is None else {pack}({var})")
            return f"{var}, 0 if {var} is _affi_NULL else len({var})"
        add(f"    {var} = {pack}({var})")
        return f"{var}, len({var})"


def runtime_param(fn: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The parameter of export ``fn`` that is the caller's runtime, if any."""
    return next((p for p in fn["params"] if p["abi"] == "runtime"), None)


def signature(fn: Dict[str, Any]) -> List[str]:
    """The Python names of export ``fn``'s own parameters in Python order: the positional
    ones, then ``*args`` (or ``*`` before keyword-only ones), then the keyword-only ones; the
    ``runtime`` parameter and the ``buffer``/``prefetch`` keywords are left to the caller."""
    positional: List[str] = []
    keyword: List[str] = []
    rest = None
    for p in fn["params"]:
        name = _py_name(p["name"])
        if p["abi"] == "runtime":
            continue
        if p["type"]["type"] == "args":
            rest = "*" + name
        elif p.get("keyword"):
            keyword.append(name)
        else:
            positional.append(name)
    extra = fn["kind"] == "stream" or any(p["abi"] in ("aiter", "runtime") for p in fn["params"])
    star = rest or ("*" if keyword or extra else None)
    return positional + ([star] if star else []) + keyword


def _function(
    fn: Dict[str, Any],
    c_fn: Any,
    library: Library,
    classes: Dict[str, type],
    qualname: str,
    module: str,
) -> Callable[..., Any]:
    """The Python function calling export ``fn`` (its C function ``c_fn``)."""
    env: Dict[str, Any] = {
        "_affi_fn": c_fn,
        "_affi_library": library,
        "_affi_lib": library.lib,
        "_affi_NULL": ffi.NULL,
        "_affi_new": ffi.new,
        "_affi_status_error": status_error,
        "_affi_outcome": _sync_outcome,
        "_affi_RustCall": RustCall,
        "_affi_RustCallWithCallables": RustCallWithCallables,
        "_affi_RustStream": RustStream,
        "_affi_PyCallableArg": PyCallableArg,
        "_affi_PyStreamArg": PyStreamArg,
        "_affi_as_int": _as_int,
        "_affi_as_float": _as_float,
        "_affi_range": _range,
        "_affi_wrong": _wrong,
        "_affi_handle": _object_handle,
        "_affi_held": _held_handle,
        "_affi_self": _self_handle,
        "_affi_pack_str": _pack_str,
        "_affi_packb": packb,
        "_affi_below": _below,
        "_affi_prefetch": _prefetch,
        "_affi_runtime_id": runtime_id,
        "_affi_RUNTIMES": library.runtimes,
        "_affi_TAG_INT": _TAG_INT,
        "_affi_value_args": value_args,
    }
    src = _Source(qualname, env)
    library.python_names[library.address(c_fn)] = qualname
    role, kind = fn["role"], fn["kind"]
    src.sync = kind == "sync"
    names = [_py_name(p["name"]) for p in fn["params"]]
    header = ["self"] if role == "method" else []
    for part in signature(fn):
        if part.startswith("*"):
            header.append(part)
            continue
        p = next(p for n, p in zip(names, fn["params"]) if n == part)
        header.append(f"{part}={src.const(p['default'])}" if "default" in p else part)
    if kind == "stream":
        header.append("buffer=None")
    if any(p["abi"] == "aiter" for p in fn["params"]):
        header.append("prefetch=None")
        src.lines.append(f"    prefetch_c = _affi_prefetch(prefetch, {qualname!r})")
    if runtime_param(fn) is not None:
        header.append(f"runtime={src.const(runtime_param(fn)['default'])}")  # type: ignore[index]
    this = "self.handle" if kind == "sync" else "_affi_self(self)"
    c_args = [this] if role == "method" else []
    for name, p in zip(names, fn["params"]):
        c_args.append(src.param(name, p, library, classes))
    returns = fn["returns"]
    args = ", ".join(c_args)
    if kind == "sync":
        src.lines.append("    out = _affi_new('AffiCompletion *')")
        src.lines.append(f"    status = _affi_fn({args + ', ' if args else ''}out)")
        src.lines.append("    if status < 0:")
        src.lines.append("        raise _affi_status_error(status, _affi_lib)")
        src.lines.append("    return _affi_outcome(out, _affi_library)")
    elif kind == "stream":
        c_tuple = f"({args},)" if args else "()"
        src.lines.append(f"    return _affi_RustStream(_affi_library, _affi_fn, {c_tuple}, buffer)")
    else:
        call = "_affi_RustCallWithCallables" if src.lends else "_affi_RustCall"
        c_tuple = f"({args},)" if args else "()"  # an async fn may take no parameter
        src.lines.append(f"    return {call}(_affi_library, _affi_fn, {c_tuple})")
    body = "\n".join(src.lines)
    text = f"def _affi_export({', '.join(header)}):\n{body}\n"
    exec(compile(text, f"<asyncffi {library.name}: {qualname}>", "exec"), env)
    func: Callable[..., Any] = env["_affi_export"]
    func.__name__ = fn["name"]
    value = annotation(returns, classes)
    ret: Any = value
    if kind == "async":
        ret = RustCall[value]  # type: ignore[valid-type]
    elif kind == "stream":
        ret = RustStream[value]  # type: ignore[valid-type]
    notes: Dict[str, Any] = {}
    for name, p in zip(names, fn["params"]):
        notes[name] = annotation(p["type"], classes)
    if kind == "stream":
        notes["buffer"] = Optional[int]
    if any(p["abi"] == "aiter" for p in fn["params"]):
        notes["prefetch"] = Optional[int]
    notes["return"] = ret
    func.__annotations__ = notes
    func.__doc__ = fn.get("doc") or None
    func.__qualname__ = qualname
    func.__module__ = module
    return func


def _object_class(
    obj: Dict[str, Any], library: Library, classes: Dict[str, type], module: str
) -> None:
    """Fills in the class of exported object ``obj`` (made empty in ``classes`` first, so
    that methods can name their own class)."""
    cls = classes[obj["name"]]
    for method in obj.get("methods", []):
        c_fn = getattr(library.manifest_functions, method["symbol"])
        if hasattr(RustObject, method["name"]) and method["role"] != "constructor":
            # ``close``, ``handle``, ... stay RustObject's: the method gets a trailing ``_``.
            method = {**method, "name": method["name"] + "_"}
        qualname = f"{obj['name']}.{method['name']}"
        role = method["role"]
        if role == "constructor":
            made = _function(method, c_fn, library, classes, qualname, module)
            init = _constructor(made, cls, qualname, module)
            if method["name"] in ("new", "__init__"):
                cls.__init__ = init  # type: ignore[misc]
            else:
                setattr(cls, method["name"], classmethod(_factory(made)))
        elif role == "static":
            made = _function(method, c_fn, library, classes, qualname, module)
            setattr(cls, method["name"], staticmethod(made))
        else:
            setattr(
                cls, method["name"], _function(method, c_fn, library, classes, qualname, module)
            )


def _constructor(made: Callable[..., Any], cls: type, qualname: str, module: str) -> Any:
    """``__init__`` calling the constructor ``made`` (which returns a new object)."""
    import functools

    @functools.wraps(made)
    def __init__(self: RustObject, *args: Any, **kwargs: Any) -> None:
        obj = made(*args, **kwargs)
        # The new object's handle moves into ``self``.
        self._library, self._handle = obj._library, obj._handle
        obj._handle = 0

    import inspect

    sig = inspect.signature(made)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    __init__.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[self_param, *sig.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )
    __init__.__qualname__ = f"{cls.__name__}.__init__"
    __init__.__module__ = module
    return __init__


def _factory(made: Callable[..., Any]) -> Callable[..., Any]:
    def make(cls: type, *args: Any, **kwargs: Any) -> Any:
        return made(*args, **kwargs)

    return make


def build(manifest: Dict[str, Any], library: Library) -> Tuple[Dict[str, Any], Any]:
    """The library's exports by Python name (functions and object classes), and the cffi
    handle on its exported symbols."""
    import cffi  # type: ignore[import-untyped]

    own = cffi.FFI()
    own.cdef("\n".join(declaration(fn) for fn in _all_functions(manifest)))
    functions = own.dlopen(library.path)
    library.manifest_functions = functions
    module = library.name
    classes: Dict[str, type] = {}
    for obj in manifest.get("objects", []):
        attrs: Dict[str, Any] = {"__slots__": (), "__doc__": obj.get("doc") or None}
        attrs["__module__"] = module
        cls: Type[RustObject] = type(obj["name"], (RustObject,), attrs)
        classes[obj["name"]] = cls
    # In manifest order: completions name an object's class by its position.
    library.object_classes = tuple(classes[obj["name"]] for obj in manifest.get("objects", []))
    exports: Dict[str, Any] = {}
    for obj in manifest.get("objects", []):
        _object_class(obj, library, classes, module)
        exports[obj["name"]] = classes[obj["name"]]
    for fn in manifest.get("functions", []):
        c_fn = getattr(functions, fn["symbol"])
        exports[fn["name"]] = _function(fn, c_fn, library, classes, fn["name"], module)
    return exports, functions
