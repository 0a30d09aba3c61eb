"""Routing and the keyed fast path are optimisations, never semantics.

* **Routing by constants**: an agent whose pattern tests constant fields looks its new
  facts up in the index on those fields instead of scanning every new fact of the
  type. On random well-typed rulesets (``strategies.typed_rulesets``, whose patterns
  carry constants) and random facts, the program compiled with routing and the one
  compiled without (``compile_ruleset(route=False)``) give the same status, facts,
  conflicts and trace, byte for byte.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import run
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
