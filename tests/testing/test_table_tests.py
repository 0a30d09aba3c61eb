"""Table tests: one test, many cases — inline rows or CSV/JSON Lines fixtures — each
reported on its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.parser import parse
from converge_rules.language.syntax.span import UNKNOWN_SPAN

HEAD = """\
ruleset shop
enum Channel { web, store }
fact Cost  { key sku: str, amount: float }
fact Price { key sku: str, key channel: Channel, amount: float }
agent cost_plus {
  when Cost(sku, amount: cost)
  emit Price(sku: sku, channel: web, amount: round(cost * 1.2, 2))
}
"""

INLINE = """
test "margin" {
  cases {
    {cost: 10.0, price: 12.0},
    {cost: 5.0, price: 6.0}
    {cost: 1.0, price: 9.0}
  }
  given Cost(sku: "A1", amount: cost)
  expect Price(sku: "A1", channel: web, amount: price)
}
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _run(tests: str, *args: str) -> Result:
    Path("shop.cvg").write_text(HEAD + tests, encoding="utf-8")
    return CliRunner().invoke(main, ["test", "shop.cvg", "-v", *args])


def test_cases_parse_into_the_test_node() -> None:
    result = parse(HEAD + INLINE + 'test "f" {\n  cases "rows.csv"\n  expect status converged\n}\n')
    assert not result.diagnostics
    assert result.module is not None
    tests = [i for i in result.module.items if isinstance(i, n.Test)]
    assert tests[0].cases is not None and tests[0].cases.file is None
    assert [[a.name.name for a in r.fields] for r in tests[0].cases.rows] == [
        ["cost", "price"]] * 3
    assert tests[1].cases == n.Cases((), "rows.csv", UNKNOWN_SPAN)
    plain = parse(HEAD + 'test "p" {\n  expect status converged\n}\n').module
    assert plain is not None
    test = plain.items[-1]
    assert isinstance(test, n.Test) and test.cases is None


def test_cases_come_first_in_a_test() -> None:
    result = parse(HEAD + 'test "t" {\n  given Cost(sku: "A", amount: 1.0)\n'
                          '  cases { {a: 1} }\n}\n')
    assert result.diagnostics and result.diagnostics[0].span is not None
    assert result.diagnostics[0].span.line == HEAD.count("\n") + 3


def test_each_inline_row_is_a_case() -> None:
    result = _run(INLINE)
    assert result.exit_code == 1
    out = result.output
    assert "PASSED shop.cvg::margin[case 1]" in out
    assert "PASSED shop.cvg::margin[case 2]" in out
    assert "FAILED shop.cvg::margin[case 3]" in out
    assert 'expected Price(sku: "A1", channel: web, amount: 9.0)' in out
    assert "in case 3: cost = 1.0, price = 9.0" in out
    assert "amount: expected 9.0, got 1.2" in out
    assert out.rstrip().endswith("2 passed, 1 failed")


def test_k_selects_one_case() -> None:
    result = _run(INLINE, "-k", "'case 2'")
    assert result.exit_code == 0
    assert result.output.rstrip().endswith("1 passed, 0 failed")


def test_csv_fixture() -> None:
    Path("rows.csv").write_text("sku,cost,price\nA1,10,12.0\nB2,2.5,3.0\n", encoding="utf-8")
    result = _run('test "file" {\n  cases "rows.csv"\n  given Cost(sku: sku, amount: cost)\n'
                  "  expect Price(sku: sku, amount: price)\n}\n")
    assert result.exit_code == 0, result.output
    assert "PASSED shop.cvg::file[case 2]" in result.output


def test_jsonl_fixture_with_a_failing_row() -> None:
    Path("rows.jsonl").write_text('{"cost": 10, "price": 12.0}\n{"cost": 2, "price": 7}\n',
                                  encoding="utf-8")
    result = _run('test "file" {\n  cases "rows.jsonl"\n'
                  '  given Cost(sku: "A1", amount: cost)\n'
                  '  expect Price(sku: "A1", amount: price)\n}\n')
    assert result.exit_code == 1
    assert "PASSED shop.cvg::file[case 1]" in result.output
    assert "FAILED shop.cvg::file[case 2]" in result.output
    assert "amount: expected 7, got 2.4" in result.output


def test_missing_fixture_fails_the_test_with_its_path() -> None:
    result = _run('test "file" {\n  cases "nope.csv"\n'
                  '  given Cost(sku: "A1", amount: cost)\n  expect status converged\n}\n')
    assert result.exit_code == 1
    assert "FAILED shop.cvg::file" in result.output
    assert "cannot read the cases file" in result.output and "nope.csv" in result.output
    assert "unknown name" not in result.output  # its columns are unknown, not undeclared


def test_empty_cases_fail() -> None:
    result = _run('test "none" {\n  cases { }\n  expect status converged\n}\n')
    assert result.exit_code == 1
    assert 'table test "none" has no cases' in result.output


def test_case_variables_do_not_leak_into_other_tests() -> None:
    result = _run(INLINE + 'test "other" {\n  given Cost(sku: "A1", amount: cost)\n'
                           "  expect status converged\n}\n")
    assert result.exit_code == 2
    assert "unknown name `cost`" in result.output


pytest_plugins = ("pytester",)


def test_pytest_items_per_case(pytester: pytest.Pytester,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makefile(".cvg", shop=HEAD + INLINE)
    result = pytester.runpytest("-p", "converge_rules.testing.pytest_plugin",
                                "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*shop.cvg::margin?case 1? PASSED*",
        "*shop.cvg::margin?case 3? FAILED*",
    ])
    assert "in case 3: cost = 1.0, price = 9.0" in result.stdout.str()
