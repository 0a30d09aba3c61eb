"""A stored job paused awaiting approval takes more input facts (``converge run
--resume DB --facts more.jsonl``): they merge after the decisions recorded since the
pause, if any — where the job paused, what the decisions were taken on — and the job
pauses again on what is held. A ``Session`` orders them the same way (decisions, then
the facts added): the stored job and the session end with the same trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules import Session, api
from converge_rules.cli import main
from tests.gates.test_pending_dropped import LATE_PART
from tests.store.test_checkpoint_features import without_checkpoints
from tests.store.test_checkpoints import JOB_TIME, stored_trace

AT = "2026-12-06T17:00:00Z"
# 5,000 enters, 8,000 makes a total of 13,000, held; a later part of 1,000
FIRST = [("Part", {"id": "p1", "claim": "c1", "amount": 5_000.0}),
         ("Extra", {"id": "e1", "claim": "c1", "amount": 8_000.0})]
LATER = [("Late", {"id": "l1", "claim": "c1", "amount": 1_000.0})]


def cli(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def jsonl(path: Path, facts: list[tuple[str, dict[str, Any]]]) -> Path:
    path.write_text("".join(json.dumps({t: f}) + "\n" for t, f in facts), encoding="utf-8")
    return path


def paused_job(tmp: Path) -> tuple[Path, Path, dict[str, Any]]:
    ruleset = tmp / "pay.cvg"
    ruleset.write_text(LATE_PART, encoding="utf-8")
    db = tmp / "run.db"
    out = cli("run", ruleset, "-f", jsonl(tmp / "first.jsonl", FIRST), "--store", db,
              "--format", "json")
    assert out.exit_code == 4, out.output
    doc = json.loads(out.stdout)
    assert [p["fields"]["amount"] for p in doc["pending"]] == [13_000.0]
    return ruleset, db, doc


def payments(doc: dict[str, Any]) -> list[float]:
    return [f["amount"] for f in doc["facts"].get("Payment", [])]


def test_a_paused_job_without_decisions_takes_more_facts(tmp_path: Path) -> None:
    _, db, _ = paused_job(tmp_path)
    more = cli("run", "--resume", db, "--facts", jsonl(tmp_path / "more.jsonl", LATER),
               "--format", "json")
    assert more.exit_code == 4, more.output
    doc = json.loads(more.stdout)
    # the later part joins the held total: 14,000 is held, the key keeps 5,000
    assert payments(doc) == [5_000.0]
    assert [p["fields"]["amount"] for p in doc["pending"]] == [14_000.0]
    assert cli("verify", db).exit_code == 0
    (held,) = doc["pending"]
    assert cli("approve", db, held["id"], "--by", "ann").exit_code == 0
    done = cli("run", "--resume", db, "--format", "json")
    assert done.exit_code == 0, done.output
    assert payments(json.loads(done.stdout)) == [14_000.0]
    assert cli("verify", db).exit_code == 0


@pytest.mark.parametrize("approve, kept, held", [
    # approved, 13,000 enters, then the 1,000 makes a new total, held in turn
    (True, [13_000.0], [14_000.0]),
    # rejected, its 8,000 never enters; the 1,000 then makes 6,000, below the gate
    (False, [6_000.0], []),
])
def test_decisions_then_more_facts_a_stored_job_and_a_session_alike(
        tmp_path: Path, approve: bool, kept: list[float], held: list[float]) -> None:
    ruleset, db, doc = paused_job(tmp_path)
    (pending,) = doc["pending"]
    (api.approve if approve else api.reject)(str(db), pending["id"], by="ann", at=AT)
    more = cli("run", "--resume", db, "--facts", jsonl(tmp_path / "more.jsonl", LATER),
               "--format", "json")
    assert more.exit_code == (4 if held else 0), more.output
    stored = json.loads(more.stdout)
    assert payments(stored) == kept
    assert [p["fields"]["amount"] for p in stored.get("pending", [])] == held
    assert [d["outcome"] for d in stored["decisions"]] == [
        "merged" if approve else "rejected"]
    assert cli("verify", db).exit_code == 0
    with Session(converge_rules.load(ruleset), FIRST, now=JOB_TIME) as session:
        assert [p["id"] for p in session.run().pending] == [pending["id"]]
        (session.approve if approve else session.reject)(pending["id"], by="ann", at=AT)
        session.add(LATER)
        result = session.run()
        assert session.trace is not None
        assert session.trace.to_jsonl() == stored_trace(str(db))
    assert [f["amount"] for f in result.facts("Payment")] == kept
    assert [p["fields"]["amount"] for p in result.pending] == held


@pytest.mark.parametrize("restored", [True, False])
def test_an_input_for_a_key_with_a_held_total_carries_the_total_over(
        tmp_path: Path, restored: bool) -> None:
    # the input 100 enters (inputs are never gated), combined with the key's 5,000;
    # the held 13,000 counted the 5,000: its part, the 8,000, goes on the new value —
    # the job restored from its checkpoint (the held total's parts are in it) or
    # re-executed without one
    _, db, _ = paused_job(tmp_path)
    if not restored:
        without_checkpoints(db)
    given = [("Payment", {"claim": "c1", "amount": 100.0})]
    more = cli("run", "--resume", db, "--facts", jsonl(tmp_path / "more.jsonl", given),
               "--format", "json")
    assert more.exit_code == 4, more.output
    assert ("resumed from its checkpoint" in more.stderr) == restored
    doc = json.loads(more.stdout)
    assert payments(doc) == [5_100.0]
    assert [p["fields"]["amount"] for p in doc["pending"]] == [13_100.0]
    (held,) = doc["pending"]
    assert cli("approve", db, held["id"], "--by", "ann").exit_code == 0
    done = cli("run", "--resume", db, "--format", "json")
    assert done.exit_code == 0, done.output
    # as the job without the gate: 5,000 + 8,000 + 100
    assert payments(json.loads(done.stdout)) == [13_100.0]
    assert cli("verify", db).exit_code == 0
    # (not `converge replay`: it re-combines a later input's combined value with its
    # own parts, on main as here, gate or not — reported, not in this change)
