"""A job store keeps each cycle's raw events as one row (engine/tracerows.py) and builds
the trace lines only when the trace is read: the lines read back are byte for byte the
lines ``--trace`` writes, hashes included — on random well-typed rulesets and facts
(floats near the largest, so that arithmetic overflows to infinity, which a row cannot
keep raw: that cycle is kept as its lines), on the columnar closure, keyed conflicts
and spilled traces, and on tool answers the line writer leaves to the models."""

from __future__ import annotations

import datetime
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from converge_rules.engine import run
from converge_rules.engine.trace import E_CYCLE_START, E_TOOL_CALL, SPILL_EVENTS
from converge_rules.engine.tracerows import (
    EVENTS,
    FIRST_ROW,
    LINES,
    RAW,
    RAWM,
    _dumps,
    all_raw,
    compact,
    is_raw,
    kinds_of,
    raw_row,
    raw_run,
    read_rows,
    row_columns,
    row_hash,
)
from converge_rules.errors import InputError
from converge_rules.store.sqlite import SqliteStore
from tests.properties import strategies as S
from tests.properties.traced import LEAN, PROFILE, generated_run, program_of


def _expanded(trace: Any) -> tuple[str, list[str]]:
    """The whole trace as one row (format, lines read back)."""
    events = compact(trace, 0)
    if events.kind == EVENTS:  # columnar events written apart: as the encoder writes
        assert _dumps(json.loads(events.text)) == events.text
    text, digest = events.row(FIRST_ROW, False, 0, 0)
    lines = list(read_rows([(0, 0, events.lines, events.kind, text, digest)]))
    return events.kind, lines


@settings(PROFILE, max_examples=80)
@given(st.data())
def test_a_row_reads_back_as_the_lines(data: st.DataObject) -> None:
    result = generated_run(data)
    if result is None:
        return
    kind, lines = _expanded(result.trace)
    event(f"row format {kind}")
    assert lines == list(result.trace.lines())


@settings(PROFILE, max_examples=80)
@given(st.data())
def test_a_raw_row_reads_back_as_the_lines(data: st.DataObject) -> None:
    # the events of the whole run as one row of raw event tuples, when all are of
    # the kinds it keeps (cycle by cycle, at the commit, as a job store does)
    result = generated_run(data)
    if result is None:
        return
    events = list(result.trace.all_raw())
    kinds = kinds_of(events)
    assert all_raw(events) == is_raw(kinds)  # (the engine's one call a cycle)
    if not is_raw(kinds):
        event("not raw")
        return
    assert kinds is not None
    ends = [*[i for i, ev in enumerate(events) if ev[0] == E_CYCLE_START][1:], len(events)]
    run_ = raw_run(result.trace, events, kinds, list(enumerate(ends)), 0,
                   result.trace._store.next_id)
    if run_ is None:  # a value JSON does not keep exactly (infinity)
        event("kept as compact does")
        return
    event(run_.kind)
    text = raw_row(run_, run_.names())
    digest = row_hash(FIRST_ROW, text, row_columns(0, 0, run_.lines, run_.kind))
    lines = list(read_rows([(0, 0, run_.lines, run_.kind, text, digest)]))
    assert lines == list(result.trace.lines())
    assert sum(n for _, n in run_.cycles) == run_.lines == len(lines)


@settings(PROFILE, max_examples=25)
@given(st.data())
def test_a_stored_job_exports_the_trace_file(data: st.DataObject) -> None:
    ruleset = data.draw(S.typed_rulesets(), label="ruleset")
    note(ruleset.text)
    program = program_of(ruleset.text)
    facts = data.draw(S.typed_facts(ruleset), label="facts")
    try:
        expected = run(program, facts).trace.to_jsonl()
    except InputError:
        return
    with tempfile.TemporaryDirectory() as tmp, SqliteStore(Path(tmp) / "r.db") as store:
        run(program, facts, trace=store.new_job("generated"))
        job = store.job(None)
        assert "".join(f"{line}\n" for line in store.trace_lines(job.id)) == expected
        assert job.trace_lines == expected.count("\n")


def test_the_closure_keyed_conflicts_and_the_spool_read_back_as_the_lines() -> None:
    program = program_of(LEAN)
    facts = [("Edge", {"a": i, "b": i + 1}) for i in range(60)]
    result = run(program, facts)
    assert len(result.trace) > SPILL_EVENTS
    kind, lines = _expanded(result.trace)
    assert kind == EVENTS
    assert lines == list(result.trace.lines())
    kinds = {json.loads(line)["event"] for line in lines}
    assert {"fact_added", "conflict", "replaced"} <= kinds
    with tempfile.TemporaryDirectory() as tmp, SqliteStore(Path(tmp) / "r.db") as store:
        run(program, facts, trace=store.new_job("lean"))
        job = store.job(None)
        assert list(store.trace_lines(job.id)) == lines
        # a row per transaction's cycles (up to JOIN_BYTES of text each) and one for
        # the status, each the raw events: no line, no per-line hash is built while
        # the job runs
        rows = store._read("SELECT kind, data FROM trace_rows WHERE job = ?", (job.id,))
        assert 2 <= len(rows) <= result.cycles + 2
        assert all(k in (EVENTS, RAW, RAWM) and '"hash"' not in d for k, d in rows)


_CLOSURE_OF = """\
ruleset closure
fact Edge { a: T, b: T }
fact Path { a: T, b: T }
agent base { when Edge(a, b) emit Path(a: a, b: b) }
agent step { when Path(a, b) and Edge(a: b, b: c) emit Path(a: a, b: c) }
"""


@pytest.mark.parametrize(("field", "value"), [
    ("int", lambda i: i), ("str", lambda i: f"n\u00e9{i}\""), ("float", lambda i: i / 3),
    ("int?", lambda i: i)])
def test_columnar_events_of_any_fields_read_back_as_the_lines(
        field: str, value: Callable[[int], Any]) -> None:
    """A columnar event's JSON is written apart from the encoder's (its packed ints
    as they are): for int fields and for the others, between other events, the row
    is the text the encoder writes and reads back as the lines."""
    program = program_of(LEAN if field == "int" else _CLOSURE_OF.replace("T", field))
    facts = [("Edge", {"a": value(i), "b": value(i + 1)}) for i in range(30)]
    result = run(program, facts)
    kind, lines = _expanded(result.trace)
    assert kind == EVENTS
    assert lines == list(result.trace.lines())


def test_odd_tool_answers_are_kept_as_their_lines() -> None:
    """Events the line writer leaves to the models (infinity, dates, bytes in a tool
    answer) are kept in the row as their lines, built as the cycle ends."""
    program = program_of(LEAN)
    result = run(program, [("Edge", {"a": 1, "b": 2})])
    trace = result.trace
    for answer in ({"x": float("inf")}, {"d": datetime.date(2026, 1, 2)}, {"b": b"raw"},
                   {"s": "\u2028 and \ud800"}):
        trace.raw.append((E_TOOL_CALL, 1, 0, "look", {"q": 1}, answer, None))
    events = compact(trace, 0)
    assert events.tools and events.kind == EVENTS
    assert _expanded(trace)[1] == list(trace.lines())


def test_an_event_json_cannot_keep_raw_keeps_its_cycle_as_lines() -> None:
    """An event holding a value JSON would not give back as it was (here a range of
    agents, as a plugin's executor might record them): the cycle is kept as its
    lines, and reads back the same."""
    program = program_of(LEAN)
    result = run(program, [("Edge", {"a": 1, "b": 2})])
    trace = result.trace
    trace.raw.append((E_CYCLE_START, 9, 0, range(2)))
    kind, lines = _expanded(trace)
    assert kind == LINES
    assert lines == list(trace.lines())
    assert lines[-1].startswith('{"agents":["base","step"],"cycle":9,')


def test_a_row_edited_breaks_the_chain_where_it_starts() -> None:
    program = program_of(LEAN)
    result = run(program, [("Edge", {"a": i, "b": i + 1}) for i in range(4)])
    events = compact(result.trace, 0)
    text, digest = events.row(FIRST_ROW, False, 0, 0)
    lines = list(read_rows([(0, 0, events.lines, events.kind,
                             text.replace("[0,1]", "[0,2]", 1), digest)]))
    assert lines[0].endswith('"hash":"' + "0" * 64 + '"}')
    assert all(not line.endswith("0" * 64 + '"}') for line in lines[1:])
