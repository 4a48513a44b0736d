"""The reference site (mkdocs.yml, docs/) documents every public name: each name in
``asyncffi.__all__`` has a mkdocstrings directive (``::: asyncffi.NAME``) in the API reference
pages, and the plugin module has its page. Reads the Markdown sources only (no build, no
network); ``mkdocs build --strict`` in scripts/test.sh renders them."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Dict, List

import asyncffi
import pytest

#: Markdown sources, the same on every interpreter.
pytestmark = pytest.mark.interpreter_independent

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"

# `::: dotted.path` at the start of a line: what mkdocstrings renders there.
DIRECTIVE = re.compile(r"^:::\s+([\w.]+)\s*$", re.MULTILINE)


def directives() -> Dict[str, List[str]]:
    """Every identifier a reference page renders, with the pages that render it."""
    found: Dict[str, List[str]] = {}
    for page in sorted(REFERENCE.glob("*.md")):
        for name in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            found.setdefault(name, []).append(page.name)
    return found


def test_every_public_name_is_in_the_api_reference() -> None:
    rendered = directives()
    missing = [name for name in asyncffi.__all__ if f"asyncffi.{name}" not in rendered]
    assert not missing, (
        f"names in asyncffi.__all__ without a `::: asyncffi.NAME` entry in {REFERENCE}: {missing}"
    )


def test_each_public_name_is_rendered_once() -> None:
    # Two entries for one object give it two anchors, which the site's cross-references refuse.
    twice = {
        name: pages
        for name, pages in directives().items()
        if len(pages) > 1 and name.removeprefix("asyncffi.") in asyncffi.__all__
    }
    assert not twice, f"rendered on more than one reference page: {twice}"


def test_the_pytest_plugin_has_its_reference_page() -> None:
    assert "pytest_plugin.md" in directives().get("asyncffi.pytest_plugin", [])


def test_every_reference_entry_names_something_that_exists() -> None:
    # A renamed or removed name must leave the reference too.
    for name in directives():
        module_name, _, attribute = name.rpartition(".")
        try:
            importlib.import_module(name)
            continue
        except ImportError:
            pass
        module = importlib.import_module(module_name)
        assert hasattr(module, attribute), f"the API reference renders {name}, which is gone"


def test_every_page_is_in_the_navigation() -> None:
    nav = set(re.findall(r":\s*([\w/-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text("utf-8"), re.M))
    pages = {str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md")}
    assert pages == nav, f"pages missing from mkdocs.yml's nav: {sorted(pages - nav)}"
