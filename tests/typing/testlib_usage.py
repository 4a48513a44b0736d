"""Typed use of the test library through its generated stubs (``asyncffi_testlib.pyi``),
checked by mypy (``pyproject.toml`` lists this file): functions, an object, records as
``TypedDict``s and an enum as a union of its variants. ``tests/test_typing.py`` has the mistakes
that strict mypy must refuse."""

from __future__ import annotations

from typing import Dict, List

import asyncffi
import asyncffi_testlib as lib
from asyncffi_testlib import Event, Point, Shape


async def typed_calls() -> None:
    event: Event = await lib.event(7, ["a"])
    name: str = event["name"]
    ids: Dict[str, List[int]] = await lib.by_tag([event, {"id": 8, "name": "n", "tags": []}])
    point: Point = {"x": 1, "y": 2.5, "label": "p", "tags": [], "note": None}
    same: Point = await lib.rt_point_later(point)
    shapes: List[Shape] = [
        "Empty",
        {"Circle": 1.0},
        {"Segment": (1, 2)},
        {"Rect": {"w": 1, "h": 2}},
    ]
    for shape in shapes:
        back: Shape = lib.rt_shape(shape)
        del back
    with lib.Notebook(capacity=2) as book:
        count: int = await book.add("note")
        notes: List[str] = book.notes()
    steps: asyncffi.RustStream[int] = lib.steps(0, 2, 3, buffer=4)
    async for step in steps:
        count += step
    text: str = await lib.where_run(0.1, label="x", runtime="loop")
    del name, ids, same, notes, text
