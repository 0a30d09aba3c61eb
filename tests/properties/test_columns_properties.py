"""Columnar outputs are a representation, never semantics.

An agent whose outputs are all plain ``emit``s of one unkeyed, non-intent type returns
them as :class:`~converge_rules.program.Columns` (values in one list, support ids flat
in an int array); the merge takes them whole and the trace reads their ids back from
the store. The same program with every agent's outputs turned back into a list of
output tuples (what agents returned before) must give the same status, facts,
conflicts and trace, byte for byte: on random well-typed rulesets and facts, on the
closure (facts only grow: the columnar fast path), and with a prune (facts may leave:
columns go through the general merge path).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from converge_rules.benchmarks import CLOSURE_RULESET, random_graph
from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import run
from converge_rules.engine.processes import ProcessExecutor
from converge_rules.engine.result import RunResult
from converge_rules.language.checks.checker import check_file
from converge_rules.program import AgentFn, AgentSpec, Columns, Program
from tests.properties import strategies as S

PROFILE = settings(deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.data_too_large])


def _program(text: str) -> Program:
    checked = check_file("generated.cvg", source=text)
    errors = [f"{d.span}: {d.message}" for d in checked.diagnostics if d.is_error]
    assert not errors, "\n".join(errors) + "\n" + text
    return compile_ruleset(checked)


def _as_tuples(fn: AgentFn) -> AgentFn:
    def agent(*args: Any) -> Any:
        out = fn(*args)  # type: ignore[call-arg]
        return list(out) if type(out) is Columns else out
    return agent  # type: ignore[return-value]


def _tuples(program: Program) -> Program:
    """The same program, every agent returning a list of output tuples."""
    agents: tuple[AgentSpec, ...] = tuple(
        dataclasses.replace(a, fn=_as_tuples(a.fn)) for a in program.agents)
    return dataclasses.replace(program, agents=agents)


def _columnar(program: Program) -> list[str]:
    return [a.name for a in program.agents if "_columns(" in a.source]


def _outcome(result: RunResult) -> tuple[Any, ...]:
    facts = {t.name: result.facts(t.name) for t in result.program.types}
    return (result.status, result.detail, result.cycles, facts, result.conflicts,
            result.trace.to_jsonl())


def _jsonish(facts: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(t, {k: list(v) if isinstance(v, tuple) else v for k, v in f.items()})
            for t, f in facts]


@settings(PROFILE, max_examples=150)
@given(st.data())
def test_columnar_outputs_change_no_result_and_no_trace(data: st.DataObject) -> None:
    ruleset = data.draw(S.typed_rulesets(), label="ruleset")
    note(ruleset.text)
    program = _program(ruleset.text)
    if _columnar(program):
        event("an agent returns columns")
    facts = _jsonish(data.draw(S.typed_facts(ruleset), label="facts"))
    assert _outcome(run(program, facts)) == _outcome(run(_tuples(program), facts))


@settings(PROFILE, max_examples=25)
@given(nodes=st.integers(2, 30), edges=st.integers(1, 60), seed=st.integers(0, 99),
       prune=st.booleans())
def test_closure_in_columns_is_the_closure_in_tuples(
    nodes: int, edges: int, seed: int, prune: bool
) -> None:
    text = CLOSURE_RULESET
    if prune:  # facts may leave: the store records derivations, columns go the long way
        text += "\nprune Path when src == dst\n"
    program = _program(text)
    assert _columnar(program) == ["base", "step"]
    pairs = random_graph(nodes, min(edges, nodes * (nodes - 1)), seed)
    facts = [("Edge", {"src": a, "dst": b}) for a, b in pairs]
    assert _outcome(run(program, facts)) == _outcome(run(_tuples(program), facts))


def test_columns_cross_process_boundaries() -> None:
    """The processes executor's workers return columns pickled: the same run."""
    program = _program(CLOSURE_RULESET)
    facts = [("Edge", {"src": a, "dst": b}) for a, b in random_graph(12, 30, 3)]
    serial = run(program, facts)
    forked = run(program, facts, executor=ProcessExecutor(2))
    assert _outcome(serial) == _outcome(forked)
    assert len(serial.facts("Path")) > 30



@settings(PROFILE, max_examples=25)
@given(edges=st.lists(st.tuples(st.integers(-3, 9),
                                st.sampled_from([0, 1, 5, 40_000, -2**40])),
                      min_size=1, max_size=14),
       prune=st.booleans())
def test_a_stored_closure_in_columns_reads_back_as_its_trace(
    edges: list[tuple[int, int]], prune: bool,
) -> None:
    """A job store keeps a batch of columns whose outputs were all new facts without
    their ids (tracerows ``_fresh``), ints as narrow as they fit: graphs with cycles
    and shared nodes give batches of both kinds, ints of every width, and the stored
    trace is the ``--trace`` one all the same."""
    import tempfile
    from pathlib import Path

    import converge_rules
    from converge_rules import api
    from converge_rules.store.sqlite import SqliteStore

    text = CLOSURE_RULESET + ("\nprune Path when src == dst\n" if prune else "")
    program = converge_rules.loads(text, plugins=False)
    facts = [("Edge", {"src": a, "dst": a + b}) for a, b in edges]
    traced = list(api.run(program, facts, now=None).trace.lines())
    with tempfile.TemporaryDirectory() as tmp:
        api.run(program, facts, store=Path(tmp) / "s.db", now=None)
        with SqliteStore(Path(tmp) / "s.db") as store:
            assert list(store.trace_lines(store.jobs()[-1].id)) == traced
