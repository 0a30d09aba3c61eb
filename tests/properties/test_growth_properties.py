"""Facts that arrive over many cycles reach every agent, against an independent oracle.

The routing, keyed and negation properties compare the engine with itself (routing on
and off, the fast path on and off, incremental negation and re-runs from scratch): a
bug in what they share — the runner deciding which agents run — passes them all. A
stray ``continue`` in ``runner._activations`` once made every agent that negates or
aggregates stop running on new facts after its first run, and none of them noticed.

Here one ruleset grows over ten cycles in each of two tiers and feeds, cycle after
cycle, a pattern routed by a constant (of every type: int, float with ``-0.0`` and
``0.0``, an int constant on a float field, str, bool, an enum, a date; the facts
also hold none there: the language has no none literal, ``k: none`` binds a variable), a
negation whose facts are pruned in early cycles (or never), a retraction cascade
(facts derived from the pruned ones), aggregates in a later tier, and keyed updates
in place (``highest``/``lowest``, the fast path). Its final context is computed
directly in Python from the input facts, and must be what the engine gives with every
executor, with routing on and off; the negating agent derives each match once.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import run
from converge_rules.engine.asyncio_executor import AsyncioExecutor
from converge_rules.engine.executors import ThreadExecutor, fork_available, processes_executor
from converge_rules.engine.result import RunResult
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Program

PROFILE = settings(deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow])

TOP = 9       # Step and Step2 grow from 0 to TOP, one per cycle
LONG = 1000   # a Block that is never pruned; every other one is by cycle 3

TEMPLATE = """\
ruleset growth
root "r" {{ max_cycles = 60 }}
enum Kind {{ red, green, blue }}
fact Step  {{ key n: int }}
fact Step2 {{ key n: int }}
fact Tag   {{ n: int, k: {type}? }}
fact Mark  {{ n: int, k: {type}? }}
fact Block {{ n: int, until: int }}
fact Held  {{ n: int }}
fact Out   {{ n: int }}
fact High  {{ key of: str, n: int }}
fact Low   {{ key of: str, n: int }}
fact Cnt   {{ key n: int, c: int, b: int, m: int }}
fact Free  {{ n: int }}
fact Direct {{ n: int }}
policy High {{ resolve by highest n }}
policy Low {{ resolve by lowest n }}
prune Block when age >= until
agent grow {{
  when Step(n) where n < {top}
  emit Step(n: n + 1)
}}
agent relay {{
  when Step(n) and Tag(n, k)
  emit Mark(n: n, k: k)
}}
agent pass {{
  when Mark(n, k: {const}) and not Block(n)
  emit Out(n: n)
}}
agent direct {{
  when Tag(n, k: {const}) and Step(n)
  emit Direct(n: n)
}}
agent held {{
  when Block(n) and Step(n)
  emit Held(n: n)
}}
agent high {{
  when Out(n)
  emit High(of: "x", n: n)
}}
agent low {{
  when Out(n)
  emit Low(of: "x", n: n)
}}
agent grow2 tier 2 {{
  when Step2(n) where n < {top}
  emit Step2(n: n + 1)
}}
agent cnt tier 2 {{
  when Step2(n)
  emit Cnt(n: n, c: count(Out(n: n)), b: count(Block(n: n)), m: count(Mark(n: n, k: {const})))
}}
agent free tier 2 {{
  when Step2(n) and not Held(n)
  emit Free(n: n)
}}
"""

# (field type, constant as written, the constant's value, values the facts take)
CASES: dict[str, tuple[str, str, Any, tuple[Any, ...]]] = {
    "int": ("int", "1", 1, (1, 2, 0, -1, None)),
    "float -0.0": ("float", "-0.0", -0.0, (0.0, -0.0, 1.0, 2.5, None)),
    "float 0.0": ("float", "0.0", 0.0, (-0.0, 0.5, None)),
    "int on float": ("float", "1", 1, (1.0, 1.5, 0.0, None)),
    "str": ("str", '"a"', "a", ("a", "A", "", "ab", None)),
    "bool true": ("bool", "true", True, (True, False, None)),
    "bool false": ("bool", "false", False, (True, False, None)),
    "enum": ("Kind", "Kind.red", "red", ("red", "green", "blue", None)),
    "bare enum": ("Kind", "blue", "blue", ("red", "blue", None)),
    "date": ("date", 'date("2024-02-29")', date(2024, 2, 29),
             (date(2024, 2, 29), date(2024, 3, 1), None)),
}


@cache
def program(case: str, route: bool = True) -> Program:
    type_, const, _, _ = CASES[case]
    text = TEMPLATE.format(type=type_, const=const, top=TOP)
    checked = check_file("growth.cvg", source=text)
    errors = [f"{d.span}: {d.message}" for d in checked.diagnostics if d.is_error]
    assert not errors, "\n".join(errors)
    return compile_ruleset(checked, route=route)


def _equal(a: Any, b: Any) -> bool:
    """The language's ``==`` on two values of one field type (none only equals none)."""
    return (a is None) == (b is None) and a == b


def expected(case: str, tags: list[tuple[int, Any]], blocks: list[tuple[int, int]]
             ) -> dict[str, list[dict[str, Any]]]:
    """The final context, from the inputs alone: every short Block is pruned while the
    first tier still grows, so only the long ones block and hold."""
    const = CASES[case][2]
    steps = range(TOP + 1)
    marks = {(n, k) for n, k in tags if n <= TOP}      # 0.0 and -0.0: one fact
    blocked = {n for n, until in blocks if until == LONG}
    out = sorted({n for n, k in marks if _equal(k, const)} - blocked)
    routed = Counter(n for n, k in marks if _equal(k, const))
    facts: dict[str, list[dict[str, Any]]] = {
        "Step": [{"n": n} for n in steps],
        "Step2": [{"n": n} for n in steps],
        "Out": [{"n": n} for n in out],
        "Held": [{"n": n} for n in sorted(blocked) if n <= TOP],
        "High": [{"of": "x", "n": max(out)}] if out else [],
        "Low": [{"of": "x", "n": min(out)}] if out else [],
        "Cnt": [{"n": n, "c": int(n in out), "b": int(n in blocked), "m": routed[n]}
                for n in steps],
        "Free": [{"n": n} for n in steps if n not in blocked],
        "Direct": [{"n": n} for n in sorted(routed)],
        "Block": sorted(({"n": n, "until": u} for n, u in set(blocks) if u == LONG),
                        key=lambda f: (f["n"], f["until"])),
    }
    return facts


def facts_of(tags: list[tuple[int, Any]], blocks: list[tuple[int, int]]
             ) -> list[tuple[str, dict[str, Any]]]:
    return ([("Step", {"n": 0}), ("Step2", {"n": 0})]
            + [("Tag", {"n": n, "k": k}) for n, k in tags]
            + [("Block", {"n": n, "until": u}) for n, u in blocks])


def check(result: RunResult, want: dict[str, list[dict[str, Any]]]) -> None:
    assert result.status == "converged", result.detail
    for name, facts in want.items():
        got = result.facts(name)
        assert _normal(got) == _normal(facts), name


def _normal(facts: list[dict[str, Any]]) -> list[str]:
    # -0.0 and 0.0 are one value: the engine keeps whichever came first
    return sorted(json.dumps({k: (0.0 if v == 0 and isinstance(v, float) else v)
                              for k, v in f.items()}, sort_keys=True, default=str)
                  for f in facts)


def once(result: RunResult, agent: str) -> None:
    """The agent derived each of its matches exactly once."""
    found: Counter[tuple[int, ...]] = Counter()
    for line in result.trace.lines():
        ev = json.loads(line)
        if ev["event"] in ("fact_added", "fact_supported") and ev["agent"] == agent:
            found[tuple(ev["support"])] += 1
    assert all(c == 1 for c in found.values()), found


@st.composite
def inputs(draw: st.DrawFn, case: str) -> tuple[list[tuple[int, Any]], list[tuple[int, int]]]:
    pool = CASES[case][3]
    tags = draw(st.lists(st.tuples(st.integers(0, TOP + 1), st.sampled_from(pool)),
                         min_size=1, max_size=14))
    blocks = draw(st.lists(st.tuples(st.integers(0, TOP + 1),
                                     st.sampled_from((0, 1, 2, 3, LONG))), max_size=6))
    return tags, blocks


@pytest.mark.parametrize("case", sorted(CASES))
@settings(PROFILE, max_examples=8)
@given(data=st.data())
def test_facts_of_every_cycle_reach_routed_negated_and_aggregated_patterns(
    case: str, data: st.DataObject
) -> None:
    tags, blocks = data.draw(inputs(case), label="inputs")
    want = expected(case, tags, blocks)
    facts = facts_of(tags, blocks)
    routed = run(program(case), facts, now=None)
    note(f"{routed.cycles} cycles")
    check(routed, want)
    once(routed, "pass")
    scanned = run(program(case, route=False), facts, now=None)
    assert scanned.trace.to_jsonl() == routed.trace.to_jsonl()
    threaded = run(program(case), facts, now=None, executor=ThreadExecutor(3))
    assert threaded.trace.to_jsonl() == routed.trace.to_jsonl()
    awaited = run(program(case), facts, now=None, executor=AsyncioExecutor(3))
    assert awaited.trace.to_jsonl() == routed.trace.to_jsonl()


@pytest.mark.skipif(not fork_available(), reason="the processes executor needs fork")
@pytest.mark.parametrize("case", ["float 0.0", "bare enum", "date"])
def test_replicas_see_facts_of_every_cycle(case: str) -> None:
    pool = CASES[case][3]
    tags = [(n, pool[n % len(pool)]) for n in range(TOP + 2)] + [(3, pool[0]), (7, pool[0])]
    blocks = [(0, 1), (3, 2), (4, LONG), (7, 3), (TOP, 0)]
    facts = facts_of(tags, blocks)
    serial = run(program(case), facts, now=None)
    check(serial, expected(case, tags, blocks))
    forked = run(program(case), facts, now=None, executor=processes_executor(2))
    check(forked, expected(case, tags, blocks))
    assert forked.trace.to_jsonl() == serial.trace.to_jsonl()


def test_the_plain_constants_are_routed() -> None:
    # else the property above would check the scan alone; a constant written as an
    # expression (-0.0, Kind.red, date("…")) is scanned for, which is only slower
    for case in ("int", "float 0.0", "int on float", "str", "bool true", "bool false",
                 "bare enum"):
        routed = {a.name for a in program(case).agents if "_delta(" in a.source}
        assert routed == {"pass", "direct"}, case
