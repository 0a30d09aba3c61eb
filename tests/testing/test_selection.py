"""``-k`` expressions select tests by id, like pytest."""

from __future__ import annotations

import pytest

from converge_rules.testing.selection import SelectionError, compile_keyword

IDS = ["a.cvg::price rounding", "a.cvg::undercut wins", "b.cvg::alerts[case 2]"]


@pytest.mark.parametrize(("expr", "chosen"), [
    (None, IDS),
    ("", IDS),
    ("undercut", ["a.cvg::undercut wins"]),
    ("UNDERCUT", ["a.cvg::undercut wins"]),
    ("a.cvg and not undercut", ["a.cvg::price rounding"]),
    ("rounding or alerts", ["a.cvg::price rounding", "b.cvg::alerts[case 2]"]),
    ("not (a.cvg or b.cvg)", []),
    ('"price rounding"', ["a.cvg::price rounding"]),
    ("'[case 2]'", ["b.cvg::alerts[case 2]"]),
])
def test_selection(expr: str | None, chosen: list[str]) -> None:
    match = compile_keyword(expr)
    assert [i for i in IDS if match(i)] == chosen


@pytest.mark.parametrize("expr", ["(undercut", "undercut)", "and", "not", "a or"])
def test_bad_expressions_are_usage_errors(expr: str) -> None:
    with pytest.raises(SelectionError, match="-k"):
        compile_keyword(expr)
