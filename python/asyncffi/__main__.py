"""``python -m asyncffi demo``: watch Rust futures being awaited from asyncio.

Options: ``--loop uvloop`` runs the demo on uvloop, ``--wake fd`` uses the eventfd wake.

``python -m asyncffi stubs PATH_OR_MODULE [-o FILE.pyi] [--check]``: the ``.pyi`` stubs of a
library's exports and records, from its manifest: for a cdylib (``builtins`` for the shipped
one), or a module re-exporting a library (``asyncffi.demo``, whose stubs are
``asyncffi/demo.pyi``: only the names the module has, with its docstring). To stdout, or to
``FILE.pyi``; with ``--check``, exits 1 if ``FILE.pyi`` differs, changing nothing.

``python -m asyncffi header PATH_TO_CDYLIB [-o FILE.h] [--check]``: the C header of a library
written with asyncffi's macros (``builtins`` for the shipped library), from its manifest (to
stdout, or to ``FILE.h``; with ``--check``, exits 1 if ``FILE.h`` differs from it, changing
nothing).

``python -m asyncffi new NAME [--path DIR] [--asyncffi-path CHECKOUT]``: a new project for a
Rust author (a crate, ``pyproject.toml`` for maturin, a Python package with its stubs, a pytest
file): ``pip install .`` then ``pytest`` in it pass as they are. The asyncffi crate comes from
crates.io, or with ``--asyncffi-path`` from a checkout of asyncffi.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

import asyncffi
from asyncffi import demo
from asyncffi._runtime import runtime_names


def _line(label: str, detail: str) -> None:
    print(f"  {label:<44} {detail}", flush=True)


async def _timed(awaitable: Awaitable[Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = await awaitable
    return result, time.perf_counter() - start


async def run_demo() -> None:
    print(f"asyncffi {asyncffi.__version__}: asyncio awaiting Rust futures over a C ABI\n")

    for runtime in runtime_names():
        _, took = await _timed(demo.sleep(0.2, runtime=runtime))
        _line(f"await demo.sleep(0.2, runtime={runtime!r})", f"{took * 1000:7.1f} ms")

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.ensure_future(ticker())
    _, took = await _timed(asyncio.gather(*(demo.sleep(1.0) for _ in range(10_000))))
    ticking.cancel()
    _line("10 000 concurrent demo.sleep(1.0)", f"{took * 1000:7.1f} ms in all")
    _line("  asyncio ticks (every 10 ms) meanwhile", f"{ticks:7d}  (the loop stayed free)")

    value = {"a": [1, 2.5, b"x", None, True, "é"]}
    echoed, took = await _timed(demo.echo(value))
    _line(
        f"await demo.echo({value!r})", "round-trips" if echoed == value else f"MISMATCH {echoed!r}"
    )

    total, took = await _timed(demo.cpu(50_000_000))
    _line("await demo.cpu(50_000_000) (blocking pool)", f"{took * 1000:7.1f} ms -> {total}")

    before = asyncffi.stats()["cancelled"]
    task = asyncio.ensure_future(demo.pending())
    await asyncio.sleep(0.05)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await asyncio.sleep(0.01)
    dropped = asyncffi.stats()["cancelled"] - before
    _line("cancel a never-ending Rust future", f"CancelledError; Rust futures dropped: {dropped}")

    try:
        await demo.add(2**63 - 1, 1)
    except asyncffi.RustError as e:
        _line("await demo.add(2**63 - 1, 1)", f"RustError(kind={e.kind!r}): {e}")

    async def handler(x: int) -> int:
        await asyncio.sleep(0.01)
        return x * 2

    doubled, took = await _timed(demo.call_python(handler, 21))
    _line("Rust awaits a Python coroutine", f"call_python(handler, 21) -> {doubled}")
    timed_out, took = await _timed(demo.timeout_python(asyncio.sleep, 0.05, 10))
    _line("Rust drops a Python call after 50 ms", f"timed out: {timed_out}; Python task cancelled")

    received, took = await _timed(_count_all(demo.count(1_000_000)))
    _line(
        "async for x in demo.count(1_000_000)",
        f"{received} items from a Rust stream, {received / took / 1e6:4.1f} M items/s",
    )

    async def numbers(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    total, took = await _timed(demo.sum_stream(numbers(1_000_000)))
    _line(
        "await demo.sum_stream(async generator)",
        f"Rust summed {total}, {1_000_000 / took / 1e6:4.1f} M items/s",
    )

    closed: list[str] = []

    async def endless() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append("finally")

    first = await demo.take(endless(), 3)
    for _ in range(100):
        if closed:
            break
        await asyncio.sleep(0.01)
    _line(
        "await demo.take(endless generator, 3)",
        f"{first}; generator closed: {closed == ['finally']}",
    )

    with demo.Counter() as counter:
        await counter.add(40)
        total = await counter.add(2)
    _line("Counter(): an opaque Rust object", f"total {total}, then closed")


async def _count_all(items: AsyncIterator[int]) -> int:
    n = 0
    async for _ in items:
        n += 1
    return n


def _live_counters() -> dict[str, int]:
    """The live counters once they settle (a Rust task is dropped just after it delivers its
    result, so the last ones may need a moment)."""
    for _ in range(100):
        live = {k: v for k, v in asyncffi.stats().items() if k.startswith("live_")}
        if not any(live.values()):
            break
        time.sleep(0.01)
    return live


def _loop_factory(name: str) -> Optional[Callable[[], asyncio.AbstractEventLoop]]:
    if name == "asyncio":
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asyncffi")
    sub = parser.add_subparsers(dest="command", required=True)
    demo_cmd = sub.add_parser("demo", help="await Rust futures from asyncio and show it")
    demo_cmd.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    demo_cmd.add_argument("--wake", choices=["threadsafe", "fd"], default="threadsafe")
    stubs_cmd = sub.add_parser("stubs", help="write the .pyi stubs of a library's exports")
    stubs_cmd.add_argument(
        "library", help="the path of the cdylib, 'builtins', or a module with a `library`"
    )
    stubs_cmd.add_argument("-o", "--output", help="the .pyi file to write (default: stdout)")
    stubs_cmd.add_argument(
        "--check", action="store_true", help="exit 1 if OUTPUT differs; write nothing"
    )
    stubs_cmd.add_argument("--doc", default=None, help="the stub module's docstring")
    stubs_cmd.add_argument(
        "--exclude", default="", help="comma-separated name prefixes to leave out"
    )
    header_cmd = sub.add_parser("header", help="write the C header of a library's manifest")
    header_cmd.add_argument("library", help="the path of the cdylib, or 'builtins'")
    header_cmd.add_argument("-o", "--output", help="the header file to write (default: stdout)")
    header_cmd.add_argument(
        "--check", action="store_true", help="exit 1 if OUTPUT differs; write nothing"
    )
    new_cmd = sub.add_parser("new", help="create a project exporting a Rust crate with asyncffi")
    new_cmd.add_argument("name", help="the project's name: the crate, distribution and package")
    new_cmd.add_argument("--path", help="the directory to create (default: ./NAME)")
    new_cmd.add_argument(
        "--asyncffi-path",
        metavar="CHECKOUT",
        help="depend on the asyncffi crate of this checkout (default: crates.io's)",
    )
    args = parser.parse_args(argv)
    if args.command == "new":
        return _new(args.name, args.path, args.asyncffi_path)
    if args.command == "header":
        return _header(args.library, args.output, args.check)

    if args.command == "stubs":
        return _stubs(args.library, args.output, args.check, args.doc, args.exclude)

    asyncffi.configure(wake=args.wake)
    factory = _loop_factory(args.loop)
    loop = factory() if factory else asyncio.new_event_loop()
    try:
        loop.run_until_complete(run_demo())
    finally:
        loop.close()
    print(f"\nloop closed; live counters: {_live_counters()}")
    return 0


def _new(name: str, path: Optional[str], asyncffi_path: Optional[str]) -> int:
    from asyncffi import _scaffold

    try:
        directory = _scaffold.create(name, path, asyncffi_path)
    except ValueError as e:
        print(f"python -m asyncffi new: {e}", file=sys.stderr)
        return 2
    print(f"created {directory}, depending on the asyncffi crate as")
    print(f"    {_scaffold.dependency_line(asyncffi_path)}")
    where = os.path.relpath(directory)
    print(f"next: cd {directory if where.startswith('..') else where}", end="")
    print(" && pip install . pytest && pytest")
    return 0


def _stubs(
    library: str, output: Optional[str], check: bool, doc: Optional[str], exclude: str
) -> int:
    from asyncffi._stubs import library_stubs, target

    try:
        path, module_doc, only = target(library)
        text = library_stubs(path, module_doc if doc is None else doc, exclude, only)
    except (ImportError, ValueError) as e:
        print(f"python -m asyncffi stubs: {e}", file=sys.stderr)
        return 1
    return _emit("stubs", library, text, output, check)


def _header(library: str, output: Optional[str], check: bool) -> int:
    from asyncffi import _header
    from asyncffi._loader import library_path

    try:
        text = _header.of_library(library_path() if library == "builtins" else library)
    except ImportError as e:
        print(f"python -m asyncffi header: {e}", file=sys.stderr)
        return 1
    return _emit("header", library, text, output, check)


def _emit(command: str, library: str, text: str, output: Optional[str], check: bool) -> int:
    """Writes ``text`` to ``output`` (stdout if None; only if it changed), or with ``check``
    compares: 0 if it matches, else a diff and 1."""
    import difflib

    if output is None:
        if check:
            print(f"python -m asyncffi {command}: --check needs -o FILE", file=sys.stderr)
            return 2
        sys.stdout.write(text)
        return 0
    try:
        with open(output, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = ""
    if check:
        if current == text:
            print(f"{output} matches the manifest of {library}")
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(
                current.splitlines(True), text.splitlines(True), output, "generated", n=1
            )
        )
        print(f"{output} is stale: run `python -m asyncffi {command} {library} -o {output}`")
        return 1
    if current != text:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
