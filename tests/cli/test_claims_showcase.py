"""The claims-adjudication showcase (rulesets/claims/adjudication.cvg, issue 14 item 5)
as docs/approvals.md runs it: through the real `converge` command, with the model's
answers canned by rulesets/claims/claims_demo.py. Large payments wait for a person;
approved (one with an edit) from the command line, the job resumes and converges, and
its store verifies. The ids the docs page shows are the ones the demo gives."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CLAIMS = REPO / "rulesets" / "claims"
RULESET = CLAIMS / "adjudication.cvg"
INPUT = CLAIMS / "adjudication.jsonl"
DOC = REPO / "docs" / "approvals.md"


def converge(tmp: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``converge --plugin claims_demo ARGS`` as the docs page runs it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CLAIMS), *sys.path]),
           "CONVERGE_DISABLE_PLUGINS": "converge-llm"}
    return subprocess.run([sys.executable, "-m", "converge_rules.cli", "--plugin",
                           "claims_demo", *map(str, args)], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=300)


def pending(tmp: Path) -> dict[str, Any]:
    out = converge(tmp, "pending", "run.db", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def test_the_showcase_pauses_for_large_payments_and_resumes_when_decided(
        tmp_path: Path) -> None:
    out = converge(tmp_path, "run", RULESET, "-f", INPUT, "--store", "run.db",
                   "--format", "json")
    assert out.returncode == 4, out.stderr
    paused = json.loads(out.stdout)
    assert paused["status"] == "awaiting_approval"
    # the small payment went through; the two above 10,000 wait
    assert paused["facts"]["Payment"] == [{"amount": 1250.0, "claim": "C1"}]
    held = {p["fields"]["claim"]: p for p in pending(tmp_path)["pending"]}
    assert {c: p["fields"]["amount"] for c, p in held.items()} == {"C2": 17700.0,
                                                                 "C3": 12150.0}
    assert all(p["gate"] == "Payment" and p["agent"] == "pay" for p in held.values())
    assert converge(tmp_path, "approve", "run.db", held["C3"]["id"], "--by", "dana",
                    "--note", "photos match").returncode == 0
    out = converge(tmp_path, "approve", "run.db", held["C2"]["id"], "--by", "dana",
                   "--set", "amount=15000", "--note", "capped at the plumber's quote")
    assert out.returncode == 0, out.stderr
    out = converge(tmp_path, "run", "--resume", "run.db", "--format", "json")
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout)
    assert done["status"] == "converged"
    assert {p["claim"]: p["amount"] for p in done["facts"]["Payment"]} == {
        "C1": 1250.0, "C2": 15000.0, "C3": 12150.0}
    assert [(d["decision"], d["by"], d["edits"]) for d in done["decisions"]] == [
        (("approve", "dana", {"amount": 15000.0}) if d["id"] == held["C2"]["id"]
         else ("approve", "dana", {})) for d in done["decisions"]]
    assert converge(tmp_path, "verify", "run.db").returncode == 0


def test_the_ids_on_the_docs_page_are_the_demos() -> None:
    text = DOC.read_text(encoding="utf-8")
    shown = set(re.findall(r"\bp-[0-9a-f]{12}\b", text))
    assert shown, "docs/approvals.md shows no pending id"
    from converge_rules.engine.gates import pending_id

    demo = {pending_id("Payment", "Payment", (claim, amount))
            for claim, amount in (("C2", 17700.0), ("C3", 12150.0))}
    # the pending total of parts listed in section 5, as
    # tests/store/test_pending_parts.py::test_every_part_of_a_grown_total_is_listed
    # holds it (22,000 on claim c1)
    demo.add(pending_id("Payment", "Payment", ("c1", 22_000.0)))
    assert shown <= demo, f"ids on the page the demo does not give: {shown - demo}"
