"""No name in a test silently becomes a wildcard (issue 10, item 1).

Met as: ``cases { {cost: 10.0, price: 20.0} {cost: 10.0, prise: 999.0} }`` with
``expect Price(amount: price)``: the second row left ``price`` unbound, which matched any
amount; ``converge check`` was clean and ``converge test`` said 2 passed. Every row of
``cases`` (inline, a CSV header, a JSON Lines line) must bind exactly the names the
test's steps use, and a name that nothing binds is an error wherever a test uses it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main
from converge_rules.language.checks.checker import check_file
from converge_rules.language.diagnostics.core import Diagnostic
from converge_rules.testing.runner import load_suite, run_case

HEAD = """\
ruleset claims
uses tool fx_rate
fact Cost  { key sku: str, amount: float }
fact Price { key sku: str, amount: float }
agent double {
  when Cost(sku, amount)
  emit Price(sku: sku, amount: amount * 2.0)
}
"""

MISSPELT = """
test "margin" {
  cases {
    {cost: 10.0, price: 20.0}
    {cost: 10.0, prise: 999.0}
  }
  given Cost(sku: "A1", amount: cost)
  expect Price(amount: price)
}
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _write(tests: str) -> Path:
    path = Path("claims.cvg")
    path.write_text(HEAD + tests, encoding="utf-8")
    return path


def _errors(tests: str) -> list[Diagnostic]:
    return [d for d in check_file(_write(tests)).diagnostics if d.is_error]


def _where(d: Diagnostic) -> tuple[str, int, int]:
    assert d.span is not None
    return d.code, d.span.line, d.span.column


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


LINES = HEAD.count("\n")  # the line numbers of test text start after the head


def test_a_misspelt_column_is_a_check_error_at_the_row() -> None:
    errors = _errors(MISSPELT)
    assert [_where(d) for d in errors] == [("CVG706", LINES + 5, 18)]
    assert "case 2 binds `prise`" in errors[0].message
    assert errors[0].help is not None and "did you mean `price`?" in errors[0].help


def test_the_misspelt_column_no_longer_passes() -> None:
    _write(MISSPELT)
    checked = _cli("check", "claims.cvg")
    assert checked.exit_code == 1 and "CVG706" in checked.output
    tested = _cli("test", "claims.cvg")
    assert tested.exit_code == 2, tested.output
    assert "2 passed" not in tested.output and "Traceback" not in tested.output


def test_a_row_that_leaves_a_name_out_is_an_error_at_the_row() -> None:
    errors = _errors('\ntest "margin" {\n  cases {\n    {cost: 10.0, price: 20.0}\n'
                     '    {cost: 10.0}\n  }\n  given Cost(sku: "A1", amount: cost)\n'
                     '  expect Price(amount: price)\n}\n')
    assert [_where(d) for d in errors] == [("CVG707", LINES + 5, 5)]
    assert "case 2 does not bind `price`" in errors[0].message
    assert errors[0].related and errors[0].related[0].span.line == LINES + 8  # its use


def test_a_name_no_step_uses_is_an_error() -> None:
    errors = _errors('\ntest "t" {\n  cases {\n    {cost: 1.0, note: "cheap"}\n  }\n'
                     '  given Cost(sku: "A1", amount: cost)\n  expect status converged\n}\n')
    assert [_where(d) for d in errors] == [("CVG706", LINES + 4, 17)]


def test_named_rows_are_named_in_the_errors() -> None:
    errors = _errors('\ntest "margin" {\n  cases {\n'
                     '    case "small claim" {cost: 10.0, price: 20.0}\n'
                     '    case "big claim" {cost: 10.0}\n  }\n'
                     '  given Cost(sku: "A1", amount: cost)\n  expect Price(amount: price)\n}\n')
    assert [d.message for d in errors] == [
        'case "big claim" does not bind `price`, which the test uses']


def test_a_csv_column_misspelt_names_the_file_and_line() -> None:
    Path("rows.csv").write_text("cost,prise\n10,20\n", encoding="utf-8")
    errors = _errors('\ntest "file" {\n  cases "rows.csv"\n'
                     '  given Cost(sku: "A1", amount: cost)\n  expect Price(amount: price)\n}\n')
    codes = {d.code: d for d in errors}
    assert set(codes) == {"CVG706", "CVG106"}
    column = codes["CVG706"]
    assert "the header of `rows.csv` (line 1)" in column.message and "`prise`" in column.message
    assert column.help is not None and "did you mean `price`?" in column.help
    assert _where(codes["CVG106"])[1] == LINES + 5  # `price`, which no row binds


def test_a_csv_fixture_without_a_column_the_test_uses() -> None:
    Path("rows.csv").write_text("cost,price\n10,20\n", encoding="utf-8")
    Path("costs.csv").write_text("cost\n10\n", encoding="utf-8")
    errors = _errors('\ntest "a" {\n  cases "rows.csv"\n  given Cost(sku: "A1", amount: cost)\n'
                     '  expect Price(amount: price)\n}\n'
                     'test "b" {\n  cases "costs.csv"\n  given Cost(sku: "A1", amount: cost)\n'
                     '  expect Price(amount: price)\n}\n')
    # `price` is bound in test "a" only: in "b" it is an unknown name where it is used
    assert [_where(d) for d in errors] == [("CVG106", LINES + 10, 24)]
    assert errors[0].help is not None and "`_`" in errors[0].help


def test_jsonl_lines_are_checked_one_by_one_with_their_line() -> None:
    Path("rows.jsonl").write_text('{"cost": 10, "price": 20}\n\n{"cost": 1, "prise": 2}\n'
                                  '{"cost": 3}\n{"cost": 4, "price": 8}\n', encoding="utf-8")
    errors = _errors('\ntest "file" {\n  cases "rows.jsonl"\n'
                     '  given Cost(sku: "A1", amount: cost)\n  expect Price(amount: price)\n}\n')
    assert [(d.code, d.message) for d in errors] == [
        ("CVG706", "line 3 of `rows.jsonl` binds `prise`, which no step of the test uses"),
        ("CVG707", "line 4 of `rows.jsonl` does not bind `price`, which the test uses"),
    ]
    assert all(_where(d)[1] == LINES + 3 for d in errors)  # at `cases "rows.jsonl"`


def test_a_large_fixture_reports_the_first_bad_lines_and_counts_the_rest() -> None:
    Path("rows.jsonl").write_text('{"cost": 1, "price": 2}\n' + '{"cost": 1}\n' * 25,
                                  encoding="utf-8")
    errors = _errors('\ntest "file" {\n  cases "rows.jsonl"\n'
                     '  given Cost(sku: "A1", amount: cost)\n  expect Price(amount: price)\n}\n')
    messages = [d.message for d in errors]
    assert len(messages) == 11
    assert "line 11 of `rows.jsonl` does not bind `price`, which the test uses" in messages
    assert ("15 more lines of `rows.jsonl` do not bind exactly the names the test uses"
            in messages)


@pytest.mark.parametrize("step", [
    "expect Price(sku)",
    "expect no Price(sku)",
    "expect conflict Price(sku)",
])
def test_a_bare_field_that_nothing_binds_is_an_error(step: str) -> None:
    errors = _errors(f'\ntest "t" {{\n  given Cost(sku: "A1", amount: 1.0)\n  {step}\n}}\n')
    assert [d.code for d in errors] == ["CVG106"]
    assert errors[0].help is not None and "`sku: _` for any value" in errors[0].help


def test_a_bare_field_a_row_binds_compares_with_the_row() -> None:
    _write('\ntest "t" {\n  cases {\n    {sku: "A1"}\n    {sku: "B2"}\n  }\n'
           '  given Cost(sku: "A1", amount: 1.0)\n  expect Price(sku)\n}\n')
    result = _cli("test", "claims.cvg", "-v")
    assert "PASSED claims.cvg::t[case 1]" in result.output
    assert "FAILED claims.cvg::t[case 2]" in result.output, result.output


def test_a_wildcard_is_written_with_an_underscore() -> None:
    _write('\ntest "t" {\n  given Cost(sku: "A1", amount: 1.0)\n'
           '  expect Price(sku: _, amount: 2.0)\n  expect no Price(sku: _, amount: 3.0)\n}\n')
    result = _cli("test", "claims.cvg")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("step", "advice"), [
    ("expect Price(amount: pric)", "write `_` for any value"),
    ("expect no Price(amount: x)", "write `_` for any value"),
    ('given Cost(sku: "B", amount: x)', "write a value here"),
    ('mock tool fx_rate(currency: x) returns {usd: 1.0}', "leave the argument out"),
    ('mock tool fx_rate(currency: "EUR") returns {usd: x}', "write a value"),
])
def test_a_name_nothing_binds_in_a_test_says_what_to_write(step: str, advice: str) -> None:
    errors = _errors(f'\ntest "t" {{\n  given Cost(sku: "A1", amount: 1.0)\n  {step}\n'
                     '  expect status converged\n}\n')
    assert [d.code for d in errors] == ["CVG106"]
    assert errors[0].help is not None and advice in errors[0].help
    assert "`when` pattern" not in errors[0].help


def test_a_row_that_reaches_the_runner_without_a_name_fails() -> None:
    # The checker refuses such rows; should one reach the runner anyway (a fixture
    # rewritten between the check and the run), the case fails rather than passes.
    _write('\ntest "t" {\n  cases {\n    {cost: 10.0, price: 20.0}\n  }\n'
           '  given Cost(sku: "A1", amount: cost)\n  expect Price(amount: price)\n}\n')
    suite = load_suite("claims.cvg")
    case = suite.cases[0]
    assert run_case(suite, case).status == "passed"
    outcome = run_case(suite, dataclasses.replace(case, bindings={"cost": 10.0}))
    assert outcome.status == "failed"
    assert outcome.message == "case 1 does not bind `price`, which the test uses"
