"""Session: facts that arrive over time — add, retract, run incrementally, one trace."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

import converge_rules
from converge_rules import InputError, Session, SessionError
from converge_rules.engine.executors import ThreadExecutor, fork_available, processes_executor

NOW = datetime(2026, 1, 1, tzinfo=UTC)

CLOSURE = """ruleset closure "reachability, and a count of edges per source"

fact Edge  { a: str, b: str }
fact Path  { a: str, b: str }
fact Note  { text: str }
fact Seen  { text: str }

agent base {
  when Edge(a, b)
  emit Path(a: a, b: b)
}

agent step {
  when Path(a, b) and Edge(a: b, b: c)
  emit Path(a: a, b: c)
}

agent echo {
  when Note(text)
  emit Seen(text: text)
}
"""

READINGS = """ruleset readings "the newest reading of a sensor wins"

fact Reading {{ key sensor: str, value: float }}
fact Alarm   {{ sensor: str }}

agent alarm {{
  when Reading(sensor, value) where value > 10.0
  emit Alarm(sensor: sensor)
}}

policy Reading {{ {policy} }}
"""


def edges(*pairs: str) -> list[tuple[str, dict[str, Any]]]:
    return [("Edge", {"a": p[0], "b": p[1]}) for p in pairs]


@pytest.fixture(scope="module")
def closure() -> converge_rules.Ruleset:
    return converge_rules.loads(CLOSURE, plugins=False)


def trace_events(session: Session) -> list[dict[str, Any]]:
    assert session.trace is not None
    return [json.loads(line) for line in session.trace.bare_lines()]


def test_facts_added_batch_by_batch_end_as_one_run_over_all(closure: Any) -> None:
    with Session(closure, edges("ab"), now=NOW) as session:
        assert session.run().status == "converged"
        session.add(edges("bc"))
        session.add(edges("cd"))
        result = session.run()
    whole = converge_rules.run(closure, edges("ab", "bc", "cd"), now=NOW)
    assert result.status == "converged"
    assert result.facts("Path") == whole.facts("Path")
    assert len(result.facts("Path")) == 6


def test_a_later_run_only_runs_the_agents_with_something_new(closure: Any) -> None:
    with Session(closure, [*edges("ab"), ("Note", {"text": "hi"})], now=NOW) as session:
        session.run()
        before = len(trace_events(session))
        session.add(edges("bc"))
        session.run()
        later = trace_events(session)[before:]
    ran = {a for e in later if e["event"] == "cycle_start" for a in e["agents"]}
    assert ran == {"base", "step"}  # echo has nothing new: it does not run
    # semi-naive: the old path a→b is not derived again, only what involves b→c
    added = [(e["fields"]["a"], e["fields"]["b"]) for e in later
             if e["event"] == "fact_added" and e["type"] == "Path"]
    assert added == [("b", "c"), ("a", "c")]
    assert not [e for e in later if e["event"] == "fact_supported"]


def test_the_trace_goes_on_and_new_inputs_are_events_of_their_cycle(closure: Any) -> None:
    with Session(closure, edges("ab"), now=NOW) as session:
        first = session.run()
        session.add(edges("bc"))
        second = session.run()
        events = trace_events(session)
    assert second.cycles > first.cycles
    cycles = [e["cycle"] for e in events if e["event"] == "cycle_start"]
    assert cycles == sorted(cycles) and len(set(cycles)) == len(cycles)
    entered = first.cycles + 1  # the inputs' own cycle, no agent runs in it
    assert {"event": "cycle_start", "cycle": entered, "tier": 1, "agents": []} in events
    [late] = [e for e in events if e["event"] == "fact_added" and e["type"] == "Edge"
              and e["fields"] == {"a": "b", "b": "c"}]
    assert late["agent"] is None and late["cycle"] == entered and late["support"] == []
    assert [e["status"] for e in events if e["event"] == "status"] == ["converged"] * 2


def test_retracting_an_input_takes_what_rests_on_it_only(closure: Any) -> None:
    with Session(closure, edges("ab", "bc", "ac"), now=NOW) as session:
        session.run()
        assert session.retract(("Edge", {"a": "a", "b": "b"})) == 1
        result = session.run()
        events = trace_events(session)
        assert list(session.trace.bare_lines()) == list(session.trace.model_lines())
    # a→c stays: it is also an input edge; a→b goes, and nothing else rested on it only
    assert result.facts("Path") == [{"a": "a", "b": "c"}, {"a": "b", "b": "c"}]
    assert result.facts("Path") == converge_rules.run(
        closure, edges("bc", "ac"), now=NOW).facts("Path")
    [gone] = [e for e in events if e["event"] == "input_retracted"]
    assert gone["fields"] == {"a": "a", "b": "b"} and gone["type"] == "Edge"
    assert [e["fields"] for e in events if e["event"] == "retracted"] == [{"a": "a", "b": "b"}]


def test_a_pattern_retracts_every_input_fact_it_matches(closure: Any) -> None:
    with Session(closure, edges("ab", "ac", "bc"), now=NOW) as session:
        session.run()
        session.add(edges("ad"))  # not run yet: dropped from the queue
        assert session.retract([("Edge", {"a": "a"})]) == 3
        result = session.run()
    assert result.facts("Edge") == [{"a": "b", "b": "c"}]
    assert result.facts("Path") == [{"a": "b", "b": "c"}]


def test_an_input_that_is_also_derived_stays_when_its_derivation_goes(closure: Any) -> None:
    # Path(a, c) is derived from a→b→c and later also given as input: retracting a→b
    # must not retract it (it is an input now)
    with Session(closure, edges("ab", "bc"), now=NOW) as session:
        session.run()
        session.add([("Path", {"a": "a", "b": "c"})])
        session.run()
        session.retract(("Edge", {"a": "a", "b": "b"}))
        result = session.run()
    assert {"a": "a", "b": "c"} in result.facts("Path")


def test_retract_refuses_what_it_cannot_take_back(closure: Any) -> None:
    with Session(closure, edges("ab"), now=NOW) as session:
        session.run()
        with pytest.raises(InputError, match="no fact type 'Edges'") as bad_type:
            session.retract(("Edges", {"a": "a"}))
        assert "Edge, Path" in str(bad_type.value)
        with pytest.raises(InputError, match="Edge has no field 'from'"):
            session.retract(("Edge", {"from": "a"}))
        with pytest.raises(InputError, match=r"no input fact matches Path\(a: 'a'\) "
                           r"\(it matches 1 derived fact"):
            session.retract(("Path", {"a": "a"}))
        with pytest.raises(InputError, match=r"expected a \(type name, fields\) pattern"):
            session.retract(["Edge"])  # type: ignore[list-item]
        # found: a text was read as a list of patterns, one a character ("got 'E'")
        with pytest.raises(InputError, match=r"pattern, got the text 'Edge\(a: \"a\"\)'"):
            session.retract('Edge(a: "a")')  # type: ignore[arg-type]
        # found: a fact as JSON Lines writes it was read by its keys ("got the text
        # 'Edge'"), and None was "TypeError: 'NoneType' object is not iterable"
        with pytest.raises(InputError, match=r"got the mapping \{'Edge': …\}\n"
                                             r"  help: write \('Edge', \{…\}\) for"):
            session.retract({"Edge": {"a": "a"}})  # type: ignore[arg-type]
        for nothing in (None, 5):
            with pytest.raises(InputError, match=f"pattern, got {nothing}"):
                session.retract(nothing)  # type: ignore[arg-type]
        # all or nothing: the second pattern matches nothing, so a→b stays
        with pytest.raises(InputError, match="no input fact matches"):
            session.retract([("Edge", {"a": "a"}), ("Edge", {"a": "z"})])
        assert session.run().facts("Edge") == [{"a": "a", "b": "b"}]
    with Session(closure, edges("ab"), now=NOW, retract=False) as lean:
        lean.run()
        with pytest.raises(SessionError, match="retract=True"):
            lean.retract(("Edge", {"a": "a"}))


def test_bad_facts_are_refused_when_added(closure: Any) -> None:
    with Session(closure, now=NOW) as session:
        with pytest.raises(InputError, match="Edge"):
            session.add([("Edge", {"a": "a"})])
        assert session.run().facts("Edge") == []  # nothing was queued


def test_of_two_inputs_for_one_key_the_later_add_is_the_latest() -> None:
    ruleset = converge_rules.loads(READINGS.format(policy="resolve by latest"),
                                   plugins=False)
    with Session(ruleset, [("Reading", {"sensor": "s1", "value": 12.0})],
                 now=NOW) as session:
        assert session.run().facts("Alarm") == [{"sensor": "s1"}]
        session.add([("Reading", {"sensor": "s1", "value": 3.0})])
        result = session.run()
        assert result.facts("Reading") == [{"sensor": "s1", "value": 3.0}]
        # the alarm rested on the replaced reading: it left with it
        assert result.facts("Alarm") == []
        session.add([("Reading", {"sensor": "s1", "value": 20.0}),
                     ("Reading", {"sensor": "s1", "value": 5.0})])
        result = session.run()
    assert result.facts("Reading") == [{"sensor": "s1", "value": 5.0}]
    assert result.conflicts[-1]["reason"] == "resolve by latest"


def test_a_job_that_ended_in_a_conflict_cannot_go_on() -> None:
    ruleset = converge_rules.loads(READINGS.format(policy="reject"), plugins=False)
    with Session(ruleset, [("Reading", {"sensor": "s1", "value": 1.0})],
                 now=NOW) as session:
        assert session.run().status == "converged"
        session.add([("Reading", {"sensor": "s1", "value": 2.0})])
        assert session.run().status == "conflict"
        with pytest.raises(SessionError, match="ended with status conflict"):
            session.add([("Reading", {"sensor": "s2", "value": 2.0})])
        with pytest.raises(SessionError, match="start a new Session"):
            session.run()
    with pytest.raises(SessionError, match="closed"):
        session.run()


@pytest.mark.parametrize("executor", [
    "threads",
    pytest.param("processes", marks=pytest.mark.skipif(not fork_available(),
                                                        reason="needs fork")),
])
def test_a_session_traces_the_same_on_every_executor(closure: Any, executor: str) -> None:
    def script(exe: Any) -> tuple[str, list[dict[str, Any]]]:
        with Session(closure, edges("ab", "bc"), executor=exe, now=NOW) as session:
            session.run()
            session.add(edges("cd", "da"))
            session.run()
            session.retract(("Edge", {"a": "b"}))
            result = session.run()
            assert session.trace is not None
            return session.trace.to_jsonl(), result.facts("Path")

    serial = script(None)
    other = script(ThreadExecutor(4) if executor == "threads" else processes_executor(2))
    assert other == serial


@pytest.mark.parametrize("executor", [
    "threads",
    pytest.param("processes", marks=pytest.mark.skipif(not fork_available(),
                                                        reason="needs fork")),
])
def test_a_retraction_through_a_cycle_traces_the_same_on_every_executor(
    closure: Any, executor: str,
) -> None:
    # Path(a, b) rests on Edge(a, b) and on itself (+ Edge(b, b)); Path(c, b) on
    # Path(c, a) + Edge(a, b) and on itself: both leave with Edge(a, b)
    def script(exe: Any) -> tuple[str, list[dict[str, Any]]]:
        with Session(closure, edges("ab", "bb", "ca"), executor=exe, now=NOW) as session:
            session.run()
            session.retract(("Edge", {"a": "a", "b": "b"}))
            result = session.run()
            assert session.trace is not None
            return session.trace.to_jsonl(), result.facts("Path")

    serial = script(None)
    assert serial[1] == [{"a": "b", "b": "b"}, {"a": "c", "b": "a"}]
    other = script(ThreadExecutor(4) if executor == "threads" else processes_executor(2))
    assert other == serial


def test_a_session_goes_on_with_a_job_already_started(closure: Any) -> None:
    """What resuming a checkpointed job with more facts builds on: Session.of_job."""
    from converge_rules.engine.executors import SerialExecutor
    from converge_rules.engine.inputs import validate_pairs
    from converge_rules.engine.runner import _Job

    job = _Job(closure.program, validate_pairs(closure.program, edges("ab")),
               SerialExecutor(), None, None, now=NOW)
    job.start()
    assert job.converge(last=False).status == "converged"
    with Session.of_job(job) as session:
        session.add(edges("bc"))
        result = session.run()
        # the job kept no derivations (nothing in this ruleset removes facts)
        with pytest.raises(SessionError, match="cannot retract"):
            session.retract(("Edge", {"a": "a"}))
    assert result.facts("Path") == converge_rules.run(
        closure, edges("ab", "bc"), now=NOW).facts("Path")
    with pytest.raises(SessionError, match="keeps no derivations"):
        Session.of_job(job, retract=True)


def test_an_interrupted_run_goes_on_at_the_next_run(closure: Any) -> None:
    asked = iter([False, True])
    with Session(closure, edges("ab", "bc", "cd"), now=NOW,
                 stop=lambda: next(asked, False)) as session:
        assert session.run().status == "interrupted"
        result = session.run()
    assert result.status == "converged"
    assert result.facts("Path") == converge_rules.run(
        closure, edges("ab", "bc", "cd"), now=NOW).facts("Path")


def test_a_session_runs_a_compiled_program_too(closure: Any) -> None:
    with Session(closure.program, edges("ab"), now=NOW) as session:
        session.run()
        session.add(edges("bc"))
        assert {"a": "a", "b": "c"} in session.run().facts("Path")
    with pytest.raises(TypeError, match="executor name needs"):
        Session(closure.program, executor="threads")
