"""Timings in the job store (migration 7, the ``timings`` table): written in each
cycle's transaction beside the trace, never in it; read back by ``store.timings``; kept
once across a resume; deleted with their job."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules import api
from converge_rules.engine.timings import Timings
from converge_rules.store.sqlite import SqliteStore
from tests.store.conftest import Backend
from tests.store.test_sqlite_store import PRICING, PRICING_INPUT, counter, invoke


def _pricing_facts(tmp: Path) -> Path:
    """The shipped pricing input and two quotes in other currencies (tool calls)."""
    facts = tmp / "in.jsonl"
    facts.write_text(PRICING_INPUT.read_text(encoding="utf-8")
                     + '{"Quote": {"sku": "A1", "vendor": "euro", "amount": 9.0, '
                       '"currency": "EUR"}}\n'
                     + '{"Quote": {"sku": "B2", "vendor": "brit", "amount": 15.0, '
                       '"currency": "GBP"}}\n', encoding="utf-8")
    return facts


def _export(backend: Backend, job: int) -> list[str]:
    with backend.open() as store:
        return list(store.trace_lines(job))


def test_a_timed_job_keeps_its_timings_and_the_same_trace(
    tmp_path: Path, backend: Backend,
) -> None:
    loaded = converge_rules.load(PRICING)
    inputs = api.read_facts(loaded, _pricing_facts(tmp_path))
    plain = api.run(loaded, inputs, store=backend.location, now=None)
    timings = Timings()
    timed = api.run(loaded, inputs, store=backend.location, now=None, timings=timings)
    assert timed.to_json() == plain.to_json()
    assert _export(backend, 2) == _export(backend, 1)
    with backend.open() as store:
        assert store.timings(1) == []  # not timed
        rows = store.timings(2)
    assert rows == timings.records()
    kinds = Counter(r["kind"] for r in rows)
    assert kinds["cycle"] == timed.cycles + 1 and kinds["agent"] and kinds["tool"]
    assert {r["source"] for r in rows if r["kind"] == "tool"} <= {"called", "memo"}


def test_timings_add_no_transaction_of_their_own(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ruleset, facts = counter(tmp_path, 12)
    loaded = converge_rules.load(ruleset)
    inputs = api.read_facts(loaded, facts)
    writes: list[int] = []
    real = SqliteStore._write

    def counting(self: SqliteStore, *args: Any, **kwargs: Any) -> None:
        writes[-1] += 1
        real(self, *args, **kwargs)

    monkeypatch.setattr(SqliteStore, "_write", counting)
    for timings in (None, Timings()):
        writes.append(0)
        # one transaction a cycle (group commit would make the count depend on time)
        api.run(loaded, inputs, store=backend.grouped(1), now=None, timings=timings)
    assert writes[0] == writes[1] > 12  # one transaction a cycle, timed or not
    with backend.open() as store:
        assert len([r for r in store.timings(2) if r["kind"] == "cycle"]) == 14


def test_a_resumed_job_keeps_each_cycles_timings_once(
    tmp_path: Path, backend: Backend,
) -> None:
    ruleset, facts = counter(tmp_path, 10)
    loaded = converge_rules.load(ruleset)
    inputs = api.read_facts(loaded, facts)
    asked = [0]

    def stop() -> bool:
        asked[0] += 1
        return asked[0] > 4  # four cycles, then interrupted

    first = api.run(loaded, inputs, store=backend.location, now=None, timings=Timings(),
                    stop=stop)
    assert first.status == "interrupted"
    with backend.open() as store:
        before = store.timings(1)
    assert sorted(r["cycle"] for r in before if r["kind"] == "cycle") == [0, 1, 2, 3, 4]
    resumed = api.resume(backend.location, 1, ruleset=loaded, timings=Timings())
    assert resumed.status == "converged"
    with backend.open() as store:
        after = store.timings(1)
    cycles = [r["cycle"] for r in after if r["kind"] == "cycle"]
    assert sorted(cycles) == list(range(resumed.cycles + 1))  # each once
    assert after[:len(before)] == before  # the first run's own, as they were


def test_gc_deletes_a_jobs_timings_and_store_info_counts_them(
    tmp_path: Path, backend: Backend,
) -> None:
    ruleset, facts = counter(tmp_path, 3)
    loaded = converge_rules.load(ruleset)
    inputs = api.read_facts(loaded, facts)
    for _ in range(2):
        api.run(loaded, inputs, store=backend.location, now=None, timings=Timings())
    with backend.open() as store:
        n = len(store.timings(1))
        assert n and store.info().tables["timings"]["rows"] == 2 * n
        assert store.gc(1, vacuum=False) == [1]
        assert store.timings(1) == []
        assert store.info().tables["timings"]["rows"] == n


def test_converge_run_with_a_store_records_timings(tmp_path: Path, backend: Backend) -> None:
    out = invoke("run", PRICING, "-f", _pricing_facts(tmp_path), "--store", backend.location)
    assert out.exit_code == 0, out.output
    with backend.open() as store:
        rows = store.timings(1)
    assert {r["kind"] for r in rows} == {"cycle", "agent", "tool"}


def test_a_job_resumed_from_its_checkpoints_keeps_timing_its_cycles(
    tmp_path: Path, backend: Backend,
) -> None:
    """Found by hand: a resume from checkpoints (no cycle re-executed) dropped the
    ``timings`` given to it: the cycles after the checkpoint had none in the store."""
    path = tmp_path / "keyed.cvg"
    path.write_text("ruleset keyed\nfact Count { key id: str, n: int }\n"
                    "fact Seen { id: str, n: int }\n"
                    "agent step { when Count(id, n) where n < 6 emit Count(id: id, n: n + 1) }\n"
                    "agent note { when Count(id, n) emit Seen(id: id, n: n) }\n"
                    "policy Count { resolve by latest }\n")
    loaded = converge_rules.load(path)
    asked = iter([False] * 3)
    first = api.run(loaded, [("Count", {"id": "a", "n": 0})], store=backend.location,
                    now=None, timings=Timings(), stop=lambda: next(asked, True))
    assert first.status == "interrupted"
    timings = Timings()
    resumed = api.resume(backend.location, 1, ruleset=loaded, timings=timings)
    assert resumed.status == "converged" and resumed.resumed_from == 3
    with backend.open() as store:
        cycles = [r["cycle"] for r in store.timings(1) if r["kind"] == "cycle"]
    assert sorted(cycles) == list(range(resumed.cycles + 1))  # each once
    assert {r["cycle"] for r in timings.records()} == set(range(4, resumed.cycles + 1))


def test_a_job_given_more_facts_on_resume_keeps_timing_its_new_cycles(
    tmp_path: Path, backend: Backend,
) -> None:
    """Found by hand: `converge run --resume run.db --facts more.jsonl --timings FILE`
    wrote an empty FILE and the store kept no timings of the new cycles (extend()
    dropped the timings)."""
    path = tmp_path / "keyed.cvg"
    path.write_text("ruleset keyed\nfact Count { key id: str, n: int }\n"
                    "agent step { when Count(id, n) where n < 4 emit Count(id: id, n: n + 1) }\n"
                    "policy Count { resolve by latest }\n")
    loaded = converge_rules.load(path)
    first = api.run(loaded, [("Count", {"id": "a", "n": 0})], store=backend.location,
                    now=None, timings=Timings())
    assert first.status == "converged"
    with backend.open() as store:
        before = store.timings(1)
    timings = Timings()
    more = api.resume(backend.location, 1, ruleset=loaded, timings=timings,
                      facts=[("Count", {"id": "b", "n": 0})])
    assert more.status == "converged" and more.cycles > first.cycles
    with backend.open() as store:
        after = store.timings(1)
    assert after[:len(before)] == before
    new = {r["cycle"] for r in after[len(before):]}
    assert new and min(new) > first.cycles and max(new) == more.cycles
    assert max(r["cycle"] for r in timings.records()) == more.cycles
