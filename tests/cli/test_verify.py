"""``converge verify`` (issue 14, item 3): the integrity chain of a trace or a stored job
catches every edit, deletion, reordering and truncation, naming the first bad line; a
result's facts_root and trace_head bind it to its trace; a trace written before the
chain is said to be unverifiable (exit 3); the digests are the same for every executor
and worker count."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from converge_rules import api
from converge_rules.cli import main
from converge_rules.integrity import (
    GENESIS,
    facts_root,
    merkle_root,
    strip_hash,
    verify_lines,
)

REPO = Path(__file__).resolve().parents[2]
PRICING = REPO / "rulesets" / "pricing" / "pricing.cvg"
PRICING_INPUT = REPO / "rulesets" / "pricing" / "input.jsonl"


def invoke(*args: str | Path) -> Any:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    return result


@pytest.fixture()
def recorded(tmp_path: Path) -> tuple[Path, Path]:
    """A trace and the JSON result of the same run."""
    trace = tmp_path / "t.jsonl"
    ran = invoke("run", PRICING, "-f", PRICING_INPUT, "--trace", trace,
                 "--format", "json")
    assert ran.exit_code == 0, ran.output
    result = tmp_path / "out.json"
    result.write_text(ran.stdout, encoding="utf-8")
    return trace, result


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_an_untouched_trace_and_its_result_verify(recorded: tuple[Path, Path]) -> None:
    trace, result = recorded
    done = invoke("verify", trace, "--result", result)
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"intact: {trace}: 21 lines")
    proof = json.loads(result.read_text())["integrity"]
    assert proof["trace_head"] == json.loads(lines_of(trace)[-1])["hash"]
    assert proof["facts_root"] == facts_root(json.loads(result.read_text())["facts"])


def _first_of_cycle_1(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if '"cycle":1,' in line)


def _edit(lines: list[str]) -> tuple[list[str], int]:
    i = _first_of_cycle_1(lines)
    lines[i] = lines[i].replace('"cycle":1', '"cycle":2', 1)
    assert '"cycle":2' in lines[i]
    return lines, i + 1


def _edit_and_rehash(lines: list[str]) -> tuple[list[str], int]:
    """An edited line given the hash that follows from it: the next line breaks."""
    from converge_rules.integrity import chain, split_hash

    i = _first_of_cycle_1(lines)
    before = split_hash(lines[i - 1])[1]
    assert before is not None
    edited = strip_hash(lines[i]).replace('"cycle":1', '"cycle":2', 1)
    ((lines[i], _),) = chain([edited], bytes.fromhex(before))
    return lines, i + 2


def _delete(lines: list[str]) -> tuple[list[str], int]:
    del lines[4]
    return lines, 5


def _delete_first(lines: list[str]) -> tuple[list[str], int]:
    return lines[1:], 1


def _swap(lines: list[str]) -> tuple[list[str], int]:
    lines[7], lines[8] = lines[8], lines[7]
    return lines, 8


def _insert(lines: list[str]) -> tuple[list[str], int]:
    lines.insert(3, lines[2])
    return lines, 4


def _drop_hash(lines: list[str]) -> tuple[list[str], int]:
    lines[10] = strip_hash(lines[10])
    return lines, 11


@pytest.mark.parametrize("tamper", [_edit, _edit_and_rehash, _delete, _delete_first,
                                    _swap, _insert, _drop_hash])
def test_any_tampering_names_the_first_bad_line(recorded: tuple[Path, Path],
                                                tamper: Any) -> None:
    trace, _ = recorded
    lines, bad = tamper(lines_of(trace))
    write(trace, lines)
    done = invoke("verify", trace)
    assert done.exit_code == 1, done.output
    assert done.output.startswith(f"TAMPERED: {trace}\n  line {bad} (")


@pytest.mark.parametrize("keep", [1, 10, 20])
def test_a_cut_trace_is_caught(recorded: tuple[Path, Path], keep: int) -> None:
    trace, _ = recorded
    write(trace, lines_of(trace)[:keep])
    done = invoke("verify", trace)
    assert done.exit_code == 1, done.output
    assert f"line {keep + 1} (the end): the trace ends without its status event" in (
        done.output)


def test_a_trace_cut_and_given_a_status_line_is_caught_by_the_result(
    recorded: tuple[Path, Path]
) -> None:
    """Cut after cycle 1 and given a forged (correctly chained) status line: only the
    result's trace_head, kept elsewhere, tells."""
    from converge_rules.integrity import chain, split_hash

    trace, result = recorded
    lines = lines_of(trace)
    cut = next(i for i, line in enumerate(lines) if '"event":"cycle_end"' in line) + 1
    head = split_hash(lines[cut - 1])[1]
    assert head is not None
    ((status, _),) = chain([strip_hash(lines[-1])], bytes.fromhex(head))
    write(trace, [*lines[:cut], status])
    assert invoke("verify", trace).exit_code == 0  # the chain alone cannot tell
    done = invoke("verify", trace, "--result", result)
    assert done.exit_code == 1, done.output
    assert "is not the trace_head" in done.output


def test_an_edited_result_is_caught(recorded: tuple[Path, Path]) -> None:
    trace, result = recorded
    data = json.loads(result.read_text())
    data["facts"]["Price"][0]["amount"] += 1
    result.write_text(json.dumps(data))
    done = invoke("verify", trace, "--result", result)
    assert done.exit_code == 1, done.output
    assert "a fact was edited, added or removed" in done.output


def test_a_result_without_a_proof_is_bad_usage(recorded: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    trace, _ = recorded
    ran = invoke("run", PRICING, "-f", PRICING_INPUT, "--format", "json")
    assert "integrity" not in json.loads(ran.stdout)  # no trace written: nothing to bind
    bare = tmp_path / "bare.json"
    bare.write_text(ran.stdout)
    done = invoke("verify", trace, "--result", bare)
    assert done.exit_code == 2
    assert "holds no integrity proof" in done.output


def test_a_trace_without_hashes_cannot_be_verified_and_still_reads(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    trace, _ = recorded
    old = tmp_path / "old.jsonl"
    write(old, [strip_hash(line) for line in lines_of(trace)])
    done = invoke("verify", old)
    assert done.exit_code == 3
    assert "carries no hashes" in done.output
    # what reads traces reads it as before
    assert invoke("replay", PRICING, old, ).exit_code == 0
    assert invoke("replay", PRICING, trace, ).exit_code == 0
    for path in (old, trace):
        assert invoke("explain", "--trace", path, "-r", PRICING, "Price()").exit_code == 0


def test_the_first_line_edited_and_stripped_of_its_hash_is_tampered_not_unhashed(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    """Removing the first line's hash must not pass the trace off as an old one."""
    trace, result = recorded
    lines = lines_of(trace)
    lines[0] = strip_hash(lines[0]).replace('"amount":10.0', '"amount":1.0', 1)
    assert '"amount":1.0' in lines[0]
    forged = tmp_path / "forged.jsonl"
    write(forged, lines)
    for extra in ((), ("--result", result)):
        done = invoke("verify", forged, *extra)
        assert done.exit_code == 1, done.output
        assert "TAMPERED" in done.output and "line 1 " in done.output


@pytest.mark.parametrize("facts", [{"Cost": [1, 2]}, {"Cost": 5}, {"Cost": [None]}])
def test_a_result_whose_facts_are_misshapen_is_tampered_not_an_internal_error(
    recorded: tuple[Path, Path], tmp_path: Path, facts: Any
) -> None:
    trace, result = recorded
    data = json.loads(result.read_text())
    data["facts"] = facts
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    done = invoke("verify", trace, "--result", bad)
    assert done.exit_code == 1, done.output
    assert "TAMPERED" in done.output and "not a result's facts" in done.output


def _store_run(tmp_path: Path) -> Path:
    db = tmp_path / "run.db"
    # one cycle a transaction: a trace row each (a row holds a transaction's cycles)
    ran = invoke("run", PRICING, "-f", PRICING_INPUT, "--store", f"{db}?group=1")
    assert ran.exit_code == 0, ran.output
    return db


def _rows(db: Path) -> list[tuple[int, int, Any]]:
    """``(first line, lines, text)`` of each trace row of job 1 (the store keeps a
    row of raw events per transaction, here per cycle, expanded to lines when read;
    the text of a row of format rawm its msgpack bytes)."""
    with sqlite3.connect(db) as con:
        return [(int(s), int(n), x) for s, n, x in con.execute(
            "SELECT seq, lines, coalesce(packed, data) FROM trace_rows WHERE job = 1 "
            "ORDER BY seq")]


def _set_text(con: sqlite3.Connection, seq: int, text: str | bytes) -> None:
    """The text of job 1's row ``seq`` set (its bytes for msgpack's)."""
    column = "packed" if isinstance(text, bytes) else "data"
    con.execute(f"UPDATE trace_rows SET {column} = ? WHERE job = 1 AND seq = ?",
                (text, seq))


def _bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode()


def test_a_stored_job_verifies(tmp_path: Path) -> None:
    db = _store_run(tmp_path)
    done = invoke("verify", db, "--job", "1")
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"intact: job 1 of {db}: 21 lines")


@pytest.mark.parametrize("how", ["edit", "delete", "swap", "truncate", "rehash"])
def test_tampering_with_a_store_is_caught(tmp_path: Path, how: str) -> None:
    db = _store_run(tmp_path)
    rows = _rows(db)
    assert len(rows) >= 4, rows
    with sqlite3.connect(db) as con:
        if how in ("edit", "rehash"):
            seq, _, text = rows[1]  # a cycle's events: a fact's amount changed
            edited = (text.replace(b"\xa3web", b"\xa3app", 1) if isinstance(text, bytes)
                      else text.replace('"web"', '"app"', 1))
            assert edited != text
            _set_text(con, seq, edited)
            if how == "rehash":  # the row's own hash recomputed: the next row breaks
                before = con.execute("SELECT hash FROM trace_rows WHERE job = 1 AND seq = ?",
                                     (rows[0][0],)).fetchone()[0]
                cycle, kind = con.execute("SELECT cycle, kind FROM trace_rows WHERE "
                                          "job = 1 AND seq = ?", (seq,)).fetchone()
                columns = f"{seq} {cycle} {rows[1][1]} {kind}\n"  # the chain covers them
                digest = hashlib.sha256(bytes.fromhex(before) + columns.encode()
                                        + _bytes(edited)).hexdigest()
                con.execute("UPDATE trace_rows SET hash = ? WHERE job = 1 AND seq = ?",
                            (digest, seq))
                bad = rows[2][0] + 1
            else:
                bad = seq + 1
        elif how == "delete":
            con.execute("DELETE FROM trace_rows WHERE job = 1 AND seq = ?", (rows[1][0],))
            bad = rows[1][0] + 1  # the row after it now starts there
        elif how == "swap":
            (a, _, ta), (b, _, tb) = rows[1], rows[2]
            con.execute("UPDATE trace_rows SET data = ?, packed = ? WHERE job = 1 AND "
                        "seq = ?", ("" if isinstance(tb, bytes) else tb,
                                    tb if isinstance(tb, bytes) else None, a))
            con.execute("UPDATE trace_rows SET data = ?, packed = ? WHERE job = 1 AND "
                        "seq = ?", ("" if isinstance(ta, bytes) else ta,
                                    ta if isinstance(ta, bytes) else None, b))
            bad = a + 1
        else:
            con.execute("DELETE FROM trace_rows WHERE job = 1 AND seq >= ?", (rows[-2][0],))
            bad = rows[-2][0] + 1
    done = invoke("verify", db)
    assert done.exit_code == 1, done.output
    assert f"  line {bad} (" in done.output


@pytest.mark.parametrize("edit", ["cycle = cycle + 1", "lines = lines + 1",
                                  "lines = lines - 1", "seq = seq + 1000"])
def test_an_edit_of_a_stored_rows_other_columns_is_caught(tmp_path: Path,
                                                           edit: str) -> None:
    """Found by review (r22): the row chain hashed a row's text alone, so an edit of
    its ``cycle``, ``lines`` or ``seq`` column (which a resume reads to know where its
    cycles end) left ``converge verify`` saying intact."""
    db = _store_run(tmp_path)
    rows = _rows(db)
    with sqlite3.connect(db) as con:
        if edit.startswith("seq"):  # every row moved on: the order is kept
            con.execute("UPDATE trace_rows SET seq = seq + 1000 WHERE job = 1")
            bad = rows[0][0] + 1
        else:
            con.execute(f"UPDATE trace_rows SET {edit} WHERE job = 1 AND seq = ?",
                        (rows[1][0],))
            bad = rows[1][0] + 1
    done = invoke("verify", db)
    assert done.exit_code == 1, done.output
    assert "TAMPERED" in done.output and f"  line {bad} (" in done.output


def test_a_stored_row_edited_to_text_that_is_not_ascii_is_tampered(tmp_path: Path
                                                                   ) -> None:
    """Found while covering the columns: the row chain encoded a row's text as ASCII
    (what the store writes), so a row edited to hold an ``é`` made ``converge verify``
    fail with an internal error (UnicodeEncodeError) instead of naming the row."""
    db = _store_run(tmp_path)
    seq, _, text = _rows(db)[1]
    with sqlite3.connect(db) as con:  # (a row of format rawm: text for its bytes)
        edited = (text.decode("latin-1") if isinstance(text, bytes) else text).replace(
            '"web"' if isinstance(text, str) else "web", "w\u00e9b", 1)
        assert edited != text
        con.execute("UPDATE trace_rows SET data = ? WHERE job = 1 AND seq = ?",
                    (edited, seq))
    done = invoke("verify", db)
    assert done.exit_code == 1, done.output
    assert f"  line {seq + 1} (" in done.output


def _rehash(db: Path, old: Callable[[int], bool]) -> None:
    """Rechain job 1's rows, those whose first line ``old`` takes hashed as converge
    hashed them before the row chain covered a row's columns (its text alone)."""
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT seq, cycle, lines, kind, coalesce(packed, data) "
                           "FROM trace_rows WHERE job = 1 ORDER BY seq").fetchall()
        previous = GENESIS.hex()
        for seq, cycle, lines, kind, data in rows:
            columns = "" if old(seq) else f"{seq} {cycle} {lines} {kind}\n"
            previous = hashlib.sha256(bytes.fromhex(previous) + columns.encode()
                                      + _bytes(data)).hexdigest()
            con.execute("UPDATE trace_rows SET hash = ? WHERE job = 1 AND seq = ?",
                        (previous, seq))


def test_a_job_stored_before_the_row_chain_covered_the_columns_verifies(
        tmp_path: Path) -> None:
    """Rows whose hash covers their text alone (an older converge's) verify as before,
    and so do the rows a resume of such a job adds after them, which cover their
    columns; an old row's line count is still checked against the lines it gives."""
    db = _store_run(tmp_path)
    rows = _rows(db)
    for resumed_at in (rows[-1][0] + 1, rows[2][0]):  # all rows old; the last two new
        _rehash(db, lambda seq: seq < resumed_at)  # noqa: B023 - called at once
        done = invoke("verify", db)
        assert done.exit_code == 0, done.output
        assert done.output.startswith(f"intact: job 1 of {db}: 21 lines")
    with sqlite3.connect(db) as con:
        con.execute("UPDATE trace_rows SET lines = lines + 1 WHERE job = 1 AND seq = ?",
                    (rows[1][0],))
    done = invoke("verify", db)
    assert done.exit_code == 1, done.output
    assert f"  line {rows[1][0] + 1} (" in done.output


def test_a_row_after_one_covering_its_columns_must_cover_them(tmp_path: Path) -> None:
    """The versioned rule: once a job's row chain covers the columns, a later row
    hashed the old way (its text alone, the chain otherwise intact) is tampered."""
    db = _store_run(tmp_path)
    rows = _rows(db)
    _rehash(db, lambda seq: seq == rows[-1][0])
    done = invoke("verify", db)
    assert done.exit_code == 1, done.output
    assert f"  line {rows[-1][0] + 1} (" in done.output


def test_verify_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    done = invoke("verify", tmp_path / "nothing.jsonl")
    assert done.exit_code == 2
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\n")
    done = invoke("verify", tmp_path / "bin.jsonl")
    assert done.exit_code == 2 and "not UTF-8" in done.output
    db = _store_run(tmp_path)
    done = invoke("verify", db, "--job", "7")
    assert done.exit_code == 2
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert invoke("verify", empty).exit_code == 1


CLOSURE = """\
ruleset closure
fact Edge { a: int, b: int }
fact Path { a: int, b: int }
agent base { when Edge(a, b) emit Path(a: a, b: b) }
agent step { when Path(a, b) and Edge(a: b, b: c) emit Path(a: a, b: c) }
"""


@pytest.mark.parametrize(("executor", "workers"), [("threads", 1), ("threads", 4),
                                                   ("asyncio", 3), ("processes", 2)])
def test_the_digests_are_the_same_for_every_executor(executor: str, workers: int) -> None:
    ruleset = api.loads(CLOSURE, plugins=False)
    facts = [("Edge", {"a": i, "b": (i * 7 + 3) % 40}) for i in range(40)]
    serial = api.run(ruleset, facts)
    other = api.run(ruleset, facts, executor=executor, workers=workers)
    assert serial.integrity() == other.integrity()
    assert list(serial.trace.lines()) == list(other.trace.lines())


def test_the_facts_root_is_order_free_and_sees_every_fact() -> None:
    facts = {"A": [{"x": 1}, {"x": 2}], "B": [{"y": "z"}]}
    assert facts_root(facts) == facts_root({"B": [{"y": "z"}], "A": [{"x": 2}, {"x": 1}]})
    assert facts_root(facts) != facts_root({"A": [{"x": 1}], "B": [{"y": "z"}]})
    assert facts_root(facts) != facts_root({"A": [{"x": 1}, {"x": 2}], "B": [{"y": "w"}]})
    assert facts_root(facts) != facts_root({"A": [{"x": 1}, {"x": 2}], "C": [{"y": "z"}]})
    assert merkle_root([]) != merkle_root([b"\0" * 32])


def test_a_job_still_running_is_checked_up_to_its_last_commit() -> None:
    ruleset = api.loads(CLOSURE, plugins=False)
    lines = list(api.run(ruleset, [("Edge", {"a": 1, "b": 2})]).trace.lines())
    assert verify_lines(lines[:-1], finished=False).ok
    assert not verify_lines(lines[:-1]).ok


def test_a_job_killed_before_its_first_commit_is_not_called_tampered(
        tmp_path: Path) -> None:
    # found by review: SIGKILL inside cycle 0's commit (CONVERGE_CRASH_AT=commit:0)
    # left a running job with no lines, and `converge verify` said TAMPERED (exit 1)
    import os
    import subprocess
    import sys

    db = tmp_path / "run.db"
    died = subprocess.run(
        [sys.executable, "-m", "converge_rules.cli", "run", str(PRICING), "-f",
         str(PRICING_INPUT), "--store", str(db)], capture_output=True, text=True,
        env={**os.environ, "CONVERGE_CRASH_AT": "commit:0"}, timeout=120)
    assert died.returncode < 0, died.stderr
    done = invoke("verify", db)
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"intact: job 1 of {db}: no cycle committed")
    # a finished job whose lines were all deleted is still caught
    db2 = _store_run(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path)
    with sqlite3.connect(db2) as con:
        con.execute("DELETE FROM trace_rows")
    assert invoke("verify", db2).exit_code == 1


@pytest.mark.parametrize("kind", ["lines", "text"])
def test_a_stored_row_whose_format_was_edited_is_tampered_not_an_internal_error(
        tmp_path: Path, kind: str) -> None:
    """Found by hand: a trace row of events whose ``kind`` column was edited to
    ``lines`` or ``text`` made ``converge verify`` and ``trace export`` fail with an
    internal error (AttributeError, TypeError) instead of naming the bad row."""
    db = tmp_path / "run.db"
    assert invoke("run", PRICING, "-f", PRICING_INPUT, "--store", db).exit_code in (0, 1)
    with sqlite3.connect(db) as con:
        seq = con.execute("SELECT seq FROM trace_rows WHERE kind = 'events' "
                          "ORDER BY seq LIMIT 1 OFFSET 1").fetchone()[0]
        con.execute("UPDATE trace_rows SET kind = ? WHERE seq = ?", (kind, seq))
    done = invoke("verify", db)
    assert done.exit_code == 1, done.output
    assert "TAMPERED" in done.output
    exported = invoke("trace", "export", db)
    assert "unreadable_trace_row" in exported.output


@pytest.mark.parametrize("kind", ["rawm", "raw", "events"])
def test_a_row_forged_with_its_chain_and_an_event_of_no_kind_is_unreadable_not_an_error(
        tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by fuzzing stored rows (session 27): a row whose chain was recomputed after
    an event's kind was changed (to 2.5, "x", null, 30, 10**23 ...) made the line writer
    raise its "unknown trace event kind" AssertionError through ``converge verify`` and
    ``trace export`` (rows of both formats): an internal error, not a named bad row."""
    import msgpack

    from converge_rules.engine import tracerows
    from converge_rules.engine.tracerows import FIRST_ROW, row_columns, row_hash

    db = tmp_path / "run.db"
    with monkeypatch.context() as patch:
        if kind == "raw":  # rows of the JSON form (what msgpack does not keep exactly)
            patch.setattr(tracerows, "raw_text", lambda row: (
                "raw", tracerows._dumps(row)[1:-1]))
        assert invoke("run", PRICING, "-f", PRICING_INPUT, "--store", db).exit_code in (0, 1)
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT seq, cycle, lines, kind, coalesce(packed, data) "
                           "FROM trace_rows WHERE job = 1 ORDER BY seq").fetchall()
        at = next(i for i, row in enumerate(rows) if row[3] == kind)
        if kind == "rawm":
            doc = msgpack.unpackb(rows[at][4])
            doc[-1][-1][0] = 2.5  # the row's last event: a kind no trace has
            rows[at] = (*rows[at][:4], msgpack.packb(doc))
        else:
            doc = json.loads(rows[at][4])
            doc[-1][-1][0] = 2.5
            rows[at] = (*rows[at][:4], json.dumps(doc, separators=(",", ":")))
        previous = FIRST_ROW
        for seq, cycle, lines, row_kind, data in rows:  # the chain made to hold again
            previous = row_hash(previous, data, row_columns(seq, cycle, lines, row_kind))
            _set_text(con, seq, data)
            con.execute("UPDATE trace_rows SET hash = ? WHERE job = 1 AND seq = ?",
                        (previous, seq))
    done = invoke("verify", db)
    assert done.exit_code == 1, done.output
    assert "TAMPERED" in done.output and "unreadable_trace_row" in done.output
    exported = invoke("trace", "export", db)
    assert "unreadable_trace_row" in exported.output, exported.output


def test_a_store_given_with_options_is_verified_as_trace_export_reads_it(
        tmp_path: Path) -> None:
    """Found by hand: `converge trace export run.db?timeout=3` read the store, but
    `converge verify` (and `replay`, `report`) of run.db?timeout=3 said the path does
    not exist (usage error)."""
    db = tmp_path / "run.db"
    assert invoke("run", PRICING, "-f", PRICING_INPUT, "--store", db).exit_code in (0, 1)
    done = invoke("verify", f"{db}?timeout=3")
    assert done.exit_code == 0, done.output
    assert done.output.startswith("intact: job 1 of ")
    assert invoke("verify", f"{db}?bogus=1").exit_code == 2
    # replay and report took it for a missing trace file too
    assert invoke("replay", PRICING, f"{db}?timeout=3").exit_code == 0
    html = tmp_path / "r.html"
    assert invoke("report", f"{db}?timeout=3", "-o", html).exit_code == 0
    assert html.exists()
