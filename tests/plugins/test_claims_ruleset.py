"""The claims ruleset of the trial in issue 10 (rulesets/claims): it checks clean but
for its tool no plugin provides, its `test` blocks pass with the fraud check mocked,
`converge run` refuses to start without the tool, and with one supplied a burglary
with a high fraud score is referred, never paid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

import converge_rules
from converge_rules.cli import main
from converge_rules.language.checks.checker import check_file
from converge_rules.plugins import load_registries

CLAIMS = Path(__file__).resolve().parents[2] / "rulesets" / "claims" / "claims.cvg"


def test_claims_checks_clean_but_for_the_uninstalled_tool() -> None:
    registries = load_registries()
    checked = check_file(CLAIMS, **registries.checker_kwargs())
    assert [d.code for d in checked.diagnostics] == ["CVG804"]
    assert len(checked.facts) == 14 and len(checked.agents) == 20
    assert {a.effective_tier for a in checked.agents} == {1, 2, 3, 4}
    assert len(checked.tests) == 14


def test_claims_tests_pass_with_the_fraud_check_mocked() -> None:
    result = CliRunner().invoke(main, ["test", str(CLAIMS)])
    assert result.exit_code == 0, result.output
    assert "17 passed, 0 failed" in result.output


def test_claims_refuses_to_run_without_the_fraud_check(tmp_path: Path) -> None:
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Policy": {"id": "P", "holder": "a", "kind": "burglary", '
                     '"limit": 100.0}}\n{"Claim": {"id": "C", "policy": "P", "kind": '
                     '"burglary", "amount": 90.0}}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(CLAIMS), "-f", str(facts)])
    assert result.exit_code == 2
    assert "tool 'fraud_check'" in result.output and "Transfer" not in result.output


def test_claims_with_a_fraud_service() -> None:
    ruleset = converge_rules.load(CLAIMS)

    def fraud_check(args: dict[str, Any]) -> dict[str, Any]:
        return {"score": 0.95 if args["claim"] == "B" else 0.05}

    facts: list[tuple[str, dict[str, Any]]] = [
        ("Policy", {"id": "P", "holder": "a", "kind": "burglary", "limit": 1000.0}),
        ("Claim", {"id": "A", "policy": "P", "kind": "burglary", "amount": 500.0}),
        ("Claim", {"id": "B", "policy": "P", "kind": "burglary", "amount": 700.0}),
        ("Estimate", {"adjuster": "x", "claim": "A", "amount": 500.0}),
        ("Estimate", {"adjuster": "x", "claim": "B", "amount": 700.0}),
    ]
    result = converge_rules.run(ruleset, facts, tools={"fraud_check": fraud_check})
    assert result.status == "converged", result.detail
    verdicts = {d["claim"]: d["verdict"] for d in result.facts("Decision")}
    assert verdicts == {"A": "approve", "B": "refer"}
    assert result.facts("Transfer") == [{"claim": "A", "amount": 500.0}]
