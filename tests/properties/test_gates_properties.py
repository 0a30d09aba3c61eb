"""Approval gates: a job that pauses ``awaiting_approval``, gets decisions and goes on
equals a job given the same decisions up front — result JSON and trace bytes — for
random claims and random decisions (approve, approve with an edit, reject, or none),
over several pauses, under every executor.

The job pauses with pending facts; at each pause decisions are drawn for any of the
facts pending there (one left undecided at a pause may be decided at a later one), each
``paused_at`` the cycles the job had run: the re-entered job (``_Job.go_on``) and a
fresh run given every decision from the start (a resume from the inputs) then apply
each decision at the same point of decision."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import converge_rules
from converge_rules import Decision, api
from converge_rules.engine.executors import fork_available
from converge_rules.engine.inputs import validate_pairs
from converge_rules.engine.runner import _Job

RULESET = """\
ruleset gated
fact Claim   { key id: int, amount: float, vip: bool }
fact Payment { key claim: int, amount: float }
fact Review  { claim: int }
fact Letter  { claim: int, amount: float }
agent pay {
  when Claim(id, amount)
  emit Payment(claim: id, amount: amount)
}
agent review {
  when Claim(id, vip) where vip
  emit Review(claim: id)
}
agent pay_reviewed tier 2 {
  when Claim(id, amount) and Review(claim: id)
  emit Payment(claim: id, amount: amount * 2.0)
}
agent write tier 2 {
  when Payment(claim, amount)
  emit Letter(claim: claim, amount: amount)
}
policy Payment { resolve by highest amount }
approve Payment when amount > 1_000.0
approve Review
"""

RULES = converge_rules.loads(RULESET, plugins=False)

claims = st.lists(st.tuples(st.sampled_from([400.0, 700.0, 1_500.0, 3_000.0]),
                            st.booleans()), min_size=1, max_size=6)
choices = st.sampled_from(["none", "approve", "edit", "reject"])


def _facts(drawn: list[tuple[float, bool]]) -> list[tuple[str, dict[str, Any]]]:
    return [("Claim", {"id": i, "amount": amount, "vip": vip})
            for i, (amount, vip) in enumerate(drawn)]


def _decision(pending: dict[str, Any], choice: str, paused_at: int) -> Decision | None:
    if choice == "none":
        return None
    edits = ({"amount": pending["fields"]["amount"] + 0.5}
             if choice == "edit" and pending["type"] == "Payment" else {})
    return Decision(pending["id"], choice != "reject", by="p", at="2026-12-06T10:00:00Z",
                    note=choice, edits=edits, paused_at=paused_at)


def _check(data: st.DataObject, executor: str) -> None:
    facts = _facts(data.draw(claims))
    exe = RULES.registries.executor(executor, 2) if RULES.registries else None
    job = _Job(RULES.program, validate_pairs(RULES.program, facts), exe, None, None,
               now=None)
    job.start()
    result = job.converge(last=False)
    given: dict[str, Decision] = {}
    for _ in range(4):
        if result.status != "awaiting_approval":
            break
        decided = {p["id"]: d for p in result.pending
                   if (d := _decision(p, data.draw(choices), result.cycles)) is not None}
        if not decided:
            break
        given.update(decided)
        result = job.go_on(list(given.values()), last=False)
    up_front = api.run(RULES, facts, decisions=list(given.values()), executor=executor,
                       workers=2, now=None)
    assert up_front.status == result.status
    assert up_front.to_json() == result.to_json()
    assert list(up_front.trace.lines()) == list(result.trace.lines())
    serial = api.run(RULES, facts, decisions=list(given.values()), now=None)
    assert serial.to_json() == up_front.to_json()
    assert list(serial.trace.lines()) == list(up_front.trace.lines())
    # a decided fact is never pending at the end; every applied decision was given
    assert not {p["id"] for p in up_front.pending} & {d["id"] for d in up_front.decided}
    assert {d["id"] for d in up_front.decided} == set(given)
    assert up_front.unused_decisions == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from(["serial", "threads", "asyncio"]))
def test_paused_and_decided_equals_decided_up_front(data: st.DataObject,
                                                    executor: str) -> None:
    _check(data, executor)


@pytest.mark.skipif(not fork_available(), reason="the processes executor needs fork")
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_paused_and_decided_equals_decided_up_front_with_processes(
        data: st.DataObject) -> None:
    _check(data, "processes")
