"""``mock tool NAME(args) fails "reason"``: a test simulates a failing tool. It parses
(with spans), checks (the tool and arguments, no result), formats back, and runs: the
calling agent's effect is discarded and the report says why."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main
from converge_rules.language.checks.checked import ToolSignature
from converge_rules.language.checks.checker import check_file
from converge_rules.language.format.formatter import format_source
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.parser import parse
from converge_rules.testing.runner import run_tests

HEAD = """\
ruleset rates
uses tool fx_rate
fact Quote { key vendor: str, amount: float, currency: str }
fact Rate  { key currency: str, usd: float }
fact InUsd { key vendor: str, amount: float }
agent fetch_rate {
  when Quote(currency) where currency != "USD"
  call fx_rate(currency: currency) as rate
  emit Rate(currency: currency, usd: rate.usd)
}
agent convert {
  when Quote(vendor, amount, currency) and Rate(currency, usd)
  emit InUsd(vendor: vendor, amount: round(amount * usd, 2))
}
agent usd_as_is {
  when Quote(vendor, amount, currency: "USD")
  emit InUsd(vendor: vendor, amount: amount)
}
policy InUsd { resolve by lowest amount }
"""

DOWN = """
test "the rate service is down for yen" {
  given Quote(vendor: "acme", amount: 10.0, currency: "USD")
  given Quote(vendor: "kyoto", amount: 1000.0, currency: "JPY")
  mock tool fx_rate(currency: "JPY") fails "rate service down"
  expect InUsd(vendor: "acme", amount: 10.0)
  expect no Rate(currency: "JPY")
  expect no InUsd(vendor: "kyoto")
  expect status converged
}
"""

FX = ToolSignature("fx_rate", {"currency": "str"}, {"usd": "float"})


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _run(tests: str, *args: str) -> Result:
    Path("rates.cvg").write_text(HEAD + tests, encoding="utf-8")
    return CliRunner().invoke(main, ["test", "rates.cvg", "-v", *args])


def _mock(text: str) -> n.Mock:
    result = parse(HEAD + text)
    assert not result.diagnostics, result.diagnostics
    assert result.module is not None
    test = result.module.items[-1]
    assert isinstance(test, n.Test)
    mocks = [s for s in test.steps if isinstance(s, n.Mock)]
    assert len(mocks) == 1
    return mocks[0]


# ------------------------------------------------------------------------------ parse


def test_fails_parses_with_the_reason_and_no_result() -> None:
    line = HEAD.count("\n") + 3
    mock = _mock('test "t" {\n  expect status converged\n'
                 '  mock tool fx_rate(currency: "JPY") fails "down \\"hard\\"\\n"\n}\n')
    assert mock.tool.name == "fx_rate"
    assert [(a.name.name, a.value) for a in mock.args] == [
        ("currency", n.Literal("JPY", '"JPY"', mock.args[0].value.span))]
    assert mock.returns is None
    assert mock.fails == 'down "hard"\n'
    text = 'mock tool fx_rate(currency: "JPY") fails "down \\"hard\\"\\n"'
    assert (mock.span.line, mock.span.column) == (line, 3)
    assert (mock.span.end_line, mock.span.end_column) == (line, 3 + len(text))
    assert (mock.tool.span.line, mock.tool.span.column) == (line, 13)


def test_a_returns_mock_is_unchanged() -> None:
    mock = _mock('test "t" {\n  mock tool fx_rate(currency: "EUR") returns {usd: 1.1}\n}\n')
    assert mock.fails is None
    assert isinstance(mock.returns, n.Record)
    # Positional construction without `fails` still builds a returns mock.
    assert n.Mock(mock.tool, mock.args, mock.returns, mock.span) == mock


@pytest.mark.parametrize("step", [
    'mock tool fx_rate(currency: "JPY") fails "down" returns {usd: 1.0}',
    'mock tool fx_rate(currency: "JPY") returns {usd: 1.0} fails "down"',
    'mock tool fx_rate(currency: "JPY")',
    'mock tool fx_rate(currency: "JPY") fails down',
    'mock tool fx_rate(currency: "JPY") fails',
])
def test_both_neither_or_a_reason_that_is_not_a_string_is_a_syntax_error(step: str) -> None:
    result = parse(HEAD + f'test "t" {{\n  {step}\n  expect status converged\n}}\n')
    errors = [d for d in result.diagnostics if d.is_error]
    assert errors and errors[0].code.startswith("CVG0")
    assert errors[0].span is not None
    assert errors[0].span.line in (HEAD.count("\n") + 2, HEAD.count("\n") + 3)


# ------------------------------------------------------------------------------ check


def _check(tests: str, **kw: object) -> list[tuple[str, int, int]]:
    path = Path("rates.cvg")
    path.write_text(HEAD + tests, encoding="utf-8")
    checked = check_file(path, **kw)  # type: ignore[arg-type]
    return [(d.code, d.span.line, d.span.column) for d in checked.diagnostics
            if d.is_error and d.span is not None]


def test_a_fails_mock_checks_clean_even_against_a_typed_tool() -> None:
    assert _check(DOWN) == []
    assert _check(DOWN, tools={"fx_rate": FX}) == []


def test_a_fails_mock_of_an_undeclared_tool_is_still_reported() -> None:
    line = HEAD.count("\n") + 3
    errors = _check('test "t" {\n  given Quote(vendor: "k", amount: 1.0, currency: "JPY")\n'
                    '  mock tool fx_rates(currency: "JPY") fails "down"\n'
                    "  expect status converged\n}\n")
    assert errors == [("CVG702", line, 13)]


def test_a_fails_mock_argument_is_still_checked() -> None:
    line = HEAD.count("\n") + 2
    errors = _check('test "t" {\n  mock tool fx_rate(currency: 3) fails "down"\n'
                    "  expect status converged\n}\n", tools={"fx_rate": FX})
    assert errors == [("CVG201", line, 31)]  # the value 3 is not a str
    errors = _check('test "t" {\n  mock tool fx_rate(curency: "JPY") fails "down"\n'
                    "  expect status converged\n}\n", tools={"fx_rate": FX})
    assert errors == [("CVG103", line, 21)]  # no argument `curency`


# ----------------------------------------------------------------------------- format


def test_fmt_keeps_fails() -> None:
    text = HEAD + 'test "t" {\n  mock   tool fx_rate( currency : "JPY" )  fails  "a \\"b\\""\n}\n'
    out = format_source(text)
    assert '  mock tool fx_rate(currency: "JPY") fails "a \\"b\\""\n' in out
    assert format_source(out) == out


# -------------------------------------------------------------------------------- run


def test_the_failing_call_discards_the_agents_effect_and_the_test_passes() -> None:
    result = _run(DOWN)
    assert result.exit_code == 0, result.output
    assert "PASSED rates.cvg::the rate service is down for yen" in result.output


def test_wrong_expectations_fail_and_name_the_reason() -> None:
    result = _run(DOWN.replace('expect no Rate(currency: "JPY")',
                               'expect Rate(currency: "JPY")'))
    assert result.exit_code == 1
    out = result.output
    assert "FAILED rates.cvg::the rate service is down for yen" in out
    assert 'expected Rate(currency: "JPY") in the final context' in out
    assert "agent fetch_rate" in out and "discarded" in out
    assert "rate service down" in out
    # A deliberate failure is not an unmocked call.
    assert "does not mock" not in out


ROOT = 'root "every quote priced" {\n  require count(InUsd()) == count(Quote())\n}\n'


@pytest.mark.parametrize(("status", "passes"), [("unmet_goal", True), ("converged", False)])
def test_a_status_expectation_sees_the_failure(status: str, passes: bool) -> None:
    result = _run(ROOT + 'test "unmet" {\n'
                  '  given Quote(vendor: "kyoto", amount: 1000.0, currency: "JPY")\n'
                  '  mock tool fx_rate() fails "down"\n'
                  f"  expect status {status}\n}}\n")
    assert result.exit_code == (0 if passes else 1), result.output
    if not passes:
        assert "unmet_goal" in result.output


def test_the_whole_run_of_the_agent_in_that_cycle_is_discarded() -> None:
    result = _run('test "both" {\n'
                  '  given Quote(vendor: "paris", amount: 10.0, currency: "EUR")\n'
                  '  given Quote(vendor: "kyoto", amount: 1000.0, currency: "JPY")\n'
                  '  mock tool fx_rate(currency: "EUR") returns {usd: 1.1}\n'
                  '  mock tool fx_rate(currency: "JPY") fails "down"\n'
                  '  expect no Rate()\n  expect no InUsd()\n}\n')
    assert result.exit_code == 0, result.output


def test_first_matching_mock_wins_and_other_calls_are_still_unmocked() -> None:
    first = ('test "first" {\n'
             '  given Quote(vendor: "kyoto", amount: 1000.0, currency: "JPY")\n'
             '  mock tool fx_rate() fails "down"\n'
             '  mock tool fx_rate(currency: "JPY") returns {usd: 0.0067}\n'
             '  expect no Rate()\n}\n')
    assert _run(first).exit_code == 0
    other = ('test "other" {\n'
             '  given Quote(vendor: "paris", amount: 10.0, currency: "EUR")\n'
             '  mock tool fx_rate(currency: "JPY") fails "down"\n'
             '  expect no Rate()\n}\n')
    result = _run(other)
    assert result.exit_code == 1
    assert "the test called a tool it does not mock" in result.output
    assert 'add: mock tool fx_rate(currency: "EUR") returns {…}' in result.output


def test_run_tests_api_reports_the_outcome() -> None:
    Path("rates.cvg").write_text(HEAD + DOWN, encoding="utf-8")
    report, _ = run_tests([Path("rates.cvg")], plugins=False)
    assert [o.status for o in report.outcomes] == ["passed"]


pytest_plugins = ("pytester",)


def test_pytest_plugin_runs_fails_mocks(pytester: pytest.Pytester,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    wrong = DOWN.replace('"the rate service is down for yen"', '"wrong"').replace(
        "expect no InUsd", "expect InUsd")
    pytester.makefile(".cvg", rates=HEAD + DOWN + wrong)
    result = pytester.runpytest("-p", "converge_rules.testing.pytest_plugin",
                                "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*rates.cvg::the rate service is down for yen PASSED*",
                                 "*rates.cvg::wrong FAILED*"])
