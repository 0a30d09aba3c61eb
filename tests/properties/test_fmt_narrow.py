"""The properties of ``converge fmt`` hold when lines must break: the same random
rulesets formatted to a narrow width, so that long ``where`` guards, ``require`` lines
and argument values are broken at their ``or``/``and``/``else`` (found: a long
expression was put on one line of any length — Waltz's 10-line `shapes` guard became
one of 600 columns)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given

from converge_rules.language.format import formatter
from converge_rules.language.format.formatter import format_module, format_source
from tests.properties.strategies import NoisyText, modules, noisy_texts
from tests.properties.test_fmt_properties import SETTINGS, _parse


@pytest.fixture(autouse=True)
def narrow() -> Iterator[None]:
    width = formatter.LINE_WIDTH
    formatter.LINE_WIDTH = 24
    try:
        yield
    finally:
        formatter.LINE_WIDTH = width


@SETTINGS
@given(modules())
def test_a_narrow_layout_parses_back_to_the_same_tree_and_is_idempotent(module) -> None:  # type: ignore[no-untyped-def]
    text = format_module(module)
    assert _parse(text) == module
    assert format_source(text) == text


@SETTINGS
@given(noisy_texts())
def test_a_narrow_layout_keeps_meaning_and_comments(noisy: NoisyText) -> None:
    parsed = _parse(noisy.text)
    formatted = format_source(noisy.text)
    reparsed = _parse(formatted)
    assert reparsed == parsed
    assert [c.text for c in reparsed.comments] == [c.text for c in parsed.comments]
    assert format_source(formatted) == formatted
