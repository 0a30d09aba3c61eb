"""A job keeps nothing per cycle that grows without bound (issue 11 item 5).

A keyed counter updated in place 10,000 times held about 2 KB a cycle: its trace
events, a conflict record, the derivations of every replaced fact, a fingerprint
tuple, and the result built every conflict as dicts to print one. Now the trace
spills its older events to a temporary file between cycles (read back, in order, by
every reader), conflicts are built from those events when asked for, a replaced fact's
derivations go with it, and fingerprints are flat arrays. Measured without a clock:
what tracemalloc sees held after runs of two lengths."""

from __future__ import annotations

import gc
import io
import os
import sys
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules.benchmarks import counters_ruleset
from converge_rules.cli.run import _console, print_tables
from converge_rules.engine import trace as trace_module
from converge_rules.engine.fingerprints import FingerprintIndex
from converge_rules.engine.result import RunResult
from converge_rules.program import Lasting


def count_to(n: int) -> RunResult:
    ruleset = converge_rules.loads(counters_ruleset(1, n), plugins=False)
    return converge_rules.run(ruleset, [("Count", {"id": "c0", "n": 0})])


def held_after(n: int) -> int:
    count_to(10)  # imports and caches, outside the measure
    gc.collect()
    tracemalloc.start()
    try:
        result = count_to(n)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert result.status == "converged" and result.cycles == n + 1
    return held


def test_a_counter_keeps_little_per_cycle() -> None:
    short, long = held_after(1_000), held_after(5_000)
    per_cycle = (long - short) / 4_000
    # was about 1,140 bytes a cycle (2 KB with the conflicts built to print them);
    # what is left is the dead facts' values (~90 bytes) and flat arrays
    assert per_cycle < 250, per_cycle


def test_a_spilled_trace_reads_back_as_the_trace_held_in_memory(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace_module, "SPILL_EVENTS", 10**9)
    held = count_to(700)
    monkeypatch.setattr(trace_module, "SPILL_EVENTS", 64)
    spilled = count_to(700)
    assert spilled.trace.raw != held.trace.raw  # (it did spill)
    assert len(spilled.trace) == len(held.trace)
    assert list(spilled.trace.lines()) == list(held.trace.lines())
    assert spilled.to_json() == held.to_json()
    assert spilled.conflict_count == held.conflict_count == len(held.conflicts) == 700
    assert spilled.first_conflicts(3) == held.conflicts[:3]
    # a replaced fact's derivations are no longer kept: its provenance is the trace's
    first = spilled.conflicts[0]
    assert first["losers"] == [{"id": "c0", "n": 0}]
    replaced = next(e for e in spilled.trace.events() if e.event == "replaced")
    assert spilled.provenance(replaced.by) == [
        {"agent": "count0", "cycle": 1, "support": [0]}]


def test_converge_run_builds_only_the_conflicts_it_prints() -> None:
    result = count_to(300)
    out = io.StringIO()
    print_tables(_console(out, "never"), result, max_rows=2)
    text = out.getvalue()
    assert "Conflicts (300)" in text and "… and 298 more" in text
    assert callable(result._conflicts)  # never built them all


def test_fingerprints_are_found_again_whatever_their_low_bits() -> None:
    index = FingerprintIndex()
    fps = [((i << 20) | 5, i * 7) for i in range(3_000)]  # the same low bits
    for cycle, fp in enumerate(fps):
        assert index.get(fp) is None
        index.add(fp, cycle)
    assert [index.get(fp) for fp in fps] == list(range(3_000))
    assert index.get((5, 1)) is None and index.get(((1 << 20) | 5, 8)) is None
    assert len(index) == 3_000


class FillingUp(io.BytesIO):
    """A spool on a disk that fills up after its first chunk."""

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() > 8:
            raise OSError(28, "No space left on device")
        return super().write(data)


@pytest.mark.parametrize("spool", [FillingUp, None])
def test_a_spool_that_cannot_be_written_keeps_the_trace_in_memory(
        monkeypatch: pytest.MonkeyPatch, spool: type[io.BytesIO] | None) -> None:
    monkeypatch.setattr(trace_module, "SPILL_EVENTS", 10**9)
    held = count_to(300)
    monkeypatch.setattr(trace_module, "SPILL_EVENTS", 64)

    def temporary_file() -> io.BytesIO:
        if spool is None:
            raise OSError(30, "Read-only file system")
        return spool()

    monkeypatch.setattr(trace_module, "_spool_file", temporary_file)
    result = count_to(300)
    assert result.status == "converged"
    assert list(result.trace.lines()) == list(held.trace.lines())
    assert result.conflicts == held.conflicts


def test_lean_effects_read_back_in_place_from_a_spilled_trace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # a lean effect's event stays in memory (its outputs are the provenance; pickling
    # them doubled the closure's time); the spool holds its place in the order
    from converge_rules.benchmarks import CLOSURE_RULESET, chain

    ruleset = converge_rules.loads(CLOSURE_RULESET, plugins=False)
    edges = [("Edge", {"src": a, "dst": b}) for a, b in chain(60)]
    monkeypatch.setattr(trace_module, "SPILL_EVENTS", 10**9)
    held = converge_rules.run(ruleset, edges)
    monkeypatch.setattr(trace_module, "SPILL_EVENTS", 16)
    spilled = converge_rules.run(ruleset, edges)
    assert spilled.trace.raw != held.trace.raw  # (it did spill)
    assert list(spilled.trace.lines()) == list(held.trace.lines())
    fid = spilled.fact_ids("Path")[-1]
    assert spilled.provenance(fid) == held.provenance(fid)


def _with_types(events: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(ev, tuple(type(v) for v in ev)) for ev in events]


def test_lasting_supports_read_back_from_a_spilled_trace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the spool holds an event with a Lasting support as a plain tuple (a Lasting
    # pickled ~10x slower); reading it back gives the Lasting again
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location(
        "flat_memory_clips_facts", root / "bench" / "classics" / "clips_facts.py")
    assert spec is not None and spec.loader is not None
    clips = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(clips)
    ruleset = converge_rules.load(root / "rulesets" / "waltz" / "waltz.cvg", plugins=False)
    facts = clips.read_file(root / "bench" / "data" / "waltz12.fct", ruleset.program)
    monkeypatch.setattr(trace_module, "SPILL_EVENTS", 10**9)
    held = converge_rules.run(ruleset, facts)
    monkeypatch.setattr(trace_module, "SPILL_EVENTS", 16)
    spilled = converge_rules.run(ruleset, facts)
    assert spilled.trace.raw != held.trace.raw  # (it did spill)
    kinds = {ev[0] for ev in held.trace.all_raw() if any(type(v) is Lasting for v in ev)}
    assert kinds == {trace_module.E_FACT_ADDED, trace_module.E_FACT_SUPPORTED,
                     trace_module.E_KEYED_UPDATE}
    assert _with_types(spilled.trace.all_raw()) == _with_types(held.trace.all_raw())
    assert list(spilled.trace.lines()) == list(held.trace.lines())


def test_a_trace_finds_lasting_supports_no_generated_agent_announced() -> None:
    # a Python agent (a plugin's) may emit lasting: the first chunk holding one is
    # spooled in the plain form too, and so is every chunk after it
    ruleset = converge_rules.loads(counters_ruleset(1, 3), plugins=False)
    trace = trace_module.Trace(ruleset.program, None)  # type: ignore[arg-type]
    first = [(trace_module.E_FACT_ADDED, 7, 0, 1, (3,), 1.0),
             (trace_module.E_KEYED_UPDATE, 1, 0, 5, 4, Lasting((1, 2)), 1.0),
             (trace_module.E_FACT_ADDED, 6, 0, 1, Lasting((3,)), 0.5)]
    second = [(trace_module.E_FACT_SUPPORTED, 6, 1, 2, Lasting(())),
              (trace_module.E_PLAIN, 2, 0, [(0, 0, ("c0", 1), 1.0, Lasting((6,)))], [8], 8),
              (trace_module.E_FACT_SUPPORTED, 6, 1, 2, (5, 6))]
    assert not trace._lasting  # (the counters' agents emit nothing lasting)
    trace.raw.extend(first)
    trace.spill(at_least=1)
    assert trace._lasting  # (found in the first chunk: the path under test)
    trace.raw.extend(second)
    trace.spill(at_least=1)
    assert trace.raw == [] and len(trace) == 6
    assert _with_types(trace.all_raw()) == _with_types(first + second)


@pytest.mark.skipif(not hasattr(os, "O_TMPFILE"), reason="O_TMPFILE is Linux's")
def test_the_spool_is_a_file_with_no_name_in_the_temp_dir(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # made without tempfile's import, where tempfile.TemporaryFile() would make it
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delitem(sys.modules, "tempfile")
    with trace_module._spool_file() as spool:
        assert "tempfile" not in sys.modules
        spool.write(b"events")
        spool.seek(0)
        assert spool.read() == b"events"
        assert os.readlink(f"/proc/self/fd/{spool.fileno()}").startswith(str(tmp_path))
        assert not os.get_inheritable(spool.fileno())
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("imported", [True, False])
def test_a_temp_dir_the_spool_cannot_be_made_in_is_left_to_tempfile(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, imported: bool) -> None:
    # a $TMPDIR missing (tempfile goes on to the next candidate), or tempfile already
    # imported (its tempdir may be set): tempfile.TemporaryFile, as before
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() again, from $TMPDIR
    if not imported:
        monkeypatch.delitem(sys.modules, "tempfile")
    with trace_module._spool_file() as spool:
        spool.write(b"events")
        spool.seek(0)
        assert spool.read() == b"events"
    assert not (tmp_path / "missing").exists()
