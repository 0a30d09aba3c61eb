"""With a job store, the trace's spool takes the bytes the store's sink made of a run of
raw cycles (the msgpack of the events in its row) instead of pickling the same events
again: the trace read back (``all_raw``, its lines, the result) is exactly the one a
run without a store reads back — tuples, ``Lasting`` supports, types and all — and
what msgpack would read back as another type (a list or an array for a support, a
conflict's values, a confidence of a float subclass) is pickled as before."""

from __future__ import annotations

import json
import tempfile
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import event, given, note, settings
from hypothesis import strategies as st

import converge_rules
from converge_rules import api
from converge_rules.engine import run, runner, tracerows
from converge_rules.engine import trace as trace_module
from converge_rules.engine.trace import (
    E_CONFLICT,
    E_CYCLE_END,
    E_CYCLE_START,
    E_FACT_ADDED,
    E_FACT_SUPPORTED,
    E_KEYED_UPDATE,
    E_PLAIN,
    E_PRUNED,
    Trace,
)
from converge_rules.errors import InputError
from converge_rules.program import Lasting
from converge_rules.store.sqlite import SqliteStore
from tests.properties import strategies as S
from tests.properties.traced import PROFILE, program_of
from tests.store.test_raw_rows import PRUNED


def _typed(value: Any) -> Any:
    """``value`` with the type of everything in it, nested tuples and lists too."""
    if isinstance(value, tuple | list):
        return (type(value).__name__, [_typed(v) for v in value])
    return (type(value).__name__, value)


def _events(trace: Trace) -> list[Any]:
    return [_typed(ev) for ev in trace.all_raw()]


def _chunks(trace: Trace) -> list[bytes]:
    """The first byte of each chunk in ``trace``'s spool (``M``: msgpack)."""
    spool, at, firsts = trace._spool, 0, []
    while spool is not None and at < trace._whole:
        spool.seek(at)
        size = int.from_bytes(spool.read(8), "little")
        firsts.append(spool.read(1))
        at += 8 + size
    return firsts


@contextmanager
def _spilling_at(events: int) -> Iterator[None]:
    """The trace spills (and the engine encodes the cycles waiting first) at
    ``events``."""
    with mock.patch.object(trace_module, "SPILL_EVENTS", events), \
            mock.patch.object(runner, "SPILL_EVENTS", events):
        yield


def _run_twice(program: Any, facts: Iterable[Any], tmp: Path) -> tuple[Any, Any]:
    """The result of ``program`` on ``facts`` without a store and with one."""
    facts = list(facts)
    alone = api.run(program, facts, now=None)
    stored = api.run(program, facts, now=None, store=tmp / "s.db")
    return alone, stored


def test_a_stored_job_spools_its_rows_bytes_and_reads_back_the_same_events(
        tmp_path: Path) -> None:
    program = converge_rules.loads(PRUNED, plugins=False)
    with _spilling_at(64):
        alone, stored = _run_twice(program, [("Tick", {"id": "t", "n": 0})], tmp_path)
    assert len(stored.trace) > 4 * 64 > len(stored.trace.raw)  # (it spilled)
    firsts = _chunks(stored.trace)
    assert b"M" in firsts  # (the rows' bytes: the path under test)
    assert _chunks(alone.trace) and b"M" not in _chunks(alone.trace)
    assert _events(stored.trace) == _events(alone.trace)
    kinds = {ev[0] for ev in stored.trace.all_raw() if type(ev[-2]) is Lasting}
    assert kinds == {E_FACT_ADDED}  # (lasting supports came back as Lasting)
    assert list(stored.trace.lines()) == list(alone.trace.lines())
    result = json.loads(stored.to_json())
    assert result.pop("integrity")["trace_head"] == alone.trace.head()
    assert result == json.loads(alone.to_json())
    with SqliteStore(tmp_path / "s.db") as store:
        assert list(store.trace_lines(store.job(None).id)) == list(alone.trace.lines())


def test_a_keyed_counter_reads_back_the_same_events(tmp_path: Path) -> None:
    from converge_rules.benchmarks import counters_ruleset

    program = converge_rules.loads(counters_ruleset(2, 300), plugins=False)
    with _spilling_at(64):
        alone, stored = _run_twice(
            program, [("Count", {"id": f"c{i}", "n": 0}) for i in range(2)], tmp_path)
    assert b"M" in _chunks(stored.trace)
    assert _events(stored.trace) == _events(alone.trace)
    assert stored.conflicts == alone.conflicts and len(alone.conflicts) == 600


def _run_of(trace: Trace, events: list[tuple[Any, ...]]) -> tracerows.RawRun | None:
    kinds = tracerows.kinds_of(events)
    assert kinds is not None and tracerows.is_raw(kinds)
    return tracerows.raw_run(trace, events, kinds, [(1, len(events))], 0, 0)


class Ratio(float):
    """A confidence of a float subclass (a Python agent's numpy float, say)."""


def test_what_msgpack_reads_back_as_another_type_is_not_handed_to_the_spool() -> None:
    program = converge_rules.loads(PRUNED, plugins=False).program
    trace = Trace(program, mock.Mock(type_of=[], values=[], next_id=0))
    cycle = [(E_CYCLE_START, 1, 0, (0, 2)), (E_CYCLE_END, 1, 0, 1, 1, 3)]
    exact = [(E_FACT_ADDED, 5, 0, 1, (1, 2), 1.0),
             (E_FACT_ADDED, 6, 1, 1, Lasting((3,)), 0.5),
             (E_FACT_SUPPORTED, 6, 2, 1, Lasting(())),
             (E_FACT_SUPPORTED, 5, 2, 1, (4,)),
             (E_KEYED_UPDATE, 1, 0, 7, 4, Lasting((1, 2)), 1),
             (E_PRUNED, 1, 3, 2)]
    run_ = _run_of(trace, [cycle[0], *exact, cycle[1]])
    assert run_ is not None and run_.kind == tracerows.RAWM and run_.spool is not None
    back = trace_module._unpacked(run_.spool)
    assert _typed(list(back)) == _typed([cycle[0], *exact, cycle[1]])
    for other in [(E_FACT_ADDED, 5, 0, 1, [1, 2], 1.0),  # a support as a list
                  (E_FACT_ADDED, 5, 0, 1, array("q", [1, 2]), 1.0),  # an array
                  (E_FACT_SUPPORTED, 5, 0, 1, [1]),
                  (E_FACT_SUPPORTED, 5, 0, 1, ([1],)),  # ids that are no ints
                  (E_FACT_ADDED, 5, 0, 1, Lasting((1.0,)), 1.0),
                  (E_FACT_ADDED, 5, 0, 1, (1,), Ratio(0.5)),  # a float subclass
                  (E_CONFLICT, 1, 0, ("k",), ("k", 2), (("k", 1),), "latest")]:
        run_ = _run_of(trace, [cycle[0], *exact, other, cycle[1]])
        assert run_ is not None and run_.spool is None, other


def test_a_spill_writes_the_runs_handed_and_pickles_the_events_between() -> None:
    program = converge_rules.loads(PRUNED, plugins=False).program
    trace = Trace(program, mock.Mock(type_of=[], values=[], next_id=0))
    before = [(E_CYCLE_START, 1, 0, ()),
              (E_PLAIN, 1, 0, [(0, 0, ("t", 1), 1.0, Lasting((6,)))], [8], 8),
              (E_FACT_ADDED, 9, 0, 1, Lasting((3,)), 1.0)]
    handed = [(E_CYCLE_START, 2, 0, (1,)), (E_FACT_ADDED, 10, 1, 2, Lasting((9,)), 1.0),
              (E_FACT_SUPPORTED, 10, 0, 2, (9,)), (E_CYCLE_END, 2, 0, 1, 0, 4)]
    after = [(E_CYCLE_START, 3, 0, ()), (E_FACT_SUPPORTED, 10, 1, 3, Lasting((9,))),
             (E_CYCLE_END, 3, 0, 0, 0, 4)]
    trace.raw.extend(before + handed + after)
    run_ = _run_of(trace, handed)
    assert run_ is not None and run_.spool is not None
    trace.packed(len(before), len(before) + len(handed), run_.spool)
    trace.spill(at_least=1)
    assert trace.raw == [] and trace._packed == []
    assert [c != b"M" for c in _chunks(trace)] == [True, False, True]
    assert _events(trace) == [_typed(ev) for ev in before + handed + after]
    # a run handed for events spilled already is not written again
    trace.raw.extend(after)
    trace.packed(0, len(handed), run_.spool)
    trace.spill(at_least=1)
    assert len(_chunks(trace)) == 4
    assert _events(trace) == [_typed(ev) for ev in before + handed + after + after]


@settings(PROFILE, max_examples=40)
@given(st.data())
def test_a_stored_job_reads_back_the_trace_of_the_same_job_without_a_store(
        data: st.DataObject) -> None:
    ruleset = data.draw(S.typed_rulesets(), label="ruleset")
    note(ruleset.text)
    program = program_of(ruleset.text)
    facts = data.draw(S.typed_facts(ruleset), label="facts")
    spill = data.draw(st.sampled_from([1, 4, 16]), label="spill at")
    with _spilling_at(spill), tempfile.TemporaryDirectory() as tmp:
        try:
            alone = run(program, facts)
        except InputError:
            return
        with SqliteStore(Path(tmp) / "r.db") as store:
            stored = run(program, facts, trace=store.new_job("generated"))
            lines = list(store.trace_lines(store.job(None).id))
    event(f"spool chunks of msgpack: {b'M' in _chunks(stored.trace)}")
    assert _events(stored.trace) == _events(alone.trace)
    assert list(stored.trace.lines()) == list(alone.trace.lines()) == lines
