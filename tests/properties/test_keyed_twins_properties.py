"""Adversarial checks of the keyed lane (``KeyedMerge.lane``, ``_fused_group``) where
it skips the general merge: a key whose several candidates propose one value (twin
agents, lasting or not), with a gate on the type, a ``combine`` policy, a float
field criterion whose values tie or are -0.0 / 0.0, a negating and a retracting
agent, a prune. The lane must give the same status, facts, conflicts and trace, byte for
byte, as the same runs merged as effects, and as the general keyed path."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import converge_rules
from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import executors, run
from converge_rules.engine.keyed import KeyedMerge
from converge_rules.engine.result import RunResult
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Program
from tests.store.test_checkpoints import check_resumes

PROFILE = settings(deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.data_too_large])

CRITERIA = ("latest", "highest n", "lowest n", "highest x", "lowest x", "earliest",
            "highest confidence")


@st.composite
def twin_rulesets(draw: st.DrawFn) -> str:
    combine = draw(st.integers(0, 4)) == 0
    criteria = list(dict.fromkeys(draw(st.lists(st.sampled_from(CRITERIA), min_size=1,
                                                max_size=2))))
    tie = draw(st.sampled_from(("first", "latest", "reject")))
    policy = ("policy Count { combine sum x }" if combine else
              f"policy Count {{ resolve by {', '.join(criteria)}\n  on tie {tie} }}")
    out = ["ruleset twins", "", 'root "r" { max_cycles = 12 }', "",
           "fact Count { key id: str, n: int, x: float }", "fact Seen { id: str, n: int }",
           "fact Seed { id: str }", "fact Lone { id: str }", policy, ""]
    if draw(st.integers(0, 3)) == 0:
        out += [f"approve Count when n > {draw(st.integers(1, 4))}", ""]
    for i in range(draw(st.integers(1, 4))):
        key = f"c{draw(st.integers(0, 1))}"
        step = draw(st.sampled_from((1, 1, 2)))
        x = draw(st.sampled_from(("0.0", "-0.0", "x", "x + 0.5", "x * -1.0", "1.0")))
        conf = draw(st.sampled_from(("", "", " confidence 0.5", " confidence 0.7")))
        lasting = draw(st.sampled_from(("", "lasting ", "lasting ")))
        twins = draw(st.integers(1, 3))  # agents proposing the one value alike
        for j in range(twins):
            c = conf if j == 0 or draw(st.booleans()) else ""
            out += [f"agent step{i}_{j} {{",
                    f'  when Count(id: "{key}", n, x) where n < 5',
                    f'  emit {lasting}Count(id: "{key}", n: n + {step}, x: {x}){c}', "}"]
    if draw(st.booleans()):  # derived from the counters: retracted when they change
        out += ["agent mirror {", "  when Count(id, n)", "  emit Seen(id: id, n: n)", "}"]
    if draw(st.booleans()):
        out += ["agent lonely tier 2 {", "  when Seed(id) and not Seen(id, n: 3)",
                "  emit Lone(id: id)", "}"]
    prune = draw(st.sampled_from(("", "", "prune Seen when age >= 1",
                                  "prune Count when n > 3 and age >= 1")))
    if prune:  # facts leave by age or value: the lane's keys and retractions meet it
        out += [prune]
    if draw(st.booleans()):  # a second proposer of a new key
        out += ["agent seed {", "  when Seed(id)", "  emit Count(id: id, n: 0, x: 0.0)", "}"]
    return "\n".join(out) + "\n"


def _program(text: str) -> Program:
    checked = check_file("generated.cvg", source=text)
    errors = [f"{d.span}: {d.message}" for d in checked.diagnostics if d.is_error]
    assert not errors, "\n".join(errors) + "\n" + text
    return compile_ruleset(checked)


def _outcome(result: RunResult) -> tuple[Any, ...]:
    facts = {t.name: [{k: repr(v) for k, v in f.items()} for f in result.facts(t.name)]
             for t in result.program.types}
    return (result.status, result.detail, result.cycles, facts, result.conflicts,
            result.pending, result.trace.to_jsonl())


@settings(PROFILE, max_examples=300)
@given(text=twin_rulesets(),
       seeds=st.lists(st.sampled_from(("c0", "c1", "c2")), max_size=2, unique=True),
       counts=st.lists(st.tuples(st.sampled_from(("c0", "c1")), st.integers(-1, 3),
                                 st.sampled_from((0.0, -0.0, 1.5))),
                       min_size=1, max_size=2, unique_by=lambda c: c[0]))
def test_twin_candidates_merge_alike_on_every_path(
    text: str, seeds: list[str], counts: list[tuple[str, int, float]]
) -> None:
    note(text)
    program = _program(text)
    facts: list[tuple[str, dict[str, Any]]] = [("Seed", {"id": s}) for s in seeds]
    facts += [("Count", {"id": k, "n": n, "x": x}) for k, n, x in counts]
    lane = run(program, facts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(executors, "_run_columns", lambda agents, acts, view, tools:
                      executors._run_serially(agents, acts, view, tools))
        effects = run(program, facts)
        patch.setattr(KeyedMerge, "fused", False)
        unfused = run(program, facts)
        patch.setattr(KeyedMerge, "_merge_one", lambda *args: None)
        general = run(program, facts)
    assert _outcome(lane) == _outcome(effects)
    assert _outcome(lane) == _outcome(unfused)
    assert _outcome(lane) == _outcome(general)


@settings(PROFILE, max_examples=40)
@given(text=twin_rulesets(),
       counts=st.lists(st.tuples(st.sampled_from(("c0", "c1")), st.integers(-1, 3),
                                 st.sampled_from((0.0, -0.0, 1.5))),
                       min_size=1, max_size=2, unique_by=lambda c: c[0]))
def test_twin_candidates_resume_from_checkpoints_as_the_whole_run(
    text: str, counts: list[tuple[str, int, float]]
) -> None:
    """Stopped after any cycle and resumed from its checkpoints (format 3), the job
    equals the whole run, -0.0 and 0.0 kept apart."""
    note(text)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "twins.cvg"
        path.write_text(text, encoding="utf-8")
        facts = [("Count", {"id": k, "n": n, "x": x}) for k, n, x in counts]
        check_resumes(converge_rules.load(path), facts,
                      lambda k: str(Path(tmp) / f"run{k}.db"), now=None)


def _chain(types: int) -> str:
    """``types`` fact types, each derived from the one before, the last also from the
    first at once: every type id is used, the largest from cycle 1."""
    out = ["ruleset many", "", 'root "r" { max_cycles = 200 }',
           "fact T0 { key id: int, n: int }", "policy T0 { resolve by latest }"]
    out += [f"fact T{i} {{ id: int, n: int }}" for i in range(1, types)]
    out += ["agent step { when T0(id, n) where n < 3 emit T0(id: id, n: n + 1) }"]
    out += [f"agent a{i} {{ when T{i - 1}(id, n) emit T{i}(id: id, n: n) }}"
            for i in range(1, types)]
    # (the last type early too: the checkpoints of most cycles hold its id)
    out += [f"agent last {{ when T0(id, n) where n == 0 "
            f"emit lasting T{types - 1}(id: id, n: -1) }}"]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("types", [91, 92, 93])
def test_a_program_of_as_many_types_as_type_chars_resumes(types: int) -> None:
    """The facts' types are written as characters up to len(TYPE_CHARS) types, as ids
    beyond: on either side of that bound a resumed job equals the whole run."""
    from converge_rules.engine.checkpoints import TYPE_CHARS

    assert len(TYPE_CHARS) == 92
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.cvg"
        path.write_text(_chain(types), encoding="utf-8")
        facts = [("T0", {"id": i, "n": 0}) for i in range(2)]
        assert check_resumes(converge_rules.load(path), facts,
                             lambda k: str(Path(tmp) / f"run{k}.db"), now=None,
                             stops=iter((1, 2, 60))) == 3


@settings(PROFILE, max_examples=100)
@given(ids=st.lists(st.integers(0, 91), max_size=300), cut=st.integers(0, 300))
def test_types_as_characters_read_back_as_written(ids: list[int], cut: int) -> None:
    """Every type id a program of len(TYPE_CHARS) types has survives the checkpoint's
    string of characters through JSON, whole or as two slices joined (the kept texts
    of a growing context)."""
    import json
    from array import array

    from converge_rules.engine.checkpoints import _joined, _type_ids, _types

    type_of = array("i", ids)
    text = json.dumps(_types(type_of, True))
    assert _type_ids(json.loads(text)) == type_of
    parts = [json.dumps(_types(type_of[:cut], True)), json.dumps(_types(type_of[cut:], True))]
    assert _type_ids(json.loads(_joined(parts))) == type_of


def _session_outcome(program: Program, first: list[tuple[str, dict[str, Any]]],
                     later: list[tuple[str, dict[str, Any]]], seeds: list[str]) -> Any:
    """A session's three runs: the first facts, later counters added, the seeds
    retracted; each run's outcome."""
    from converge_rules.engine.session import Session
    from converge_rules.errors import SessionError

    outcomes = []
    with Session(program, first, now=None) as session:
        try:
            outcomes.append(_outcome(session.run()))
            session.add(later)
            outcomes.append(_outcome(session.run()))
            if seeds:
                session.retract([("Seed", {"id": s}) for s in seeds])
                outcomes.append(_outcome(session.run()))
        except SessionError as exc:  # the job ended (a conflict): it cannot go on
            outcomes.append(str(exc))
    return outcomes


@settings(PROFILE, max_examples=100)
@given(text=twin_rulesets(),
       seeds=st.lists(st.sampled_from(("c0", "c1", "c2")), max_size=2, unique=True),
       counts=st.lists(st.tuples(st.sampled_from(("c0", "c1")), st.integers(-1, 3),
                                 st.sampled_from((0.0, -0.0, 1.5))),
                       min_size=1, max_size=2, unique_by=lambda c: c[0]),
       later=st.lists(st.tuples(st.sampled_from(("c0", "c1", "c2")), st.integers(-1, 3),
                                st.sampled_from((0.0, -0.0, 2.5))),
                      max_size=2, unique_by=lambda c: c[0]))
def test_twin_candidates_in_a_session_merge_alike_on_every_path(
    text: str, seeds: list[str], counts: list[tuple[str, int, float]],
    later: list[tuple[str, int, float]],
) -> None:
    """As above, over a session's runs: later counters merged against the keys' values
    (the lane's key table), then the seeds retracted."""
    note(text)
    program = _program(text)
    first: list[tuple[str, dict[str, Any]]] = [("Seed", {"id": s}) for s in seeds]
    first += [("Count", {"id": k, "n": n, "x": x}) for k, n, x in counts]
    more = [("Count", {"id": k, "n": n, "x": x}) for k, n, x in later]
    lane = _session_outcome(program, first, more, seeds)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(executors, "_run_columns", lambda agents, acts, view, tools:
                      executors._run_serially(agents, acts, view, tools))
        assert _session_outcome(program, first, more, seeds) == lane
        patch.setattr(KeyedMerge, "fused", False)
        patch.setattr(KeyedMerge, "_merge_one", lambda *args: None)
        assert _session_outcome(program, first, more, seeds) == lane


@settings(PROFILE, max_examples=150)
@given(text=twin_rulesets(),
       counts=st.lists(st.tuples(st.sampled_from(("c0", "c1")), st.integers(-1, 3),
                                 st.sampled_from((0.0, -0.0, 1.5))),
                       min_size=1, max_size=2, unique_by=lambda c: c[0]))
def test_a_gate_that_never_holds_changes_nothing(
    text: str, counts: list[tuple[str, int, float]]
) -> None:
    """A gated type is merged on the general path (the lane and the fused updates
    leave it alone): with a gate no value reaches, the run is the ungated one, trace
    and all."""
    if "approve" in text:
        text = "\n".join(t for t in text.splitlines() if not t.startswith("approve")) + "\n"
    note(text)
    facts = [("Count", {"id": k, "n": n, "x": x}) for k, n, x in counts]
    ungated = _outcome(run(_program(text), facts))
    gated = _outcome(run(_program(text + "approve Count when n > 1000\n"), facts))
    assert gated == ungated
