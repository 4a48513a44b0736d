"""``python -m asyncffi new NAME``: a new project for a Rust author, ready to build and test.

The project holds a crate with one async function, one stream and one object exported with
``#[asyncffi::export]`` and ``#[asyncffi::object]``, a ``pyproject.toml`` for maturin, a Python
package that loads the cdylib it ships and re-exports its functions with their stubs
(``__init__.pyi``, as ``python -m asyncffi stubs`` writes them), and a pytest file. ``pip
install .`` then ``pytest`` in it pass as they are; ``tests/test_scaffold.py`` proves it.

The files are the templates below with ``@name@`` (the distribution and crate name),
``@package@`` (the Python package) and ``@asyncffi_crate@`` (the dependency's source)
replaced.
"""

from __future__ import annotations

import keyword
import os
import re
import sys
from typing import Dict, FrozenSet, Optional

from . import __version__

#: The crates.io requirement of the core crate this version of the package speaks with.
CRATE_REQUIREMENT = ".".join(__version__.split(".")[:2])

#: Names a new package must not take: it would shadow the Python package it is built on.
_RESERVED = {"asyncffi", "cffi", "test", "tests"}

_CARGO_TOML = """\
[package]
name = "@name@"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
@asyncffi_crate@
tokio = { version = "1.40", default-features = false, features = ["time"] }

[profile.release]
strip = "debuginfo"

# A workspace of its own, even when the project sits inside another one.
[workspace]
"""

_PYPROJECT = """\
[build-system]
requires = ["maturin>=1.5,<2", "cffi>=1.15"]
build-backend = "maturin"

[project]
name = "@name@"
version = "0.1.0"
description = "Async Rust functions for asyncio, exported with asyncffi"
requires-python = ">=3.9"
dependencies = ["asyncffi>=@crate_requirement@,<@next_minor@", "cffi>=1.15"]

[project.optional-dependencies]
test = ["pytest>=7"]

# maturin's cffi layout puts the cdylib at @package@/_native/lib_native.so, where
# asyncffi.load_packaged finds it (the ffi.py maturin generates beside it goes unused).
[tool.maturin]
bindings = "cffi"
python-source = "python"
module-name = "@package@._native"

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

_LIB_RS = """\
//! @name@: async Rust for Python's asyncio, exported with asyncffi.
//!
//! Every item marked `#[asyncffi::export]` or `#[asyncffi::object]` is a function or a class
//! of the Python package `@package@`, with its signature, argument checks and doc comment (its
//! docstring). After changing them, rebuild (`pip install .`) and regenerate the type stubs
//! (README.md says how; the tests fail until they match).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use asyncffi::Stream;

/// The error `hello` returns: raised in Python as `asyncffi.RustError` with
/// `kind == "GreetError"` (the type's name) and this `Display` text as its message.
#[derive(Debug)]
pub struct GreetError(String);

impl std::fmt::Display for GreetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Greets `name` after `delay` seconds on tokio's timer (the event loop stays free meanwhile).
///
/// An empty `name` raises `asyncffi.RustError` of kind "GreetError".
#[asyncffi::export]
async fn hello(
    name: String,
    #[asyncffi(keyword, default = 0.0)] delay: Duration,
) -> Result<String, GreetError> {
    if name.is_empty() {
        return Err(GreetError("name must not be empty".into()));
    }
    tokio::time::sleep(delay).await;
    Ok(format!("Hello, {name}!"))
}

/// Counts down from `start` to 1, one number every `every` seconds: `async for n in ...`.
#[asyncffi::export]
fn countdown(
    start: u32,
    #[asyncffi(keyword, default = 0.0)] every: Duration,
) -> impl Stream<Item = u32> {
    asyncffi::stream::unfold(start, move |n| async move {
        if n == 0 {
            return None;
        }
        tokio::time::sleep(every).await;
        Some((n, n - 1))
    })
}

/// A running total kept in Rust.
pub struct Counter {
    total: AtomicI64,
}

/// A running total kept in Rust. Close it with `with`, `async with` or `close()` (the garbage
/// collector frees it otherwise).
#[asyncffi::object]
impl Counter {
    /// A counter at `start`.
    #[asyncffi::constructor]
    fn new(#[asyncffi(default = 0)] start: i64) -> Self {
        Counter {
            total: AtomicI64::new(start),
        }
    }

    /// Adds `n` and returns the new total (wrapping around at the ends of 64 bits).
    async fn add(&self, n: i64) -> i64 {
        self.total.fetch_add(n, Ordering::Relaxed).wrapping_add(n)
    }

    /// The current total.
    fn value(&self) -> i64 {
        self.total.load(Ordering::Relaxed)
    }
}
"""

_INIT_PY = '''\
"""@name@: async Rust functions for asyncio (the Rust code is ``src/lib.rs``).

Each function and class is built when the package is imported, from the manifest the Rust
library exports: real signatures, argument checks and the Rust doc comments as docstrings.
Their types are in ``__init__.pyi``, generated by ``python -m asyncffi stubs``.
"""

import asyncffi

#: The cdylib this package ships (``@package@/_native/lib_native.so``), loaded once.
library = asyncffi.load_packaged(__name__, "_native")

for _name, _export in library.exports.items():
    _export.__module__ = __name__  # help() and repr() name this package
    globals()[_name] = _export

__all__ = sorted(library.exports)
'''

#: ``python -m asyncffi stubs`` of the library ``_LIB_RS`` builds; tests/test_scaffold.py fails
#: when it drifts from the generator's output.
_INIT_PYI = '''\
# AUTOGENERATED from the library's manifest by `python -m asyncffi stubs`: do not edit.

from typing import Any, AsyncIterable, Callable, Dict, Iterable, List, Optional, Tuple, Union

from asyncffi import Library, RustCall, RustObject, RustStream

library: Library


class Counter(RustObject):
    """A running total kept in Rust. Close it with `with`, `async with` or `close()` (the garbage
    collector frees it otherwise)."""

    def __init__(self, start: int = 0) -> None:
        """A counter at `start`."""

    def add(self, n: int) -> RustCall[int]:
        """Adds `n` and returns the new total (wrapping around at the ends of 64 bits)."""

    def value(self) -> int:
        """The current total."""


def countdown(start: int, *, every: float = 0.0, buffer: Optional[int] = None) -> RustStream[int]:
    """Counts down from `start` to 1, one number every `every` seconds: `async for n in ...`."""


def hello(name: str, *, delay: float = 0.0) -> RustCall[str]:
    """Greets `name` after `delay` seconds on tokio's timer (the event loop stays free meanwhile).

    An empty `name` raises `asyncffi.RustError` of kind "GreetError"."""


__all__ = [
    "Counter",
    "countdown",
    "hello",
]
'''

_TEST_PY = '''\
"""The package as its users see it: ``import @package@``, from the installed wheel."""

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import asyncffi
import pytest

import @package@

STUBS = Path(__file__).resolve().parent.parent / "python" / "@package@" / "__init__.pyi"


@pytest.fixture(autouse=True)
def nothing_left_in_rust():
    """After each test, every call, stream and object has been released on the Rust side."""
    yield
    deadline = time.monotonic() + 5
    while True:
        live = {k: v for k, v in @package@.library.stats().items() if k.startswith("live_") and v}
        if not live or time.monotonic() > deadline:
            break
        time.sleep(0.01)  # a Rust task is dropped just after it delivers its result
    assert not live, f"still alive in Rust: {live}"


def test_hello():
    assert asyncio.run(@package@.hello("world")) == "Hello, world!"


def test_hello_waits_without_blocking_the_loop():
    async def main():
        return await asyncio.gather(*(@package@.hello(str(i), delay=0.2) for i in range(100)))

    started = time.monotonic()
    assert asyncio.run(main()) == [f"Hello, {i}!" for i in range(100)]
    assert time.monotonic() - started < 10  # 100 waits of 0.2 s side by side, not 20 s


def test_hello_error():
    with pytest.raises(asyncffi.RustError, match="must not be empty") as raised:
        asyncio.run(@package@.hello(""))
    assert raised.value.kind == "GreetError"


def test_arguments_are_checked():
    with pytest.raises(TypeError, match="name"):
        @package@.hello(42)  # when called
    with pytest.raises(ValueError, match="delay"):
        asyncio.run(@package@.hello("x", delay=-1.0))  # a negative duration: when it starts


def test_countdown():
    async def main():
        return [n async for n in @package@.countdown(3)]

    assert asyncio.run(main()) == [3, 2, 1]


def test_cancelling_drops_the_rust_stream():
    async def main():
        async with @package@.countdown(1000, every=0.01) as numbers:
            async for n in numbers:
                if n == 998:
                    break

    asyncio.run(main())  # the fixture checks that the stream is gone from Rust


def test_counter():
    async def main():
        with @package@.Counter(start=40) as counter:
            assert await counter.add(2) == 42
            assert counter.value() == 42
        with pytest.raises(asyncffi.ClosedError):
            counter.value()

    asyncio.run(main())


def test_signatures_and_docs_come_from_rust():
    assert "Counts down from `start`" in @package@.countdown.__doc__
    assert @package@.Counter.__module__ == "@package@"


def test_stubs_are_current():
    """The stubs describe what the library exports: regenerate them after changing src/lib.rs."""
    command = [sys.executable, "-m", "asyncffi", "stubs", @package@.library.path]
    generated = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert STUBS.read_text() == generated, (
        f"{STUBS} is stale: run `{' '.join(command)} > {STUBS}`"
    )
'''

_README = """\
# @name@

Async Rust functions for Python's asyncio, exported with asyncffi (no PyO3: a plain C ABI
loaded with cffi, one wheel for every CPython 3.9+ and PyPy). Building needs cargo; the
package runs on the `asyncffi` Python package, installed in the same environment.

```sh
pip install . pytest    # builds the Rust library (maturin, cargo) and installs the package
pytest                  # the tests in tests/, against the installed package
```

```python
import asyncio, @package@

async def main():
    print(await @package@.hello("world", delay=0.1))      # Hello, world!
    print([n async for n in @package@.countdown(3)])      # [3, 2, 1]
    with @package@.Counter(start=40) as counter:
        print(await counter.add(2))                      # 42

asyncio.run(main())
```

- `src/lib.rs` is the whole library: functions with `#[asyncffi::export]`, classes with
  `#[asyncffi::object]`; their doc comments are the Python docstrings.
- `python/@package@/__init__.py` loads the cdylib the wheel ships and re-exports its
  functions; `python/@package@/__init__.pyi` holds their types, for mypy and editors.
  After changing the Rust exports, reinstall and regenerate the stubs:

  ```sh
  pip install .
  python -m asyncffi stubs "$(python -c 'import @package@; print(@package@.library.path)')" \\
      > python/@package@/__init__.pyi
  ```

- The Rust dependency on asyncffi is this line of `Cargo.toml`:

  ```toml
  @asyncffi_crate@
  ```
"""

_GITIGNORE = """\
/target
__pycache__/
*.egg-info/
/dist
# what `maturin develop` puts beside the sources
/python/@package@/_native/
"""


def package_name(name: str) -> str:
    """The Python package of a project named ``name`` (``my-lib`` -> ``my_lib``).

    :raises ValueError: ``name`` cannot name a crate and a Python package.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
        raise ValueError(
            f"{name!r} is not a project name: lowercase letters, digits, '_' and '-', starting "
            "with a letter"
        )
    package = name.replace("-", "_")
    if keyword.iskeyword(package) or package in _RESERVED or package in _stdlib_names():
        raise ValueError(f"{name!r} would shadow the Python module {package!r}: choose another")
    return package


def _stdlib_names() -> FrozenSet[str]:
    """The standard library's top-level module names (``sys.stdlib_module_names`` from 3.10 on;
    before, the built-in modules and what the stdlib directories hold)."""
    names = getattr(sys, "stdlib_module_names", None)
    if names is not None:
        return frozenset(names)
    import pkgutil
    import sysconfig

    stdlib = sysconfig.get_paths()["stdlib"]
    where = [stdlib, os.path.join(stdlib, "lib-dynload")]
    return frozenset(sys.builtin_module_names) | {m.name for m in pkgutil.iter_modules(where)}


def crate_path(directory: str) -> str:
    """The directory of the asyncffi core crate in a checkout of asyncffi (its root, or the
    crate's own directory), made absolute.

    :raises ValueError: there is no asyncffi crate there.
    """
    root = os.path.abspath(directory)
    for candidate in (os.path.join(root, "rust", "asyncffi"), root):
        manifest = os.path.join(candidate, "Cargo.toml")
        try:
            with open(manifest, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            continue
        if re.search(r'^name\s*=\s*"asyncffi"\s*$', text, re.MULTILINE):
            return candidate
    nested = os.path.join(root, "rust", "asyncffi")
    raise ValueError(f"no asyncffi crate in {root} (nor in {nested})")


def dependency_line(asyncffi_path: Optional[str]) -> str:
    """The ``[dependencies]`` line of the core crate: from crates.io, or a checkout's path."""
    if asyncffi_path is None:
        return f'asyncffi = "{CRATE_REQUIREMENT}"'
    return f"asyncffi = {{ path = {_toml_string(crate_path(asyncffi_path))} }}"


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def files(name: str, asyncffi_path: Optional[str] = None) -> Dict[str, str]:
    """The project's files, by path relative to its directory."""
    package = package_name(name)
    major, minor = (int(part) for part in CRATE_REQUIREMENT.split("."))
    values = {
        "name": name,
        "package": package,
        "asyncffi_crate": dependency_line(asyncffi_path),
        "crate_requirement": CRATE_REQUIREMENT,
        "next_minor": f"{major}.{minor + 1}" if major == 0 else f"{major + 1}",
    }
    templates = {
        "Cargo.toml": _CARGO_TOML,
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        ".gitignore": _GITIGNORE,
        "src/lib.rs": _LIB_RS,
        f"python/{package}/__init__.py": _INIT_PY,
        f"python/{package}/__init__.pyi": _INIT_PYI,
        f"python/{package}/py.typed": "",
        f"tests/test_{package}.py": _TEST_PY,
    }
    out = {}
    for path, template in templates.items():
        text = template
        for key, value in values.items():
            text = text.replace(f"@{key}@", value)
        out[path] = text
    return out


def create(name: str, path: Optional[str] = None, asyncffi_path: Optional[str] = None) -> str:
    """Writes a new project named ``name`` into ``path`` (default ``./name``), which must not
    exist or be empty, and returns its directory.

    :raises ValueError: a bad name, no asyncffi crate at ``asyncffi_path``, or ``path`` is not
        empty.
    """
    contents = files(name, asyncffi_path)
    directory = os.path.abspath(path if path is not None else name)
    if os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
        raise ValueError(f"{directory} exists and is not an empty directory")
    for relative, text in contents.items():
        target = os.path.join(directory, *relative.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    return directory
