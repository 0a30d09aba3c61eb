"""Every test id is unique: a plain test cannot take the id of a table test's case.

Met as: a table test "margin" with a row named `case "big"` and a plain test named
"margin[big]" both had the id ``file.cvg::margin[big]``; `converge test` printed
``FAILED t.cvg::margin[big]`` and ``PASSED t.cvg::margin[big]``, and neither `-k` nor a
pytest node id could tell them apart.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from converge_rules.language.checks.checker import check_file

RULES = """\
ruleset shop
fact Cost  { key sku: str, amount: float }
fact Price { key sku: str, amount: float }
agent double {
  when Cost(sku, amount)
  emit Price(sku: sku, amount: amount * 2.0)
}
test "margin" {
  cases {
    case "big" {cost: 1.0, price: 2.0}
    {cost: 2.0, price: 4.0}
  }
  given Cost(sku: "A1", amount: cost)
  expect Price(amount: price)
}
test "NAME" {
  given Cost(sku: "A1", amount: 1.0)
  expect Price(amount: 2.0)
}
"""


def _codes(name: str, tmp_path: Path) -> list[tuple[str, int]]:
    path = tmp_path / "shop.cvg"
    path.write_text(RULES.replace("NAME", name), encoding="utf-8")
    return [(d.code, d.span.line if d.span else 0)
            for d in check_file(path).diagnostics if d.is_error]


@pytest.mark.parametrize("name", ["margin[big]", "margin[case 2]"])
def test_a_test_named_as_a_case_of_a_table_test_is_an_error(name: str,
                                                            tmp_path: Path) -> None:
    assert _codes(name, tmp_path) == [("CVG704", 16)]


@pytest.mark.parametrize("name", ["margin big", "margins[big]", "margin[big"])
def test_other_names_are_fine(name: str, tmp_path: Path) -> None:
    assert _codes(name, tmp_path) == []


@pytest.mark.parametrize("name", ["line\\nbreak", "tab\\there"])
def test_a_case_name_that_is_not_one_printable_line_is_an_error(name: str,
                                                                tmp_path: Path) -> None:
    # Met as: the pytest node id of `case "line\nbreak"` held a newline (pytest prints
    # ids as they are), so the case could not be selected by its id.
    assert _codes("other", tmp_path) == []
    path = tmp_path / "shop.cvg"
    path.write_text(RULES.replace('case "big"', f'case "{name}"').replace("NAME", "other"),
                    encoding="utf-8")
    errors = [d for d in check_file(path).diagnostics if d.is_error]
    assert [(d.code, d.span.line if d.span else 0) for d in errors] == [("CVG708", 10)]
    assert "printable" in (errors[0].help or "")
