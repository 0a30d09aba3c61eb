"""A lean effect's columnar outputs in a trace row (engine/tracerows.py ``compact``,
schema version 10): the ids of a batch whose every output was a new fact written as
their count, the packed columns (values of int fields, supports, other ids) as the
narrowest of 16/32/64-bit ints in base64. The trace a store gives back is byte for
byte the ``--trace`` file whatever the batch (outputs equal to older facts, ints of
every width, fields that are no ints, facts that may leave), rows of the older form
(64-bit hex) still read, and a converge that knows no such rows refuses the store."""

from __future__ import annotations

import json
import re
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules import api
from converge_rules.engine import tracerows
from converge_rules.integrity import verify_lines
from converge_rules.store import sqlite
from converge_rules.store.sqlite import SqliteStore

CLOSURE = """\
ruleset closure
root "closure" {
  max_cycles = 1000
}
fact Edge { a: int, b: int }
fact Path { a: int, b: int }
agent base { when Edge(a, b) emit Path(a: a, b: b) }
agent step { when Path(a, b) and Edge(a: b, b: c) emit Path(a: a, b: c) }
"""

NAMED = CLOSURE.replace("a: int, b: int }\nfact Path { a: int, b: int }",
                        "a: str, b: str }\nfact Path { a: str, b: str }")

PRUNED = CLOSURE.replace('max_cycles = 1000\n}', 'max_cycles = 1000\n}\n'
                         'prune Path when age >= 50')

# a chain, a diamond (outputs equal to paths already there: not every output of
# those batches is a new fact) and ints of every width (16-, 32- and 64-bit, negative)
EDGES = [*((i, i + 1) for i in range(12)), (0, 5), (2, 40_000), (40_000, 3),
         (3, -70_000), (1, 2**40), (2**40, -(2**62))]


def _stored_and_traced(tmp_path: Path, text: str, edges: list[tuple[Any, Any]]
                       ) -> tuple[list[str], list[str], sqlite3.Connection]:
    program = converge_rules.loads(text, plugins=False)
    facts = [("Edge", {"a": a, "b": b}) for a, b in edges]
    traced = list(api.run(program, facts, now=None).trace.lines())
    api.run(program, facts, store=tmp_path / "s.db", now=None)
    with SqliteStore(tmp_path / "s.db") as store:
        stored = list(store.trace_lines(store.jobs()[-1].id))
    return traced, stored, sqlite3.connect(tmp_path / "s.db")


def _column_events(db: sqlite3.Connection) -> list[list[Any]]:
    events = []
    for (text,) in db.execute("SELECT data FROM trace_rows WHERE kind = 'events'"):
        events += [ev for ev in json.loads(text)[1] if ev[0] == 17 and ev[7] is None]
    return events


@pytest.mark.parametrize("text", [CLOSURE, NAMED, PRUNED], ids=["ints", "strs", "pruned"])
def test_a_stored_closure_reads_back_as_its_trace_file(tmp_path: Path, text: str) -> None:
    edges = EDGES if text != NAMED else [(str(a), str(b)) for a, b in EDGES]
    traced, stored, db = _stored_and_traced(tmp_path, text, edges)
    assert stored == traced and verify_lines(stored).ok
    assert _column_events(db)  # (the rows hold columnar events)


def test_a_batch_of_new_facts_keeps_no_ids_and_columns_keep_the_narrowest_ints(
    tmp_path: Path,
) -> None:
    traced, stored, db = _stored_and_traced(tmp_path, CLOSURE, [(i, i + 1) for i in range(40)])
    assert stored == traced
    events = _column_events(db)
    # every batch of the chain's closure is new paths: their count, not their ids
    assert events and all(type(ev[3]) is int for ev in events)
    assert sum(ev[3] for ev in events) == 40 * 41 // 2
    # nodes below 2**15 in 16 bits; fact ids (the supports) too, as there are few
    assert all(ev[6].startswith("h:") and ev[9].startswith("h:") for ev in events)


def test_a_batch_with_outputs_equal_to_older_facts_keeps_its_ids(tmp_path: Path) -> None:
    traced, stored, db = _stored_and_traced(tmp_path, CLOSURE, EDGES)
    assert stored == traced
    ids = [ev[3] for ev in _column_events(db)]
    assert any(type(i) is str for i in ids) and any(type(i) is int for i in ids)
    widths = {ev[6][0] for ev in _column_events(db)}
    assert widths == {"h", "i", "q"}


@pytest.mark.parametrize("ints", [[], [0], [-2**15, 2**15 - 1], [2**15], [-2**31 - 1],
                                  [2**63 - 1, -2**63, 0]])
def test_packed_ints_read_back_as_they_were_in_the_narrowest_width(ints: list[int]) -> None:
    text = tracerows._packed(ints)
    assert list(tracerows._unpacked(text)) == ints
    width = {"h": 2, "i": 4, "q": 8}[text[0]]
    assert all(-(2 ** (8 * width - 1)) <= i < 2 ** (8 * width - 1) for i in ints)
    assert width == 2 or not all(-2**15 <= i < 2**15 for i in ints)
    with pytest.raises(struct.error):
        tracerows._packed([2**64])


def _older_form(text: str) -> str:
    """A row's text as the converge before schema version 10 wrote it: ids as the hex
    of 64-bit ints, packed columns likewise."""
    names, events = json.loads(text)
    for ev in events:
        if ev[0] == 17 and ev[7] is None:
            ids = (range(ev[4], ev[4] + ev[3]) if type(ev[3]) is int
                   else tracerows._unpacked(ev[3]))
            ev[3] = tracerows._ints(list(ids))
            ev[9] = tracerows._ints(list(tracerows._unpacked(ev[9])))
            if type(ev[6]) is str:
                ev[6] = tracerows._ints(list(tracerows._unpacked(ev[6])))
    return json.dumps([names, events], separators=(",", ":"))


def test_rows_of_the_older_form_read_as_before(tmp_path: Path) -> None:
    traced, _, db = _stored_and_traced(tmp_path, CLOSURE, EDGES)
    expander = tracerows.Expander()
    lines = []
    for kind, text in db.execute(
            "SELECT kind, coalesce(packed, data) FROM trace_rows ORDER BY seq"):
        if kind == "events":
            older = _older_form(text)
            assert not re.search(r'"[hiq]:', older)
            text = older
        lines += expander.lines(kind, text)
    assert lines == [re.sub(r',"hash":"[0-9a-f]{64}"', "", line) for line in traced]


def test_a_converge_that_knows_no_such_rows_refuses_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    program = converge_rules.loads(CLOSURE, plugins=False)
    api.run(program, [("Edge", {"a": 0, "b": 1})], store=tmp_path / "s.db", now=None)
    monkeypatch.setattr(sqlite, "MIGRATIONS", sqlite.MIGRATIONS[:9])
    monkeypatch.setattr(sqlite, "SCHEMA_VERSION", 9)
    with pytest.raises(sqlite.StoreError, match="newer than this converge knows"):
        SqliteStore(tmp_path / "s.db")
