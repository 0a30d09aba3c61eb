"""``jsontext.dumps`` with ``indent`` writes what ``json.dumps`` writes, byte for byte
(then made one-line-safe as always), though it walks dicts itself and encodes lists
of flat dicts (a result's facts) with the C encoder."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from converge_rules.jsontext import dumps

# strings that look like the separators the fast path rewrites, and line breaks
TEXTS = st.one_of(st.text(max_size=6), st.sampled_from([
    "}, {", '},\n  {', "},\\n    {", "\n", "\u2028", "\ud800", '"', "\\", "{", "}", ""]))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), TEXTS,
                    st.floats(allow_nan=True, allow_infinity=True))
FLAT = st.dictionaries(TEXTS, SCALARS, min_size=0, max_size=4)
KEYS = st.one_of(TEXTS, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))


def documents() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(SCALARS, st.lists(FLAT, max_size=4)),
        lambda inner: st.one_of(st.lists(inner, max_size=4),
                                st.dictionaries(TEXTS, inner, max_size=4),
                                st.dictionaries(KEYS, inner, max_size=3)),
        max_leaves=20)


_UNSAFE = re.compile("[\x85\u2028\u2029\ud800-\udfff]")


def expected(value: Any, **options: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, **options)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(documents(), st.sampled_from([0, 1, 2, 4]), st.booleans())
def test_indented_text_is_what_json_writes(value: Any, indent: int, sort_keys: bool) -> None:
    try:
        want = expected(value, indent=indent, sort_keys=sort_keys)
    except TypeError:  # keys of several types cannot be sorted: both refuse
        with pytest.raises(TypeError):
            dumps(value, indent=indent, sort_keys=sort_keys)
        return
    assert dumps(value, indent=indent, sort_keys=sort_keys) == want


def test_a_result_s_facts_are_one_field_a_line() -> None:
    doc = {"facts": {"Path": [{"src": 0, "dst": 1}, {"src": 0, "dst": "},\n      {"}]},
           "status": "converged"}
    assert dumps(doc, indent=2, sort_keys=True) == expected(doc, indent=2, sort_keys=True)


def test_a_document_holding_itself_is_refused_as_json_refuses_it() -> None:
    doc: dict[str, Any] = {}
    doc["a"] = doc
    with pytest.raises(ValueError, match="Circular reference"):
        dumps(doc, indent=2)
