"""Invariants (issue 14 item 2): a ``never`` invariant discards an effect that would
break it, whole, naming the agent, the invariant and the facts; an ``always`` one (or
a ``never`` match that got in otherwise) ends the job ``invariant_violated`` with its
partial results; the same for every executor."""

from __future__ import annotations

import json
from typing import Any

import pytest

import converge_rules
from converge_rules import api

PAYOUTS = """\
ruleset payouts
fact Claim   { key claim: str, amount: float }
fact Policy  { key claim: str, limit: float }
fact Payment { key claim: str, amount: float }
fact Note    { claim: str }
agent pay {
  when Claim(claim, amount)
  where claim != "small"
  emit Payment(claim: claim, amount: amount)
  emit Note(claim: claim)
}
agent pay_small {
  when Claim(claim: "small", amount)
  emit Payment(claim: "small", amount: amount)
}
invariant within_limit never Payment(claim, amount) and Policy(claim, limit) where amount > limit
"""


def load(text: str) -> converge_rules.Ruleset:
    return converge_rules.loads(text, plugins=False)


def events(result: Any, kind: str) -> list[dict[str, Any]]:
    from converge_rules.integrity import strip_hash

    return [e for e in (json.loads(strip_hash(line)) for line in result.trace.lines())
            if e["event"] == kind]


def test_an_effect_that_would_break_a_never_invariant_is_discarded_whole() -> None:
    result = api.run(load(PAYOUTS), [
        ("Claim", {"claim": "big", "amount": 5_000.0}),
        ("Claim", {"claim": "ok", "amount": 50.0}),
        ("Claim", {"claim": "small", "amount": 10.0}),
        ("Policy", {"claim": "big", "limit": 100.0}),
        ("Policy", {"claim": "ok", "limit": 100.0}),
        ("Policy", {"claim": "small", "limit": 100.0}),
    ])
    assert result.status == "converged"
    # the whole run of `pay` is gone (its good payment and its notes too), as a failed
    # agent's would be; `pay_small`'s effect is merged
    assert result.facts("Payment") == [{"claim": "small", "amount": 10.0}]
    assert result.facts("Note") == []
    broken = {"invariant": "within_limit", "cycle": 1, "agents": ["pay"],
              "rule": "never Payment(claim, amount) and Policy(claim, limit) where "
                      "amount > limit",
              "facts": [{"type": "Payment", "fields": {"claim": "big", "amount": 5000.0}},
                        {"type": "Policy", "fields": {"claim": "big", "limit": 100.0}}],
              "outcome": "effect_discarded"}
    assert result.invariants == [broken]
    assert json.loads(result.to_json())["invariants"] == [broken]
    [event] = events(result, "invariant_broken")
    assert event == {"event": "invariant_broken", **broken}
    [discarded] = events(result, "effect_discarded")
    assert discarded["agent"] == "pay"
    assert discarded["reason"].startswith("invariant within_limit would be broken")


def test_without_a_violation_the_result_is_as_without_the_invariant() -> None:
    facts = [("Claim", {"claim": "ok", "amount": 50.0}),
             ("Policy", {"claim": "ok", "limit": 100.0})]
    plain = api.run(load(PAYOUTS.rsplit("invariant", 1)[0]), facts)
    guarded = api.run(load(PAYOUTS), facts)
    assert guarded.to_json() == plain.to_json()
    assert "invariants" not in json.loads(guarded.to_json())
    assert guarded.trace.to_jsonl() == plain.trace.to_jsonl()


TWO_AGENTS = """\
ruleset r
fact Claim   { key claim: str, amount: float }
fact Policy  { key claim: str, limit: float }
fact Payment { key claim: str, amount: float }
agent limits { when Claim(claim) emit Policy(claim: claim, limit: 100.0) }
agent pay { when Claim(claim, amount) emit Payment(claim: claim, amount: amount) }
invariant within_limit never Payment(claim, amount) and Policy(claim, limit) where amount > limit
"""


def test_an_effect_is_checked_against_the_context_its_agent_saw() -> None:
    """`limits` derived the Policy in cycle 1, `pay` runs in cycle 2 (its Claim is
    new again: an updated amount): its payment is discarded."""
    rules = TWO_AGENTS.replace("agent pay {", "agent pay tier 2 {")
    result = api.run(load(rules), [("Claim", {"claim": "c", "amount": 500.0})])
    assert result.status == "converged"
    assert result.facts("Payment") == []
    assert [(b["cycle"], b["agents"], b["outcome"]) for b in result.invariants] == [
        (2, ["pay"], "effect_discarded")]


def test_facts_of_two_effects_of_one_cycle_that_break_it_together_end_the_job() -> None:
    result = api.run(load(TWO_AGENTS), [("Claim", {"claim": "c", "amount": 500.0})])
    assert result.status == "invariant_violated"
    [broken] = result.invariants
    assert broken["outcome"] == "job_ended" and broken["agents"] == ["limits", "pay"]


def test_a_discarded_effect_takes_no_part_in_the_cycles_conflicts() -> None:
    """`cheap` and `dear` both propose the Payment of one claim: the policy would keep
    the higher, but `dear` breaks the invariant, so `cheap`'s value is merged alone
    (no conflict), as it is when `dear` fails."""
    rules = """\
ruleset r
fact Claim   { key claim: str, amount: float }
fact Payment { key claim: str, amount: float }
agent cheap { when Claim(claim, amount) emit Payment(claim: claim, amount: amount) }
agent dear { when Claim(claim, amount) emit Payment(claim: claim, amount: amount * 10.0) }
policy Payment { resolve by highest amount }
invariant capped never Payment(amount) where amount > 1_000.0
"""
    result = api.run(load(rules), [("Claim", {"claim": "c", "amount": 500.0})])
    assert result.status == "converged"
    assert result.facts("Payment") == [{"claim": "c", "amount": 500.0}]
    assert result.conflicts == []
    assert [b["agents"] for b in result.invariants] == [["dear"]]


def test_an_always_invariant_ends_the_job_with_partial_results_and_culprits() -> None:
    rules = PAYOUTS + "invariant budget always sum(Payment(), amount) <= 1_000.0\n"
    result = api.run(load(rules), [
        ("Claim", {"claim": "a", "amount": 600.0}),
        ("Claim", {"claim": "small", "amount": 700.0}),
    ])
    assert result.status == "invariant_violated"
    assert "budget" in result.detail
    assert result.cycles == 1
    assert len(result.facts("Payment")) == 2  # the partial results
    [broken] = result.invariants
    assert broken["invariant"] == "budget" and broken["outcome"] == "job_ended"
    assert broken["agents"] == ["pay", "pay_small"]
    assert {f["fields"]["claim"] for f in broken["facts"]} == {"a", "small"}
    assert events(result, "status")[0]["status"] == "invariant_violated"


def test_inputs_that_break_an_invariant_end_the_job_before_the_first_cycle() -> None:
    result = api.run(load(PAYOUTS), [
        ("Payment", {"claim": "x", "amount": 500.0}),
        ("Policy", {"claim": "x", "limit": 100.0}),
    ])
    assert result.status == "invariant_violated"
    assert result.cycles == 0
    assert result.invariants[0]["agents"] == []  # input facts: no agent derived them


def test_a_match_between_two_facts_of_one_effect_ends_the_job() -> None:
    rules = """\
ruleset r
fact Claim   { key claim: str, amount: float }
fact Policy  { key claim: str, limit: float }
fact Payment { key claim: str, amount: float }
agent both {
  when Claim(claim, amount)
  emit Policy(claim: claim, limit: 1.0)
  emit Payment(claim: claim, amount: amount)
}
invariant within_limit never Payment(claim, amount) and Policy(claim, limit) where amount > limit
"""
    result = api.run(load(rules), [("Claim", {"claim": "c", "amount": 5.0})])
    assert result.status == "invariant_violated"
    [broken] = result.invariants
    assert broken["outcome"] == "job_ended" and broken["agents"] == ["both"]
    assert [f["type"] for f in broken["facts"]] == ["Payment", "Policy"]


def test_a_removal_that_unblocks_a_not_pattern_ends_the_job() -> None:
    rules = """\
ruleset r
fact Payment  { key claim: str, amount: float }
fact Approval { key claim: str }
fact Revoke   { claim: str }
agent revoke tier 2 {
  when Revoke(claim) and a: Approval(claim)
  emit Gone(claim: claim)
}
fact Gone { claim: str }
prune Approval when age >= 1
invariant approved never Payment(claim) and not Approval(claim)
"""
    result = api.run(load(rules), [
        ("Payment", {"claim": "c", "amount": 5.0}),
        ("Approval", {"claim": "c"}),
        ("Revoke", {"claim": "c"}),
    ])
    assert result.status == "invariant_violated"
    assert result.invariants[0]["facts"] == [
        {"type": "Payment", "fields": {"claim": "c", "amount": 5.0}}]


@pytest.mark.parametrize("executor", ["threads", "asyncio", "processes"])
def test_every_executor_gives_the_same_result_and_trace(executor: str) -> None:
    rules = PAYOUTS + "invariant budget always sum(Payment(), amount) <= 1_000.0\n"
    facts = [("Claim", {"claim": f"c{i}", "amount": 100.0 * i}) for i in range(8)]
    facts += [("Policy", {"claim": f"c{i}", "limit": 350.0}) for i in range(8)]
    facts += [("Claim", {"claim": "small", "amount": 900.0})]
    serial = api.run(load(rules), facts)
    other = api.run(load(rules), facts, executor=executor, workers=2)
    assert serial.invariants  # the case exercises the invariants
    assert other.to_json() == serial.to_json()
    assert other.trace.to_jsonl() == serial.trace.to_jsonl()


def test_the_observer_sees_the_invariant_broken() -> None:
    seen: list[dict[str, Any]] = []
    api.run(load(PAYOUTS), [("Claim", {"claim": "big", "amount": 5_000.0}),
                            ("Policy", {"claim": "big", "limit": 1.0})],
            observer=seen.append)
    kinds = [e["event"] for e in seen]
    assert kinds.index("invariant_broken") < kinds.index("effect_discarded")


FAILING_GUARD = """\
ruleset r
fact Claim   { key claim: str, amount: float }
fact Policy  { key claim: str, limit: float }
fact Payment { key claim: str, amount: float }
agent pay { when Claim(claim, amount) emit Payment(claim: claim, amount: amount) }
invariant ratio never Payment(claim, amount) and Policy(claim, limit) where amount / limit > 2.0
"""


def test_an_effect_an_invariant_cannot_be_checked_on_is_discarded_not_a_crash() -> None:
    result = api.run(load(FAILING_GUARD), [("Claim", {"claim": "c", "amount": 5.0}),
                                           ("Policy", {"claim": "c", "limit": 0.0})])
    assert result.status == "converged"
    assert result.facts("Payment") == []
    [discarded] = events(result, "effect_discarded")
    assert discarded["reason"].startswith("invariant ratio could not be checked (")
    assert "ZeroDivisionError" in discarded["reason"] or "division" in discarded["reason"]


def test_an_always_invariant_that_cannot_be_evaluated_ends_the_job() -> None:
    rules = PAYOUTS + "invariant mean_ok always sum(Payment(), amount) / count(Policy()) < 9.0\n"
    result = api.run(load(rules), [("Claim", {"claim": "c", "amount": 5.0})])
    assert result.status == "invariant_violated"
    assert "could not be checked" in result.detail


@pytest.mark.parametrize("invariant", [
    "invariant few always count(Doc()) < 3",
    "invariant small never Doc(n) where n > 2",
])
def test_the_trace_lines_of_a_broken_invariant_are_written(
        tmp_path: Any, invariant: str) -> None:
    # found by review: a trace written as lines (--trace, --store, trace.lines())
    # died with "internal error: unknown trace event kind 19": the fast line writer
    # had no line for invariant_broken
    from click.testing import CliRunner

    from converge_rules.cli import main

    text = ("ruleset docs\nfact Doc { key n: int }\n"
            "agent more { when Doc(n) where n < 5 emit Doc(n: n + 1) }\n" + invariant + "\n")
    ruleset = load(text)
    result = api.run(ruleset, [("Doc", {"n": 0})])
    lines = [json.loads(line) for line in result.trace.lines()]
    broken = [e for e in lines if e["event"] == "invariant_broken"]
    assert broken and broken[0]["invariant"] in ("few", "small")
    (tmp_path / "docs.cvg").write_text(text)
    (tmp_path / "in.jsonl").write_text('{"Doc": {"n": 0}}\n')
    out = CliRunner().invoke(main, ["run", str(tmp_path / "docs.cvg"), "-f",
                                    str(tmp_path / "in.jsonl"), "--trace",
                                    str(tmp_path / "t.jsonl")])
    assert "internal error" not in out.output
    assert out.exit_code in (0, 3), out.output
    assert "invariant_broken" in (tmp_path / "t.jsonl").read_text()
