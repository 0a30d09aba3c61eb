"""Retraction inside a job when facts support each other through a cycle: a fact whose
only remaining derivations rest on itself leaves with what derived it (the delete-and-
rederive of engine/retraction.py), for a prune and for a keyed replacement, the same
with every executor. Counting derivations kept ``Path(0, 1)`` alive through
``Path(0, 1) + Edge(1, 1)`` after ``Edge(0, 1)`` was gone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

import converge_rules
from converge_rules.engine.executors import ThreadExecutor, fork_available, processes_executor

NOW = datetime(2026, 1, 1, tzinfo=UTC)

PATHS = """
fact Edge { a: int, b: int }
fact Path { a: int, b: int }
fact Tick { key id: int, n: int }
agent base {
  when Edge(a, b)
  emit Path(a: a, b: b)
}
agent step {
  when Path(a, b) and Edge(a: b, b: c)
  emit Path(a: a, b: c)
}
policy Tick { resolve by latest }
"""

# Edge(0, 1) is pruned at age 3, after step gave Path(0, 1) a second derivation from
# itself and Edge(1, 1); the ticks keep the job going past that
PRUNED = converge_rules.loads('ruleset pruned "a prune under a cycle of paths"' + PATHS + """
agent tick {
  when Tick(id, n) where n < 6
  emit Tick(id: id, n: n + 1)
}
prune Edge when a == 0 and age > 2
""", plugins=False)

# the keyed Edge(0, 1) (derived from its Link) is replaced by Edge(0, 2) at tick 3
MOVED = converge_rules.loads('ruleset moved "a keyed edge replaced under a cycle"' + PATHS
                             .replace("fact Edge { a: int", "fact Edge { key a: int") + """
fact Link { a: int, b: int }
agent wire {
  when Link(a, b)
  emit Edge(a: a, b: b)
}
agent move {
  when Tick(n) where n == 3
  emit lasting Edge(a: 0, b: 2)
}
agent tick {
  when Tick(id, n) where n < 4
  emit Tick(id: id, n: n + 1)
}
policy Edge { resolve by latest }
""", plugins=False)

TICK = ("Tick", {"id": 1, "n": 0})


def pairs(result: converge_rules.RunResult, name: str) -> list[tuple[int, int]]:
    return [(f["a"], f["b"]) for f in result.facts(name)]


def test_a_pruned_fact_takes_the_path_that_supports_itself_with_it() -> None:
    result = converge_rules.run(PRUNED, [("Edge", {"a": 0, "b": 1}),
                                         ("Edge", {"a": 1, "b": 1}), TICK], now=NOW)
    assert result.status == "converged"
    assert pairs(result, "Edge") == [(1, 1)]
    assert pairs(result, "Path") == [(1, 1)]
    events = [json.loads(line) for line in result.trace.bare_lines()]
    pruned = next(e for e in events if e["event"] == "pruned")
    gone = [e for e in events if e["event"] == "retracted"]
    # Path(0, 1) leaves in the prune's cycle, and names the pruned edge as its cause
    assert [(e["fields"], e["cycle"], e["cause"]) for e in gone] == [
        ({"a": 0, "b": 1}, pruned["cycle"], pruned["id"])]


def test_a_replaced_fact_takes_the_path_that_supports_itself_with_it() -> None:
    result = converge_rules.run(MOVED, [("Link", {"a": 0, "b": 1}),
                                        ("Link", {"a": 1, "b": 1}), TICK], now=NOW)
    assert result.status == "converged"
    assert pairs(result, "Edge") == [(0, 2), (1, 1)]
    assert pairs(result, "Path") == [(0, 2), (1, 1)]


def test_a_path_with_another_grounded_derivation_stays() -> None:
    # Path(0, 1) also rests on Edge(0, 2) + Edge(2, 1): pruning Edge(0, 1) keeps it
    result = converge_rules.run(PRUNED, [
        ("Edge", {"a": 0, "b": 1}), ("Edge", {"a": 1, "b": 1}), ("Edge", {"a": 0, "b": 2}),
        ("Edge", {"a": 2, "b": 1}), TICK], now=NOW)
    assert pairs(result, "Edge") == [(1, 1), (2, 1)]
    assert pairs(result, "Path") == [(1, 1), (2, 1)]
    # Edge(0, 2) is pruned too: every path from 0 goes; the others rest on edges that stay
    kept = converge_rules.run(PRUNED, [
        ("Edge", {"a": 0, "b": 1}), ("Edge", {"a": 1, "b": 1}), ("Edge", {"a": 3, "b": 0}),
        ("Edge", {"a": 0, "b": 3}), TICK], now=NOW)
    # 3 -> 0 -> 3 is a cycle through the pruned Edge(0, 3): Path(3, 3) rested on it
    assert pairs(kept, "Path") == [(1, 1), (3, 0)]


@pytest.mark.parametrize("executor", [
    "threads",
    pytest.param("processes", marks=pytest.mark.skipif(not fork_available(),
                                                        reason="needs fork")),
])
@pytest.mark.parametrize("ruleset", ["pruned", "moved"])
def test_cyclic_retraction_traces_the_same_on_every_executor(executor: str,
                                                              ruleset: str) -> None:
    rules, facts = ((PRUNED, [("Edge", {"a": a, "b": b}) for a, b in
                              [(0, 1), (1, 1), (1, 0), (0, 2), (2, 0), (2, 2)]])
                    if ruleset == "pruned" else
                    (MOVED, [("Link", {"a": a, "b": b}) for a, b in
                             [(0, 1), (1, 3), (3, 1)]]))
    serial = converge_rules.run(rules, [*facts, TICK], now=NOW)
    assert serial.status == "converged"
    exe: Any = ThreadExecutor(3) if executor == "threads" else processes_executor(2)
    other = converge_rules.run(rules, [*facts, TICK], now=NOW, executor=exe)
    assert other.to_json() == serial.to_json()
    assert other.trace.to_jsonl() == serial.trace.to_jsonl()
    assert any(json.loads(line)["event"] == "retracted"
               for line in serial.trace.bare_lines())
