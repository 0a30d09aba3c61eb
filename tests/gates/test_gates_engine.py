"""Approval gates (issue 14 item 1), the engine: a gated fact an agent derives is held
(not merged, unseen by agents, the key's previous value kept), the job goes on and
stops ``awaiting_approval`` listing it; decisions (approve, approve with edits,
reject) are applied when nothing else can change; a rejected fact never comes back;
the same for every executor."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from converge_rules import Decision, api
from converge_rules.engine.gates import pending_id
from converge_rules.errors import InputError
from tests.gates.programs import CLAIMS, COMBINED, FACTS, PARTS, approve, events, load


def test_a_gated_fact_is_held_unseen_and_the_job_awaits_approval() -> None:
    result = api.run(load(), FACTS)
    assert result.status == "awaiting_approval"
    # the small claim went through and was noticed; the big one is held, unseen
    assert result.facts("Payment") == [{"claim": "c2", "amount": 500.0}]
    assert result.facts("Notice") == [{"claim": "c2", "amount": 500.0}]
    (pending,) = result.pending
    assert re.fullmatch(r"p-[0-9a-f]{12}", pending["id"])
    assert pending["id"] == pending_id("Payment", "Payment", ("c1", 20_000.0))
    assert pending == {
        "id": pending["id"], "gate": "Payment", "type": "Payment",
        "fields": {"claim": "c1", "amount": 20_000.0}, "agent": "pay", "cycle": 1,
        "support": [{"id": 0, "type": "Claim", "fields": {"id": "c1", "amount": 20_000.0}}],
    }
    doc = json.loads(result.to_json())
    assert doc["status"] == "awaiting_approval" and doc["pending"] == result.pending
    (event,) = events(result, "approval_pending")
    assert event["id"] == pending["id"] and event["agent"] == "pay"
    assert event["support"] == [0] and event["fields"] == pending["fields"]


def test_without_a_gate_hit_nothing_changes() -> None:
    result = api.run(load(), [("Claim", {"id": "c2", "amount": 500.0})])
    assert result.status == "converged" and result.pending == []
    assert "pending" not in json.loads(result.to_json())
    assert events(result, "approval_pending") == []


def test_input_facts_are_not_gated() -> None:
    result = api.run(load(), [("Payment", {"claim": "c9", "amount": 99_000.0})])
    assert result.status == "converged"
    assert result.facts("Payment") == [{"claim": "c9", "amount": 99_000.0}]


def test_an_approved_fact_is_merged_in_a_cycle_of_its_own_and_agents_see_it() -> None:
    paused = api.run(load(), FACTS)
    pid = paused.pending[0]["id"]
    result = api.run(load(), FACTS, decisions=[approve(pid, note="checked the invoice")])
    assert result.status == "converged" and result.pending == []
    assert {"claim": "c1", "amount": 20_000.0} in result.facts("Payment")
    assert {"claim": "c1", "amount": 20_000.0} in result.facts("Notice")
    (decided,) = events(result, "approval_decided")
    assert decided == {
        "event": "approval_decided", "cycle": paused.cycles + 1, "id": pid,
        "gate": "Payment", "type": "Payment", "fields": {"claim": "c1", "amount": 20_000.0},
        "decision": "approve", "by": "ann", "at": "2026-12-06T10:00:00Z",
        "note": "checked the invoice", "edits": {}, "outcome": "merged",
    }
    # the decision cycle merges nothing else: its only effect is the approved fact's
    cycle = [e for e in map(json.loads, result.trace.bare_lines())
             if e.get("cycle") == paused.cycles + 1]
    assert [e["event"] for e in cycle] == ["cycle_start", "approval_decided", "fact_added",
                                           "effect_merged", "cycle_end"]
    assert cycle[2]["agent"] == "pay" and cycle[2]["support"] == [0]
    assert result.decided == [{**{k: decided[k] for k in ("id", "gate", "decision", "by",
                                                          "at", "note", "edits", "cycle",
                                                          "outcome")}}]
    assert json.loads(result.to_json())["decisions"] == result.decided


def test_approve_with_edits_merges_the_edited_fact() -> None:
    pid = api.run(load(), FACTS).pending[0]["id"]
    result = api.run(load(), FACTS, decisions=[approve(pid, edits={"amount": 15_000.0})])
    assert result.status == "converged"
    assert {"claim": "c1", "amount": 15_000.0} in result.facts("Payment")
    assert {"claim": "c1", "amount": 15_000.0} in result.facts("Notice")
    (decided,) = events(result, "approval_decided")
    assert decided["edits"] == {"amount": 15_000.0}
    assert decided["fields"] == {"claim": "c1", "amount": 15_000.0}


def test_a_rejected_fact_is_dropped() -> None:
    pid = api.run(load(), FACTS).pending[0]["id"]
    result = api.run(load(), FACTS, decisions=[Decision(pid, False, by="bob", note="fraud")])
    assert result.status == "converged"
    assert result.facts("Payment") == [{"claim": "c2", "amount": 500.0}]
    (decided,) = events(result, "approval_decided")
    assert (decided["decision"], decided["outcome"], decided["by"], decided["note"]) == (
        "reject", "rejected", "bob", "fraud")


KEYED = """\
ruleset keyed
fact Claim   { key id: str, amount: float }
fact Payment { key claim: str, amount: float }
agent pay {
  when Claim(id, amount)
  emit Payment(claim: id, amount: amount)
}
policy Payment { resolve by highest amount }
approve Payment when amount > 10_000.0
"""


def test_the_keys_previous_value_stays_while_its_new_value_is_held() -> None:
    facts = [("Payment", {"claim": "c1", "amount": 100.0}),
             ("Claim", {"id": "c1", "amount": 20_000.0})]
    paused = api.run(load(KEYED), facts)
    assert paused.status == "awaiting_approval"
    # the policy chose the new value (highest amount): that value is what is held
    assert paused.pending[0]["fields"] == {"claim": "c1", "amount": 20_000.0}
    assert paused.facts("Payment") == [{"claim": "c1", "amount": 100.0}]
    done = api.run(load(KEYED), facts, decisions=[approve(paused.pending[0]["id"])])
    assert done.status == "converged"
    assert done.facts("Payment") == [{"claim": "c1", "amount": 20_000.0}]
    assert [e["event"] for e in map(json.loads, done.trace.bare_lines())].count(
        "replaced") == 1


def test_a_value_the_policy_turns_down_is_never_held() -> None:
    facts = [("Payment", {"claim": "c1", "amount": 90_000.0}),
             ("Claim", {"id": "c1", "amount": 20_000.0})]
    result = api.run(load(KEYED), facts)
    assert result.status == "converged" and result.pending == []
    assert result.facts("Payment") == [{"claim": "c1", "amount": 90_000.0}]


TWICE = """\
ruleset twice
fact Claim   { key id: str, amount: float }
fact Payment { claim: str, amount: float }
fact Escalation { claim: str }
agent pay {
  when Claim(id, amount)
  emit Payment(claim: id, amount: amount)
}
agent pay_again tier 2 {
  when Claim(id, amount)
  emit Payment(claim: id, amount: amount)
}
agent escalate {
  when Claim(id, amount) where amount > 10_000.0
  emit Escalation(claim: id)
}
agent pay_escalated tier 2 {
  when Claim(id, amount) and Escalation(claim: id)
  emit Payment(claim: id, amount: amount)
}
approve Payment when amount > 10_000.0
approve Escalation
"""


def test_the_same_fact_derived_again_while_pending_is_held_once() -> None:
    result = api.run(load(TWICE), [("Claim", {"id": "c1", "amount": 20_000.0})])
    assert result.status == "awaiting_approval"
    assert sorted(p["gate"] for p in result.pending) == ["Escalation", "Payment"]
    held = [e["id"] for e in events(result, "approval_pending")]
    assert len(held) == len(set(held)) == 2


def test_a_rejected_fact_never_enters_again_whatever_derives_it() -> None:
    facts = [("Claim", {"id": "c1", "amount": 20_000.0})]
    paused = api.run(load(TWICE), facts)
    ids = {p["gate"]: p["id"] for p in paused.pending}
    # the escalation, once approved, lets pay_escalated derive the rejected payment
    # again from other support: it is dropped, and never pending again
    result = api.run(load(TWICE), facts, decisions=[
        Decision(ids["Payment"], False, by="bob"), approve(ids["Escalation"])])
    assert result.status == "converged" and result.pending == []
    assert result.count("Payment") == 0 and result.count("Escalation") == 1
    assert sorted(e["id"] for e in events(result, "approval_pending")) == sorted(
        ids.values())
    # pay_escalated did derive it again after the decisions (its effect merged)
    last = max(e["cycle"] for e in events(result, "approval_decided"))
    assert any(e["agent"] == "pay_escalated" and e["cycle"] > last
               for e in events(result, "effect_merged"))


def test_decisions_arrive_in_id_order_in_one_cycle() -> None:
    facts = [("Claim", {"id": f"c{i}", "amount": 20_000.0 + i}) for i in range(5)]
    paused = api.run(load(), facts)
    ids = [p["id"] for p in paused.pending]
    assert ids == sorted(ids) and len(ids) == 5
    result = api.run(load(), facts, decisions=[approve(i) for i in reversed(ids)])
    decided = events(result, "approval_decided")
    assert [d["id"] for d in decided] == ids
    assert {d["cycle"] for d in decided} == {paused.cycles + 1}


def test_a_decider_function_decides_by_the_pending_fact() -> None:
    seen: list[dict[str, Any]] = []

    def decide(pending: dict[str, Any]) -> Decision | None:
        seen.append(pending)
        return approve(pending["id"]) if pending["fields"]["claim"] == "c1" else None

    facts = [*FACTS, ("Claim", {"id": "c3", "amount": 30_000.0})]
    result = api.run(load(), facts, decisions=decide)
    assert result.status == "awaiting_approval"
    assert [p["fields"]["claim"] for p in result.pending] == ["c3"]
    assert {"claim": "c1", "amount": 20_000.0} in result.facts("Payment")
    assert {p["fields"]["claim"] for p in seen} == {"c1", "c3"}


def test_a_decision_for_an_id_never_pending_is_a_warning_in_the_result() -> None:
    pid = api.run(load(), FACTS).pending[0]["id"]
    result = api.run(load(), FACTS, decisions=[approve(pid), approve("p-000000000000")])
    assert result.status == "converged"
    assert result.unused_decisions == ["p-000000000000"]
    assert json.loads(result.to_json())["unused_decisions"] == ["p-000000000000"]


@pytest.mark.parametrize(("edits", "message"), [
    ({"claim": "c7"}, "'claim' is a key field of Payment: an edit may not change it"),
    ({"amount": "lots"}, "Payment.amount must be float"),
    ({"amuont": 1.0}, "Payment has no field 'amuont' to edit"),
])
def test_a_bad_edit_is_a_clear_input_error(edits: dict[str, Any], message: str) -> None:
    pid = api.run(load(), FACTS).pending[0]["id"]
    with pytest.raises(InputError, match=re.escape(message)) as info:
        api.run(load(), FACTS, decisions=[approve(pid, edits=edits)])
    assert pid in str(info.value)


def test_bad_decisions_are_refused_where_they_are_made() -> None:
    with pytest.raises(ValueError, match="a rejection cannot edit"):
        Decision("p-1", False, edits={"amount": 1.0})
    with pytest.raises(TypeError, match=r"Decision\.by must be a str"):
        Decision("p-1", True, by=3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="two different decisions for p-1"):
        api.run(load(), FACTS, decisions=[Decision("p-1", True), Decision("p-1", False)])


def test_a_gate_that_cannot_be_evaluated_holds_the_fact() -> None:
    rules = CLAIMS.replace("approve Payment when amount > 10_000.0",
                           "approve Payment when 1.0 / (amount - 500.0) > 0.0")
    result = api.run(load(rules), [("Claim", {"id": "c2", "amount": 500.0})])
    assert result.status == "awaiting_approval"
    assert result.pending[0]["fields"] == {"claim": "c2", "amount": 500.0}


def test_require_is_checked_only_when_the_job_converges() -> None:
    rules = CLAIMS + 'root "pay" {\n  require count(Payment()) == 2\n}\n'
    paused = api.run(load(rules), FACTS)
    assert paused.status == "awaiting_approval" and paused.unmet == []
    pid = paused.pending[0]["id"]
    assert api.run(load(rules), FACTS, decisions=[approve(pid)]).status == "converged"
    assert api.run(load(rules), FACTS,
                   decisions=[Decision(pid, False)]).status == "unmet_goal"


def test_the_decision_cycle_counts_against_max_cycles() -> None:
    rules = CLAIMS + 'root "pay" {\n  max_cycles = 2\n}\n'
    paused = api.run(load(rules), FACTS)
    assert paused.status == "awaiting_approval" and paused.cycles == 2
    result = api.run(load(rules), FACTS, decisions=[approve(paused.pending[0]["id"])])
    assert result.status == "budget_exceeded"
    assert result.budget["max_cycles"]["exceeded"]


@pytest.mark.parametrize("executor", ["threads", "asyncio", "processes"])
def test_every_executor_holds_and_decides_alike(executor: str) -> None:
    facts = [("Claim", {"id": f"c{i}", "amount": 5_000.0 * i}) for i in range(8)]
    ruleset = load()
    serial = api.run(ruleset, facts)
    other = api.run(ruleset, facts, executor=executor, workers=2)
    assert other.to_json() == serial.to_json()
    assert list(other.trace.lines()) == list(serial.trace.lines())
    decisions = [approve(p["id"]) if i % 2 else Decision(p["id"], False)
                 for i, p in enumerate(serial.pending)]
    serial = api.run(ruleset, facts, decisions=decisions)
    other = api.run(ruleset, facts, decisions=decisions, executor=executor, workers=2)
    assert serial.status == "converged"
    assert other.to_json() == serial.to_json()
    assert list(other.trace.lines()) == list(serial.trace.lines())


def test_both_trace_writers_write_the_gate_events_alike() -> None:
    pid = api.run(load(), FACTS).pending[0]["id"]
    for decisions in ([], [approve(pid, edits={"amount": 1.5e4}, note="é\u2028")]):
        result = api.run(load(), FACTS, decisions=decisions)
        assert list(result.trace.bare_lines()) == list(result.trace.model_lines())


def test_a_job_re_entered_with_decisions_equals_one_given_them_up_front() -> None:
    from converge_rules.engine.executors import SerialExecutor
    from converge_rules.engine.inputs import validate_pairs
    from converge_rules.engine.runner import _Job

    ruleset = load(TWICE)
    facts = [("Claim", {"id": "c1", "amount": 20_000.0}),
             ("Claim", {"id": "c2", "amount": 30_000.0})]
    job = _Job(ruleset.program, validate_pairs(ruleset.program, facts), SerialExecutor(),
               None, None, now=None)
    job.start()
    paused = job.converge(last=False)
    assert paused.status == "awaiting_approval"
    decisions = [approve(p["id"]) for p in paused.pending]
    resumed = job.go_on(decisions)
    up_front = api.run(ruleset, facts, decisions=decisions, now=None)
    assert resumed.status == up_front.status
    assert resumed.to_json() == up_front.to_json()
    assert list(resumed.trace.lines()) == list(up_front.trace.lines())


def test_a_decision_is_applied_no_earlier_than_the_pause_it_was_given_at() -> None:
    # c1 is vip: its Review and its Payment wait; the first pause approves the Review
    # only, the second (after pay_reviewed's new value) decides the Payments
    facts = [("Claim", {"id": "c1", "amount": 20_000.0})]
    first = api.run(load(TWICE), facts)
    ids = {p["gate"]: p["id"] for p in first.pending}
    round1 = [approve(ids["Escalation"], paused_at=first.cycles)]
    second = api.run(load(TWICE), facts, decisions=round1)
    assert second.status == "awaiting_approval"
    assert [p["id"] for p in second.pending] == [ids["Payment"]]
    round2 = [*round1, approve(ids["Payment"], paused_at=second.cycles)]
    resumed = api.run(load(TWICE), facts, decisions=round2)
    cycles = {d["id"]: d["cycle"] for d in resumed.decided}
    assert cycles == {ids["Escalation"]: first.cycles + 1,
                      ids["Payment"]: second.cycles + 1}
    # the cycles up to the second pause are those of the run that paused there
    lines = list(second.trace.bare_lines())[:-1]  # its awaiting_approval status
    assert list(resumed.trace.bare_lines())[:len(lines)] == lines
    # given without paused_at, the payment's approval is taken at the first point
    eager = api.run(load(TWICE), facts,
                    decisions=[*round1, approve(ids["Payment"])])
    assert {d["cycle"] for d in eager.decided} == {first.cycles + 1}
    with pytest.raises(TypeError, match="paused_at"):
        Decision("p-1", True, paused_at=-1)


INTENTS = """\
ruleset refunds
intent Refund { order: str, amount: float }
fact Paid { key order: str, amount: float }
agent refund {
  when intent Refund(order, amount)
  emit Paid(order: order, amount: amount)
}
approve Paid when amount > 100.0
"""


def test_a_fact_answering_an_intent_is_merged_when_approved() -> None:
    facts = [("Refund", {"order": "o1", "amount": 500.0})]
    paused = api.run(load(INTENTS), facts)
    assert paused.status == "awaiting_approval"
    done = api.run(load(INTENTS), facts, decisions=[approve(paused.pending[0]["id"])])
    assert done.decided[0]["outcome"] == "merged"
    assert done.facts("Paid") == [{"order": "o1", "amount": 500.0}]
    assert done.status == "converged" and done.unmet == []


def test_an_intent_whose_answer_is_held_stays_open_and_unmet_when_rejected() -> None:
    # found by rejecting the only answer to an intent: the intent had been closed when
    # the answer was held, so the job converged with nothing unmet and nothing paid
    facts = [("Refund", {"order": "o1", "amount": 500.0})]
    paused = api.run(load(INTENTS), facts)
    assert paused.unmet == [{"intent": "Refund", "fields": {"order": "o1", "amount": 500.0}}]
    assert events(paused, "intent_closed") == []
    pid = paused.pending[0]["id"]
    rejected = api.run(load(INTENTS), facts, decisions=[Decision(pid, False, by="ann")])
    assert rejected.status == "converged" and rejected.facts("Paid") == []
    assert rejected.unmet == paused.unmet
    approved = api.run(load(INTENTS), facts, decisions=[approve(pid)])
    assert approved.unmet == []
    (closed,) = events(approved, "intent_closed")
    assert closed["cycle"] == approved.decided[0]["cycle"]


def test_a_held_fact_whose_support_is_pruned_is_dropped_not_decided() -> None:
    # (it used to wait for a decision, and an approval then gave `support_gone`)
    rules = CLAIMS + "prune Claim when age > 0\n"
    paused = api.run(load(rules), FACTS)
    assert paused.status == "converged" and paused.pending == []
    (held,) = events(paused, "approval_pending")
    (dropped,) = events(paused, "pending_dropped")
    assert dropped["id"] == held["id"] and dropped["gone"] == held["support"]
    done = api.run(load(rules), FACTS, decisions=[approve(held["id"])])
    assert done.decided == [] and done.unused_decisions == [held["id"]]
    assert done.count("Payment") == 0 and done.status == "converged"


def test_observers_see_gate_events_live_in_trace_order() -> None:
    pid = api.run(load(), FACTS).pending[0]["id"]
    seen: list[dict[str, Any]] = []
    result = api.run(load(), FACTS, decisions=[approve(pid)], observer=seen.append)
    kinds = [e["event"] for e in seen]
    assert kinds.index("approval_pending") < kinds.index("approval_decided")
    traced = [e for e in map(json.loads, result.trace.bare_lines())
              if e["event"] in ("approval_pending", "approval_decided")]
    assert [{k: v for k, v in e.items() if k != "hash"} for e in seen
            if e["event"] in ("approval_pending", "approval_decided")] == traced


def test_a_stored_job_keeps_the_gate_events_as_the_trace_has_them(tmp_path: Any) -> None:
    from converge_rules.store.sqlite import SqliteStore

    pid = api.run(load(), FACTS).pending[0]["id"]
    for decisions in ([], [approve(pid, paused_at=1)]):
        db = tmp_path / f"run{len(decisions)}.db"
        stored = api.run(load(), FACTS, store=db, decisions=decisions, now=None)
        plain = api.run(load(), FACTS, decisions=decisions, now=None)
        assert stored.status == ("converged" if decisions else "awaiting_approval")
        with SqliteStore(db) as store:
            (job,) = store.jobs()
            assert list(store.trace_lines(job.id)) == list(plain.trace.lines())


def test_a_keyed_update_in_place_passes_its_gate_too() -> None:
    # found merging the keyed-counter fast path (an update in place with one
    # candidate, fused in one pass) with the gates: that path merged the new value
    # without asking the gate, so a payment raised above the limit went through
    text = """\
ruleset raise
fact Claim   { key id: str, amount: float }
fact Payment { key claim: str, amount: float }
policy Payment { resolve by latest }
agent pay {
  when Claim(id, amount)
  emit Payment(claim: id, amount: amount)
}
agent raise_it {
  when Payment(claim, amount) where amount < 10_000.0
  emit Payment(claim: claim, amount: amount * 4.0)
}
approve Payment when amount > 10_000.0
"""
    result = api.run(load(text), [("Claim", {"id": "c1", "amount": 5_000.0})])
    assert result.status == "awaiting_approval"
    assert result.facts("Payment") == [{"claim": "c1", "amount": 5_000.0}]
    (pending,) = result.pending
    assert pending["fields"] == {"claim": "c1", "amount": 20_000.0}


LIMITED = CLAIMS + """\
fact Limit { key claim: str, most: float }
invariant within_limit never Payment(claim, amount) and Limit(claim, most) where amount > most
"""


@pytest.mark.parametrize("executor", ["serial", "threads", "processes"])
def test_an_approval_an_invariant_discards_takes_no_other_approval_with_it(
        executor: str) -> None:
    # found in docs/approvals.md's walk-through: C2 approved with an edited amount above
    # its policy's limit, C3 approved as it was; both Payments come from agent `pay`, and
    # the invariant discarded C3's with C2's (one effect), both recorded as "merged"
    facts = [("Claim", {"id": "c1", "amount": 20_000.0}),
             ("Claim", {"id": "c3", "amount": 12_000.0}),
             ("Limit", {"claim": "c1", "most": 50_000.0}),
             ("Limit", {"claim": "c3", "most": 50_000.0})]
    held = api.run(load(LIMITED), facts).pending
    by_claim = {p["fields"]["claim"]: p["id"] for p in held}
    decisions = [approve(by_claim["c1"], edits={"amount": 99_999.0}),
                 approve(by_claim["c3"])]
    result = api.run(load(LIMITED), facts, decisions=decisions, executor=executor)
    assert result.status == "converged"
    assert result.facts("Payment") == [{"claim": "c3", "amount": 12_000.0}]
    outcomes = {d["id"]: d["outcome"] for d in result.decided}
    assert outcomes == {by_claim["c1"]: "discarded", by_claim["c3"]: "merged"}
    assert {e["id"]: e["outcome"] for e in events(result, "approval_decided")} == outcomes
    (broken,) = events(result, "invariant_broken")
    assert broken["invariant"] == "within_limit" and broken["agents"] == ["pay"]
    assert {"claim": "c1", "amount": 99_999.0} in [f["fields"] for f in broken["facts"]]


# ------------------------------------------------- keyed types: combine and conflicts

def test_an_approved_combined_amount_is_counted_once() -> None:
    # 5,000 enters; 8,000 more combines to 13,000, which the gate holds. Approved, it
    # replaces the 5,000 it counts already: not 5,000 + 13,000 = 18,000 (held again)
    paused = api.run(load(COMBINED), PARTS)
    (pending,) = paused.pending
    assert pending["fields"] == {"claim": "c1", "amount": 13_000.0}
    result = api.run(load(COMBINED), PARTS, decisions=[approve(pending["id"])])
    assert result.status == "converged" and result.pending == []
    assert result.facts("Payment") == [{"claim": "c1", "amount": 13_000.0}]
    (decided,) = result.decided
    assert decided["outcome"] == "merged"


def test_an_approved_combined_amount_with_an_edit_replaces_the_incumbent() -> None:
    pid = api.run(load(COMBINED), PARTS).pending[0]["id"]
    result = api.run(load(COMBINED), PARTS,
                     decisions=[approve(pid, edits={"amount": 12_000.0})])
    assert result.status == "converged"
    assert result.facts("Payment") == [{"claim": "c1", "amount": 12_000.0}]
    (conflict,) = result.conflicts
    assert conflict["winner"] == {"claim": "c1", "amount": 12_000.0}
    assert conflict["cycle"] == result.decided[0]["cycle"]


def test_a_held_combined_value_is_no_winner_in_the_conflicts_until_approved() -> None:
    paused = api.run(load(COMBINED), PARTS)
    # the key keeps 5,000: no conflict names the held 13,000 as its winner
    assert paused.facts("Payment") == [{"claim": "c1", "amount": 5_000.0}]
    assert paused.conflicts == []
    assert all(e["winner"] != paused.pending[0]["fields"] for e in events(paused, "conflict"))
    rejected = api.run(load(COMBINED), PARTS, decisions=[
        Decision(paused.pending[0]["id"], False, by="ann", at="2026-12-06T10:00:00Z")])
    assert rejected.status == "converged" and rejected.conflicts == []
    assert rejected.facts("Payment") == [{"claim": "c1", "amount": 5_000.0}]


LATEST = """\
ruleset est
fact Estimate { key claim: str, amount: float }
fact Bump     { key claim: str, amount: float }
fact Payment  { key claim: str, amount: float }
agent first {
  when Estimate(claim, amount)
  emit Payment(claim: claim, amount: amount)
}
agent second {
  when Bump(claim, amount) and Payment(claim)
  emit Payment(claim: claim, amount: amount)
}
policy Payment { resolve by highest amount }
approve Payment when amount > 10_000.0
"""


@pytest.mark.parametrize("policy", ["resolve by highest amount",
                                    "resolve by highest amount, then latest"])
def test_a_held_keyed_value_is_not_the_winner_of_the_conflicts_table(policy: str) -> None:
    # (the first policy takes the one-candidate fast path, the second the general one)
    text = LATEST.replace("resolve by highest amount", policy)
    facts = [("Estimate", {"claim": "c1", "amount": 4_000.0}),
             ("Bump", {"claim": "c1", "amount": 15_000.0})]
    paused = api.run(load(text), facts)
    assert paused.status == "awaiting_approval"
    assert paused.facts("Payment") == [{"claim": "c1", "amount": 4_000.0}]
    assert paused.conflicts == []
    result = api.run(load(text), facts, decisions=[approve(paused.pending[0]["id"])])
    assert result.facts("Payment") == [{"claim": "c1", "amount": 15_000.0}]
    (conflict,) = result.conflicts
    assert conflict["winner"] == {"claim": "c1", "amount": 15_000.0}
    assert conflict["losers"] == [{"claim": "c1", "amount": 4_000.0}]
