"""Routing and the keyed fast path are optimisations, never semantics.

* **Routing by constants**: an agent whose pattern tests constant fields looks its new
  facts up in the index on those fields instead of scanning every new fact of the
  type. On random well-typed rulesets (``strategies.typed_rulesets``, whose patterns
  carry constants) and random facts, the program compiled with routing and the one
  compiled without (``compile_ruleset(route=False)``) give the same status, facts,
  conflicts and trace, byte for byte.
* **Keyed update in place**: a key with one candidate whose policy's first criterion
  decides it (``latest``, ``earliest``, a field, confidence) is merged without the
  general conflict path. On random keyed rulesets (several agents updating shared or
  own keys, every such criterion, ties, optional fields left empty), the run gives
  the same status, facts, conflicts and trace as the general path alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import run
from converge_rules.engine.keyed import KeyedMerge
from converge_rules.engine.result import RunResult
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Program
from tests.properties import strategies as S

PROFILE = settings(deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.data_too_large])


def _programs(text: str, **options: Any) -> Program:
    checked = check_file("generated.cvg", source=text)
    errors = [f"{d.span}: {d.message}" for d in checked.diagnostics if d.is_error]
    assert not errors, "\n".join(errors) + "\n" + text
    return compile_ruleset(checked, **options)


def _outcome(result: RunResult) -> tuple[Any, ...]:
    facts = {t.name: result.facts(t.name) for t in result.program.types}
    return (result.status, result.detail, result.cycles, facts, result.conflicts,
            result.trace.to_jsonl())


def _jsonish(facts: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(t, {k: list(v) if isinstance(v, tuple) else v for k, v in f.items()})
            for t, f in facts]


@settings(PROFILE, max_examples=120)
@given(st.data())
def test_routing_by_constants_changes_no_result_and_no_trace(data: st.DataObject) -> None:
    ruleset = data.draw(S.typed_rulesets(), label="ruleset")
    note(ruleset.text)
    routed = _programs(ruleset.text)
    scanned = _programs(ruleset.text, route=False)
    if any("_delta(" in a.source for a in routed.agents):
        event("an agent routes by constants")
    assert not any("_delta(" in a.source for a in scanned.agents)
    facts = _jsonish(data.draw(S.typed_facts(ruleset), label="facts"))
    assert _outcome(run(routed, facts)) == _outcome(run(scanned, facts))


@st.composite
def routed_rulesets(draw: st.DrawFn) -> str:
    """Agents over one type, each matching constant kinds and emitting other kinds, so
    a kind's bucket holds facts of earlier cycles when its agent runs again: the
    routed delta must skip exactly those. A prune (sometimes) makes facts leavable,
    which changes how the store keeps a bucket."""
    kinds = draw(st.integers(1, 3))
    out = ["ruleset routed", "", 'root "r" { max_cycles = 12 }', "",
           "fact Step { kind: str, n: int, flag: bool }", ""]
    if draw(st.booleans()):
        out += [f"prune Step when n > {draw(st.integers(2, 6))}", ""]
    for i in range(draw(st.integers(1, 4))):
        src, dst = (f"k{draw(st.integers(0, kinds - 1))}" for _ in range(2))
        flag = draw(st.sampled_from(("", ", flag: true", ", flag: false")))
        step = draw(st.sampled_from((1, 2)))
        other = ""
        if draw(st.integers(0, 2)) == 0:
            other = f' and Step(kind: "k{draw(st.integers(0, kinds - 1))}", n: m)'
        out += [f"agent a{i} {{", f'  when Step(kind: "{src}", n{flag}){other} where n < 5',
                f'  emit Step(kind: "{dst}", n: n + {step}, flag: n % 2 == 0)', "}"]
    return "\n".join(out) + "\n"


@settings(PROFILE, max_examples=150)
@given(text=routed_rulesets(),
       steps=st.lists(st.tuples(st.sampled_from(("k0", "k1", "k2")), st.integers(0, 3),
                                st.booleans()), min_size=1, max_size=6))
def test_routed_deltas_over_several_cycles_change_nothing(
    text: str, steps: list[tuple[str, int, bool]]
) -> None:
    note(text)
    routed = _programs(text)
    assert all("_delta(" in a.source for a in routed.agents)
    facts = [("Step", {"kind": k, "n": n, "flag": f}) for k, n, f in steps]
    a, b = run(routed, facts), run(_programs(text, route=False), facts)
    event(f"{a.cycles} cycles")
    assert _outcome(a) == _outcome(b)


def test_routing_is_used_and_agrees_on_many_agents() -> None:
    """The shape routing is for (many agents, each on one constant): routed, and the
    same trace as scanning."""
    from converge_rules.benchmarks import routing_readings, routing_ruleset

    text = routing_ruleset(12)
    routed = _programs(text)
    assert all("_delta(" in a.source for a in routed.agents)
    facts = [("Reading", {"kind": k, "value": v}) for k, v in routing_readings(15, 90)]
    a, b = run(routed, facts), run(_programs(text, route=False), facts)
    assert len(a.facts("Seen")) == 12
    assert _outcome(a) == _outcome(b)


# ------------------------------------------------------------- keyed fast path

CRITERIA = ("latest", "earliest", "highest n", "lowest n", "highest w", "lowest w",
            "highest confidence", "lowest confidence", "majority")


@st.composite
def keyed_rulesets(draw: st.DrawFn) -> str:
    keys = draw(st.integers(1, 3))
    criteria = draw(st.lists(st.sampled_from(CRITERIA), min_size=1, max_size=3, unique=True))
    tie = draw(st.sampled_from(("first", "latest", "reject")))
    out = ["ruleset keyed", "", 'root "r" { max_cycles = 12 }', "",
           "fact Count { key id: str, n: int, w: int? }", "fact Seed { id: str }",
           f"policy Count {{ resolve by {', '.join(criteria)}\n  on tie {tie} }}", ""]
    for i in range(draw(st.integers(1, 4))):
        key = f"c{draw(st.integers(0, keys - 1))}"
        step = draw(st.sampled_from((1, 2, -1)))
        # an optional field left out is none (there is no literal for it)
        w = draw(st.sampled_from(("", ", w: n", ", w: 0", ", w: n % 2")))
        conf = draw(st.sampled_from(("", " confidence 0.5", " confidence 0.9")))
        if draw(st.booleans()):
            out += [f"agent seed{i} {{", "  when Seed(id)",
                    f"  emit Count(id: id, n: {draw(st.integers(0, 3))}){conf}", "}"]
        out += [f"agent step{i} {{", f'  when Count(id: "{key}", n) where n < 6 and n > -4',
                f'  emit Count(id: "{key}", n: n + {step}{w}){conf}', "}"]
    return "\n".join(out) + "\n"


@settings(PROFILE, max_examples=150)
@given(text=keyed_rulesets(), seeds=st.lists(st.sampled_from(("c0", "c1", "c2")),
                                              max_size=3, unique=True),
       counts=st.lists(st.tuples(st.sampled_from(("c0", "c1", "c2")), st.integers(-2, 4)),
                       max_size=3, unique_by=lambda c: c[0]))
def test_keyed_fast_path_records_what_the_general_path_does(
    text: str, seeds: list[str], counts: list[tuple[str, int]]
) -> None:
    note(text)
    program = _programs(text)
    facts = [("Seed", {"id": s}) for s in seeds]
    facts += [("Count", {"id": k, "n": n, "w": None}) for k, n in counts]
    fast = run(program, facts)
    event(f"status {fast.status}")
    if fast.conflicts:
        event("conflicts")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(KeyedMerge, "_merge_one", lambda *args: None)
        patch.setattr(KeyedMerge, "fused", False)
        general = run(program, facts)
    assert _outcome(fast) == _outcome(general)
