"""Issue 10 item 5: a keyed aggregate with one producer, plus `prune`, ended in
`conflict` while `converge check` was clean. A re-derived aggregate is an update of the
same key by the same agent; a prune applies from the inputs' merge (cycle 0) on, so an
input fact it drops at age 0 is never seen by any agent."""

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


def totals(result: RunResult) -> list[dict[str, Any]]:
    return result.facts("Total")


HEAD = """\
ruleset agg "a keyed aggregate with one producer"
fact Sale  { key id: int, sku: str, qty: int }
fact Total { key sku: str, qty: int }
agent total {
  when Sale(sku)
  emit Total(sku: sku, qty: sum(Sale(sku), qty))
}
"""

SALES: list[tuple[str, dict[str, Any]]] = [
    ("Sale", {"id": 1, "sku": "A", "qty": 3}),
    ("Sale", {"id": 2, "sku": "A", "qty": 500}),
]


def test_the_issue_ruleset_converges_and_the_pruned_sale_is_never_counted(
    tmp_path: Path,
) -> None:
    result = run(program(tmp_path, HEAD + "prune Sale when qty > 100\n"), SALES)
    assert result.status == "converged", result.detail
    assert totals(result) == [{"sku": "A", "qty": 3}]
    # pruned in the inputs' merge: no agent ever saw it, so no Total(503) was made
    evs = events(result)
    pruned = [e for e in evs if e["event"] == "pruned"]
    assert [(e["cycle"], e["fields"]["id"]) for e in pruned] == [(0, 2)]
    added = [e["fields"] for e in evs if e["event"] == "fact_added" and e["type"] == "Total"]
    assert added == [{"sku": "A", "qty": 3}]


def test_a_sale_pruned_after_it_was_counted_updates_the_total(tmp_path: Path) -> None:
    result = run(program(tmp_path, HEAD + "prune Sale when age >= 1 and qty > 100\n"), SALES)
    assert result.status == "converged", result.detail
    assert totals(result) == [{"sku": "A", "qty": 3}]
    evs = events(result)
    assert not [e for e in evs if e["event"] == "conflict"]
    replaced = [e for e in evs if e["event"] == "replaced"]
    assert len(replaced) == 1


def test_the_update_is_the_same_with_threads(tmp_path: Path) -> None:
    prog = program(tmp_path, HEAD + "prune Sale when age >= 1 and qty > 100\n")
    serial = run(prog, SALES)
    threads = run(prog, SALES, executor=ThreadExecutor(2))
    assert list(serial.trace.lines()) == list(threads.trace.lines())


def test_two_values_for_one_key_in_one_cycle_are_still_a_conflict(tmp_path: Path) -> None:
    # the aggregate is per sku but the key is not: the two matches disagree in the same
    # cycle, which is a real conflict, not an update
    source = """\
ruleset agg "a real conflict"
fact Sale  { key id: int, sku: str, qty: int }
fact Total { key name: str, qty: int }
agent total {
  when Sale(sku)
  emit Total(name: "all", qty: sum(Sale(sku), qty))
}
"""
    facts = [*SALES[:1], ("Sale", {"id": 2, "sku": "B", "qty": 5})]
    result = run(program(tmp_path, source), facts)
    assert result.status == "conflict"


def test_another_agents_value_for_the_key_is_still_a_conflict(tmp_path: Path) -> None:
    source = HEAD + """\
fact Late { sku: str }
agent other tier 2 {
  when Late(sku)
  emit Total(sku: sku, qty: 0 - count(Sale(sku)))
}
"""
    result = run(program(tmp_path, source), [*SALES, ("Late", {"sku": "A"})])
    assert result.status == "conflict"
    assert "Total" in result.detail


@pytest.mark.parametrize("age", [0, 1])
def test_age_at_the_inputs_merge_is_zero(tmp_path: Path, age: int) -> None:
    # `age >= 1` keeps an input fact for the first cycle, `age >= 0` never lets it in
    result = run(program(tmp_path, HEAD + f"prune Sale when age >= {age} and qty > 100\n"),
                 SALES)
    cycles = {e["cycle"] for e in events(result) if e["event"] == "pruned"}
    assert cycles == {age}
