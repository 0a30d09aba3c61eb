"""`converge replay` replays a session's trace run by run: its later inputs, the
conflicts among them and its retractions come from the trace."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

import converge_rules
from converge_rules import Session
from converge_rules.cli import main

READINGS = """ruleset readings "the newest reading of a sensor wins"

fact Reading { key sensor: str, value: float }
fact Alarm   { sensor: str }
fact Note    { text: str }

agent alarm {
  when Reading(sensor, value) where value > 10.0
  emit Alarm(sensor: sensor)
}

policy Reading { resolve by latest }
"""


def test_a_session_trace_replays_identically(tmp_path: Path) -> None:
    ruleset_path = tmp_path / "readings.cvg"
    ruleset_path.write_text(READINGS, encoding="utf-8")
    ruleset = converge_rules.load(ruleset_path, plugins=False)
    with Session(ruleset, [("Reading", {"sensor": "s1", "value": 12.0})],
                 now=datetime(2026, 1, 1, tzinfo=UTC)) as session:
        session.run()
        session.add([("Reading", {"sensor": "s1", "value": 30.0}),
                     ("Reading", {"sensor": "s1", "value": 11.0}),
                     ("Reading", {"sensor": "s2", "value": 50.0}),
                     ("Note", {"text": "a"})])
        session.run()
        session.retract([("Reading", {"sensor": "s2"}), ("Note", {"text": "a"})])
        session.add([("Note", {"text": "b"})])
        result = session.run()
        assert session.trace is not None
        trace = tmp_path / "session.jsonl"
        trace.write_text(session.trace.to_jsonl(), encoding="utf-8")
    assert result.facts("Reading") == [{"sensor": "s1", "value": 11.0}]
    assert len(result.conflicts) == 1
    out = CliRunner().invoke(main, ["replay", str(ruleset_path), str(trace), "--no-plugins"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("identical:")
    # and a change to the ruleset is found where it shows
    ruleset_path.write_text(READINGS.replace("> 10.0", "> 20.0"), encoding="utf-8")
    out = CliRunner().invoke(main, ["replay", str(ruleset_path), str(trace), "--no-plugins"])
    assert out.exit_code == 1 and "differs at line" in out.output


CLOSURE = """ruleset closure "reachability"
fact Edge { a: int, b: int }
fact Path { a: int, b: int }
agent base {
  when Edge(a, b)
  emit Path(a: a, b: b)
}
agent step {
  when Path(a, b) and Edge(a: b, b: c)
  emit Path(a: a, b: c)
}
"""


def test_a_session_trace_with_a_retraction_through_a_cycle_replays_identically(
    tmp_path: Path,
) -> None:
    ruleset_path = tmp_path / "closure.cvg"
    ruleset_path.write_text(CLOSURE, encoding="utf-8")
    ruleset = converge_rules.load(ruleset_path, plugins=False)
    with Session(ruleset, [("Edge", {"a": 0, "b": 1}), ("Edge", {"a": 1, "b": 1})],
                 now=datetime(2026, 1, 1, tzinfo=UTC)) as session:
        session.run()
        session.retract(("Edge", {"a": 0, "b": 1}))
        result = session.run()
        assert session.trace is not None
        trace = tmp_path / "session.jsonl"
        trace.write_text(session.trace.to_jsonl(), encoding="utf-8")
    assert result.facts("Path") == [{"a": 1, "b": 1}]
    assert '"event":"retracted"' in trace.read_text(encoding="utf-8")
    out = CliRunner().invoke(main, ["replay", str(ruleset_path), str(trace), "--no-plugins"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("identical:")
