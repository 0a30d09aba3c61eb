"""Explain shows everything that decided (issue 10, item 13): the tool answers a
derivation used, the confidence a fact was emitted with and the evaluation scores it
was given, in ``converge explain`` trees and in ``converge test`` failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import converge_rules
from converge_rules.cli import main

JUDGE = """\
ruleset judge
uses tool fx

fact Quote { key sku: str, amount: float, currency: str }
fact Price { key sku: str, usd: float }
fact Plan { key sku: str, route: str }

agent convert {
  when Quote(sku, amount, currency)
  call fx(currency: currency) as rate
  emit Price(sku: sku, usd: amount * rate.usd) confidence 0.7
}

agent plan {
  when Price(sku)
  emit Plan(sku: sku, route: "direct")
}

agent judge {
  when p: Plan(route: "direct")
  evaluate p score 0.9 reason "short"
}
"""

RATES = {"EUR": 1.5, "GBP": 2.0}


def fx(args: dict[str, Any]) -> dict[str, Any]:
    return {"usd": RATES[args["currency"]]}


@pytest.fixture(autouse=True)
def _files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("judge.cvg").write_text(JUDGE, encoding="utf-8")
    ruleset = converge_rules.loads(JUDGE, plugins=False)
    result = converge_rules.run(ruleset, [
        ("Quote", {"sku": "A1", "amount": 10.0, "currency": "EUR"}),
        ("Quote", {"sku": "B2", "amount": 3.0, "currency": "GBP"}),
    ], tools={"fx": fx}, trace="run.jsonl")
    assert result.status == "converged"


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_the_tree_shows_tool_answers_confidence_and_scores() -> None:
    result = _cli("explain", "--trace", "run.jsonl", "-r", "judge.cvg", 'Plan(sku: "A1")')
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert 'score 0.9 by agent judge ("short")' in lines
    assert any(line.startswith("by agent convert at judge.cvg:8:1 in cycle 1, confidence 0.7")
               for line in lines)
    # the answer of the call this derivation made (A1's, not B2's)
    assert 'tool fx(currency: "EUR") answered {usd: 1.5}' in lines
    assert "GBP" not in result.output


def test_the_json_tree_carries_them_too() -> None:
    result = _cli("explain", "--trace", "run.jsonl", "-r", "judge.cvg", "--format", "json",
                  'Plan(sku: "B2")')
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)["facts"][0]
    assert plan["score"] == 0.9
    assert plan["evaluations"] == [{"agent": "judge", "score": 0.9, "reason": "short"}]
    price = plan["derivations"][0]["support"][0]
    step = price["derivations"][0]
    assert step["confidence"] == 0.7
    assert step["tool_calls"] == [{"tool": "fx", "args": {"currency": "GBP"},
                                   "result": {"usd": 2.0}, "error": None}]


def test_why_not_quotes_the_tool_answer_the_emitted_value_rests_on() -> None:
    result = _cli("explain", "--trace", "run.jsonl", "-r", "judge.cvg", "--why-not",
                  'Price(sku: "A1", usd: 10.0)')
    assert result.exit_code == 0, result.output
    assert ('emits Price(sku: "A1", usd: 15.0) (tool fx(currency: "EUR") answered '
            '{usd: 1.5}), which is not') in result.output


def test_test_failures_show_tool_answers_and_scores() -> None:
    Path("judge.cvg").write_text(JUDGE + """
test "price of A1" {
  mock tool fx(currency: "EUR") returns {usd: 1.5}
  given Quote(sku: "A1", amount: 10.0, currency: "EUR")
  expect Price(sku: "A1", usd: 10.8)
}

test "no plan" {
  mock tool fx(currency: "EUR") returns {usd: 1.5}
  given Quote(sku: "A1", amount: 10.0, currency: "EUR")
  expect no Plan(sku: "A1")
}
""", encoding="utf-8")
    result = _cli("test", "judge.cvg")
    assert result.exit_code == 1, result.output
    price, plan = result.output.split("___ judge.cvg::no plan ___")
    assert 'tool fx(currency: "EUR") answered {usd: 1.5}' in price
    assert "in cycle 1, confidence 0.7" in price
    assert '(tool fx(currency: "EUR") answered {usd: 1.5}), which is not' in price
    assert 'score 0.9 by agent judge ("short")' in plan


def test_why_not_names_the_tool_call_that_failed_for_the_key_asked_about() -> None:
    def flaky(args: dict[str, Any]) -> dict[str, Any]:
        if args["currency"] == "GBP":
            raise ValueError("no rate for GBP today")
        return fx(args)

    ruleset = converge_rules.loads(JUDGE, plugins=False)
    converge_rules.run(ruleset, [
        ("Quote", {"sku": "A1", "amount": 10.0, "currency": "EUR"}),
        ("Quote", {"sku": "B2", "amount": 3.0, "currency": "GBP"}),
    ], tools={"fx": flaky}, trace="flaky.jsonl")
    result = _cli("explain", "--trace", "flaky.jsonl", "-r", "judge.cvg", "--why-not",
                  'Price(sku: "B2")')
    assert result.exit_code == 0, result.output
    assert 'tool fx(currency: "GBP") failed: ' in result.output
    assert "no rate for GBP today" in result.output
    assert "EUR" not in result.output
