"""A row of a table test binds each name once, and a fixture saved by a spreadsheet
reads as the same fixture.

Met as: ``{cost: 10.0, price: 20.0, cost: 11.0}``, a CSV header ``cost,price,cost`` and
a JSON Lines line ``{"cost": 10, "price": 20, "cost": 11}`` each ran with the last
``cost`` and no word from ``converge check`` or ``converge test``: which value the
author meant is unknown, so each is an error. A CSV fixture saved as "CSV UTF-8" by a
spreadsheet starts with a byte order mark, which became part of the first column's
name (``\\ufeffcost``): the checker said `cost` was unknown and suggested `\\ufeffcost`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main
from converge_rules.language.checks.checker import check_file

HEAD = """\
ruleset shop
fact Cost  { key sku: str, amount: float }
fact Price { key sku: str, amount: float }
agent double {
  when Cost(sku, amount)
  emit Price(sku: sku, amount: amount * 2.0)
}
"""

FROM_FILE = """
test "margin" {
  cases "FILE"
  given Cost(sku: "A1", amount: cost)
  expect Price(amount: price)
}
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _test(*args: str) -> Result:
    return CliRunner().invoke(main, ["test", "shop.cvg", *args])


def test_a_name_bound_twice_in_an_inline_row_is_an_error() -> None:
    Path("shop.cvg").write_text(HEAD + '\ntest "margin" {\n  cases {\n'
                                '    {cost: 10.0, price: 20.0, cost: 11.0}\n  }\n'
                                '  given Cost(sku: "A1", amount: cost)\n'
                                '  expect Price(amount: price)\n}\n', encoding="utf-8")
    errors = [d for d in check_file(Path("shop.cvg")).diagnostics if d.is_error]
    assert [(d.code, d.span.line if d.span else None) for d in errors] == [("CVG110", 11)]
    assert "`cost`" in errors[0].message
    assert _test().exit_code == 2


@pytest.mark.parametrize(("name", "text", "line"), [
    ("rows.csv", "cost,price,cost\n10,20,11\n", 1),
    ("rows.jsonl", '{"cost": 10, "price": 20}\n{"cost": 10, "price": 20, "cost": 11}\n', 2),
])
def test_a_name_bound_twice_in_a_fixture_fails_the_test(name: str, text: str,
                                                        line: int) -> None:
    Path("shop.cvg").write_text(HEAD + FROM_FILE.replace("FILE", name), encoding="utf-8")
    Path(name).write_text(text, encoding="utf-8")
    result = _test()
    assert result.exit_code == 1, result.output
    assert f"{name}:{line}:" in result.output and "`cost` twice" in result.output
    assert "passed" not in result.output.replace("0 passed", "")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("name", "text"), [
    ("rows.csv", "cost,price\n10,20\n10,21\n"),
    ("rows.jsonl", '{"cost": 10, "price": 20}\n{"cost": 10, "price": 21}\n'),
])
def test_a_fixture_with_a_byte_order_mark_reads_as_without(name: str, text: str) -> None:
    Path("shop.cvg").write_text(HEAD + FROM_FILE.replace("FILE", name), encoding="utf-8")
    Path(name).write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert not [d for d in check_file(Path("shop.cvg")).diagnostics if d.is_error]
    result = _test()
    assert result.exit_code == 1, result.output
    assert "1 passed, 1 failed" in result.output
    assert "FAILED shop.cvg::margin[case 2]" in result.output
