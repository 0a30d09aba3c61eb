"""``converge test``: test blocks, selection, formats, exit codes and coverage."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main
from tests.testing.shop_tests import FAILING, PASSING

SHOP = (Path(__file__).parents[1] / "testing" / "data" / "shop.cvg").read_text("utf-8")

@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _write(tests: str, name: str = "shop.cvg", head: str = SHOP) -> str:
    Path(name).write_text(head + tests, encoding="utf-8")
    return name


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["test", *args])


def _last_line(text: str) -> str:
    return text.rstrip("\n").rsplit("\n", 1)[-1]


def test_passing_test_exits_0_with_summary_line() -> None:
    result = _run(_write(PASSING))
    assert result.exit_code == 0, result.output
    assert _last_line(result.output) == "1 passed, 0 failed"


def test_failure_shows_expected_closest_fact_diff_and_derivation() -> None:
    result = _run(_write(PASSING + FAILING))
    assert result.exit_code == 1
    out = result.output
    assert "FAILED shop.cvg::wrong price" in out
    assert 'expected Price(sku: "A1", channel: web, amount: 12.5)' in out
    assert 'Price(sku: "A1", channel: web, amount: 11.88)' in out
    assert "amount: expected 12.5, got 11.88" in out
    assert "by agent undercut at shop.cvg:" in out and "in cycle 1" in out
    assert 'Cost(sku: "A1", amount: 10.0)  — input fact' in out
    assert "with cost = 10.0" in out  # recomputed bindings
    assert "won a conflict" in out
    assert _last_line(out) == "1 passed, 1 failed"


def test_expect_no_failure_shows_the_offending_fact() -> None:
    result = _run(_write("""
test "no alert" {
  given Cost(sku: "A1", amount: 10.0)
  expect no Price(sku: "A1")
}
"""))
    assert result.exit_code == 1
    assert 'expected no Price(sku: "A1")' in result.output
    assert "by agent cost_plus" in result.output


def test_expect_status_and_conflict_failures_say_what_happened() -> None:
    result = _run(_write("""
test "status" {
  given Cost(sku: "A1", amount: 10.0)
  expect status conflict
  expect conflict Price(sku: "A1")
}
"""))
    assert result.exit_code == 1
    assert "expected status conflict" in result.output
    assert "the job ended with status converged" in result.output
    assert "there was no conflict on Price during the run" in result.output


def test_unmocked_tool_call_fails_with_the_mock_line_to_add() -> None:
    result = _run(_write("""
test "rate" {
  given Quote(sku: "B2", vendor: "acme", amount: 12.0, currency: "EUR")
  expect status converged
}
"""))
    assert result.exit_code == 1
    assert 'add: mock tool fx_rate(currency: "EUR") returns' in result.output


def test_mocked_tool_answers_the_call() -> None:
    result = _run(_write("""
test "rate" {
  given Quote(sku: "B2", vendor: "acme", amount: 12.0, currency: "EUR")
  mock tool fx_rate(currency: "EUR") returns {usd: 1.1}
  expect Rate(currency: "EUR", usd: 1.1)
}
"""))
    assert result.exit_code == 0, result.output


def test_k_selects_by_substring_and_boolean_words() -> None:
    path = _write(PASSING + FAILING)
    only = _run(path, "-k", "undercut")
    assert only.exit_code == 0 and _last_line(only.output) == "1 passed, 0 failed"
    neither = _run(path, "-k", "not wrong and not undercut")
    assert neither.exit_code == 2
    assert "selected no test" in neither.output
    bad = _run(path, "-k", "(undercut")
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_ruleset_errors_are_diagnostics_and_exit_2() -> None:
    result = _run(_write(PASSING, head="ruleset r\nfact Cost { key sku: str }\n"
                         "agent a {\n  when Cots(sku)\n  emit Cost(sku: sku)\n}\n"))
    assert result.exit_code == 2
    assert "CVG" in result.output and "shop.cvg:4:" in result.output
    assert _last_line(result.output) == "0 passed, 0 failed"


def test_test_without_expect_is_skipped() -> None:
    result = _run(_write(PASSING + '\ntest "nothing" {\n  given Cost(sku: "A", amount: 1.0)\n}\n'))
    assert result.exit_code == 0
    assert "SKIPPED shop.cvg::nothing" in result.output
    assert _last_line(result.output) == "1 passed, 0 failed, 1 skipped"


def test_json_format() -> None:
    result = CliRunner().invoke(main, ["test", _write(PASSING + FAILING), "--format", "json",
                                       "-o", "report.json"])
    assert result.exit_code == 1
    data = json.loads(Path("report.json").read_text("utf-8"))
    assert data["summary"]["passed"] == 1 and data["summary"]["failed"] == 1
    failed = next(t for t in data["tests"] if t["status"] == "failed")
    assert failed["id"] == "shop.cvg::wrong price"
    assert failed["failures"][0]["location"]["file"] == "shop.cvg"
    assert "1 passed, 1 failed" in result.output  # the summary goes to stderr


def test_junit_format_is_well_formed() -> None:
    result = _run(_write(PASSING + FAILING), "--format", "junit", "-o", "junit.xml")
    assert result.exit_code == 1
    root = ET.fromstring(Path("junit.xml").read_text("utf-8"))
    assert root.get("tests") == "2" and root.get("failures") == "1"
    names = {c.get("name") for c in root.iter("testcase")}
    assert names == {"undercut wins when the margin allows", "wrong price"}
    failure = next(root.iter("failure"))
    assert "amount: expected 12.5" in (failure.text or "")


def test_github_format_annotates_the_expect_line() -> None:
    result = _run(_write(PASSING + FAILING), "--format", "github")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 1
    expect_line = (SHOP + PASSING + FAILING).splitlines().index(
        '  expect Price(sku: "A1", channel: web, amount: 12.5)') + 1
    assert f"file=shop.cvg,line={expect_line},col=3" in errors[0]
    assert "%0A" in errors[0]
    assert lines[-1] == "1 passed, 1 failed"


def test_coverage_text_lists_what_no_test_exercised() -> None:
    result = _run(_write(PASSING), "--coverage")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "agent fetch_rate" in out and "never fired" in out
    assert "prune Quote" in out and "never dropped a fact" in out
    assert "policies resolved: 1/1" in out
    assert "total coverage:" in out
    assert _last_line(out) == "1 passed, 0 failed"


def test_coverage_guard_seen_false() -> None:
    result = _run(_write("""
test "below margin" {
  given Cost(sku: "A1", amount: 10.0)
  given Quote(sku: "A1", vendor: "acme", amount: 10.1)
  expect Price(sku: "A1", channel: web, amount: 12.0)
}
"""), "--coverage", "--format", "json")
    data = json.loads(result.output.split("\n0 passed")[0].split("\n1 passed")[0])
    items = data["coverage"]["rulesets"][0]["items"]
    guard = next(i for i in items if i["kind"] == "guard" and i["name"] == "undercut")
    assert guard["covered"] is True
    below = next(i for i in items if i["kind"] == "guard" and i["name"] == "below_cost")
    assert below["covered"] is True  # 12.0 < 10.0 is false
    assert next(i for i in items if i["name"] == "undercut" and i["kind"] == "agent")[
        "covered"] is False


def test_fail_under_and_cobertura_xml() -> None:
    path = _write(PASSING)
    result = _run(path, "--fail-under", "100", "--coverage-xml", "cov.xml")
    assert result.exit_code == 1
    assert "below --fail-under 100%" in result.output
    root = ET.fromstring(Path("cov.xml").read_text("utf-8"))
    assert root.tag == "coverage"
    rate = float(root.get("line-rate", "x"))
    assert 0 < rate < 1
    lines = list(root.iter("line"))
    assert lines and all(line.get("hits") is not None for line in lines)
    assert any(line.get("branch") == "true" for line in lines)
    assert _run(path, "--fail-under", "10").exit_code == 0


def test_directory_runs_every_file_with_ids_per_file() -> None:
    Path("rules").mkdir()
    _write(PASSING, name="rules/a.cvg")
    _write(FAILING, name="rules/b.cvg")
    result = _run("rules", "-v")
    assert result.exit_code == 1
    assert "PASSED rules/a.cvg::undercut wins when the margin allows" in result.output
    assert "FAILED rules/b.cvg::wrong price" in result.output


def test_missing_path_is_usage_error() -> None:
    result = _run("nope.cvg")
    assert result.exit_code == 2


MEDIAN = """\
ruleset median_offer
fact Quote { vendor: str, sku: str, amount: float }
fact Offer { key sku: str, vendor: str, amount: float }
agent offer {
  when Quote(vendor, sku, amount)
  emit Offer(sku: sku, vendor: vendor, amount: amount)
}
policy Offer { resolve by using median, then earliest }
test "the median quote wins" {
  given Quote(vendor: "acme", sku: "S1", amount: 10.0)
  given Quote(vendor: "bolt", sku: "S1", amount: 12.0)
  given Quote(vendor: "cogs", sku: "S1", amount: 30.0)
  expect Offer(sku: "S1", vendor: "bolt")
}
test "one quote" {
  given Quote(vendor: "acme", sku: "S2", amount: 10.0)
  expect Offer(sku: "S2", vendor: "acme")
}
"""


def test_plugins_resolvers_are_known_and_plugins_false_leaves_them_out() -> None:
    """``median`` is the resolver the first-party converge-example plugin registers (the
    test command in the README installs it)."""
    ruleset = Path("median.cvg")
    ruleset.write_text(MEDIAN, encoding="utf-8")
    with_plugins = _run(str(ruleset))
    assert with_plugins.exit_code == 0, with_plugins.output
    # Registries are values: the same process runs the suite again without plugins,
    # and then `median` is an unknown resolver, caught before any test runs.
    from converge_rules.testing.runner import run_tests

    report, _ = run_tests([str(ruleset)], plugins=False)
    assert report.outcomes == ()
    (unknown,) = [d for d in report.diagnostics if d.is_error]
    assert unknown.code == "CVG407" and "median" in unknown.message
    again, _ = run_tests([str(ruleset)], plugins=True)
    assert again.summary() == "2 passed, 0 failed"


def test_junit_shows_a_ruleset_with_errors_as_an_error_case() -> None:
    result = _run(_write(PASSING, head="ruleset r\nfact Cost { key sku: str }\n"
                         "agent a {\n  when Cots(sku)\n  emit Cost(sku: sku)\n}\n"),
                  "--format", "junit", "-o", "junit.xml")
    assert result.exit_code == 2
    root = ET.fromstring(Path("junit.xml").read_text("utf-8"))
    assert root.get("errors") == "1"
    error = next(root.iter("error"))
    assert "CVG101" in (error.text or "") and "shop.cvg:4:" in (error.text or "")


def test_a_ruleset_without_tests_passes_with_nothing_run() -> None:
    result = _run(_write(""))
    assert result.exit_code == 0
    assert _last_line(result.output) == "0 passed, 0 failed"
