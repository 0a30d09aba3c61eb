"""Merging a cycle's plain columns at once (``Merger._merge_columns``: a batch per
run of one type, each run's first new id found by bisection, reached straight from
the serial executor's ``RunOutputs``), and codegen's constant-emit loops written as
list extensions, are optimisations, never semantics. On random rulesets of many
agents routed by a constant (``when Reading(kind: "k1", value)``), emitting constant
tuples (-0.0 beside 0.0, equal outputs of several agents, facts equal to live ones)
or values, over readings whose ids interleave across cycles, a run gives the same
status, facts (by repr), conflicts and trace, byte for byte, as: every effect merged
one by one (``_merge_plain``), the thread executor, and the program compiled without
routing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import run
from converge_rules.engine.executors import ThreadExecutor
from converge_rules.engine.merge import Merger
from converge_rules.engine.result import RunResult
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Program

PROFILE = settings(deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.data_too_large])

EMITS = ('Seen(kind: "k0", x: 0.0)', 'Seen(kind: "k0", x: -0.0)', 'Seen(kind: "k1", x: 1.0)',
         'Seen(kind: "k2", x: 0.0)', 'Seen(kind: "k0", x: value * 0.0)',
         'Mark(kind: "k2", on: true)', 'Mark(kind: "k1", on: value > 1)',
         'Reading(kind: "k2", value: 9)', 'Reading(kind: "k1", value: value + 1)')


@st.composite
def plain_rulesets(draw: st.DrawFn) -> str:
    out = ["ruleset plain", "", 'root "r" { max_cycles = 10 }', "",
           "fact Reading { kind: str, value: int }", "fact Seen { kind: str, x: float }",
           "fact Mark { kind: str, on: bool }", "",
           # new readings each cycle: a kind's ids interleave with others' across cycles
           "agent grow {", '  when Reading(kind: "k0", value) where value < 4',
           '  emit Reading(kind: "k0", value: value + 1)', "}"]
    for i in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(("k0", "k1", "k2")))
        where = draw(st.sampled_from(("", "", " where value < 3", " where value >= 1")))
        emits = draw(st.lists(st.sampled_from(EMITS), min_size=1, max_size=2))
        out += [f"agent a{i} {{", f'  when Reading(kind: "{kind}", value){where}',
                *[f"  emit {e}" for e in emits], "}"]
    return "\n".join(out) + "\n"


def _program(text: str, **options: Any) -> Program:
    checked = check_file("generated.cvg", source=text)
    errors = [f"{d.span}: {d.message}" for d in checked.diagnostics if d.is_error]
    assert not errors, "\n".join(errors) + "\n" + text
    return compile_ruleset(checked, **options)


def _outcome(result: RunResult) -> tuple[Any, ...]:
    facts = {t.name: [{k: repr(v) for k, v in f.items()} for f in result.facts(t.name)]
             for t in result.program.types}
    return (result.status, result.detail, result.cycles, facts, result.conflicts,
            result.trace.to_jsonl())


@settings(PROFILE, max_examples=200)
@given(text=plain_rulesets(),
       readings=st.lists(st.tuples(st.sampled_from(("k0", "k1", "k2")), st.integers(0, 3)),
                         max_size=6),
       seen=st.lists(st.sampled_from((("k0", 0.0), ("k0", -0.0), ("k1", 1.0))), max_size=2))
def test_plain_columns_merge_as_one_by_one(
    text: str, readings: list[tuple[str, int]], seen: list[tuple[str, float]]
) -> None:
    note(text)
    program = _program(text)
    facts: list[tuple[str, dict[str, Any]]] = [("Reading", {"kind": "k0", "value": 0})]
    facts += [("Reading", {"kind": k, "value": v}) for k, v in readings]
    facts += [("Seen", {"kind": k, "x": x}) for k, x in seen]
    whole = _outcome(run(program, facts))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Merger, "_columns_only", lambda self, positions, outputs: False)
        assert _outcome(run(program, facts)) == whole
    assert _outcome(run(program, facts, executor=ThreadExecutor(2))) == whole
    assert _outcome(run(_program(text, route=False), facts)) == whole
