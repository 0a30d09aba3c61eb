"""The trace rows' chain covers every column a reader or a resume relies on, in every
store backend: an edit of a row's text, first line number (``seq``), cycle, line count
or format is caught by the line chain ``converge verify`` checks, at the row's first
line (found by review r22: ``seq``, ``cycle`` and ``lines`` were not covered)."""

from __future__ import annotations

from pathlib import Path

import pytest

import converge_rules
from converge_rules import api
from converge_rules.integrity import verify_lines
from tests.store.conftest import Backend
from tests.store.test_sqlite_store import counter

EDITS = {
    "seq": "seq = seq + 1000",
    "cycle": "cycle = cycle + 1",
    "lines": "lines = lines + 1",
    "kind": "kind = 'text'",
    "data": "data = replace(data, '5', '6')",
    # a hash that is no hex at all (the next row's hash follows from it): tampered,
    # not an internal error (review r23a: bytes.fromhex raised)
    "hash": "hash = 'zz'",
    "hash of odd length": "hash = substr(hash, 2)",
}


@pytest.mark.parametrize("column", list(EDITS))
def test_an_edit_of_any_column_of_a_stored_trace_row_is_caught(
    tmp_path: Path, backend: Backend, column: str,
) -> None:
    ruleset, facts = counter(tmp_path, 8)
    loaded = converge_rules.load(ruleset)
    api.run(loaded, api.read_facts(loaded, facts), store=backend.location, now=None)
    with backend.open() as store:
        job = store.job(None).id
        assert verify_lines(list(store.trace_lines(job))).ok
    with backend.connect() as db:
        second = int(db.execute("SELECT seq FROM trace_rows ORDER BY seq LIMIT 1 OFFSET 1"
                                ).fetchone()[0])
        db.execute(f"UPDATE trace_rows SET {EDITS[column]} WHERE seq = ?", (second,))
    with backend.open() as store:
        verdict = verify_lines(list(store.trace_lines(job)))
    assert not verdict.ok
    assert verdict.line == second + 1  # the first line of the second row
