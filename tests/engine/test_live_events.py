"""Live events (issue 14 item 4): an observer sees the job's notable events while it
runs, in trace order, as the trace writes them; however slow or failing, it never
changes the result; ``api.stream`` gives them as an iterator."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

import converge_rules
from converge_rules import api
from converge_rules.engine import events as live

RULES = """\
ruleset live "live events"
uses tool fx
fact Q { c: str }
fact R { key c: str, usd: float }
fact Seen { c: str }
agent rate tier 1 {
  when Q(c)
  where c != "ZZZ"
  call fx(currency: c) as r
  emit R(c: c, usd: r.usd)
}
agent bad tier 1 {
  when Q(c)
  where c == "ZZZ"
  call fx(currency: c) as r
  emit Seen(c: c)
}
agent other tier 1 {
  when Q(c)
  emit R(c: c, usd: 0.5)
}
agent seen tier 2 {
  when R(c)
  emit Seen(c: c)
}
policy R {
  resolve by highest usd
}
"""

INPUT = [("Q", {"c": "EUR"}), ("Q", {"c": "GBP"}), ("Q", {"c": "ZZZ"})]


def fx(args: dict[str, Any]) -> dict[str, Any]:
    if args["currency"] == "ZZZ":
        raise ValueError("unknown currency")
    return {"usd": 1.5}


def ruleset() -> converge_rules.Ruleset:
    return converge_rules.loads(RULES, plugins=False)


LIVE = {"cycle_start", "cycle_end", "effect_merged", "effect_discarded", "conflict",
        "tool_call", "budget", "status"}


def trace_events(result: Any) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, result.trace.bare_lines()) if e["event"] in LIVE]


@pytest.mark.parametrize("executor", ["serial", "threads", "asyncio"])
def test_the_observer_sees_the_live_events_of_the_trace_in_its_order(executor: str) -> None:
    seen: list[dict[str, Any]] = []
    threads: set[str] = set()

    def observer(event: dict[str, Any]) -> None:
        threads.add(threading.current_thread().name)
        seen.append(event)

    result = api.run(ruleset(), INPUT, tools={"fx": fx}, executor=executor,
                     observer=observer)
    assert result.status == "converged"
    assert seen == trace_events(result)
    kinds = {e["event"] for e in seen}
    assert {"cycle_start", "cycle_end", "effect_merged", "effect_discarded", "conflict",
            "tool_call", "status"} <= kinds
    assert "fact_added" not in kinds  # never one event per fact
    assert seen[-1]["event"] == "status"
    assert threads == {"converge-events"}  # off the job's thread


def test_events_arrive_while_the_job_runs_not_after() -> None:
    """The first cycle's start reaches the observer while a tool of that cycle still
    waits: events are streamed as cycles go, not handed over at the end."""
    started = threading.Event()

    def slow_fx(args: dict[str, Any]) -> dict[str, Any]:
        assert started.wait(10), "cycle_start did not arrive while the cycle ran"
        return {"usd": 1.5}

    def observer(event: dict[str, Any]) -> None:
        if event["event"] == "cycle_start":
            started.set()

    result = api.run(ruleset(), INPUT[:1], tools={"fx": slow_fx}, observer=observer)
    assert result.status == "converged"


def test_a_slow_observer_changes_nothing_and_is_told_what_it_missed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = api.run(ruleset(), INPUT, tools={"fx": fx})
    monkeypatch.setattr(live, "QUEUE_EVENTS", 2)
    seen: list[dict[str, Any]] = []

    def slow(event: dict[str, Any]) -> None:
        time.sleep(0.05)
        seen.append(event)

    result = api.run(ruleset(), INPUT, tools={"fx": fx}, observer=slow)
    assert result.to_json() == expected.to_json()
    assert result.trace.to_jsonl() == expected.trace.to_jsonl()
    dropped = [e for e in seen if e["event"] == "events_dropped"]
    assert dropped, "with a queue of 2 a slow observer misses events"
    delivered = [e for e in seen if e["event"] != "events_dropped"]
    assert len(delivered) + sum(e["count"] for e in dropped) == len(trace_events(expected))
    order = iter(trace_events(expected))
    assert all(e in order for e in delivered)  # what arrives keeps the trace's order


def test_a_failing_observer_changes_nothing_and_is_not_called_again() -> None:
    expected = api.run(ruleset(), INPUT, tools={"fx": fx})
    calls: list[str] = []

    def failing(event: dict[str, Any]) -> None:
        calls.append(event["event"])
        raise RuntimeError("observer bug")

    result = api.run(ruleset(), INPUT, tools={"fx": fx}, observer=failing)
    assert result.to_json() == expected.to_json()
    assert result.trace.to_jsonl() == expected.trace.to_jsonl()
    assert calls == ["cycle_start"]


def test_an_observer_that_is_not_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="observer takes a callable"):
        api.run(ruleset(), INPUT, tools={"fx": fx}, observer="print")  # type: ignore[arg-type]


def test_stream_iterates_over_the_events_then_gives_the_result() -> None:
    events = api.stream(ruleset(), INPUT, tools={"fx": fx})
    with pytest.raises(RuntimeError, match="once its events are read"):
        _ = events.result
    got = list(events)
    assert got == trace_events(events.result)
    assert got[-1] == {"event": "status", "status": "converged",
                       "detail": "every tier reached a fixpoint and every goal holds"}


def test_stream_raises_what_the_run_raises() -> None:
    events = api.stream(ruleset(), INPUT)  # fx is missing
    with pytest.raises(converge_rules.ToolError, match="fx"):
        list(events)


def test_a_reader_that_stops_early_leaves_the_job_to_finish() -> None:
    events = api.stream(ruleset(), INPUT, tools={"fx": fx})
    first = next(events)
    assert first["event"] == "cycle_start"
    events.close()
    events._thread.join(10)
    assert not events._thread.is_alive()


def test_a_reader_that_stops_early_still_gets_the_result() -> None:
    # the result after close() used to say "iterate over them first", though the
    # reader had just said it would not
    events = api.stream(ruleset(), INPUT, tools={"fx": fx})
    next(events)
    events.close()
    assert events.result.status == "converged"
    assert events.result.to_json() == api.run(ruleset(), INPUT, tools={"fx": fx}).to_json()


def test_the_result_after_close_raises_what_the_run_raised() -> None:
    events = api.stream(ruleset(), INPUT)  # fx is missing
    events.close()
    with pytest.raises(converge_rules.ToolError, match="fx"):
        _ = events.result


def test_a_job_that_fails_does_not_wait_for_a_stuck_observer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from converge_rules.engine.executors import SerialExecutor
    from converge_rules.errors import ExecutorError

    class Broken(SerialExecutor):
        def run_cycle(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("executor bug")

    monkeypatch.setattr(live, "DRAIN_SECONDS", 120.0)
    release = threading.Event()

    def stuck(event: dict[str, Any]) -> None:
        release.wait(120)

    started = time.monotonic()
    try:
        with pytest.raises(ExecutorError, match="executor bug"):
            api.run(ruleset(), INPUT, tools={"fx": fx}, executor=Broken(), observer=stuck)
        assert time.monotonic() - started < 60  # not the drain's 120 s
    finally:
        release.set()


COUNTER = """\
ruleset counter "one keyed counter, updated in place"
fact Count { key id: str, n: int }
policy Count { resolve by latest }
agent count {
  when Count(id, n) where n < 3
  emit Count(id: id, n: n + 1)
}
"""


def test_the_observer_sees_the_conflicts_of_updates_in_place() -> None:
    """A keyed update in place decided by the policy's first criterion is recorded as
    one compact event; the observer still sees its conflict, as the trace writes it."""
    seen: list[dict[str, Any]] = []
    result = api.run(converge_rules.loads(COUNTER, plugins=False),
                     [("Count", {"id": "a", "n": 0})], observer=seen.append)
    assert result.status == "converged"
    conflicts = [e for e in seen if e["event"] == "conflict"]
    assert [(c["winner"]["n"], c["losers"][0]["n"]) for c in conflicts] == [
        (1, 0), (2, 1), (3, 2)]
    assert seen == trace_events(result)
