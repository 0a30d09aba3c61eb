"""``converge pending``, ``converge approve`` and ``converge reject`` on a stored job
awaiting approval: listing, recording (who, when, why, edits read per the field's type
in the job's ruleset), and every refusal as a clear error with exit code 2, nothing
recorded, never a traceback."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules import api
from converge_rules.cli import main
from converge_rules.store.base import JobSpec
from converge_rules.store.resume import ruleset_digest
from converge_rules.store.sqlite import SqliteStore

RULESET = """\
ruleset pay
enum Channel { bank, cheque }
fact Claim { key id: str, amount: float }
fact Payment { key claim: str, amount: float, channel: Channel = bank, note: str? }
agent pay { when Claim(id, amount) emit Payment(claim: id, amount: amount) }
"""


def line(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"))


@pytest.fixture
def paused(tmp_path: Path) -> Path:
    """A store with a job of RULESET stopped awaiting approval of two payments."""
    ruleset = tmp_path / "pay.cvg"
    ruleset.write_text(RULESET)
    digest = ruleset_digest(converge_rules.load(ruleset))
    settings = {"version": 1, "ruleset": str(ruleset), "digest": digest, "now": None,
                "plugins": [], "pruners": []}
    db = tmp_path / "run.db"
    with SqliteStore(db) as store:
        sink = store.new_job("pay", JobSpec(json.dumps(settings), "[]"))
        with sink:
            sink.cycle_committed(0, [line({
                "event": "fact_added", "id": 0, "type": "Claim", "agent": None,
                "fields": {"amount": 12000.0, "id": "C1"}, "cycle": 0, "support": [],
                "confidence": 1.0})])
            sink.cycle_committed(1, [line({
                "event": "approval_pending", "id": ident, "gate": "Payment",
                "type": "Payment", "agent": "pay", "cycle": 1, "support": [0],
                "fields": {"amount": amount, "channel": "bank", "claim": claim,
                           "note": None}})
                for ident, claim, amount in (("p-aa", "C1", 12000.0),
                                             ("p-bb", "C2", 15000.0))])
            sink.write_lines([line({"event": "status", "status": "awaiting_approval",
                                    "detail": "2 facts await approval"})])
    return db


def converge(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_pending_lists_each_fact_with_its_derivation(paused: Path) -> None:
    out = converge("pending", paused)
    assert out.exit_code == 0, out.output
    assert "awaiting_approval; 2 facts pending approval, 2 without a decision" in out.output
    assert "p-aa  gate Payment, cycle 1, agent pay" in out.output
    assert 'Payment(amount: 12000.0, channel: "bank", claim: "C1", note: null)' in out.output
    assert 'from Claim(amount: 12000.0, id: "C1")' in out.output
    assert f"converge approve {paused} ID" in out.output


def test_approve_and_reject_record_who_when_and_why(paused: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    out = converge("approve", paused, "p-aa", "--by", "ann", "--note", "checked")
    assert out.exit_code == 0, out.output
    assert out.output.startswith('approved p-aa Payment(amount: 12000.0, channel: "bank"')
    assert "1 fact of the job still without a decision: p-bb" in out.output
    assert f"or resume now (`converge run --resume {paused} --job 1`)" in out.output
    assert converge("pending", paused).output.count(
        f"or resume with the decisions recorded (the job pauses again on those left): "
        f"converge run --resume {paused} --job 1") == 1
    out = converge("reject", paused, "p-bb", "--note", "duplicate")
    assert out.exit_code == 0, out.output
    assert f"every pending fact has a decision: converge run --resume {paused} --job 1" \
        in out.output
    first, second = api.decisions(paused)
    assert (first.id, first.decision, first.by, first.note, first.edits) == (
        "p-aa", "approve", "ann", "checked", {})
    assert (second.id, second.decision, second.by, second.note) == (
        "p-bb", "reject", getpass.getuser(), "duplicate")
    for d in (first, second):  # now, in UTC, to the second
        at = datetime.fromisoformat(d.at.replace("Z", "+00:00"))
        assert d.at.endswith("Z") and before <= at <= datetime.now(UTC)
    listed = json.loads(converge("pending", paused, "--format", "json").output)
    assert [(p["id"], p["decision"]["decision"]) for p in listed["pending"]] == [
        ("p-aa", "approve"), ("p-bb", "reject")]
    assert listed["pending"][0]["derivation"] == ['Claim(amount: 12000.0, id: "C1")']


def test_approve_with_edits_reads_values_per_field_type(paused: Path) -> None:
    out = converge("approve", paused, "p-aa", "--set", "amount=9500", "--set",
                   "channel=cheque", "--set", "note=capped")
    assert out.exit_code == 0, out.output
    assert 'with amount = 9500.0, channel = "cheque", note = "capped"' in out.output
    (decision,) = api.decisions(paused)
    assert decision.edits == {"amount": 9500.0, "channel": "cheque", "note": "capped"}
    out = converge("approve", paused, "p-bb", "--set", "note=")  # empty: no value
    assert out.exit_code == 0, out.output
    assert api.decisions(paused)[1].edits == {"note": None}


def test_approve_can_give_an_optional_text_field_the_empty_text(paused: Path) -> None:
    # found: `--set note=` is no value for a `str?` field, and nothing gave it ""
    out = converge("approve", paused, "p-aa", "--set", 'note=""')
    assert out.exit_code == 0, out.output
    assert api.decisions(paused)[0].edits == {"note": ""}
    out = converge("approve", paused, "p-bb", "--set", 'amount=""')  # a number: no
    assert out.exit_code == 2
    assert "Payment.amount must be float, got '\"\"'" in out.output


@pytest.mark.parametrize(("edit", "message"), [
    ("amount=lots", "Payment.amount must be float, got 'lots'"),
    ("channel=cash", "channel"),
    ("amuont=1", "Payment has no field `amuont`"),
    ("claim=C9", "`claim` is a key field of Payment: an edit may not change it"),
])
def test_a_bad_edit_is_refused_naming_the_field(paused: Path, edit: str,
                                                message: str) -> None:
    out = converge("approve", paused, "p-aa", "--set", edit)
    assert out.exit_code == 2
    assert message in out.output
    assert "nothing was recorded" in out.output
    assert "Traceback" not in out.output
    assert api.decisions(paused) == []


def test_a_misspelt_field_gets_a_suggestion(paused: Path) -> None:
    out = converge("approve", paused, "p-aa", "--set", "amuont=1")
    assert "did you mean `amount`?" in out.output


def test_refusals_are_clear_errors(paused: Path, tmp_path: Path) -> None:
    assert converge("approve", paused, "p-aa").exit_code == 0
    again = converge("reject", paused, "p-aa")
    assert again.exit_code == 2
    assert "p-aa of job 1" in again.output and "has a decision already: approve" \
        in again.output
    unknown = converge("approve", paused, "p-zz")
    assert unknown.exit_code == 2
    assert "no fact p-zz is pending in job 1" in unknown.output
    assert "pending: p-aa, p-bb" in unknown.output
    missing = converge("pending", tmp_path / "nope.db")
    assert missing.exit_code == 2 and "no store at" in missing.output
    assert not (tmp_path / "nope.db").exists()
    bad_set = converge("approve", paused, "p-bb", "--set", "amount")
    assert bad_set.exit_code == 2 and "give FIELD=VALUE" in bad_set.output
    no_job = converge("approve", paused, "p-bb", "--job", "7")
    assert no_job.exit_code == 2 and "has no job 7" in no_job.output
    for out in (again, unknown, missing, bad_set, no_job):
        assert "Traceback" not in out.output


@pytest.mark.parametrize("command", ["approve", "reject"])
def test_an_empty_by_is_refused_and_nothing_is_recorded(paused: Path, command: str) -> None:
    # found by `converge approve run.db ID --by ""` (a `--by "$APPROVER"` with the
    # variable unset): it recorded a decision by nobody, "by  at …"
    for by in ("", "  "):
        out = converge(command, paused, "p-aa", "--by", by)
        assert out.exit_code == 2 and "--by is empty" in out.output
        assert "Traceback" not in out.output
    assert api.decisions(paused) == []


def test_a_store_without_a_job_awaiting_approval_says_so(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    with SqliteStore(db) as store, store.new_job("x") as sink:
        sink.write_lines([line({"event": "status", "status": "converged", "detail": ""})])
    out = converge("pending", db)
    assert out.exit_code == 2
    assert "no job of" in out.output and "is awaiting approval (jobs: 1 (converged))" \
        in out.output


def test_the_help_teaches_with_examples() -> None:
    for name in ("pending", "approve", "reject"):
        out = converge(name, "--help")
        assert out.exit_code == 0
        assert "Examples:" in out.output and "converge run --resume" in out.output
        assert "Exit codes:" in out.output
    assert "--set FIELD=VALUE" in converge("approve", "--help").output


def test_the_api_neither_creates_a_store_nor_takes_a_naive_time(paused: Path,
                                                                 tmp_path: Path) -> None:
    from converge_rules.errors import StoreError

    with pytest.raises(StoreError, match="no store at"):
        api.pending(tmp_path / "typo.db")
    assert not (tmp_path / "typo.db").exists()
    with pytest.raises(ValueError, match="has no time zone"):
        api.approve(paused, "p-aa", at="2026-12-06T09:00:00")
    decision = api.approve(paused, "p-aa", by="ann", at="2026-12-06T10:00:00+01:00",
                           edits={"amount": 9000})
    assert (decision.at, decision.edits) == ("2026-12-06T09:00:00Z", {"amount": 9000.0})
    assert api.decisions(paused) == [decision]


@pytest.mark.parametrize(("call", "match"), [
    # found: by=5 was recorded (an int in the trace's approval_decided event), and
    # job="1" was "the store run.db has no job 1; its jobs are 1"
    (lambda db: api.approve(db, "p-aa", by=5), r"by names who decides \(a non-empty str\)"),
    (lambda db: api.reject(db, "p-aa", by="  "), "by names who decides"),
    (lambda db: api.approve(db, "p-aa", note=None), "note is a str"),
    (lambda db: api.approve(db, "p-aa", edits="amount=1"), "edits maps field names to values"),
    (lambda db: api.approve(db, "p-aa", job="1"), "job is a job's number .* got str '1'"),
    (lambda db: api.pending(db, job="1"), "job is a job's number"),
    (lambda db: api.decisions(db, job=True), "job is a job's number .* got bool"),
    (lambda db: converge_rules.resume(db, job="1"), "job is a job's number"),
])
def test_the_api_refuses_wrong_argument_types_recording_nothing(paused: Path, call: Any,
                                                                 match: str) -> None:
    with pytest.raises(TypeError, match=match):
        call(paused)
    assert api.decisions(paused) == []


def test_edits_are_read_by_the_ruleset_the_job_ran_not_a_changed_one(paused: Path) -> None:
    ruleset = paused.parent / "pay.cvg"
    ruleset.write_text(RULESET.replace("emit Payment(claim: id, amount: amount)",
                                       "emit Payment(claim: id, amount: amount * 2.0)"))
    out = converge("approve", paused, "p-aa", "--set", "amount=9000")
    assert out.exit_code == 2
    assert "ran another version of the ruleset" in out.output
    assert api.decisions(paused) == []


GATED = RULESET + "approve Payment when amount > 1_000.0\n"


@pytest.mark.parametrize("stored", [True, False])
def test_run_lists_the_held_facts_and_says_what_to_do(tmp_path: Path, stored: bool,
                                                      monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pay.cvg").write_text(GATED)
    Path("in.jsonl").write_text('{"Claim": {"id": "C1", "amount": 5000.0}}\n')
    store = ["--store", "run.db"] if stored else []
    out = CliRunner().invoke(main, ["run", "pay.cvg", "-f", "in.jsonl", *store])
    assert out.exit_code == 4, out.output
    line = next(ln for ln in out.output.splitlines() if ln.startswith("pending approval"))
    assert line.endswith("(gate Payment, agent pay, cycle 1): Payment(claim: C1, amount: "
                         "5000.0, channel: bank, note: null)")
    if stored:
        assert "`converge pending run.db` lists the facts held" in out.output
        assert "then `converge run --resume run.db`" in out.output
    else:
        assert "it was not kept in a store: run it with --store" in out.output


def test_store_gc_says_it_keeps_a_job_awaiting_approval(paused: Path) -> None:
    # Met as: `converge store gc run.db --keep-last 0` answered "nothing to delete (0
    # newest jobs kept)" with the job still there, not saying why.
    done = converge("store", "gc", paused, "--keep-last", "0")
    assert done.exit_code == 0, done.output
    assert "nothing to delete (no finished job; never deleted, whatever N: " \
        "job 1 (awaiting approval))" in done.output
    assert "awaiting approval are never deleted" in " ".join(
        converge("store", "gc", "--help").output.split())
