"""A job whose checkpoint was damaged in its store is not resumed from it: the restored
facts are checked against the stored trace (what the job did), and a difference refuses
the resume with a message naming the job, the cycle, the fact and both versions; the
store is left as it was. Before, the job ran on from the wrong context to a wrong
result (status ``converged``), or failed deep in the engine with a ``KeyError``."""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

import converge_rules
from converge_rules import api
from converge_rules.engine import checkpoints
from converge_rules.errors import StoreError
from tests.store.test_checkpoints import JOB_TIME, KEYED, same_result, stopper, stored_trace

FACTS = [("Count", {"id": "a", "n": 0}), ("Count", {"id": "b", "n": 2})]


def _value(doc: dict[str, Any]) -> None:
    # (format 5: values in parts, this one msgpack in the binary, from the start: a
    # delta's new facts' are its only part)
    count, size = doc["values"][-1]["m"]
    rows = [list(row) for row in msgpack.unpackb(doc[checkpoints.BYTES][:size])]
    rows[-1][1] += 90  # Count(id: "b", n: 5) reads Count(id: "b", n: 95)
    data = msgpack.packb(rows)
    assert len(data) == size and len(rows) == count  # (the binary after it stays put)
    doc[checkpoints.BYTES] = data + doc[checkpoints.BYTES][size:]
    # (its sum made again: a value the writer got wrong, which the trace tells; a byte
    # changed after it is refused by the sum, see test_checkpoints' binary damage)
    doc[checkpoints.SUM] = zlib.adler32(doc[checkpoints.BYTES])


def _type(doc: dict[str, Any]) -> None:
    types = doc["types"]  # one character a fact (format 3): "!" Count, "#" Seen
    doc["types"] = types[:-1] + "#" if isinstance(types, str) else [*types[:-1], 1]


def _live(doc: dict[str, Any]) -> None:
    doc["live"][0][1] = doc["live"][0][1][:-1]  # the last Count left the context


def _extra(doc: dict[str, Any]) -> None:
    doc["types"] = doc["types"] + doc["types"][-1:]
    doc["values"].append([["c", 1]])


def _damage(location: Path, change: Callable[[dict[str, Any]], None]) -> None:
    with sqlite3.connect(location) as con:
        job, cycle, data = con.execute(
            "SELECT job, cycle, data FROM checkpoints ORDER BY cycle DESC").fetchone()
        doc = checkpoints.unpack(data)
        change(doc)
        con.execute("UPDATE checkpoints SET data = ? WHERE job = ? AND cycle = ?",
                    (checkpoints.pack(doc), job, cycle))
    con.close()


@pytest.mark.parametrize(("change", "message"), [
    (_value, 'fact 7 is Count(id: "b", n: 95) there, but Count(id: "b", n: 5) in the '
             "trace"),
    (_type, 'fact 7 is Seen(id: "b", n: 5) there, but Count(id: "b", n: 5) in the trace'),
    (_live, "1 of its facts are live, 2 in the trace after cycle 3"),
    (_extra, "it holds 9 facts, its trace adds 8"),
])
def test_a_damaged_checkpoint_is_refused_and_the_store_left_as_it_was(
        tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str) -> None:
    (tmp_path / "keyed.cvg").write_text(KEYED, encoding="utf-8")
    ruleset = converge_rules.load(tmp_path / "keyed.cvg")
    location = tmp_path / "run.db"
    first = api.run(ruleset, FACTS, now=JOB_TIME, store=str(location), stop=stopper(3))
    assert first.status == "interrupted"
    _damage(location, change)
    trace = stored_trace(str(location))
    with pytest.raises(StoreError) as raised:
        api.resume(str(location), ruleset=ruleset)
    text = str(raised.value)
    assert "job 1 cannot be resumed from its checkpoint after cycle 3: " + message in text
    assert "The checkpoint is damaged" in text
    assert "DELETE FROM checkpoints WHERE job = 1" in text
    assert stored_trace(str(location)) == trace
    with sqlite3.connect(location) as con:
        assert con.execute("SELECT status FROM jobs").fetchall() == [("interrupted",)]
        con.execute("DELETE FROM checkpoints WHERE job = 1")  # as the message says
    con.close()
    resumed = api.resume(str(location), ruleset=ruleset)  # re-executed, checked
    assert resumed.resumed_from is None
    same_result(resumed, api.run(ruleset, FACTS, now=JOB_TIME))


def test_an_undamaged_checkpoint_resumes_as_the_whole_run(tmp_path: Path) -> None:
    (tmp_path / "keyed.cvg").write_text(KEYED, encoding="utf-8")
    ruleset = converge_rules.load(tmp_path / "keyed.cvg")
    whole = api.run(ruleset, FACTS, now=JOB_TIME)
    location = tmp_path / "run.db"
    api.run(ruleset, FACTS, now=JOB_TIME, store=str(location), stop=stopper(3))
    _damage(location, lambda doc: None)  # written back as it was read
    resumed = api.resume(str(location), ruleset=ruleset)
    assert resumed.resumed_from == 3
    same_result(resumed, whole)
    assert json.loads(resumed.to_json())["status"] == "converged"
