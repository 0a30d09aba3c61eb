"""End to end: the example rulesets, checked and compiled from `.cvg`, run by the
engine (serial and threads), with the outcomes the language contract promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import run
from converge_rules.engine.executors import ThreadExecutor
from converge_rules.language.checks.checker import check_file
from converge_rules.plugins import builtin_registries
from converge_rules.program import Program

RULESETS = Path(__file__).resolve().parents[2] / "rulesets"


def load(name: str) -> Program:
    checked = check_file(RULESETS / name / f"{name}.cvg")
    assert checked.ok, [d.message for d in checked.diagnostics if d.is_error]
    return compile_ruleset(checked)


def fx(calls: list[str]) -> Any:
    def fx_rate(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args["currency"])
        return {"usd": {"EUR": 1.1, "GBP": 1.25}[args["currency"]]}

    return fx_rate


PRICING_FACTS = [
    ("Cost", {"sku": "A1", "amount": 10.0}),
    ("Quote", {"sku": "A1", "vendor": "acme", "amount": 12.0}),
    ("Cost", {"sku": "B2", "amount": 20.0}),
    ("Quote", {"sku": "B2", "vendor": "euro", "amount": 19.0, "currency": "EUR"}),
]


def test_pricing_undercut_wins_when_the_margin_allows() -> None:
    calls: list[str] = []
    result = run(load("pricing"), PRICING_FACTS, tools={"fx_rate": fx(calls)})
    assert result.status == "converged", result.detail
    assert result.facts("Price") == [
        {"sku": "A1", "channel": "web", "amount": 11.88},
        {"sku": "B2", "channel": "web", "amount": 24.0},
    ]
    assert result.facts("Alert") == []
    assert result.facts("Rate") == [{"currency": "EUR", "usd": 1.1}]
    assert calls == ["EUR"]
    (conflict,) = result.conflicts
    assert conflict["type"] == "Price" and conflict["key"] == {"sku": "A1", "channel": "web"}
    assert conflict["reason"] == "resolve by highest confidence"
    assert result.unmet == []


def test_pricing_is_the_same_with_threads() -> None:
    serial = run(load("pricing"), PRICING_FACTS, tools={"fx_rate": fx([])})
    threads = run(load("pricing"), PRICING_FACTS, tools={"fx_rate": fx([])},
                  executor=ThreadExecutor(3))
    assert threads.to_json() == serial.to_json()
    assert threads.trace.to_jsonl() == serial.trace.to_jsonl()


def test_counter_updates_in_place_to_ten() -> None:
    result = run(load("counter"), [("Start", {"id": "a"}), ("Count", {"id": "a", "n": 0}),
                                   ("Start", {"id": "b"}), ("Count", {"id": "b", "n": 7})])
    assert result.status == "converged", result.detail
    assert result.facts("Count") == [{"id": "a", "n": 10}, {"id": "b", "n": 10}]
    assert len(result.conflicts) == 13


def test_rates_ask_once_and_answer_with_a_tool() -> None:
    calls: list[str] = []
    facts = [("Quote", {"vendor": v, "amount": a, "currency": c})
             for v, a, c in [("acme", 10.0, "EUR"), ("bolt", 20.0, "EUR"), ("cask", 8.0, "GBP"),
                             ("dock", 5.0, "USD")]]
    result = run(load("rates"), facts, tools={"fx_rate": fx(calls)})
    assert result.status == "converged", result.detail
    assert sorted(calls) == ["EUR", "GBP"]
    assert result.facts("InUsd") == [
        {"vendor": "acme", "amount": 11.0}, {"vendor": "bolt", "amount": 22.0},
        {"vendor": "cask", "amount": 10.0}, {"vendor": "dock", "amount": 5.0},
    ]
    assert result.unmet == []


def test_rates_without_the_tool_leave_the_intent_open() -> None:
    facts = [("Quote", {"vendor": "acme", "amount": 10.0, "currency": "EUR"})]
    result = run(load("rates"), facts, tools={})
    assert result.status == "converged"
    assert result.unmet == [{"intent": "NeedRate", "fields": {"currency": "EUR"}}]
    discarded = [e for e in result.trace.events() if e.event == "effect_discarded"]
    assert discarded and "fx_rate" in discarded[0].reason  # type: ignore[attr-defined]


@pytest.mark.parametrize("executor", ["serial", "threads", "asyncio"])
def test_inventory_orders_what_runs_low_and_names_an_unmet_goal(executor: str) -> None:
    program = load("inventory")
    low = [("Movement", {"id": 1, "sku": "A", "zone": "north", "delta": 12}),
           ("Movement", {"id": 2, "sku": "A", "zone": "north", "delta": -9})]
    result = run(program, low, executor=builtin_registries().executor(executor))
    assert result.status == "converged", result.detail
    assert result.facts("Order") == [{"sku": "A", "units": 7, "urgent": False, "notes": None,
                                      "zone": "north"}]
    blocked = [("Movement", {"id": 1, "sku": "B", "zone": "north", "delta": 1}),
               ("Blocked", {"sku": "B"})]
    result = run(program, blocked, executor=builtin_registries().executor(executor))
    assert result.status == "unmet_goal"
    assert result.unmet == [{"goal": "count(Shortage()) == count(Order())"}]


def test_policies_ruleset_runs_every_policy_kind() -> None:
    program = load("policies")

    def offers(*rows: tuple[str, str, float, int, str]) -> list[tuple[str, dict[str, Any]]]:
        return [("Offer", {"item": i, "source": s, "amount": a, "units": u, "label": lab})
                for i, s, a, u, lab in rows]

    result = run(program, offers(("x", "web", 10.0, 1, "a"), ("x", "legacy", 8.0, 2, "a")))
    assert result.status == "converged", result.detail
    assert result.facts("Bid") == [{"item": "x", "amount": 10.0}]
    assert result.facts("Stock") == [{"item": "x", "units": 3}]
    assert result.facts("Floor") == [{"item": "x", "amount": 8.0}]
    assert result.facts("Average") == [{"item": "x", "amount": 9.0}]
    assert len(result.facts("Note")) == 2  # keep all
    result = run(program, offers(("y", "manual", 1.0, 1, "a"), ("y", "manual", 1.0, 1, "b")))
    assert result.status == "conflict"
    # both labels come from label_manual: priority ties and `on tie` defaults to reject;
    # the first unresolved conflict in merge order stops the job
    assert [c["type"] for c in result.conflicts if c["winner"] is None] == ["Label"]


@pytest.mark.parametrize(
    "path", [p for p in sorted(RULESETS.rglob("*.cvg"))
             if "\ntest " in p.read_text(encoding="utf-8")],
    ids=lambda p: p.parent.name)
def test_the_rulesets_own_tests_pass(path: Path) -> None:
    # nothing else ran them: `converge test rulesets/` is a CI step of users' projects
    # (docs/ci.md), not of this suite's
    from converge_rules.testing import run_tests

    report, _ = run_tests([path])
    assert report.outcomes
    failed = [o for o in report.outcomes if o.status != "passed"]
    assert not failed, "\n".join(f"{o.id}: {o.text() or o.reason}" for o in failed)


def test_two_adjusters_who_disagree_do_not_stop_every_claim_of_the_job() -> None:
    # `resolve by using median, then earliest`: the median of two estimates is both of
    # them, which came in the same cycle, so `earliest` tied and the default `on tie
    # reject` ended the whole job in `conflict` — no claim of the batch was decided
    import converge_rules

    claims = converge_rules.load(RULESETS / "claims" / "claims.cvg")  # median: a plugin's
    facts: list[tuple[str, dict[str, Any]]] = [
        ("Policy", {"id": "P1", "holder": "ann", "kind": "auto", "limit": 10000.0}),
        ("Claim", {"id": "C1", "policy": "P1", "kind": "auto", "amount": 2000.0}),
        ("Estimate", {"adjuster": "bo", "claim": "C1", "amount": 1000.0}),
        ("Estimate", {"adjuster": "cy", "claim": "C1", "amount": 1200.0}),
        ("Claim", {"id": "C2", "policy": "P1", "kind": "auto", "amount": 300.0}),
        ("Estimate", {"adjuster": "bo", "claim": "C2", "amount": 300.0}),
        ("Estimate", {"adjuster": "cy", "claim": "C2", "amount": 300.0}),
    ]
    result = converge_rules.run(claims, facts, tools={"fraud_check": _no_fraud})
    assert result.status == "converged", result.detail
    decided = {d["claim"]: d["verdict"] for d in result.facts("Decision")}
    assert decided == {"C1": "approve", "C2": "approve"}
    assert {t["claim"]: t["amount"] for t in result.facts("Transfer")} == {
        "C1": 1000.0, "C2": 300.0}


def _no_fraud(claim: str, amount: float) -> dict[str, float]:
    return {"score": 0.0}
