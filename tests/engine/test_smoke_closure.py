"""Transitive closure: the engine's basic semi-naive loop over tiers and indexes."""

from __future__ import annotations

from typing import Any

from engine_programs import Builder, f

from converge_rules.engine import run
from converge_rules.program import EMIT, Program


def closure_program() -> Program:
    b = Builder("closure")
    edge = b.fact("Edge", f("a"), f("b"))
    path = b.fact("Path", f("a"), f("b"))
    edge_by_a = b.index(edge, 0)
    path_by_b = b.index(path, 1)

    def base(view: Any, since: int, rt: Any) -> list[Any]:
        return [(EMIT, path, view.values[e], 1.0, (e,)) for e in view.new(edge, since)]

    def step(view: Any, since: int, rt: Any) -> list[Any]:
        out = []
        values = view.values
        for p in view.new(path, since):
            pa, pb = values[p]
            for e in view.indexes[edge_by_a].get(pb, ()):
                out.append((EMIT, path, (pa, values[e][1]), 1.0, (p, e)))
        for e in view.new(edge, since):
            ea, eb = values[e]
            for p in view.indexes[path_by_b].get(ea, ()):
                if p < since:
                    out.append((EMIT, path, (values[p][0], eb), 1.0, (p, e)))
        return out

    b.agent("base", base, reads=[edge], emits=[path])
    b.agent("step", step, reads=[path, edge], emits=[path])
    return b.build()


def expected_closure(edges: list[tuple[str, str]]) -> set[tuple[str, str]]:
    paths = set(edges)
    while True:
        more = {(a, d) for a, b in paths for c, d in edges if b == c} - paths
        if not more:
            return paths
        paths |= more


def test_closure_of_a_chain_converges_to_every_reachable_pair() -> None:
    edges = [(str(i), str(i + 1)) for i in range(6)] + [("5", "2")]
    result = run(closure_program(), [("Edge", {"a": a, "b": b}) for a, b in edges])
    assert result.status == "converged"
    got = {(p["a"], p["b"]) for p in result.facts("Path")}
    assert got == expected_closure(edges)


def test_an_index_driven_only_by_inputs_is_built_when_needed_and_then_dropped() -> None:
    import dataclasses

    program = closure_program()
    edge, path = program.type_ids["Edge"], program.type_ids["Path"]
    # the "Edge is new" pass of `step` is the only reader of the Path(b) index
    lazy = dataclasses.replace(program, indexes=tuple(
        dataclasses.replace(ix, driven_by=(edge,)) if ix.type_id == path else ix
        for ix in program.indexes
    ))
    edges = [(str(i), str(i + 1)) for i in range(6)] + [("5", "2")]
    facts = [("Edge", {"a": a, "b": b}) for a, b in edges]
    eager, economical = run(program, facts), run(lazy, facts)
    assert economical.to_json() == eager.to_json()
    assert economical.trace.to_jsonl() == eager.trace.to_jsonl()
    path_index = next(ix.id for ix in lazy.indexes if ix.type_id == path)
    assert economical.store.index_active[path_index] is False
    assert economical.store.indexes[path_index] == {}
    assert eager.store.indexes[path_index] != {}
