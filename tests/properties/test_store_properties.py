"""The job store keeps the trace exactly: for random inputs and any completion order,
the trace read back from a SQLite store is the JSON Lines trace, byte for byte, and
its per-cycle sizes add up to it."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from converge_rules.engine import run
from converge_rules.store.sqlite import SqliteStore
from tests.properties.test_engine_properties import EDGES, PROGRAM, ShuffledExecutor, _facts


@settings(max_examples=25, deadline=None)
@given(EDGES, st.randoms(use_true_random=False))
def test_the_stored_trace_is_the_trace(edges: list[tuple[str, str]],
                                       rng: random.Random) -> None:
    expected = run(PROGRAM, _facts(edges)).trace.to_jsonl()
    with tempfile.TemporaryDirectory() as tmp, SqliteStore(Path(tmp) / "run.db") as store:
        stored = run(PROGRAM, _facts(edges), executor=ShuffledExecutor(rng),
                     trace=store.new_job("prop"))
        job = store.job(None)
        assert job.status == stored.status
        assert "".join(f"{line}\n" for line in store.trace_lines(job.id)) == expected
        sizes = store.cycle_sizes(job.id)
        assert [c for c, _, _ in sizes] == list(range(stored.cycles + 1))
        assert sum(n for _, n, _ in sizes) == expected.count("\n")
        assert sum(b for _, _, b in sizes) == job.trace_bytes
