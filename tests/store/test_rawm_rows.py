"""Trace rows of format ``rawm`` (session 28): a raw row's list msgpack-encoded
(engine/tracerows.py ``raw_text``), its bytes in ``trace_rows.packed``. What msgpack
does not keep exactly goes to the JSON row as before; a row whose bytes were edited
breaks the chain, and one forged with its chain made to hold is an unreadable row,
never an error."""

from __future__ import annotations

import datetime
import json
import sqlite3
from array import array
from pathlib import Path

import pytest

import converge_rules
from converge_rules import api
from converge_rules.engine import tracerows
from converge_rules.engine.tracerows import (
    FIRST_ROW,
    RAW,
    RAWM,
    Expander,
    raw_text,
    row_columns,
    row_hash,
)
from converge_rules.integrity import verify_lines
from converge_rules.store import sqlite
from converge_rules.store.sqlite import SqliteStore
from tests.store.test_raw_rows import PRUNED

EVENTS = [(1, 3, 0, [0, 1]), (2, 3, 0, [4], [], [5])]


def _row(*values: object) -> list[object]:
    return [4, array("i", [0] * len(values)), [(v, "x") for v in values], [], [], EVENTS]


def _as_json(row: list[object]) -> object:
    kind, text = raw_text(row) or ("", "")
    if kind == RAWM:
        assert isinstance(text, bytes)
        return tracerows._unpack(b"\x97\xc0" + text)[1:]
    return json.loads(f"[{text}]")


@pytest.mark.parametrize("value", [
    0, -1, 2**63 - 1, -2**63, 0.1, -0.0, 1e308, True, None, "a\u00e9\"\u2028\U0001f600",
    "", [1, [2.5, "b"]], (1, 2), datetime.date(2026, 12, 7),
    datetime.timedelta(days=1, seconds=3),
])
def test_what_msgpack_keeps_exactly_is_a_rawm_row_that_reads_as_json_does(
        value: object) -> None:
    row = _row(value)
    encoded = raw_text(row)
    assert encoded is not None and encoded[0] == RAWM
    assert _as_json(row) == json.loads(f"[{tracerows._dumps(row)[1:-1]}]")


@pytest.mark.parametrize(("value", "kind"), [
    (2**64, RAW), (-2**63 - 1, RAW), (10**30, RAW),   # ints beyond 64 bits: JSON keeps
    ("lone \ud800", RAW),                               # a lone surrogate: JSON escapes it
    (float("nan"), None), (float("inf"), None),         # neither (the models write them)
    (-float("inf"), None), (object(), None),
])
def test_what_msgpack_does_not_keep_exactly_goes_as_before(value: object,
                                                            kind: str | None) -> None:
    encoded = raw_text(_row(1, value))
    assert (encoded and encoded[0]) == kind


def _stored(tmp_path: Path) -> tuple[Path, list[str]]:
    program = converge_rules.loads(PRUNED, plugins=False)
    facts = [("Tick", {"id": "t", "n": 0})]
    api.run(program, facts, trace=tmp_path / "t.jsonl", now=None)
    api.run(program, facts, store=f"sqlite:///{tmp_path}/s.db?group=7", now=None)
    return tmp_path / "s.db", (tmp_path / "t.jsonl").read_text().splitlines()


def _lines(db: Path) -> list[str]:
    with SqliteStore(db) as store:
        return list(store.trace_lines(store.job(None).id))


def test_rawm_rows_hold_bytes_and_read_back_as_the_trace_file(tmp_path: Path) -> None:
    db, expected = _stored(tmp_path)
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT kind, data, packed FROM trace_rows").fetchall()
    assert {k for k, _, _ in rows} == {RAWM, "events"}
    assert all(type(p) is bytes and d == "" for k, d, p in rows if k == RAWM)
    assert all(p is None and d for k, d, p in rows if k != RAWM)
    assert _lines(db) == expected


FORGED = [
    b"",                                   # nothing
    b"\x97",                               # cut short
    b"\x97\xc0\x01",                       # a row cut short
    b"\xdd\xff\xff\xff\xff",               # an array larger than the data
    b"\x97\xc7\x01\x05x\x00\x90\x90\x90\x90\x90",  # an extension type
    b"\x97\xc0\x00\x90\x90\x90\x90\x91\x91\x00",   # an event of no kind
    b"\x97\xa1x\x00\x90\x90\x90\x90\x90",  # names that are no JSON
    b"\x97\xc0\x00\x90\x90\x90\x90\x90\x00",        # a byte after the row
    b"\x91" * 100_000,                     # nested beyond msgpack's limit
    b"\xc1",                               # a byte msgpack never writes
]


@pytest.mark.parametrize("forged", FORGED, ids=range(len(FORGED)))
def test_a_rawm_row_forged_with_its_chain_is_unreadable_not_an_error(
        tmp_path: Path, forged: bytes) -> None:
    db, _ = _stored(tmp_path)
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT seq, cycle, lines, kind, data, packed FROM trace_rows "
                           "ORDER BY seq").fetchall()
        at = next(i for i, row in enumerate(rows) if row[3] == RAWM and i)
        rows[at] = (*rows[at][:5], forged)
        previous = FIRST_ROW
        for seq, cycle, lines, kind, data, packed in rows:  # the chain made to hold
            previous = row_hash(previous, data if packed is None else packed,
                                row_columns(seq, cycle, lines, kind))
            con.execute("UPDATE trace_rows SET packed = ?, hash = ? WHERE seq = ?",
                        (packed, previous, seq))
    lines = _lines(db)
    assert any('"event":"unreadable_trace_row"' in line for line in lines)
    assert not verify_lines(lines).ok
    with pytest.raises(ValueError):
        Expander().lines(RAWM, forged)


@pytest.mark.parametrize("edit", [
    "packed = CAST(substr(packed, 1, length(packed) - 1) || x'00' AS BLOB)",  # a byte
    "packed = 'x'",                               # text for the bytes
    "data = 'x'",                                 # the empty text beside the bytes
    "kind = 'raw'",                               # its format
], ids=["bytes", "text-bytes", "text", "format"])
def test_any_edit_of_a_rawm_row_breaks_the_chain(tmp_path: Path, edit: str) -> None:
    db, expected = _stored(tmp_path)
    with sqlite3.connect(db) as con:
        seq = con.execute("SELECT seq FROM trace_rows WHERE kind = 'rawm' ORDER BY seq "
                          "LIMIT 1 OFFSET 1").fetchone()[0]
        con.execute(f"UPDATE trace_rows SET {edit} WHERE seq = ?", (seq,))
    lines = _lines(db)
    assert lines != expected
    report = verify_lines(lines)
    assert not report.ok


def test_a_converge_that_knows_no_rawm_rows_refuses_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _stored(tmp_path)
    monkeypatch.setattr(sqlite, "MIGRATIONS", sqlite.MIGRATIONS[:10])
    monkeypatch.setattr(sqlite, "SCHEMA_VERSION", 10)
    with pytest.raises(sqlite.StoreError, match="newer than this converge knows"):
        SqliteStore(tmp_path / "s.db")
