"""What the property tests share: hypothesis strategies for the values that cross the bridge,
and exact comparison of what comes back.

Imported by tests/test_properties.py (every exported type, against the test library) and
tests/stress/test_value_properties.py (the dynamic codec under load, against the built-ins).
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

I64_MIN, I64_MAX, U64_MAX = -(2**63), 2**63 - 1, 2**64 - 1

#: Every float, with the edges hypothesis may not reach often: signed zero, the infinities,
#: NaN, the smallest subnormal and the largest finite double.
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308]
)
#: Every int a dynamic value carries: i64, and u64 above i64::MAX.
INTS = st.integers(min_value=I64_MIN, max_value=U64_MAX)


def values(*, max_leaves: int, max_size: int, text_size: int) -> st.SearchStrategy[Any]:
    """Dynamic values (``Value`` on the Rust side): scalars, lists and str-keyed dicts."""
    text = st.text(max_size=text_size)
    scalars = st.none() | st.booleans() | INTS | FLOATS | st.binary(max_size=64) | text
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=max_size)
            | st.dictionaries(st.text(max_size=8), inner, max_size=max_size)
        ),
        max_leaves=max_leaves,
    )


def same(a: Any, b: Any, *, ordered: bool = True) -> bool:
    """Exact equality: same types all the way down, floats bit for bit (NaN equals NaN), and
    dict keys in the same order unless ``ordered`` is false (a Rust ``HashMap`` has none)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y, ordered=ordered) for x, y in zip(a, b))
    if type(a) is dict:
        keys_match = list(a) == list(b) if ordered else a.keys() == b.keys()
        return keys_match and all(same(a[k], b[k], ordered=ordered) for k in a)
    return bool(a == b)
