"""Named table-test cases (issue 10, item 13): ``case "small claim" {…}`` names a row,
and the name is its test id everywhere ids show; unnamed rows keep ``[case N]``."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main
from converge_rules.language.checks.checker import check_file
from converge_rules.language.format.formatter import format_source
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.parser import parse

pytest_plugins = ("pytester",)

HEAD = """\
ruleset claims

fact Claim   { key id: str, amount: float }
fact Payout  { key id: str, amount: float }

agent pay {
  when Claim(id, amount)
  emit Payout(id: id, amount: amount * 0.5)
}
"""

TABLE = """
test "payout" {
  cases {
    case "small claim" {amount: 100.0, paid: 50.0}
    {amount: 10.0, paid: 5.0}
    case "big claim" {amount: 1_000.0, paid: 400.0}
  }
  given Claim(id: "c1", amount: amount)
  expect Payout(id: "c1", amount: paid)
}
"""


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def ruleset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = Path("claims.cvg")
    path.write_text(HEAD + TABLE, encoding="utf-8")
    return path


def test_a_named_row_parses_with_its_name() -> None:
    result = parse(HEAD + TABLE)
    assert not result.diagnostics and result.module is not None
    test = result.module.items[-1]
    assert isinstance(test, n.Test) and test.cases is not None
    assert test.cases.names == ("small claim", None, "big claim")
    assert [[a.name.name for a in r.fields] for r in test.cases.rows] == [["amount", "paid"]] * 3


def test_unnamed_rows_have_no_names() -> None:
    module = parse(HEAD + TABLE.replace('case "small claim" ', "").replace(
        'case "big claim" ', "")).module
    assert module is not None
    test = module.items[-1]
    assert isinstance(test, n.Test) and test.cases is not None
    assert test.cases.names == () and test.cases.name_of(1) is None


def test_fmt_keeps_the_names() -> None:
    messy = HEAD + TABLE.replace('case "small claim" {', 'case   "small claim"{').replace(
        "paid: 5.0}", "paid: 5.0},")
    assert format_source(messy) == HEAD + TABLE
    assert format_source(HEAD + TABLE) == HEAD + TABLE


def test_the_names_are_the_test_ids(ruleset: Path) -> None:
    result = _cli("test", str(ruleset), "-v")
    assert result.exit_code == 1
    assert "PASSED claims.cvg::payout[small claim]" in result.output
    assert "PASSED claims.cvg::payout[case 2]" in result.output  # unnamed: as before
    assert "FAILED claims.cvg::payout[big claim]" in result.output
    assert 'in case "big claim": amount = 1000.0, paid = 400.0' in result.output


def test_k_selects_a_case_by_its_name(ruleset: Path) -> None:
    result = _cli("test", str(ruleset), "-v", "-k", "'small claim'")
    assert result.exit_code == 0, result.output
    assert "claims.cvg::payout[small claim]" in result.output
    assert result.output.rstrip().endswith("1 passed, 0 failed")


def test_json_and_junit_reports_carry_the_names(ruleset: Path) -> None:
    report = json.loads(_cli("test", str(ruleset), "--format", "json").stdout)
    assert [t["id"] for t in report["tests"]] == [
        "claims.cvg::payout[small claim]", "claims.cvg::payout[case 2]",
        "claims.cvg::payout[big claim]"]
    xml = ET.fromstring(_cli("test", str(ruleset), "--format", "junit").stdout)
    assert [c.get("name") for c in xml.iter("testcase")] == [
        "payout[small claim]", "payout[case 2]", "payout[big claim]"]


def test_pytest_node_ids_are_the_names(pytester: pytest.Pytester,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makefile(".cvg", claims=HEAD + TABLE)
    result = pytester.runpytest("-p", "converge_rules.testing.pytest_plugin",
                                "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*claims.cvg::payout[[]small claim[]] PASSED*",
        "*claims.cvg::payout[[]case 2[]] PASSED*",
        "*claims.cvg::payout[[]big claim[]] FAILED*",
    ])


@pytest.mark.parametrize(("rows", "message"), [
    ('case "a" {amount: 1.0, paid: 0.5}\n    case "a" {amount: 2.0, paid: 1.0}',
     'a second case named "a"'),
    ('{amount: 1.0, paid: 0.5}\n    case "case 1" {amount: 2.0, paid: 1.0}',
     'a second case named "case 1"'),  # the id of the unnamed first row
    ('case " " {amount: 1.0, paid: 0.5}', "a case named with an empty string"),
])
def test_case_names_are_unique_and_not_empty(tmp_path: Path, rows: str, message: str) -> None:
    path = tmp_path / "claims.cvg"
    path.write_text(HEAD + TABLE.replace(TABLE[TABLE.index("    case"):TABLE.index("  }")],
                                         f"    {rows}\n"), encoding="utf-8")
    errors = [d for d in check_file(path).diagnostics if d.is_error]
    assert [(d.code, d.message) for d in errors] == [("CVG708", message)]
