"""Records: serde types a library describes field by field (``#[derive(asyncffi::Record)]``,
the manifest's ``"records"``), as typing sees them.

A struct is a ``TypedDict`` of its fields. An enum is a union of its variants as serde renders
them: a unit variant is its name (``Literal["Empty"]``), any other a one-key dict whose key is
the variant's name (a ``TypedDict`` named enum + variant, ``ShapeCircle``); a struct variant's
fields are a ``TypedDict`` of their own (``ShapeRectFields``). ``stub_lines`` writes them for a
``.pyi``; ``runtime_types`` makes the same names at run time (``Library.types``), so a user can
import them and ``stubtest`` finds what the stubs declare.

A serde type a function takes or returns is named in the manifest by its Rust type name
(``Vec<Event>``, ``Option<Shape>``): ``serde_annotation`` reads the common std containers and
the records in it, and gives ``Any`` for what it does not know.
"""

from __future__ import annotations

import keyword
import re
import typing
from typing import Any, Callable, Dict, List, Optional, Tuple

#: Rust scalar type names and their Python annotation.
_SCALARS = {
    **dict.fromkeys("i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize".split(), "int"),
    "f32": "float",
    "f64": "float",
    "bool": "bool",
    "String": "str",
    "str": "str",
    "char": "str",
    "()": "None",
}
#: One-parameter Rust containers: the annotation template of each.
_WRAPPERS = {
    "Vec": "List[{}]",
    "VecDeque": "List[{}]",
    "HashSet": "List[{}]",
    "BTreeSet": "List[{}]",
    "Option": "Optional[{}]",
    "Box": "{}",
    "Arc": "{}",
    "Rc": "{}",
}
_MAPS = ("HashMap", "BTreeMap")
_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|\(\)|[<>,()&\[\];]|'[A-Za-z_]+|[0-9]+)")


def by_name(manifest: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """The manifest's records by name (none for a library made before records existed)."""
    return {r["name"]: r for r in manifest.get("records") or []}


def serde_annotation(rust: str, records: Dict[str, Dict[str, Any]]) -> str:
    """The annotation text of the serde type named ``rust`` (``Any`` where unknown)."""
    tokens = [m.group(1) for m in _TOKEN.finditer(rust)]
    if "".join(tokens) != re.sub(r"\s+", "", rust):
        return "Any"
    try:
        text, rest = _parse(tokens, records)
    except (IndexError, ValueError):
        return "Any"
    return text if not rest else "Any"


def _parse(tokens: List[str], records: Dict[str, Dict[str, Any]]) -> Tuple[str, List[str]]:
    head, rest = tokens[0], tokens[1:]
    if head == "&":
        if rest and rest[0].startswith("'"):
            rest = rest[1:]
        return _parse(rest, records)
    if head == "(":
        items: List[str] = []
        while rest[0] != ")":
            item, rest = _parse(rest, records)
            items.append(item)
            if rest[0] == ",":
                rest = rest[1:]
        return (f"Tuple[{', '.join(items)}]" if items else "None"), rest[1:]
    if head == "[":
        item, rest = _parse(rest, records)
        if rest[0] == ";":
            rest = rest[2:]
        return f"List[{item}]", rest[1:]
    args: List[str] = []
    if rest and rest[0] == "<":
        rest = rest[1:]
        while rest[0] != ">":
            arg, rest = _parse(rest, records)
            args.append(arg)
            if rest[0] == ",":
                rest = rest[1:]
        rest = rest[1:]
    if head in _SCALARS and not args:
        return _SCALARS[head], rest
    if head in _WRAPPERS and len(args) == 1:
        return _WRAPPERS[head].format(args[0]), rest
    if head in _MAPS and len(args) == 2:
        return f"Dict[str, {args[1]}]", rest
    if head in records and not args:
        return head, rest
    return "Any", rest


def _variant_class(enum: str, variant: Dict[str, Any]) -> str:
    return f"{enum}{variant['name']}"


def _fields(
    fields: List[Dict[str, Any]], annotation: Callable[[Dict[str, Any]], str]
) -> List[Tuple[str, str, str]]:
    return [(f["name"], annotation(f["type"]), f.get("doc") or "") for f in fields]


def definitions(
    records: Dict[str, Dict[str, Any]], annotation: Callable[[Dict[str, Any]], str]
) -> List[Tuple[str, Any, str]]:
    """Every type the records define, in dependency-free order: ``(name, shape, doc)``, where
    shape is a list of ``(key, annotation, doc)`` for a ``TypedDict`` or a list of union
    member texts for an enum.

    :raises ValueError: two records (or a record and a variant's class) with one name.
    """
    out: List[Tuple[str, Any, str]] = []
    for name in sorted(records):
        record = records[name]
        if record["kind"] == "struct":
            out.append((name, _fields(record["fields"], annotation), record.get("doc") or ""))
            continue
        members: List[str] = []
        for variant in record["variants"]:
            cls = _variant_class(name, variant)
            kind = variant["kind"]
            if kind == "unit":
                members.append(f'Literal["{variant["name"]}"]')
                continue
            if kind == "newtype":
                value = annotation(variant["type"])
            elif kind == "tuple":
                value = f"Tuple[{', '.join(annotation(t) for t in variant['items'])}]"
            else:
                inner = f"{cls}Fields"
                out.append((inner, _fields(variant["fields"], annotation), ""))
                value = inner
            out.append((cls, [(variant["name"], value, "")], variant.get("doc") or ""))
            members.append(cls)
        out.append((name, members, record.get("doc") or ""))
    names = [n for n, _, _ in out]
    clash = {n for n in names if names.count(n) > 1}
    if clash:
        raise ValueError(f"records define these names more than once: {sorted(clash)}")
    return out


def _doc(doc: str, indent: str) -> str:
    lines = doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').splitlines()
    return "\n".join([lines[0], *((indent + line) if line else "" for line in lines[1:])])


def stub_lines(
    records: Dict[str, Dict[str, Any]], annotation: Callable[[Dict[str, Any]], str]
) -> List[str]:
    """The ``.pyi`` lines of the records' types."""
    out: List[str] = []
    for name, shape, doc in definitions(records, annotation):
        out += ["", ""]
        if shape and isinstance(shape[0], str):  # an enum: a union of its variants
            if doc:
                out += [f"#: {line}".rstrip() for line in doc.splitlines()]
            out.append(f"{name} = Union[{', '.join(shape)}]")
            continue
        if any(keyword.iskeyword(key) or not key.isidentifier() for key, _, _ in shape):
            items = ", ".join(f'"{key}": {ann}' for key, ann, _ in shape)
            out.append(f'{name} = TypedDict("{name}", {{{items}}})')
            continue
        out.append(f"class {name}(TypedDict):")
        if doc:
            out.append(f'    """{_doc(doc, "    ")}"""')
            if shape:
                out.append("")
        for key, ann, field_doc in shape:
            out += [f"    #: {line}".rstrip() for line in field_doc.splitlines()]
            out.append(f"    {key}: {ann}")
        if not shape and not doc:
            out[-1] += " ..."
    return out


def runtime_types(
    records: Dict[str, Dict[str, Any]],
    annotation: Callable[[Dict[str, Any]], str],
    module: Optional[str] = None,
) -> Dict[str, Any]:
    """The records' types at run time, by name: ``TypedDict`` classes and ``Union`` aliases,
    their annotations the types themselves (a forward reference only within a cycle)."""
    namespace: Dict[str, Any] = {n: getattr(typing, n) for n in typing.__all__}
    types: Dict[str, Any] = {}
    pending = definitions(records, annotation)
    while pending:
        later = []
        for name, shape, doc in pending:
            try:
                types[name] = _make(name, shape, doc, namespace, module, lazy=False)
            except NameError:
                later.append((name, shape, doc))
                continue
            namespace[name] = types[name]
        if len(later) == len(pending):  # a cycle: the rest refer to each other by name
            for name, shape, doc in later:
                types[name] = namespace[name] = _make(name, shape, doc, namespace, module, True)
            break
        pending = later
    return types


def _make(
    name: str,
    shape: List[Any],
    doc: str,
    namespace: Dict[str, Any],
    module: Optional[str],
    lazy: bool,
) -> Any:
    """One record type; ``lazy`` leaves unknown names as forward references.

    :raises NameError: (not ``lazy``) an annotation names a type not made yet.
    """

    def evaluate(text: str) -> Any:
        try:
            return eval(text, {}, namespace)  # generated type text: names and literals
        except NameError:
            if not lazy:
                raise
            return typing.ForwardRef(text)

    if shape and isinstance(shape[0], str):  # an enum: a union of its variants
        members = tuple(evaluate(m) for m in shape)
        return typing.Union[members] if len(members) > 1 else members[0]
    fields = {key: evaluate(ann) for key, ann, _ in shape}
    cls: Any = typing.TypedDict(name, fields)  # type: ignore[misc]
    cls.__doc__ = doc or None
    if module is not None:
        cls.__module__ = module
    return cls
