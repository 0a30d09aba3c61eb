"""A fact held by its approval gate whose support leaves the context (a revised
estimate replaces the one it was derived from) is pending no more: a
``pending_dropped`` event, and the job does not pause for it. What a user meets: the
run's status, ``converge pending`` (an approval of it refused: nothing to decide),
``verify``, ``replay``, the report and the test blocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules import Decision, api
from converge_rules.analysis.runview import view_from_events
from converge_rules.cli import main
from converge_rules.engine.gates import pending_id
from converge_rules.report.run import build_run_report

REVISED = """\
ruleset est
fact Claim    { key id: str, amount: float }
fact Review   { key claim: str, amount: float }
fact Estimate { key claim: str, amount: float }
fact Payment  { key claim: str, amount: float }
agent estimate {
  when Claim(id, amount)
  emit Estimate(claim: id, amount: amount)
}
agent pay {
  when Estimate(claim, amount)
  emit Payment(claim: claim, amount: amount)
}
agent revise {
  when Estimate(claim, amount: old) and Review(claim, amount) where amount != old
  emit Estimate(claim: claim, amount: amount)
}
policy Estimate { resolve by latest }
approve Payment when amount > 10_000.0
"""

# c1's estimate of 12,000 is revised to 8,000 in the cycle its payment is held; c2's
# 15,000 stays
REVIEWED = [("Claim", {"id": "c1", "amount": 12_000.0}),
            ("Review", {"claim": "c1", "amount": 8_000.0})]
BOTH = [*REVIEWED, ("Claim", {"id": "c2", "amount": 15_000.0})]
C1_HELD = pending_id("Payment", "Payment", ("c1", 12_000.0))


def load() -> converge_rules.Ruleset:
    return converge_rules.loads(REVISED, plugins=False)


def events(result: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.trace.bare_lines()]


def test_a_held_fact_whose_support_goes_is_dropped_and_the_job_does_not_pause() -> None:
    result = api.run(load(), REVIEWED)
    assert result.status == "converged", result.detail
    assert result.pending == []
    assert result.facts("Payment") == [{"claim": "c1", "amount": 8_000.0}]
    trace = events(result)
    (held,) = [e for e in trace if e["event"] == "approval_pending"]
    (dropped,) = [e for e in trace if e["event"] == "pending_dropped"]
    assert held["id"] == dropped["id"] == C1_HELD
    assert dropped == {"event": "pending_dropped", "cycle": held["cycle"], "id": C1_HELD,
                       "gate": "Payment", "type": "Payment",
                       "fields": {"claim": "c1", "amount": 12_000.0},
                       "gone": held["support"]}
    # the typed events (what verify reads) know it
    kinds = [type(m).__name__ for m in result.trace.events()]
    assert "PendingDropped" in kinds


def test_a_decision_on_a_dropped_fact_is_unused() -> None:
    result = api.run(load(), REVIEWED, decisions=[
        Decision(C1_HELD, True, by="ann", at="2026-12-06T10:00:00Z")])
    assert result.status == "converged" and result.decided == []
    assert result.unused_decisions == [C1_HELD]
    assert result.facts("Payment") == [{"claim": "c1", "amount": 8_000.0}]


def test_the_job_pauses_only_for_what_is_still_held() -> None:
    result = api.run(load(), BOTH)
    assert result.status == "awaiting_approval"
    assert [p["fields"] for p in result.pending] == [{"claim": "c2", "amount": 15_000.0}]
    assert "1 fact awaits approval" in result.detail
    report = build_run_report(view_from_events(events(result)), title="t", source="s")
    assert report.summary["approvals"] == {"held": 2, "decided": 0, "dropped": 1,
                                           "awaiting": 1}
    rows = {(r[1], r[2]): r[6] for r in report.data["approvals"]}
    assert rows[("pending", C1_HELD)] == f"dropped in cycle {result.pending[0]['cycle']}"
    assert rows[("dropped", C1_HELD)] == "dropped (support gone)"


def cli(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_pending_approve_verify_and_replay_of_a_stored_job(tmp_path: Path) -> None:
    ruleset = tmp_path / "est.cvg"
    ruleset.write_text(REVISED, encoding="utf-8")
    facts = tmp_path / "facts.jsonl"
    facts.write_text("".join(json.dumps({t: f}) + "\n" for t, f in BOTH), encoding="utf-8")
    db = tmp_path / "run.db"
    out = cli("run", ruleset, "-f", facts, "--store", db, "--format", "json")
    assert out.exit_code == 4, out.output
    listed = cli("pending", db, "--format", "json")
    assert listed.exit_code == 0, listed.output
    (only,) = json.loads(listed.stdout)["pending"]
    assert only["fields"] == {"claim": "c2", "amount": 15_000.0}
    refused = cli("approve", db, C1_HELD, "--by", "ann")
    assert refused.exit_code == 2
    assert f"no fact {C1_HELD} is pending" in refused.output
    assert "Traceback" not in refused.output
    assert cli("approve", db, only["id"], "--by", "ann").exit_code == 0
    resumed = cli("run", "--resume", db, "--format", "json")
    assert resumed.exit_code == 0, resumed.output
    doc = json.loads(resumed.stdout)
    assert sorted((f["claim"], f["amount"]) for f in doc["facts"]["Payment"]) == [
        ("c1", 8_000.0), ("c2", 15_000.0)]
    verified = cli("verify", db)
    assert verified.exit_code == 0, verified.output
    replayed = cli("replay", ruleset, db)
    assert replayed.exit_code == 0, replayed.output


TESTED = REVISED + """
test "a revised estimate leaves nothing to approve" {
  given Claim(id: "c1", amount: 12_000.0)
  given Review(claim: "c1", amount: 8_000.0)
  expect Payment(claim: "c1", amount: 8_000.0)
  expect status converged
}
"""


@pytest.mark.parametrize("extra, passed", [
    ("", True),
    # approving the dropped fact decides nothing: the test says so
    ('  approve Payment(claim: "c1", amount: 12_000.0)\n', False),
])
def test_test_blocks_see_the_fact_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          extra: str, passed: bool) -> None:
    monkeypatch.chdir(tmp_path)
    text = TESTED.replace("  expect status converged\n", extra + "  expect status converged\n")
    Path("r.cvg").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "r.cvg"])
    if passed:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1, result.output
        assert "decided no pending fact" in result.output
        assert "pending_dropped" in result.output


LATE_PART = """\
ruleset pay
fact Part    { key id: str, claim: str, amount: float }
fact Extra   { key id: str, claim: str, amount: float }
fact Late    { key id: str, claim: str, amount: float }
fact Payment { key claim: str, amount: float }
fact Ack     { key claim: str }
fact Ack2    { key claim: str }
agent base {
  when Part(claim, amount)
  emit Payment(claim: claim, amount: amount)
  emit Ack(claim: claim)
}
agent more {
  when Extra(claim, amount) and Ack(claim)
  emit Payment(claim: claim, amount: amount)
  emit Ack2(claim: claim)
}
agent late {
  when Late(claim, amount) and Ack2(claim)
  emit Payment(claim: claim, amount: amount)
}
policy Payment { combine sum amount }
approve Payment when amount > 10_000.0
"""


def test_a_later_part_does_not_lose_a_held_combined_candidate() -> None:
    # 5,000 enters; 8,000 combines to 13,000, held; then 1,000 combines with the
    # incumbent 5,000 to 6,000, which replaces it: the held 13,000 rested on the 5,000
    # and is dropped. The parts sum to 14,000, which the gate must hold.
    facts = [("Part", {"id": "p1", "claim": "c1", "amount": 5_000.0}),
             ("Extra", {"id": "e1", "claim": "c1", "amount": 8_000.0}),
             ("Late", {"id": "l1", "claim": "c1", "amount": 1_000.0})]
    result = api.run(converge_rules.loads(LATE_PART, plugins=False), facts)
    assert result.facts("Payment") != [{"claim": "c1", "amount": 6_000.0}]
    assert result.status == "awaiting_approval"
    assert [p["fields"]["amount"] for p in result.pending] == [14_000.0]


def test_two_approved_combined_values_of_one_key_count_the_incumbent_once() -> None:
    # 5,000 enters; 8,000 combines to 13,000 (held); then 9,000 comes: it is combined
    # with the held total, not with the incumbent 5,000 a second time (r22b: 13,000 and
    # 14,000 held, both approved made 32,000). One value is held on the key, the total
    # 5,000 + 8,000 + 9,000; the 13,000 it replaces is dropped, nothing gone.
    facts = [("Part", {"id": "p1", "claim": "c1", "amount": 5_000.0}),
             ("Extra", {"id": "e1", "claim": "c1", "amount": 8_000.0}),
             ("Late", {"id": "l1", "claim": "c1", "amount": 9_000.0})]
    ruleset = converge_rules.loads(LATE_PART, plugins=False)
    paused = api.run(ruleset, facts)
    assert paused.status == "awaiting_approval"
    assert paused.facts("Payment") == [{"claim": "c1", "amount": 5_000.0}]
    assert [p["fields"]["amount"] for p in paused.pending] == [22_000.0]
    first = pending_id("Payment", "Payment", ("c1", 13_000.0))
    trace = events(paused)
    (grown,) = [e for e in trace if e["event"] == "pending_dropped"]
    assert grown["id"] == first and grown["gone"] == []
    (held,) = [e for e in trace if e["event"] == "approval_pending"
               and e["fields"]["amount"] == 22_000.0]
    assert held["cycle"] == grown["cycle"]
    report = build_run_report(view_from_events(trace), title="t", source="s")
    rows = {(r[1], r[2]): r[6] for r in report.data["approvals"]}
    assert rows[("dropped", first)] == "dropped (grown)"
    # approved, the key holds the parts' sum; a decision on the 13,000 is unused
    result = api.run(ruleset, facts, decisions=[
        Decision(p["id"], True, by="ann", at="2026-12-06T10:00:00Z")
        for p in [*paused.pending, {"id": first}]])
    assert result.status == "converged", result.detail
    assert result.facts("Payment") == [{"claim": "c1", "amount": 22_000.0}]
    assert result.unused_decisions == [first]
    (conflict,) = result.conflicts
    assert conflict["winner"] == {"claim": "c1", "amount": 22_000.0}
    # rejected, the held parts never enter: the key keeps what it had
    rejected = api.run(ruleset, facts, decisions=[
        Decision(paused.pending[0]["id"], False, by="ann", at="2026-12-06T10:00:00Z")])
    assert rejected.status == "converged", rejected.detail
    assert rejected.facts("Payment") == [{"claim": "c1", "amount": 5_000.0}]
