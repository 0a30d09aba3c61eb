"""A value held on a key of a ``combine`` type (the key's pending total, which a later
part grows: docs/language.md, approval gates) in a stored job: interrupted after any
cycle, the job resumes from its checkpoints to the uninterrupted run (the held total
and its parts are in the checkpoint's gates state); decided through the store (`converge
approve`, `converge run --resume`) it ends as a run given the decisions up front, and as
a ``Session`` that took the same decisions between its runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules import Decision, Session, api
from converge_rules.cli import main
from tests.gates.test_pending_dropped import LATE_PART
from tests.store.test_checkpoints import JOB_TIME, check_resumes, same_result, stored_trace

AT = "2026-12-06T17:00:00Z"


def parts(*amounts: float) -> list[tuple[str, dict[str, Any]]]:
    types = ["Part", "Extra", "Late"]
    return [(types[i], {"id": f"x{i}", "claim": "c1", "amount": a})
            for i, a in enumerate(amounts)]


# the held 13,000 grows by a later part: to 14,000 (a part that alone would enter), or
# to 22,000 (one that alone would be held too)
CASES = [(parts(5_000.0, 8_000.0, 1_000.0), 14_000.0),
         (parts(5_000.0, 8_000.0, 9_000.0), 22_000.0)]


def load(tmp: Path) -> converge_rules.Ruleset:
    path = tmp / "pay.cvg"
    path.write_text(LATE_PART, encoding="utf-8")
    return converge_rules.load(path)


@pytest.mark.parametrize("facts, total", CASES)
def test_a_held_total_that_grows_resumes_from_its_checkpoints_after_any_cycle(
        tmp_path: Path, facts: list[tuple[str, dict[str, Any]]], total: float) -> None:
    ruleset = load(tmp_path)
    assert [p["fields"]["amount"] for p in api.run(ruleset, facts, now=JOB_TIME).pending
            ] == [total]
    assert check_resumes(ruleset, facts, lambda k: str(tmp_path / f"run{k}.db")) >= 2


def cli(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("approve", [True, False])
@pytest.mark.parametrize("facts, total", CASES)
def test_a_stored_job_and_a_session_decide_a_held_total_alike(
        tmp_path: Path, facts: list[tuple[str, dict[str, Any]]], total: float,
        approve: bool) -> None:
    ruleset = load(tmp_path)
    lines = tmp_path / "facts.jsonl"
    lines.write_text("".join(json.dumps({t: f}) + "\n" for t, f in facts), encoding="utf-8")
    db = tmp_path / "run.db"
    out = cli("run", tmp_path / "pay.cvg", "-f", lines, "--store", db, "--format", "json")
    assert out.exit_code == 4, out.output
    (held,) = json.loads(cli("pending", db, "--format", "json").stdout)["pending"]
    assert held["fields"] == {"claim": "c1", "amount": total}
    paused = json.loads(out.stdout)
    decide = api.approve if approve else api.reject
    decide(str(db), held["id"], by="ann", at=AT, note="ok")
    resumed = cli("run", "--resume", db, "--format", "json")
    assert resumed.exit_code == 0, resumed.output
    kept = total if approve else 5_000.0
    assert json.loads(resumed.stdout)["facts"]["Payment"] == [
        {"claim": "c1", "amount": kept}]
    assert cli("verify", db).exit_code == 0
    # the same decision given up front
    whole = api.run(ruleset, facts, decisions=[Decision(
        held["id"], approve, by="ann", at=AT, note="ok", paused_at=paused["cycles"])])
    assert stored_trace(str(db)) == whole.trace.to_jsonl()
    # and taken by a session between its runs
    with Session(ruleset, facts) as session:
        first = session.run()
        assert [p["id"] for p in first.pending] == [held["id"]]
        (session.approve if approve else session.reject)(held["id"], by="ann", at=AT,
                                                         note="ok")
        again = session.run()
    assert again.facts("Payment") == whole.facts("Payment")
    assert again.decided == whole.decided
    same_result(again, whole)
