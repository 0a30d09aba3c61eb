"""The plain check of input facts (:mod:`converge_rules.engine.input_check`) never
disagrees with pydantic: whatever batch it accepts, pydantic accepts too and validates
to the same values, of the same types; a batch pydantic refuses, it refuses (and the
reader then reports pydantic's error)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from converge_rules.blobs import Blob, as_blob
from converge_rules.engine.input_check import plain_check
from converge_rules.engine.inputs import _adapter, _time_reader
from converge_rules.language.syntax.span import Span
from converge_rules.program import MISSING, FieldSpec, TypeSpec, ValueType

SPAN = Span("t.cvg", 1, 1, 1, 1)


class Text(str):
    """A ``str`` subclass: not plainly a str."""


SCALARS = [ValueType("str"), ValueType("int"), ValueType("float"), ValueType("bool"),
           ValueType("enum", enum="Color", members=("red", "green")),
           ValueType("enum"), ValueType("date"), ValueType("datetime"),
           ValueType("duration"), ValueType("blob")]

VALUES: list[Any] = [
    "red", "blue", "", "é", "\ud800", "a\udfffb", Text("red"), "2026-12-06",
    "2026-12-06T10:00:00Z", "P30D", "Color.red", "sha256:" + "0" * 64,
    0, 1, -1, 2**53, 2**53 + 1, -(2**53) - 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1,
    10**400, True, False, 0.0, -0.0, 1.5, 1e308, float("inf"), float("nan"),
    None, [], [1, 2], (1, "a"), ["red", "green"], [None], [[1]], {"a": 1}, {1, 2},
    dt.date(2026, 12, 6), dt.datetime(2026, 12, 6, 10, tzinfo=dt.UTC),
    dt.timedelta(days=3), Blob.of("payload"), b"bytes",
]


@st.composite
def value_types(draw: st.DrawFn) -> ValueType:
    vt = draw(st.sampled_from(SCALARS))
    if draw(st.booleans()):
        vt = ValueType("list", element=vt)
    if draw(st.booleans()):
        vt = ValueType(vt.base, True, vt.enum, vt.members, vt.element)
    return vt


@st.composite
def specs(draw: st.DrawFn) -> TypeSpec:
    fields = []
    for i in range(draw(st.integers(1, 4))):
        vt = draw(value_types())
        default = draw(st.sampled_from([MISSING, None, 0, "x"])) if not vt.optional else None
        fields.append(FieldSpec(f"f{i}", vt, False, default))
    return TypeSpec(0, "T", tuple(fields), (), False, SPAN)


# Values near each base type's edges, so that whole batches of nearly right facts are
# drawn (a value from VALUES, of any type, goes into any field now and then).
EDGES: dict[str, list[Any]] = {
    "str": ["a", "", "é", "\ud800", Text("a"), "Color.red"],
    "int": [0, -5, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**400, True, 1.0],
    "float": [0.0, -0.0, 2.5, 1e308, float("inf"), float("nan"), 3, 2**53, 2**53 + 1,
              -(2**53) - 1, 2**63, 10**400, False, "1.5"],
    "bool": [True, False, 0, 1, "true"],
    "enum": ["red", "green", "blue", "Color.red", Text("red"), "\udfff"],
    "date": ["2026-12-06", "2026-13-01", dt.date(2026, 12, 6), 20261206],
    "datetime": ["2026-12-06T10:00:00Z", "2026-12-06", dt.datetime(2026, 12, 6, 10,
                                                                  tzinfo=dt.UTC)],
    "duration": ["P30D", "30 days", dt.timedelta(days=3)],
    "blob": ["text", "sha256:" + "0" * 64, Blob.of("payload"), 5],
}


def field_values(vt: ValueType) -> st.SearchStrategy[Any]:
    """Values for a field of type ``vt``: mostly near right, now and then anything."""
    if vt.base == "list":
        assert vt.element is not None
        near = st.one_of(st.lists(field_values(vt.element), max_size=3),
                         st.lists(field_values(vt.element), max_size=3).map(tuple))
    else:
        near = st.sampled_from(EDGES[vt.base])
    if vt.optional:
        near = st.one_of(near, st.none())
    return st.one_of(near, near, near, st.sampled_from(VALUES))


@st.composite
def fact(draw: st.DrawFn, spec: TypeSpec) -> Any:
    """A fact of ``spec``: each field given or left out, now and then an unknown one,
    now and then no dict at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from([None, [], "fact"]))
    out = {f.name: draw(field_values(f.type)) for f in spec.fields
           if draw(st.integers(0, 5)) > 0}
    if draw(st.integers(0, 9)) == 0:
        out["other"] = 1
    return out


def facts(spec: TypeSpec) -> st.SearchStrategy[Any]:
    return fact(spec)


def typed(value: Any) -> Any:
    """``value`` with the type of every part spelled out (1 and 1.0 differ)."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return (type(value).__name__, [typed(v) for v in value])
    return (type(value).__name__, repr(value))


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_the_plain_check_accepts_only_what_pydantic_accepts_and_as_it_validates(
        data: st.DataObject) -> None:
    spec = data.draw(specs())
    batch = data.draw(st.lists(facts(spec), min_size=1, max_size=4))
    plain = plain_check(spec, _time_reader, as_blob)(batch)
    try:
        expected = _adapter(spec).validate_python(batch)
    except (ValidationError, UnicodeEncodeError):  # (pydantic on some lone surrogates)
        assert plain is None
        return
    if plain is not None:
        assert typed(plain) == typed(expected)


def test_plainly_right_facts_are_accepted_and_left_as_given() -> None:
    """The common case takes the plain path (and a fact needing no conversion is the
    very dict given)."""
    spec = TypeSpec(0, "T", (FieldSpec("a", ValueType("str"), True),
                             FieldSpec("n", ValueType("int"), False),
                             FieldSpec("x", ValueType("float"), False, 0.0)), (), False, SPAN)
    given_facts = [{"a": "k", "n": 3, "x": 1.5}, {"a": "j", "n": 4}, {"a": "i", "n": 5, "x": 2}]
    checked = plain_check(spec, _time_reader, as_blob)(given_facts)
    assert checked is not None
    assert checked[0] is given_facts[0] and checked[1] is given_facts[1]
    assert checked[2] == {"a": "i", "n": 5, "x": 2.0} and type(checked[2]["x"]) is float
    assert given_facts[2]["x"] == 2 and type(given_facts[2]["x"]) is int  # not changed
