"""The store's table of decisions on a paused job's pending facts (both backends): a
decision is kept once per pending fact, with who, when, why and the edits; a second
decision, an id not pending, or a job not awaiting approval are refused with a clear
StoreError and nothing written; old jobs awaiting approval survive gc."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from converge_rules.errors import StoreError
from converge_rules.store.approvals import StoredDecision
from tests.store.conftest import Backend


def line(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"))


def paused_job(store: Any, *, status: str = "awaiting_approval",
               decided: tuple[str, ...] = ()) -> int:
    """A job whose trace holds two facts a gate held (p-a on an input, p-b), ``decided``
    of them decided in the trace, ending with ``status``."""
    sink = store.new_job("claims")
    with sink:
        sink.cycle_committed(0, [line({"event": "fact_added", "id": 0, "type": "Claim",
                                       "fields": {"id": "C1", "amount": 12000.0},
                                       "agent": None, "cycle": 0, "support": [],
                                       "confidence": 1.0})])
        held = [line({"event": "approval_pending", "id": ident, "gate": "Transfer",
                      "type": "Transfer", "fields": {"amount": amount, "claim": "C1"},
                      "agent": "pay", "cycle": 1, "support": support})
                for ident, amount, support in (("p-a", 12000.0, [0]), ("p-b", 15000.0, []))]
        sink.cycle_committed(1, held)
        ending = [line({"event": "approval_decided", "id": i, "decision": "approve",
                        "by": "x", "at": "2026-12-06T09:00:00Z", "note": "", "edits": {},
                        "cycle": 2}) for i in decided]
        ending.append(line({"event": "status", "status": status, "detail": "held"}))
        sink.write_lines(ending)
    assert sink.id is not None
    return sink.id


def decision(ident: str = "p-a", kind: str = "approve", **edits: Any) -> StoredDecision:
    return StoredDecision(ident, kind, "ann", "2026-12-06T17:00:00Z", "checked", edits)


def test_pending_facts_are_listed_from_the_trace_with_their_derivation(
        backend: Backend) -> None:
    with backend.open() as store:
        job = paused_job(store)
        held = store.pending(job)
    assert [p.id for p in held] == ["p-a", "p-b"]
    first = held[0]
    assert (first.gate, first.type, first.agent, first.cycle) == ("Transfer", "Transfer",
                                                                   "pay", 1)
    assert first.fields == {"claim": "C1", "amount": 12000.0}
    assert first.derivation == ('Claim(amount: 12000.0, id: "C1")',)  # as the trace has it
    assert first.fact_text() == 'Transfer(amount: 12000.0, claim: "C1")'


def test_facts_decided_in_the_trace_are_no_longer_pending(backend: Backend) -> None:
    with backend.open() as store:
        job = paused_job(store, decided=("p-a",))
        assert [p.id for p in store.pending(job)] == ["p-b"]
        with pytest.raises(StoreError, match="decided already"):
            store.record_decision(job, decision("p-a"))


def test_a_decision_is_kept_with_who_when_why_edits_and_its_pause(
        backend: Backend) -> None:
    with backend.open() as store:
        job = paused_job(store)
        first = store.record_decision(job, decision("p-b", amount=9000.0))
        # the pause is the store's to say: the job's last committed cycle, not the caller's
        second = store.record_decision(job, replace(decision("p-a", "reject"), paused_at=7))
    with backend.open() as store:  # committed
        kept = store.decisions(job)
    assert kept == [StoredDecision("p-b", "approve", "ann", "2026-12-06T17:00:00Z",
                                   "checked", {"amount": 9000.0}, paused_at=1),
                    StoredDecision("p-a", "reject", "ann", "2026-12-06T17:00:00Z",
                                   "checked", {}, paused_at=1)]
    assert [first, second] == kept


def test_a_second_decision_on_a_fact_is_refused(backend: Backend) -> None:
    with backend.open() as store:
        job = paused_job(store)
        store.record_decision(job, decision("p-a"))
        with pytest.raises(StoreError, match=r"p-a of job \d+ .* has a decision already: "
                                             "approve by ann"):
            store.record_decision(job, decision("p-a", "reject"))
        assert [d.decision for d in store.decisions(job)] == ["approve"]


def test_an_id_not_pending_is_refused_naming_the_pending_ones(backend: Backend) -> None:
    with backend.open() as store:
        job = paused_job(store)
        with pytest.raises(StoreError, match=r"no fact p-zz is pending in job .*; pending: "
                                             r"p-a, p-b"):
            store.record_decision(job, decision("p-zz"))
        assert store.decisions(job) == []


@pytest.mark.parametrize("status", ["converged", "interrupted"])
def test_a_job_not_awaiting_approval_takes_no_decision(backend: Backend,
                                                       status: str) -> None:
    with backend.open() as store:
        job = paused_job(store, status=status)
        with pytest.raises(StoreError, match=f"not awaiting approval .*status is {status}"):
            store.record_decision(job, decision("p-a"))
        assert store.decisions(job) == []


def test_decisions_are_per_job(backend: Backend) -> None:
    with backend.open() as store:
        first, second = paused_job(store), paused_job(store)
        store.record_decision(first, decision("p-a"))
        store.record_decision(second, decision("p-a", "reject"))
        assert [d.decision for d in store.decisions(first)] == ["approve"]
        assert [d.decision for d in store.decisions(second)] == ["reject"]
        with pytest.raises(StoreError, match="no job 99"):
            store.record_decision(99, decision("p-a"))


def test_a_rejection_has_no_edits_and_a_decision_is_approve_or_reject(
        backend: Backend) -> None:
    with backend.open() as store:
        job = paused_job(store)
        with pytest.raises(StoreError, match="a rejection has no edits"):
            store.record_decision(job, decision("p-a", "reject", amount=1.0))
        with pytest.raises(StoreError, match="approve or reject, not 'maybe'"):
            store.record_decision(job, decision("p-a", "maybe"))


def test_gc_keeps_a_job_awaiting_approval_and_drops_the_decisions_of_deleted_jobs(
        backend: Backend) -> None:
    with backend.open() as store:
        waiting = paused_job(store)
        store.record_decision(waiting, decision("p-a"))
        done = paused_job(store)
        store.record_decision(done, decision("p-a"))
        with backend.connect() as db:  # the second job went on and converged since
            db.execute("UPDATE jobs SET status = 'converged' WHERE id = ?", (done,))
        later = paused_job(store, status="converged")
        assert store.gc(0, vacuum=False) == [done, later]
        assert [j.id for j in store.jobs()] == [waiting]
        assert len(store.decisions(waiting)) == 1
        assert store.info().tables["decisions"]["rows"] == 1
