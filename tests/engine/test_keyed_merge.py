"""The keyed merge: a key whose winner is retracted later in the same merge goes to a
candidate still standing (the same with every executor), a stale keyed output is
reported once, and a combined fact rests on every candidate (rulesets compiled from
`.cvg`, run by the engine)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import RunResult, run
from converge_rules.engine.executors import ThreadExecutor
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Program


def program(tmp_path: Path, source: str) -> Program:
    path = tmp_path / "r.cvg"
    path.write_text(source)
    checked = check_file(path)
    assert checked.ok, [d.message for d in checked.diagnostics if d.is_error]
    return compile_ruleset(checked)


def events(result: RunResult) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.trace.lines()]


# b0 (declared first) proposes B(w: 5) from S; a1 replaces the input A(v: 1) by
# A(v: 2); b2 proposes B(w: 9) from A(v: 1), which a1's replacement retracts.
STALE_WINNER = """\
ruleset s "s"
fact S { k: str }
fact A { key k: str, v: int }
fact B { key k: str, w: int }
agent b0 tier 1 {
  when S(k)
  emit B(k: k, w: 5)
}
agent a1 tier 1 {
  when S(k)
  emit A(k: k, v: 2)
}
agent b2 tier 1 {
  when A(k, v) where v == 1
  emit B(k: k, w: 9)
}
policy A { resolve by highest v }
policy B { resolve by highest w }
"""

STALE_INPUTS: list[tuple[str, dict[str, Any]]] = [("S", {"k": "x"}), ("A", {"k": "x", "v": 1})]


def test_a_winner_retracted_later_in_the_merge_gives_the_key_to_the_valid_loser(
    tmp_path: Path,
) -> None:
    result = run(program(tmp_path, STALE_WINNER), STALE_INPUTS)
    assert result.status == "converged", result.detail
    assert result.facts("A") == [{"k": "x", "v": 2}]
    assert result.facts("B") == [{"k": "x", "w": 5}]
    evs = events(result)
    b_added = [e["fields"] for e in evs if e["event"] == "fact_added" and e["type"] == "B"]
    assert b_added == [{"k": "x", "w": 9}, {"k": "x", "w": 5}]
    skipped = [e for e in evs if e["event"] == "output_skipped"]
    assert [(e["agent"], e["fields"]) for e in skipped] == [("b2", {"k": "x", "w": 9})]


def test_the_re_merge_is_deterministic_across_executors(tmp_path: Path) -> None:
    prog = program(tmp_path, STALE_WINNER)
    serial = run(prog, STALE_INPUTS)
    threads = run(prog, STALE_INPUTS, executor=ThreadExecutor(3))
    assert list(serial.trace.lines()) == list(threads.trace.lines())
    assert list(serial.trace.lines()) == list(run(prog, STALE_INPUTS).trace.lines())


def test_an_incumbent_winner_retracted_later_gives_the_key_to_the_new_candidate(
    tmp_path: Path,
) -> None:
    # cycle 1: B(w: 9) rests on A(v: 1); cycle 2 (tier 2): b0 proposes B(w: 5), which
    # loses to the incumbent, then a1 replaces A(v: 1) and so retracts B(w: 9)
    source = """\
ruleset s "s"
fact S { k: str }
fact A { key k: str, v: int }
fact B { key k: str, w: int }
agent b2 tier 1 {
  when A(k, v) where v == 1
  emit B(k: k, w: 9)
}
agent b0 tier 2 {
  when S(k)
  emit B(k: k, w: 5)
}
agent a1 tier 2 {
  when S(k)
  emit A(k: k, v: 2)
}
policy A { resolve by highest v }
policy B { resolve by highest w }
"""
    result = run(program(tmp_path, source), STALE_INPUTS)
    assert result.status == "converged", result.detail
    assert result.facts("B") == [{"k": "x", "w": 5}]


def test_a_stale_keyed_output_is_reported_once(tmp_path: Path) -> None:
    source = """\
ruleset s "s"
fact S { k: str }
fact A { key k: str, v: int }
fact B { key k: str, w: int }
agent a1 tier 1 {
  when S(k)
  emit A(k: k, v: 2)
}
agent a2 tier 1 {
  when A(k, v) where v == 1
  emit B(k: k, w: 1)
}
agent a3 tier 1 {
  when S(k)
  emit B(k: k, w: 5)
}
policy A { resolve by highest v }
policy B { resolve by highest w }
"""
    result = run(program(tmp_path, source), STALE_INPUTS)
    assert result.status == "converged", result.detail
    assert result.facts("B") == [{"k": "x", "w": 5}]
    skipped = [e for e in events(result) if e["event"] == "output_skipped"]
    assert [(e["agent"], e["fields"]) for e in skipped] == [("a2", {"k": "x", "w": 1})]


COMBINE = """\
ruleset c "c"
fact S { k: str, n: float }
fact T { k: str, n: float }
fact Avg { key k: str, n: float }
agent from_s tier 1 {
  when S(k, n)
  emit Avg(k: k, n: n)
}
agent from_t tier 1 {
  when T(k, n)
  emit Avg(k: k, n: n)
}
policy Avg { combine mean n }
prune T when age > 0
"""


@pytest.mark.parametrize("t_value", [15.0, 30.0, 45.0])
def test_a_combined_fact_rests_on_every_candidate(tmp_path: Path, t_value: float) -> None:
    # the mean of 10, 20 and T equals one proposal when T is 15 (T's own) or 30
    # (S's 20): it must rest on every candidate all the same and survive T's prune,
    # as it does when the mean equals none (T is 45)
    facts: list[tuple[str, dict[str, Any]]] = [
        ("S", {"k": "a", "n": 10.0}), ("S", {"k": "a", "n": 20.0}),
        ("T", {"k": "a", "n": t_value}),
    ]
    result = run(program(tmp_path, COMBINE), facts)
    assert result.status == "converged", result.detail
    assert result.facts("T") == []
    assert result.facts("Avg") == [{"k": "a", "n": (10.0 + 20.0 + t_value) / 3}]
    evs = events(result)
    (avg,) = [e["id"] for e in evs if e["event"] == "fact_added" and e["type"] == "Avg"]
    derived_by = [e["agent"] for e in evs
                  if e["event"] in ("fact_added", "fact_supported") and e["id"] == avg]
    assert sorted(derived_by) == ["from_s", "from_s", "from_t"]
