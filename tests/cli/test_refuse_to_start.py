"""Issue 10 item 7: a ruleset whose tool no loaded plugin provides ran, said
`converged` and exited 0 with one warning (a burglary claim was approved because the
fraud check never ran). `converge run` refuses to start: exit 2, naming the tool, the
agent and, where known, the plugin that provides it. A `using NAME` policy under
`--no-plugins` fails at start too."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from converge_rules.cli import main

REPO = Path(__file__).resolve().parents[2]
RATES = REPO / "rulesets" / "rates" / "rates.cvg"
MEDIAN = REPO / "plugins" / "converge-example" / "rulesets" / "median_offer.cvg"

CLAIMS = """\
ruleset claims "fraud checked"

uses tool fraud_check

fact Claim    { key id: str, kind: str, amount: float }
fact Fraud    { key id: str, suspicious: bool }
fact Approved { key id: str }

agent fraud tier 1 {
  when Claim(id, kind) where kind == "burglary"
  call fraud_check(claim: id) as r
  emit Fraud(id: id, suspicious: r.suspicious)
}

agent approve tier 2 {
  when Claim(id) and not Fraud(id, suspicious: true)
  emit Approved(id: id)
}

test "a burglary is checked" {
  given Claim(id: "c1", kind: "burglary", amount: 900.0)
  expect no Approved(id: "c1")
}
"""


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def facts(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    return path


def test_a_tool_no_plugin_provides_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    ruleset = tmp_path / "claims.cvg"
    ruleset.write_text(CLAIMS, encoding="utf-8")
    burglary = facts(tmp_path, '{"Claim": {"id": "c1", "kind": "burglary", "amount": 900.0}}')
    result = invoke("run", ruleset, "-f", burglary)
    assert result.exit_code == 2, result.output
    assert "no loaded plugin provides tool 'fraud_check'" in result.output
    assert "agent `fraud`" in result.output and "claims.cvg:9:1" in result.output
    assert "Approved" not in result.output and "converged" not in result.output
    assert "Traceback" not in result.output


def test_with_no_plugins_the_plugin_that_provides_the_tool_is_named(tmp_path: Path) -> None:
    euros = facts(tmp_path, '{"Quote": {"vendor": "acme", "amount": 10.0, "currency": "EUR"}}')
    result = invoke("run", RATES, "-f", euros, "--no-plugins")
    assert result.exit_code == 2, result.output
    assert "tool 'fx_rate'" in result.output
    assert "the installed plugin 'converge-example' provides it" in result.output
    assert "converged" not in result.output
    assert invoke("run", RATES, "-f", euros).exit_code == 0


def test_a_using_policy_with_no_plugins_fails_at_start(tmp_path: Path) -> None:
    quotes = facts(tmp_path, '{"Quote": {"vendor": "a", "sku": "S1", "amount": 10.0}}\n'
                             '{"Quote": {"vendor": "b", "sku": "S1", "amount": 12.0}}')
    result = invoke("run", MEDIAN, "-f", quotes, "--no-plugins")
    assert result.exit_code == 2, result.output
    assert "unknown resolver `median`" in result.output
    assert "conflict" not in result.output


def test_a_test_that_calls_an_unmocked_tool_fails(tmp_path: Path) -> None:
    ruleset = tmp_path / "claims.cvg"
    ruleset.write_text(CLAIMS, encoding="utf-8")
    result = invoke("test", ruleset)
    assert result.exit_code == 1, result.output
    assert "add: mock tool fraud_check(claim: \"c1\") returns" in result.output
    mocked = CLAIMS.replace(
        '  expect no Approved(id: "c1")',
        '  mock tool fraud_check(claim: "c1") returns {suspicious: true}\n'
        '  expect no Approved(id: "c1")')
    ruleset.write_text(mocked, encoding="utf-8")
    assert invoke("test", ruleset).exit_code == 0
