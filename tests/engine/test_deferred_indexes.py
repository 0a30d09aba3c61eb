"""An index only agents of a later tier look up is built when that tier begins
(``IndexSpec.tier``), not maintained through the earlier tiers' updates: the same
facts, trace and checkpoints as an index kept from the start."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import converge_rules
from converge_rules import api
from converge_rules.engine import factstore
from converge_rules.engine.factstore import Layout
from converge_rules.store.sqlite import SqliteStore

RULES = """ruleset deferred
fact Cell { key id: int, n: int, color: str }
fact Pick { key color: str }
fact Red  { key id: int, n: int }
fact Hit  { key id: int, color: str }
fact Echo { key id: int }
policy Cell { resolve by latest }

agent bump tier 1 {
  when Cell(id, n, color) where n < id % 4 + 3
  emit lasting Cell(id: id, n: n + 1, color: if n % 2 == 1 then "red" else "blue")
}

agent reds tier 2 {
  when Cell(id, n, color: "red")
  emit Red(id: id, n: n)
}

agent picked tier 2 {
  when Pick(color) and Cell(id, color)
  emit Hit(id: id, color: color)
}

agent echo tier 2 {
  when Red(id)
  emit Echo(id: id)
}
"""

FACTS = [("Pick", {"color": "blue"})] + [
    ("Cell", {"id": i, "n": i % 3, "color": "green"}) for i in range(40)]


def run(monkeypatch: pytest.MonkeyPatch, deferred: bool,
        text: str = RULES) -> converge_rules.RunResult:
    ruleset = converge_rules.loads(text, plugins=False)
    if not deferred:
        of = Layout.of
        monkeypatch.setattr(factstore.Layout, "of", staticmethod(
            lambda program: dataclasses.replace(of(program), deferred=())))
    try:
        return converge_rules.run(ruleset, FACTS)
    finally:
        monkeypatch.undo()


def test_an_index_read_by_a_later_tier_only_is_built_when_the_tier_begins(
        monkeypatch: pytest.MonkeyPatch) -> None:
    program = converge_rules.loads(RULES, plugins=False).program
    cell = program.type_ids["Cell"]
    tiers = {ix.positions: ix.tier for ix in program.indexes if ix.type_id == cell}
    assert tiers[(2,)] == 2  # Cell(color: …) and Pick(color) and Cell(color): tier 2
    deferred = run(monkeypatch, True)
    kept = run(monkeypatch, False)
    assert deferred.status == kept.status == "converged"
    # bumped to n = id % 4 + 3: red when that is even, blue when odd
    assert sorted(r["id"] for r in deferred.facts("Red")) == [
        i for i in range(40) if (i % 4 + 3) % 2 == 0]
    assert sorted(h["id"] for h in deferred.facts("Hit")) == [
        i for i in range(40) if (i % 4 + 3) % 2 == 1]
    for name in ("Cell", "Red", "Hit", "Echo"):
        assert deferred.facts(name) == kept.facts(name)
    assert list(deferred.trace.lines()) == list(kept.trace.lines())


def test_any_other_reader_keeps_every_index_from_the_start() -> None:
    text = RULES + """
invariant no_green never Red(id) and Cell(id, color: "green")
"""
    program = converge_rules.loads(text, plugins=False).program
    assert all(ix.tier == 0 for ix in program.indexes)


@pytest.mark.parametrize("cycles", [2, 8])
def test_a_job_stopped_before_or_after_the_tier_began_resumes_to_the_same_trace(
        tmp_path: Path, cycles: int) -> None:
    # a checkpoint keeps which indexes were built (index_active): resumed in tier 1,
    # the job builds the tier 2 ones when tier 2 begins; resumed in tier 2, it has them
    ruleset = converge_rules.loads(RULES, plugins=False)
    whole = converge_rules.run(ruleset, FACTS, trace=tmp_path / "whole.jsonl")
    asked = iter([False] * cycles + [True])
    db = tmp_path / "run.db"
    first = converge_rules.run(ruleset, FACTS, store=db, stop=lambda: next(asked, True))
    assert (first.status, first.cycles) == ("interrupted", cycles)
    tiers = [e.tier for e in first.trace.events() if e.event == "cycle_start"]
    assert tiers[-1] == (1 if cycles == 2 else 2)
    resumed = api.resume(db, ruleset=ruleset)
    assert resumed.status == "converged"
    assert sorted(r["id"] for r in resumed.facts("Red")) == [
        i for i in range(40) if (i % 4 + 3) % 2 == 0]
    for name in ("Cell", "Red", "Hit", "Echo"):
        assert resumed.facts(name) == whole.facts(name)
    with SqliteStore(db) as store:
        job = store.job(None)
        assert "".join(f"{line}\n" for line in store.trace_lines(job.id)) == (
            whole.trace.to_jsonl())
