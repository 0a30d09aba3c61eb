"""``converge pending`` of a grown pending total (a ``combine`` value held on its key,
which later parts grew: docs/language.md, approval gates): a user deciding on the total
sees every part held since the key's value — each with its agent, cycle and what it
rests on — not only the latest one's, in text and in ``--format json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from converge_rules.cli import main
from tests.gates.test_pending_dropped import LATE_PART
from tests.store.test_replay_later_inputs import GATE, PAY, part, payment, stored


def cli(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_every_part_of_a_grown_total_is_listed(tmp_path: Path) -> None:
    # 5,000 enters; 8,000 (agent more) is held as 13,000; 9,000 (agent late) grows it
    # to 22,000: its parts are the 8,000 and the 9,000
    ruleset = tmp_path / "pay.cvg"
    ruleset.write_text(LATE_PART, encoding="utf-8")
    facts = tmp_path / "f.jsonl"
    facts.write_text("".join(json.dumps({t: {"id": i, "claim": "c1", "amount": a}}) + "\n"
                             for t, i, a in [("Part", "p1", 5_000.0),
                                             ("Extra", "e1", 8_000.0),
                                             ("Late", "l1", 9_000.0)]), encoding="utf-8")
    db = tmp_path / "run.db"
    assert cli("run", ruleset, "-f", facts, "--store", db).exit_code == 4
    doc = json.loads(cli("pending", db, "--format", "json").stdout)
    (held,) = doc["pending"]
    assert held["fields"] == {"claim": "c1", "amount": 22_000.0}
    assert held["id"] == "p-9875bc627d5f"  # as docs/approvals.md shows it
    assert held["parts"] == [
        {"agent": "more", "cycle": 2, "support": [1, 4],
         "derivation": ['Extra(amount: 8000.0, claim: "c1", id: "e1")', 'Ack(claim: "c1")']},
        {"agent": "late", "cycle": 3, "support": [2, 5],
         "derivation": ['Late(amount: 9000.0, claim: "c1", id: "l1")', 'Ack2(claim: "c1")']}]
    # (the fact's own derivation is its last part's, as before)
    assert held["derivation"] == held["parts"][-1]["derivation"]
    text = cli("pending", db)
    assert text.exit_code == 0, text.output
    assert ("    the key's value with 2 parts held since:\n"
            "    part 1: agent more, cycle 2\n"
            '      from Extra(amount: 8000.0, claim: "c1", id: "e1")\n'
            '           Ack(claim: "c1")\n'
            "    part 2: agent late, cycle 3\n"
            '      from Late(amount: 9000.0, claim: "c1", id: "l1")\n'
            '           Ack2(claim: "c1")\n') in text.stdout


def test_a_total_rebased_on_a_later_input_counts_no_new_part(tmp_path: Path) -> None:
    # 8,100 held on the key's 5,000 (13,100: one part); a Payment of 100 given later
    # takes the key (5,100) and the total is rebased (13,200: still one part); then a
    # part of 200 grows it (13,400: two parts)
    _, db, last = stored(tmp_path, PAY + GATE, [[part(1, 5_000.0)], [part(2, 8_100.0)],
                                                 [payment(100.0)]])
    (held,) = json.loads(cli("pending", db, "--format", "json").stdout)["pending"]
    assert held["fields"]["amount"] == 13_200.0
    assert [(p["agent"], p["derivation"]) for p in held["parts"]] == [
        ("base", ['Part(amount: 8100.0, claim: "c1", id: "p2")'])]
    assert "parts held since" not in cli("pending", db).stdout
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps(part(3, 200.0)) + "\n", encoding="utf-8")
    assert cli("run", "--resume", db, "--facts", more).exit_code == 4
    (held,) = json.loads(cli("pending", db, "--format", "json").stdout)["pending"]
    assert held["fields"]["amount"] == 13_400.0
    assert [(p["agent"], p["derivation"]) for p in held["parts"]] == [
        ("base", ['Part(amount: 8100.0, claim: "c1", id: "p2")']),
        ("base", ['Part(amount: 200.0, claim: "c1", id: "p3")'])]
    assert last["status"] == "awaiting_approval"


ONE_CYCLE = """\
ruleset pay
fact Part    { key id: str, claim: str, amount: float }
fact Payment { key claim: str, amount: float }
agent base { when Part(claim, amount) emit Payment(claim: claim, amount: amount) }
policy Payment { combine sum amount }
approve Payment when amount > 10_000.0
"""


def test_every_part_of_a_total_combined_in_one_cycle_is_listed(tmp_path: Path) -> None:
    # found: three parts combined in one cycle (13,500) listed only the first's support
    ruleset = tmp_path / "pay.cvg"
    ruleset.write_text(ONE_CYCLE, encoding="utf-8")
    facts = tmp_path / "f.jsonl"
    facts.write_text("".join(json.dumps({"Part": {"id": i, "claim": "c1", "amount": a}})
                             + "\n" for i, a in [("p1", 6_000.0), ("p2", 7_000.0),
                                                 ("p3", 500.0)]), encoding="utf-8")
    db = tmp_path / "run.db"
    assert cli("run", ruleset, "-f", facts, "--store", db).exit_code == 4
    (held,) = json.loads(cli("pending", db, "--format", "json").stdout)["pending"]
    assert held["fields"] == {"claim": "c1", "amount": 13_500.0}
    assert [(p["agent"], p["cycle"], p["support"], p["derivation"])
            for p in held["parts"]] == [
        ("base", 1, [i], [f'Part(amount: {a}, claim: "c1", id: "p{i + 1}")'])
        for i, a in enumerate([6000.0, 7000.0, 500.0])]
    text = cli("pending", db).stdout
    assert "with 3 parts" in text and 'id: "p3")' in text
    # (a total of one part, the usual case, writes its event as it always did)
    lines = cli("trace", "export", db).stdout.splitlines()
    (event,) = [json.loads(line) for line in lines if '"approval_pending"' in line]
    assert event["also"] == [{"agent": "base", "support": [1]},
                             {"agent": "base", "support": [2]}]
    # approved, the total enters resting on every part, as it would have unheld
    assert cli("approve", db, held["id"], "--by", "ann").exit_code == 0
    assert cli("run", "--resume", db).exit_code == 0
    lines = [json.loads(line) for line in cli("trace", "export", db).stdout.splitlines()]
    (added,) = [e for e in lines if e["event"] == "fact_added" and e["type"] == "Payment"]
    assert added["support"] == [0]
    assert [e["support"] for e in lines if e["event"] == "fact_supported"
            and e["id"] == added["id"]] == [[1], [2]]
