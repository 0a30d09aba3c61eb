"""The trace lines written straight from the event tuples (``Trace.bare_lines``, the
fast path, before the integrity chain's hash is appended) are byte for byte the lines
of the events' pydantic models (``Trace.model_lines``, the schema): on random
well-typed rulesets and facts — floats sometimes near the largest, so that arithmetic
overflows — and on hand-made events the fast path does not write itself (a tool answer
holding infinity or a date goes through its model)."""

from __future__ import annotations

import datetime
import json
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from converge_rules.engine import run
from converge_rules.engine.trace import E_OUTPUT_SKIPPED, E_TOOL_CALL, SPILL_EVENTS
from tests.properties.traced import LEAN, PROFILE, generated_run, program_of


@settings(PROFILE, max_examples=150)
@given(st.data())
def test_fast_lines_equal_model_lines(data: st.DataObject) -> None:
    result = generated_run(data)
    if result is None:
        return
    fast = list(result.trace.bare_lines())
    event(f"status {result.status}")
    assert fast == list(result.trace.model_lines())
    start = data.draw(st.integers(0, len(result.trace)), label="start event")
    assert list(result.trace.bare_lines(start)) == list(result.trace.model_lines(start))


def test_fast_lines_equal_model_lines_across_the_spool() -> None:
    """A trace long enough to spill: lines from any start, spooled or held."""
    program = program_of(LEAN)
    nodes = 60
    result = run(program, [("Edge", {"a": i, "b": i + 1}) for i in range(nodes)])
    assert len(result.trace) > SPILL_EVENTS
    fast = list(result.trace.bare_lines())
    assert fast == list(result.trace.model_lines())
    kinds = {json.loads(line)["event"] for line in fast}
    assert {"fact_added", "conflict", "replaced", "cycle_start", "cycle_end"} <= kinds
    for start in (1, SPILL_EVENTS - 1, len(result.trace) - 3):
        assert list(result.trace.bare_lines(start)) == list(result.trace.model_lines(start))


def test_values_the_fast_path_does_not_write_go_through_the_models() -> None:
    """A tool call whose answer holds infinity (the models write null), a date or a
    bytes value: the line is the model's, whatever the fast encoders would say."""
    program = program_of(LEAN)
    result = run(program, [("Edge", {"a": 1, "b": 2})])
    trace = result.trace
    odd: list[dict[str, Any]] = [
        {"x": float("inf")}, {"d": datetime.date(2026, 1, 2)}, {"b": b"raw"},
        {"nested": {"z": 1, "a": [1, (2, 3)]}}, {"s": "\u2028 and \ud800"},
    ]
    for answer in odd:
        trace.raw.append((E_TOOL_CALL, 1, 0, "look", {"q": 1}, answer, None))
    lines = list(trace.bare_lines())
    assert lines == list(trace.model_lines())
    assert lines[-5].endswith('"result":{"x":null},"tool":"look"}')
    assert "\\u2028" in lines[-1] and "\\ud800" in lines[-1]


SKIPPED = """\
ruleset skipped
fact Odd { s: str, f: float, d: date, w: duration, l: list[str] }
agent copy { when Odd(s, f, d, w, l) emit Odd(s: s, f: f, d: d, w: w, l: l) }
"""


def test_a_skipped_output_is_written_as_its_model_writes_it() -> None:
    """``output_skipped`` has a fast line of its own (a job replacing the fact its
    other agents derive from skips an output every cycle): the model's, byte for
    byte, for any field values — and infinity, which the fast encoder refuses, goes
    through the model."""
    program = program_of(SKIPPED)
    day, span = datetime.date(2026, 12, 6), datetime.timedelta(days=1, seconds=5)
    result = run(program, [("Odd", {"s": "a", "f": 1.0, "d": "2026-12-06",
                                    "w": "PT1H", "l": ["x"]})])
    trace = result.trace
    t = program.type_ids["Odd"]
    reason = "its support was retracted earlier in this merge"
    for vals in [("d\u2028é\"q", 1.5, day, span, ("x", "y\ud800")),
                 ("", -0.0, day, datetime.timedelta(0), ()),
                 ("big", 1e308 * 10, day, span, ("z",))]:
        trace.raw.append((E_OUTPUT_SKIPPED, 1, 0, t, vals, reason))
    lines = list(trace.bare_lines())
    assert lines == list(trace.model_lines())
    assert sum('"event":"output_skipped"' in line for line in lines) == 3


def test_lines_from_any_start_continue_the_chain() -> None:
    """``lines(start)`` from any event (a cycle sink's calls, or any other) is the
    whole trace's lines from there, hashes included: the chain goes on, never
    restarts; events that write no line (no inputs) are passed over."""
    program = program_of(LEAN)
    result = run(program, [("Edge", {"a": i, "b": i + 1}) for i in range(6)])
    trace = result.trace
    trace.raw.insert(3, (0, 0))  # E_INPUTS of no facts: an event without a line
    whole = list(trace.lines())
    by_event = [len(lines) for lines in _lines_per_event(trace)]
    for start in range(len(trace) + 1):
        fresh = run(program, [("Edge", {"a": i, "b": i + 1}) for i in range(6)]).trace
        fresh.raw.insert(3, (0, 0))
        assert list(fresh.lines(start)) == whole[sum(by_event[:start]):], start


def _lines_per_event(trace: Any) -> list[list[str]]:
    from converge_rules.engine.trace import _LineWriter

    return list(_LineWriter(trace).event_lines(trace.all_raw()))
