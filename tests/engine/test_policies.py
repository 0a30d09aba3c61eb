"""Conflicts on keyed types: every policy form, ties, combine, no policy, and a
resolver that raises."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from engine_programs import Builder, crit, each, f

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import Contender, run
from converge_rules.language.checks.checker import check_file
from converge_rules.program import EMIT, EVALUATE, Program, TypeSpec


def price_program(
    proposals: Sequence[tuple[str, float, float]],
    *criteria: Any,
    mode: str = "resolve",
    on_tie: str = "reject",
    policy: bool = True,
    combine: str | None = None,
) -> Program:
    """Cost(sku) → one agent per proposal ``(agent, amount, confidence)`` emitting
    Price(sku, amount)."""
    b = Builder()
    cost = b.fact("Cost", f("sku", key=True), f("amount", "float"))
    price = b.fact("Price", f("sku", key=True), f("amount", "float"), f("by"))
    for name, amount, conf in proposals:
        b.agent(name, each(cost, lambda v, amount=amount, conf=conf, name=name: [
            (EMIT, price, (v[0], amount, "same" if name.startswith("same") else name), conf)
        ]), reads=[cost], emits=[price])
    if policy:
        b.policy(price, *criteria, mode=mode, on_tie=on_tie, combine=combine,
                 position=1 if combine else None)
    return b.build()


COST = [("Cost", {"sku": "A1", "amount": 10.0})]


def winner(program: Program) -> tuple[str, float]:
    result = run(program, COST)
    assert result.status == "converged", result.detail
    (price,) = result.facts("Price")
    assert len(result.conflicts) == 1
    assert result.conflicts[0]["winner"] == price
    return price["by"], price["amount"]


def test_highest_confidence_then_lowest_amount() -> None:
    props = [("cost_plus", 12.0, 0.6), ("undercut", 11.88, 0.8)]
    assert winner(price_program(props, crit("confidence", "highest"))) == ("undercut", 11.88)
    props = [("a", 12.0, 0.8), ("b", 11.0, 0.8)]
    program = price_program(props, crit("confidence", "highest"),
                            crit("field", "lowest", position=1))
    assert winner(program) == ("b", 11.0)
    result = run(program, COST)
    assert result.conflicts[0]["reason"] == "resolve by lowest amount"
    assert result.conflicts[0]["losers"] == [{"sku": "A1", "amount": 12.0, "by": "a"}]


def test_highest_field() -> None:
    props = [("a", 12.0, 1.0), ("b", 13.0, 1.0)]
    assert winner(price_program(props, crit("field", "highest", position=1))) == ("b", 13.0)


def test_priority_follows_the_agent_list() -> None:
    props = [("a", 12.0, 1.0), ("b", 13.0, 1.0), ("c", 14.0, 1.0)]
    assert winner(price_program(props, crit("priority", agents=("c", "a")))) == ("c", 14.0)


def test_majority_counts_the_agents_proposing_a_value() -> None:
    props = [("lone", 12.0, 1.0), ("same1", 13.0, 1.0), ("same2", 13.0, 1.0)]
    assert winner(price_program(props, crit("majority"))) == ("same", 13.0)


def test_using_the_resolver_bound_into_the_criterion() -> None:
    def cheapest_odd(type_spec: TypeSpec, contenders: Sequence[Contender]) -> list[int]:
        assert type_spec.name == "Price"
        return [i for i, c in enumerate(contenders) if c.values[1] == 13.0]

    props = [("a", 12.0, 1.0), ("b", 13.0, 1.0)]
    using = crit("using", resolver="odd", resolver_fn=cheapest_odd)
    assert winner(price_program(props, using)) == ("b", 13.0)


def test_a_criterion_with_no_bound_resolver_is_an_explicit_conflict() -> None:
    props = [("a", 12.0, 1.0), ("b", 13.0, 1.0)]
    result = run(price_program(props, crit("using", resolver="nope")), COST)
    assert result.status == "conflict"
    assert "no resolver bound for `using nope`" in result.detail


@pytest.mark.parametrize(("on_tie", "expected"), [("first", "a"), ("latest", "b")])
def test_on_tie_first_and_latest(on_tie: str, expected: str) -> None:
    props = [("a", 12.0, 0.5), ("b", 13.0, 0.5)]
    program = price_program(props, crit("confidence", "highest"), on_tie=on_tie)
    assert winner(program)[0] == expected


def test_on_tie_reject_stops_the_job_with_partial_results() -> None:
    props = [("a", 12.0, 0.5), ("b", 13.0, 0.5)]
    result = run(price_program(props, crit("confidence", "highest")), COST)
    assert result.status == "conflict"
    assert result.facts("Cost") == [{"sku": "A1", "amount": 10.0}]
    assert result.facts("Price") == []
    (conflict,) = result.conflicts
    assert conflict["winner"] is None and len(conflict["losers"]) == 2
    assert conflict["key"] == {"sku": "A1"}


def test_reject_mode_and_missing_policy_are_conflicts() -> None:
    props = [("a", 12.0, 1.0), ("b", 13.0, 1.0)]
    assert run(price_program(props, mode="reject"), COST).status == "conflict"
    result = run(price_program(props, policy=False), COST)
    assert result.status == "conflict"
    assert "no policy" in result.detail


def test_agreeing_agents_are_no_conflict() -> None:
    props = [("same1", 12.0, 1.0), ("same2", 12.0, 1.0)]
    result = run(price_program(props, policy=False), COST)
    assert result.status == "converged"
    assert result.conflicts == []
    (fid,) = result.fact_ids("Price")
    assert [d["agent"] for d in result.provenance(fid)] == ["same1", "same2"]


@pytest.mark.parametrize(("func", "expected"), [
    ("sum", 25.0), ("min", 12.0), ("max", 13.0), ("mean", 12.5),
])
def test_combine_merges_candidates_into_one_fact(func: str, expected: float) -> None:
    props = [("same1", 12.0, 1.0), ("same2", 13.0, 1.0)]
    result = run(price_program(props, mode="combine", combine=func), COST)
    assert result.status == "converged"
    assert [p["amount"] for p in result.facts("Price")] == [expected]
    assert result.conflicts[0]["reason"] == f"combine {func} amount"


def test_latest_replaces_the_incumbent_and_earliest_keeps_it() -> None:
    def program(kind: str) -> Program:
        b = Builder()
        cost = b.fact("Cost", f("sku", key=True), f("amount", "float"))
        b.agent("raise", each(cost, lambda v: [(EMIT, cost, (v[0], v[1] + 1))]),
                reads=[cost], emits=[cost])
        b.policy(cost, crit("earliest" if kind == "earliest" else "latest"))
        return b.build(max_cycles=3)

    assert run(program("earliest"), COST).facts("Cost") == [{"sku": "A1", "amount": 10.0}]
    late = run(program("latest"), COST)
    assert late.status == "budget_exceeded"
    assert late.facts("Cost") == [{"sku": "A1", "amount": 13.0}]


def test_score_is_the_mean_evaluation_and_unscored_ranks_last() -> None:
    b = Builder()
    cost = b.fact("Cost", f("sku", key=True), f("amount", "float"))
    price = b.fact("Price", f("sku", key=True), f("amount", "float"))
    b.agent("judge", each(price, lambda v: [(EVALUATE, 0.9, "fine")]), reads=[price])
    b.agent("judge2", each(price, lambda v: [(EVALUATE, 0.5, None)]), reads=[price])
    b.agent("rival", each(cost, lambda v: [(EMIT, price, (v[0], 99.0))]), tier=2,
            reads=[cost], emits=[price])
    b.policy(price, crit("score", "highest"))
    result = run(b.build(), [*COST, ("Price", {"sku": "A1", "amount": 11.0})])
    assert result.status == "converged", result.detail
    assert result.facts("Price") == [{"sku": "A1", "amount": 11.0}]
    assert result.conflicts[0]["reason"] == "resolve by highest score"
    (fid,) = result.fact_ids("Price")
    assert sorted(s for _, s, _ in result.store.evaluations[fid]) == [0.5, 0.9]


def test_conflicting_inputs_are_resolved_by_the_policy() -> None:
    program = price_program([], crit("field", "highest", position=1))
    facts = [("Price", {"sku": "A1", "amount": a, "by": "in"}) for a in (3.0, 5.0, 4.0)]
    result = run(program, facts)
    assert result.facts("Price") == [{"sku": "A1", "amount": 5.0, "by": "in"}]
    assert result.conflicts[0]["cycle"] == 0
    assert run(price_program([]), facts).status == "conflict"


def test_a_conflict_stops_the_merge_where_it_stands() -> None:
    b = Builder()
    cost = b.fact("Cost", f("sku", key=True), f("amount", "float"))
    price = b.fact("Price", f("sku", key=True), f("amount", "float"))
    note = b.fact("Note", f("text"))
    b.agent("before", each(cost, lambda v: [(EMIT, note, ("before",))]), reads=[cost],
            emits=[note])
    b.agent("a", each(cost, lambda v: [(EMIT, price, (v[0], 1.0))]), reads=[cost],
            emits=[price])
    b.agent("b", each(cost, lambda v: [(EMIT, price, (v[0], 2.0))]), reads=[cost],
            emits=[price])
    b.agent("after", each(cost, lambda v: [(EMIT, note, ("after",))]), reads=[cost],
            emits=[note])
    result = run(b.build(), COST)
    assert result.status == "conflict"
    assert result.facts("Note") == [{"text": "before"}]  # merged before the conflict
    assert result.cycles == 1


def compiled(tmp_path: Path, source: str, resolvers: Mapping[str, Any]) -> Program:
    """``source`` checked (knowing ``resolvers``) and compiled from a ``.cvg`` file,
    with the resolvers bound into it."""
    path = tmp_path / "r.cvg"
    path.write_text(source)
    checked = check_file(path, resolvers=list(resolvers))
    assert checked.ok, [d.message for d in checked.diagnostics if d.is_error]
    return compile_ruleset(checked, resolvers=resolvers)


def _raises(type_spec: TypeSpec, contenders: Sequence[Contender]) -> list[int]:
    raise ValueError("boom")


def _not_indexes(type_spec: TypeSpec, contenders: Sequence[Contender]) -> Any:
    return None


RESOLVED = """\
ruleset r "r"
fact S { k: str }
fact P { key k: str, v: int }
agent one tier 1 {
  when S(k)
  emit P(k: k, v: 1)
}
agent two tier 1 {
  when S(k)
  emit P(k: k, v: 2)
}
policy P { resolve by using bad }
"""


@pytest.mark.parametrize(("fn", "error"), [(_raises, "ValueError: boom"),
                                           (_not_indexes, "TypeError: ")])
def test_a_resolver_that_raises_ends_the_job_in_conflict_naming_it(
    tmp_path: Path, fn: Any, error: str,
) -> None:
    result = run(compiled(tmp_path, RESOLVED, resolvers={"bad": fn}), [("S", {"k": "a"})])
    assert result.status == "conflict"
    assert f"resolver 'bad' raised {error}" in result.detail
    assert result.facts("S") == [{"k": "a"}]  # partial results
    (conflict,) = result.conflicts
    assert conflict["winner"] is None
    assert conflict["reason"].startswith(f"resolver 'bad' raised {error}")


def test_a_resolver_that_raises_on_conflicting_inputs_is_a_conflict(
    tmp_path: Path,
) -> None:
    result = run(compiled(tmp_path, RESOLVED, resolvers={"bad": _raises}),
                 [("P", {"k": "a", "v": 1}), ("P", {"k": "a", "v": 2})])
    assert result.status == "conflict"
    assert result.detail == "P (k: 'a'): resolver 'bad' raised ValueError: boom"


REJECT_MID_EFFECT = """\
ruleset rej "a reject policy stops the merge where it stands"
fact S { k: str }
fact P { key k: str, v: int }
fact A { n: int }
fact E { n: int }
fact Z { n: int }
agent first tier 1 {
  when S(k)
  emit P(k: k, v: 1)
}
agent early tier 1 {
  when P(k, v) where v == 1
  emit Z(n: 1)
}
agent second tier 1 {
  when P(k, v) where v == 1
  emit A(n: 1)
  emit P(k: k, v: 2)
  emit E(n: 1)
}
agent late tier 1 {
  when P(k, v) where v == 1
  emit Z(n: 2)
}
policy P { reject }
"""


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_the_partial_result_of_a_rejected_conflict_is_the_merge_up_to_the_conflict(
    executor: str,
) -> None:
    # found (r27): the stopping cycle's merge is not undone (docs/language.md, "What a
    # stopped merge keeps"): every effect merged before the rejecting output, and the
    # rejecting effect's own outputs before it (A), stay; its later outputs (E) and
    # the later agents' effects (Z 2) are not merged; the incumbent keeps its key
    import converge_rules

    rs = converge_rules.loads(REJECT_MID_EFFECT, plugins=False)
    result = converge_rules.run(rs, [("S", {"k": "x"})], executor=executor)
    assert (result.status, result.cycles) == ("conflict", 2)
    assert result.facts("Z") == [{"n": 1}]
    assert result.facts("A") == [{"n": 1}]
    assert result.facts("E") == []
    assert result.facts("P") == [{"k": "x", "v": 1}]
    events = [json.loads(line) for line in result.trace.lines()]
    cycle2 = [(e["event"], e.get("agent"), e.get("type")) for e in events
              if e.get("cycle") == 2 and e["event"] != "cycle_start"]
    assert cycle2 == [
        ("fact_added", "early", "Z"), ("effect_merged", "early", None),
        ("fact_added", "second", "A"), ("conflict", None, "P"), ("cycle_end", None, None),
    ]  # the trace says what was kept: no `effect_merged` for the stopping effect
