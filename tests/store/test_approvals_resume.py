"""Issue 14's done-when for approval gates, end to end through the real `converge`
command (a process of its own each time): a gated job kept in a store stops with
status awaiting_approval (exit 4) and lists what it waits on; one fact is approved, one
rejected, one approved with an edit; `converge run --resume` continues it to the result
and trace — byte for byte — of a run given the same decisions (same who, when, why) up
front through the API. A resume killed (SIGKILL) after the decisions, at each crash
point, resumes again to the same. On both store backends."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules import api
from converge_rules.plugins import load_registries
from tests.store.conftest import Backend
from tests.store.test_resume import JOB_TIME, NOW, calls, converge

GATED = """\
ruleset payouts
uses tool bump
root "every claim checked" {
  max_cycles = 100
  require count(Checked()) == count(Claim())
}
fact Claim   { key id: str, amount: float }
fact Checked { key claim: str, n: int }
fact Payment { key claim: str, amount: float, note: str = "" }
fact Settled { key claim: str, amount: float }
agent check { when Claim(id) call bump(id: id, n: 1) as r emit Checked(claim: id, n: r.next) }
agent pay { when Claim(id, amount) and Checked(claim: id) emit Payment(claim: id, amount: amount) }
agent settle tier 2 { when Payment(claim, amount) emit Settled(claim: claim, amount: amount) }
approve Payment when amount > 1_000.0
"""

CLAIMS = [("C1", 400.0), ("C2", 2_000.0), ("C3", 5_000.0), ("C4", 12_000.0)]


def gated(tmp: Path) -> tuple[Path, Path]:
    ruleset = tmp / "payouts.cvg"
    ruleset.write_text(GATED)
    facts = tmp / "claims.jsonl"
    facts.write_text("".join(json.dumps({"Claim": {"id": i, "amount": a}}) + "\n"
                             for i, a in CLAIMS))
    return ruleset, facts


def pending_of(tmp: Path, store: str) -> dict[str, Any]:
    out = converge(tmp, "pending", store, "--format", "json")
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def pause_and_decide(tmp: Path, store: str) -> list[dict[str, Any]]:
    """Run the gated job into the store, check it paused, decide its three pending
    facts from the command line; the decisions as `converge pending` lists them."""
    ruleset, facts = gated(tmp)
    out = converge(tmp, "run", ruleset, "-f", facts, "--now", NOW, "--store", store,
                   "--format", "json")
    assert out.returncode == 4, out.stderr
    assert json.loads(out.stdout)["status"] == "awaiting_approval"
    listed = pending_of(tmp, store)
    assert listed["status"] == "awaiting_approval"
    held = {p["fields"]["claim"]: p for p in listed["pending"]}
    assert sorted(held) == ["C2", "C3", "C4"]  # C1 is under the gate's limit
    assert all(p["gate"] == "Payment" and p["agent"] == "pay" for p in held.values())
    assert all(p["decision"] is None and p["id"].startswith("p-") for p in held.values())
    assert held["C4"]["derivation"] and any(
        "Checked(" in d for d in held["C4"]["derivation"])
    for args in (["approve", held["C2"]["id"], "--by", "ann", "--note", "ok"],
                 ["reject", held["C3"]["id"], "--by", "bo", "--note", "duplicate"],
                 ["approve", held["C4"]["id"], "--by", "ann", "--note", "capped",
                  "--set", "amount=10000", "--set", "note=capped at the limit"]):
        out = converge(tmp, args[0], store, *args[1:])
        assert out.returncode == 0, out.stderr
    decided = pending_of(tmp, store)["pending"]
    assert all(p["decision"] is not None for p in decided)
    return [p["decision"] for p in decided]


def up_front(tmp: Path, decisions: list[dict[str, Any]]) -> tuple[str, str]:
    """The result (as `converge run --format json` prints it) and trace of the job run
    in one go with ``decisions`` given up front through the API."""
    from converge_rules.engine.gates import Decision

    ruleset, facts = gated(tmp)
    loaded = converge_rules.load(ruleset, plugins=load_registries(["bump_tool"]))
    given = [Decision(id=d["id"], approve=d["decision"] == "approve", by=d["by"],
                      at=d["at"], note=d["note"], edits=d["edits"],
                      paused_at=d["paused_at"]) for d in decisions]
    trace = tmp / "up-front.jsonl"
    result = api.run(loaded, api.read_facts(loaded, facts), now=JOB_TIME,
                     trace=trace, decisions=given)
    assert result.status == "converged", result.detail
    return result.to_json(indent=2) + "\n", trace.read_text()


def exported(tmp: Path, store: str) -> str:
    out = converge(tmp, "trace", "export", store, "-o", tmp / "exported.jsonl")
    assert out.returncode == 0, out.stderr
    return (tmp / "exported.jsonl").read_text()


def test_a_paused_job_decided_from_the_cli_resumes_to_the_up_front_run(
        backend: Backend, tmp_path: Path) -> None:
    decisions = pause_and_decide(tmp_path, backend.location)
    out = converge(tmp_path, "run", "--resume", backend.location, "--format", "json")
    assert out.returncode == 0, out.stderr
    result, trace = up_front(tmp_path, decisions)
    assert out.stdout == result
    assert exported(tmp_path, backend.location) == trace
    settled = {f["claim"]: f["amount"] for f in json.loads(out.stdout)["facts"]["Settled"]}
    assert settled == {"C1": 400.0, "C2": 2_000.0, "C4": 10_000.0}  # C3 rejected
    payments = {f["claim"]: (f["amount"], f["note"])
                for f in json.loads(out.stdout)["facts"]["Payment"]}
    assert payments["C4"] == (10_000.0, "capped at the limit")
    # who decided, when and why is in the stored trace
    events = [json.loads(line) for line in trace.splitlines()]
    decided = {e["id"]: e for e in events if e["event"] == "approval_decided"}
    for d in decisions:
        event = decided[d["id"]]
        assert (event["by"], event["at"], event["note"]) == (d["by"], d["at"], d["note"])
    # the store's integrity chain is intact after the resume
    verified = converge(tmp_path, "verify", backend.location)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # and a replay of the stored job (its decisions read back from its trace) agrees
    replayed = converge(tmp_path, "replay", tmp_path / "payouts.cvg", backend.location)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    # a decision applied is final, and a converged job is not resumed again
    again = converge(tmp_path, "reject", backend.location, decisions[0]["id"],
                     "--job", "1")
    assert again.returncode == 2 and "was decided already" in again.stderr
    resumed = converge(tmp_path, "run", "--resume", backend.location, "--job", "1")
    assert resumed.returncode == 2 and "it converged" in resumed.stderr


def decide(tmp: Path, store: str, kind: str, ident: str, *args: str) -> None:
    out = converge(tmp, kind, store, ident, *args)
    assert out.returncode == 0, out.stderr


def test_a_job_resumed_with_some_facts_decided_pauses_again_on_the_rest(
        backend: Backend, tmp_path: Path) -> None:
    # one of three pending facts approved, resumed: the job applies it, goes on, and
    # pauses again on the two left; those decided, resumed again: converged, with the
    # result and trace of a run given every decision up front, each at its pause
    ruleset, facts = gated(tmp_path)
    store = backend.location
    out = converge(tmp_path, "run", ruleset, "-f", facts, "--now", NOW, "--store", store)
    assert out.returncode == 4, out.stderr
    first = pending_of(tmp_path, store)["pending"]
    held = {p["fields"]["claim"]: p["id"] for p in first}
    decide(tmp_path, store, "approve", held["C2"], "--by", "ann", "--note", "ok")
    out = converge(tmp_path, "run", "--resume", store, "--format", "json")
    assert out.returncode == 4, out.stderr
    paused = json.loads(out.stdout)
    assert paused["status"] == "awaiting_approval"
    assert {f["claim"] for f in paused["facts"]["Settled"]} == {"C1", "C2"}
    second = pending_of(tmp_path, store)["pending"]
    assert [(p["id"], p["decision"]) for p in second] == [
        (p["id"], None) for p in first if p["id"] != held["C2"]]
    # the undecided facts were held at the first pause, are decided at the second
    decide(tmp_path, store, "reject", held["C3"], "--by", "bo", "--note", "duplicate")
    decide(tmp_path, store, "approve", held["C4"], "--by", "ann", "--note", "capped",
           "--set", "amount=10000")
    out = converge(tmp_path, "run", "--resume", store, "--format", "json")
    assert out.returncode == 0, out.stderr
    with backend.open() as opened:
        decisions = [d.to_json() for d in api.decisions(opened, 1)]
    pauses = [d["paused_at"] for d in decisions]
    assert pauses[0] < pauses[1] == pauses[2] == paused["cycles"]
    result, trace = up_front(tmp_path, decisions)
    assert out.stdout == result
    assert exported(tmp_path, store) == trace
    settled = {f["claim"]: f["amount"] for f in json.loads(out.stdout)["facts"]["Settled"]}
    assert settled == {"C1": 400.0, "C2": 2_000.0, "C4": 10_000.0}
    # every decision at the first pause is another job: paused_at is what makes it equal
    (tmp_path / "early").mkdir()
    _, early = up_front(tmp_path / "early", [{**d, "paused_at": 0} for d in decisions])
    assert early != trace
    verified = converge(tmp_path, "verify", store)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    replayed = converge(tmp_path, "replay", tmp_path / "payouts.cvg", store)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr


def test_a_paused_job_without_a_new_decision_is_not_resumed(tmp_path: Path) -> None:
    ruleset, facts = gated(tmp_path)
    db = str(tmp_path / "run.db")
    out = converge(tmp_path, "run", ruleset, "-f", facts, "--now", NOW, "--store", db)
    assert out.returncode == 4, out.stderr
    before = exported(tmp_path, db)
    out = converge(tmp_path, "run", "--resume", db)
    assert out.returncode == 2
    assert "awaiting approval of 3 facts and none has a decision since it paused: " \
        "nothing to resume" in out.stderr
    assert "decide first (`converge approve" in out.stderr
    assert "Traceback" not in out.stderr
    assert exported(tmp_path, db) == before  # untouched
    # decided in part and resumed: paused again, and again nothing new to resume with
    first = pending_of(tmp_path, db)["pending"][0]["id"]
    decide(tmp_path, db, "approve", first)
    assert converge(tmp_path, "run", "--resume", db).returncode == 4
    before = exported(tmp_path, db)
    out = converge(tmp_path, "run", "--resume", db)
    assert out.returncode == 2
    assert "awaiting approval of 2 facts and none has a decision since it paused" \
        in out.stderr
    assert pending_of(tmp_path, db)["status"] == "awaiting_approval"  # untouched
    assert exported(tmp_path, db) == before


@pytest.mark.parametrize("point", ["cycle", "merge", "commit"])
def test_a_resume_killed_after_the_decisions_resumes_to_the_same(
        tmp_path: Path, point: str) -> None:
    db = str(tmp_path / "run.db")
    decisions = pause_and_decide(tmp_path, db)
    from converge_rules.store.sqlite import SqliteStore

    with SqliteStore(db) as store:
        paused_at = store.job(1).cycles
    codes, stdout = [], ""
    # killed inside the commit of the cycle of its own where the decisions are applied
    # (no agent runs there, nothing is merged but them), then in the cycle after it,
    # then resumed to the end
    kills = [paused_at + 1, paused_at + 2] if point == "commit" else [paused_at + 2]
    for cycle in [*kills, None]:
        extra = {} if cycle is None else {"CONVERGE_CRASH_AT": f"{point}:{cycle}"}
        out = converge(tmp_path, "run", "--resume", db, "--format", "json", **extra)
        codes.append(out.returncode)
        stdout = out.stdout
    assert codes == [-signal.SIGKILL] * len(kills) + [0], codes
    result, trace = up_front(tmp_path, decisions)
    assert stdout == result
    assert exported(tmp_path, db) == trace
    # the checks before the pause were answered once: the store kept their answers
    assert sorted(k for k, _, _ in calls(tmp_path)) == ["C1", "C2", "C3", "C4"]


TWO_GATES = """\
ruleset transfers
fact Claim    { key id: str, amount: float }
fact Payment  { key claim: str, amount: float }
fact Transfer { key claim: str, amount: float, bank: str }
agent pay { when Claim(id, amount) emit Payment(claim: id, amount: amount) }
agent send tier 2 {
  when Payment(claim, amount)
  emit Transfer(claim: claim, amount: amount, bank: "main")
}
approve Payment when amount > 1_000.0
approve Transfer when amount > 5_000.0
"""


def test_a_job_that_pauses_twice_resumes_each_time_to_the_up_front_run(
        backend: Backend, tmp_path: Path) -> None:
    # what an approved payment leads to is held in turn: two pauses, each decided
    # whole, each resumed; the end is the run given every decision up front
    from converge_rules.engine.gates import Decision

    ruleset = converge_rules.loads(TWO_GATES, plugins=False)
    facts = [("Claim", {"id": "C1", "amount": 9_000.0}),
             ("Claim", {"id": "C2", "amount": 2_000.0}),
             ("Claim", {"id": "C3", "amount": 500.0})]
    with backend.open() as store:
        first = api.run(ruleset, facts, store=store, now=JOB_TIME)
    assert first.status == "awaiting_approval"
    assert [p["fields"]["claim"] for p in first.pending] == sorted(
        ["C1", "C2"], key=lambda c: next(p["id"] for p in first.pending
                                         if p["fields"]["claim"] == c))
    with backend.open() as store:
        held = {p.fields["claim"]: p.id for p in api.pending(store)}
        api.approve(store, held["C1"], by="ann", at="2026-12-06T10:00:00Z")
        api.approve(store, held["C2"], by="ann", at="2026-12-06T10:00:01Z",
                    edits={"amount": 1_500.0}, ruleset=ruleset)
        second = api.resume(store, ruleset=ruleset)
        assert second.status == "awaiting_approval"  # C1's transfer is held now
        (transfer,) = api.pending(store)
        assert transfer.type == "Transfer" and transfer.fields["claim"] == "C1"
        with pytest.raises(converge_rules.ConvergeError, match="decided already"):
            api.reject(store, held["C1"])  # applied: in the trace
        api.reject(store, transfer.id, by="bo", at="2026-12-06T11:00:00Z",
                   note="wrong bank")
        done = api.resume(store, ruleset=ruleset)
        given = [Decision(id=d.id, approve=d.decision == "approve", by=d.by, at=d.at,
                          note=d.note, edits=d.edits, paused_at=d.paused_at)
                 for d in api.decisions(store, 1)]
        stored = "".join(f"{line}\n" for line in store.trace_lines(1))
    assert done.status == "converged"
    whole = api.run(ruleset, facts, now=JOB_TIME, decisions=given,
                    trace=tmp_path / "whole.jsonl")
    assert done.to_json() == whole.to_json()
    assert stored == (tmp_path / "whole.jsonl").read_text()
    assert {t["claim"]: t["amount"] for t in done.facts("Transfer")} == {"C2": 1_500.0,
                                                                       "C3": 500.0}


def test_a_job_that_took_decisions_takes_more_facts_and_is_gated_again(
        tmp_path: Path) -> None:
    # `--resume --facts` re-executes the job with the decisions it took (each at its
    # pause), then merges the facts: a held payment among them pauses it again, and a
    # plain resume after its decision (a job that took more facts) applies it too
    db = str(tmp_path / "run.db")
    decisions = pause_and_decide(tmp_path, db)
    assert converge(tmp_path, "run", "--resume", db).returncode == 0
    more = tmp_path / "more.jsonl"
    more.write_text("".join(json.dumps({"Claim": {"id": i, "amount": a}}) + "\n"
                            for i, a in (("C5", 3_000.0), ("C6", 100.0))))
    out = converge(tmp_path, "run", "--resume", db, "--facts", more, "--format", "json")
    assert out.returncode == 4, out.stderr
    assert {f["claim"] for f in json.loads(out.stdout)["facts"]["Settled"]} == {
        "C1", "C2", "C4", "C6"}
    (held,) = pending_of(tmp_path, db)["pending"]
    assert held["fields"]["claim"] == "C5" and held["id"] not in {d["id"] for d in decisions}
    from converge_rules.store.sqlite import SqliteStore

    with SqliteStore(db) as store:  # the cycles run after the facts were timed too
        timed = {t["cycle"] for t in store.timings(1) if t["kind"] == "cycle"}
    assert json.loads(out.stdout)["cycles"] in timed
    decide(tmp_path, db, "approve", held["id"], "--by", "cy")
    out = converge(tmp_path, "run", "--resume", db, "--format", "json")
    assert out.returncode == 0, out.stderr
    settled = {f["claim"]: f["amount"] for f in json.loads(out.stdout)["facts"]["Settled"]}
    assert settled == {"C1": 400.0, "C2": 2_000.0, "C4": 10_000.0, "C5": 3_000.0,
                       "C6": 100.0}
    decided = [json.loads(line) for line in exported(tmp_path, db).splitlines()
               if '"approval_decided"' in line]
    assert sorted(e["by"] for e in decided) == ["ann", "ann", "bo", "cy"]
    verified = converge(tmp_path, "verify", db)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # each claim checked once: the store kept every answer across the resumes
    assert sorted(k for k, _, _ in calls(tmp_path)) == ["C1", "C2", "C3", "C4", "C5", "C6"]


@pytest.mark.parametrize("restore", ["checkpoints", "re-execution"])
def test_a_resume_with_facts_killed_at_any_commit_keeps_the_facts(tmp_path: Path,
                                                                   restore: str) -> None:
    # `--resume --facts` of a decided job commits the decisions' cycle on its own (the
    # first after reopening), then the facts' input cycle: a crash at any commit of it
    # must not lose the facts — a plain resume then ends as the uninterrupted one, the
    # facts merged at the cycle they were due, the same result and exported trace
    decided = tmp_path / "decided.db"
    pause_and_decide(tmp_path, str(decided))
    more = tmp_path / "more.jsonl"
    more.write_text("".join(json.dumps({"Claim": {"id": i, "amount": a}}) + "\n"
                            for i, a in (("C5", 3_000.0), ("C6", 100.0))))

    def copy(name: str) -> Path:
        db = tmp_path / name
        src, dst = sqlite3.connect(decided), sqlite3.connect(db)
        src.backup(dst)
        src.close()
        dst.close()
        return db

    def result(out: Any) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(out.stdout)
        doc.pop("resumed_from", None)
        return doc

    ref = copy("ref.db")
    out = converge(tmp_path, "run", "--resume", f"{ref}?group=4", "--facts", more,
                   "--format", "json")
    assert out.returncode == 4, out.stderr
    whole, trace = result(out), exported(tmp_path, str(ref))
    assert {f["id"] for f in whole["facts"]["Claim"]} >= {"C5", "C6"}
    with sqlite3.connect(decided) as conn:
        paused = conn.execute("SELECT max(cycle) FROM cycles").fetchone()[0]
    def rows(db: Path) -> tuple[list[Any], list[Any]]:
        conn = sqlite3.connect(db)
        try:
            return (list(conn.execute("SELECT * FROM trace_rows ORDER BY job, seq")),
                    list(conn.execute("SELECT * FROM job_specs")))
        finally:
            conn.close()

    crashed = 0
    for cycle in range(paused + 1, whole["cycles"] + 1):
        db = copy(f"crash-{cycle}.db")
        out = converge(tmp_path, "run", "--resume", f"{db}?group=4", "--facts", more,
                       CONVERGE_CRASH_AT=f"commit:{cycle}")
        if out.returncode != -9:
            continue  # no commit at that cycle (grouped with a later one)
        crashed += 1
        again: tuple[Any, ...] = ()
        if crashed == 1:  # inside the first commit: nothing of the resume is stored,
            assert rows(db) == rows(decided)  # the facts are given again
            again = ("--facts", more)
        elif crashed == 2:  # the facts are held: given again, they would merge twice
            held = rows(db)
            out = converge(tmp_path, "run", "--resume", db, "--facts", more)
            assert out.returncode == 2 and "resume it without --facts" in out.stderr
            assert "Traceback" not in out.stderr and rows(db) == held
        if restore == "re-execution":  # as a job stored without checkpoints
            conn = sqlite3.connect(db)
            with conn:
                conn.execute("DELETE FROM checkpoints")
            conn.close()
        out = converge(tmp_path, "run", "--resume", f"{db}?group=4", *again,
                       "--format", "json")
        assert out.returncode == 4, (cycle, out.stderr)
        assert result(out) == whole, cycle
        assert exported(tmp_path, str(db)) == trace, cycle
    assert crashed >= 3  # the decisions' cycle, the facts' cycle and one after
