"""The result document and the trace: shape, order, determinism, provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine_programs import Builder, each, f
from test_cycles import QUOTES, count_program, intent_program
from test_smoke_closure import closure_program

from converge_rules.engine import run
from converge_rules.integrity import strip_hash

EDGES = [("Edge", {"a": a, "b": b}) for a, b in [("x", "y"), ("y", "z"), ("z", "x")]]


def test_result_document_has_the_documented_shape_and_sorted_facts() -> None:
    result = run(closure_program(), EDGES)
    doc = json.loads(result.to_json())
    assert set(doc) == {"status", "cycles", "facts", "conflicts", "budget", "unmet"}
    assert doc["status"] == "converged"
    paths = doc["facts"]["Path"]
    assert paths == sorted(paths, key=lambda p: (p["a"], p["b"]))
    assert len(paths) == 9
    assert set(doc["budget"]) == {"max_facts", "max_cycles", "max_agents", "max_tool_calls",
                                  "agent_timeout", "job_timeout", "max_string_length",
                                  "max_list_length", "memory"}
    assert result.to_json() == run(closure_program(), list(reversed(EDGES))).to_json()


def test_trace_is_deterministic_and_written_as_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    first = run(count_program(seen=True), [("Count", {"id": "a", "n": 0})], trace=path)
    again = run(count_program(seen=True), [("Count", {"id": "a", "n": 0})])
    text = path.read_text(encoding="utf-8")
    assert text == first.trace.to_jsonl() == again.trace.to_jsonl()
    lines = [json.loads(strip_hash(line)) for line in text.splitlines()]
    assert lines[0]["event"] == "fact_added" and lines[0]["agent"] is None
    assert lines[-1] == {"event": "status", "status": "converged",
                         "detail": "every tier reached a fixpoint and every goal holds"}
    kinds = {line["event"] for line in lines}
    assert {"cycle_start", "cycle_end", "conflict", "replaced", "effect_merged",
            "output_skipped"} <= kinds


def test_every_live_fact_traces_to_agent_cycle_and_support() -> None:
    result = run(closure_program(), EDGES)
    added = {e.id: e for e in result.trace.events() if e.event == "fact_added"}  # type: ignore[attr-defined]
    for fid in result.fact_ids("Path"):
        event = added[fid]
        assert event.agent in ("base", "step")
        assert event.cycle >= 1 and event.support
        for s in event.support:
            assert s in added  # support is itself traced
        assert result.provenance(fid)[0]["agent"] == event.agent


def test_tool_calls_appear_in_the_trace_with_args_and_results() -> None:
    result = run(intent_program(), QUOTES, tools={"fx_rate": lambda a: {"usd": 2.0}})
    calls = [e for e in result.trace.events() if e.event == "tool_call"]
    assert [(c.tool, c.args, c.result) for c in calls] == [  # type: ignore[attr-defined]
        ("fx_rate", {"currency": "EUR"}, {"usd": 2.0}),
        ("fx_rate", {"currency": "GBP"}, {"usd": 2.0}),
    ]


def _runs_of_every_kind() -> list[Any]:
    from test_cycles import retraction_program

    from converge_rules.program import EMIT, EVALUATE

    b = Builder()
    n = b.fact("N", f("v", "int"))
    out = b.fact("Out", f("v", "int"))
    b.agent("bad", each(n, lambda v: [(EMIT, out, (1 // 0,))]), reads=[n], emits=[out])
    b.agent("good", each(n, lambda v: [(EMIT, out, v)]), reads=[n], emits=[out])
    b.agent("judge", each(out, lambda v: [(EVALUATE, 0.9, "fine")]), reads=[out])
    b.prune(n, lambda values, age: age > 1)
    return [
        run(closure_program(), EDGES),
        run(count_program(seen=True), [("Count", {"id": "a", "n": 0})]),
        run(count_program(max_cycles=3), [("Count", {"id": "a", "n": 0})]),
        run(retraction_program(), [("Base", {"k": "x", "v": 1}), ("Other", {"k": "x"})]),
        run(intent_program(), QUOTES, tools={"fx_rate": lambda a: {"usd": 2.0}}),
        run(b.build(), [("N", {"v": 3})]),
    ]


def test_events_of_one_kind_are_those_of_the_whole_trace() -> None:
    from converge_rules.engine import trace as t

    kinds = (t.CycleStart, t.CycleEnd, t.FactAdded, t.FactSupported, t.EffectMerged,
             t.EffectDiscarded, t.OutputSkipped, t.ToolCall, t.Evaluation, t.Conflict,
             t.Replaced, t.Retracted, t.Pruned, t.IntentClosed, t.BudgetEvent,
             t.StatusEvent)
    seen = set()
    for result in _runs_of_every_kind():
        events = list(result.trace.events())
        seen.update(type(e) for e in events)
        for kind in kinds:
            assert list(result.trace.events_of(kind)) == [
                e for e in events if isinstance(e, kind)], kind.__name__
    assert {t.FactAdded, t.FactSupported, t.EffectDiscarded, t.ToolCall, t.Conflict,
            t.Retracted, t.Pruned, t.IntentClosed, t.Evaluation, t.BudgetEvent,
            t.StatusEvent} <= seen
