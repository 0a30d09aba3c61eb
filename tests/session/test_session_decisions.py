"""``Session.approve`` / ``Session.reject``: a session whose run ended
``awaiting_approval`` takes decisions, and its next run applies them — the same result
and trace as the job given them up front (as ``converge approve`` + ``--resume`` give),
with the same refusals: a bad edit, an id not pending, a second decision, a session not
awaiting approval."""

from __future__ import annotations

import json
from typing import Any

import pytest

import converge_rules
from converge_rules import Decision, Session, api
from converge_rules.errors import InputError, SessionError
from tests.gates import programs as gates
from tests.gates.programs import CLAIMS_NOTED

FACTS = [("Claim", {"id": "c1", "amount": 20_000.0}),
         ("Claim", {"id": "c2", "amount": 500.0}),
         ("Claim", {"id": "c3", "amount": 30_000.0})]
AT = "2026-12-06T10:00:00Z"


def load() -> converge_rules.Ruleset:
    return gates.load(CLAIMS_NOTED)


def ids(result: Any) -> dict[str, str]:
    return {p["fields"]["claim"]: p["id"] for p in result.pending}


def test_a_session_decides_and_its_next_run_equals_the_up_front_run() -> None:
    with Session(load(), FACTS, now=None) as session:
        paused = session.run()
        assert paused.status == "awaiting_approval"
        held = ids(paused)
        assert [p["id"] for p in session.pending] == sorted(held.values())
        approved = session.approve(held["c1"], by="ann", at=AT, note="invoice seen",
                                   edits={"amount": 15_000.0})
        rejected = session.reject(held["c3"], by="bo", at=AT, note="duplicate")
        assert approved == Decision(held["c1"], True, by="ann", at=AT, note="invoice seen",
                                    edits={"amount": 15_000.0}, paused_at=paused.cycles)
        assert rejected.paused_at == paused.cycles and not rejected.approve
        done = session.run()
        assert done.status == "converged" and session.pending == []
        assert sorted(f["amount"] for f in done.facts("Payment")) == [500.0, 15_000.0]
        assert {d["id"]: d["outcome"] for d in done.decided} == {
            held["c1"]: "merged", held["c3"]: "rejected"}
        trace = list(session.trace.bare_lines()) if session.trace else []
        result = done.to_json()
    up_front = api.run(load(), FACTS, now=None, decisions=[approved, rejected])
    assert result == up_front.to_json()
    assert trace == list(up_front.trace.bare_lines())


def test_a_session_decides_some_then_the_rest() -> None:
    with Session(load(), FACTS, now=None) as session:
        held = ids(session.run())
        session.approve(held["c3"], by="ann", at=AT)
        again = session.run()
        assert again.status == "awaiting_approval" and list(ids(again)) == ["c1"]
        session.reject(held["c1"], by="ann", at=AT)
        done = session.run()
    assert done.status == "converged"
    assert sorted(f["amount"] for f in done.facts("Payment")) == [500.0, 30_000.0]


def test_decisions_and_later_facts_in_one_run() -> None:
    with Session(load(), FACTS, now=None) as session:
        held = ids(session.run())
        session.approve(held["c1"], by="ann", at=AT)
        session.reject(held["c3"], by="ann", at=AT)
        session.add([("Claim", {"id": "c4", "amount": 700.0})])
        done = session.run()
    assert done.status == "converged"
    assert sorted(f["amount"] for f in done.facts("Payment")) == [500.0, 700.0, 20_000.0]


@pytest.mark.parametrize("edits, said", [
    ({"amuont": 1.0}, "Payment has no field 'amuont'"),
    ({"claim": "c9"}, "'claim' is a key field of Payment"),
    ({"amount": "lots"}, "amount"),
])
def test_a_bad_edit_is_refused_and_nothing_is_taken(edits: dict[str, Any], said: str) -> None:
    with Session(load(), FACTS, now=None) as session:
        held = ids(session.run())
        with pytest.raises(InputError, match=said):
            session.approve(held["c1"], by="ann", at=AT, edits=edits)
        session.approve(held["c1"], by="ann", at=AT)  # not taken: still open to decide


def test_refusals_say_why() -> None:
    with Session(load(), FACTS, now=None) as session:
        with pytest.raises(SessionError, match=r"not awaiting approval.*has not run"):
            session.approve("p-000000000000", by="ann")
        held = ids(session.run())
        with pytest.raises(SessionError, match="no fact p-000000000000 is pending"):
            session.reject("p-000000000000", by="ann")
        session.approve(held["c1"], by="ann", at=AT)
        with pytest.raises(SessionError, match="has a decision already"):
            session.reject(held["c1"], by="bo", at=AT)
        with pytest.raises(ValueError, match="by names who decides"):
            session.reject(held["c3"], by=" ", at=AT)
        with pytest.raises(ValueError, match="no time zone"):
            session.reject(held["c3"], by="ann", at="2026-12-06T10:00:00")
        session.reject(held["c3"], by="ann", at=AT)
        done = session.run()
        assert done.status == "converged"
        with pytest.raises(SessionError, match="has a decision already"):
            session.approve(held["c1"], by="ann", at=AT)
        with pytest.raises(SessionError, match="status is converged"):
            session.approve("p-000000000000", by="ann", at=AT)


def test_by_defaults_to_the_os_user_and_at_to_now() -> None:
    with Session(load(), FACTS, now=None) as session:
        held = ids(session.run())
        taken = session.approve(held["c1"])
    assert taken.by and taken.at.endswith("Z")
    assert json.dumps(taken.at)  # ISO text, as the trace keeps it
