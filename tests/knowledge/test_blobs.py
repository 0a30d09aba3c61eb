"""``blob`` fields (issue 13 item 6): a large payload lives in the job's payload store,
content-addressed, while facts, the trace and the knowledge store hold its handle;
agents read its text with ``blob_text``; a tool's answer typed ``Blob`` reaches the
agent with its text and the trace with its handle; ``gc`` drops payloads no kept job
references."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from converge_rules import api
from converge_rules.blobs import Blob, BlobError, blob_text, is_handle
from converge_rules.errors import CheckError, InputError
from converge_rules.language.format.formatter import format_source
from converge_rules.plugins import builtin_registries, collect, get_plugin_manager
from converge_rules.plugins.api import Tool, hookimpl
from converge_rules.store.sqlite import SqliteStore

DOCS = """\
ruleset docs "Documents behind references"

fact Doc     { key id: str, body: blob }
fact Summary { key id: str, chars: int, latin: bool, copy: blob }

agent summarize {
  when Doc(id, body)
  emit Summary(id: id, chars: len(blob_text(body)),
               latin: startswith(blob_text(body), "lorem"), copy: blob(blob_text(body)))
}
"""

BIG = "lorem ipsum " * 5_000  # 60 kB


def handle(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def docs() -> api.Ruleset:
    return api.loads(DOCS, plugins=builtin_registries())


def test_the_fact_holds_a_handle_and_agents_read_the_text() -> None:
    result = api.run(docs(), [("Doc", {"id": "d1", "body": BIG})], now=None)
    assert result.status == "converged"
    (summary,) = result.facts("Summary")
    assert summary["chars"] == len(BIG) and summary["latin"] is True
    assert summary["copy"] == handle(BIG) and is_handle(summary["copy"])
    assert result.payloads.texts == {handle(BIG): BIG}  # stored once for two facts


def test_the_trace_holds_handles_not_payloads() -> None:
    result = api.run(docs(), [("Doc", {"id": "d1", "body": BIG})], now=None)
    trace = "\n".join(result.trace.lines())
    assert "lorem" not in trace
    assert trace.count(handle(BIG)) == 2  # the Doc's body and the Summary's copy
    assert len(trace) < 2_000


@pytest.mark.parametrize("executor", ["threads", "processes", "asyncio"])
def test_traces_are_byte_identical_across_executors(executor: str) -> None:
    facts = [("Doc", {"id": f"d{i}", "body": f"text {i} " * 100}) for i in range(6)]
    serial = api.run(docs(), facts, now=None)
    other = api.run(docs(), facts, executor=executor, workers=2, now=None)
    assert list(other.trace.lines()) == list(serial.trace.lines())
    assert other.payloads.texts == serial.payloads.texts


def test_with_a_store_payloads_are_content_addressed_and_shared(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    for _ in range(2):
        api.run(docs(), [("Doc", {"id": "d1", "body": BIG}),
                         ("Doc", {"id": "d2", "body": "short"})], store=db, now=None)
    conn = sqlite3.connect(db)
    assert sorted(conn.execute("SELECT hash, bytes FROM blobs")) == sorted(
        [(handle(BIG), len(BIG)), (handle("short"), 5)])
    assert sorted(conn.execute("SELECT job, hash FROM job_blobs")) == sorted(
        (job, h) for job in (1, 2) for h in (handle(BIG), handle("short")))
    rows = [r[0] for r in conn.execute("SELECT data FROM trace_rows")]
    assert rows and not any("lorem" in row for row in rows)
    conn.close()
    with SqliteStore(db) as store:
        assert store.blob(handle(BIG)) == BIG
        assert store.blob(handle("nothing")) is None
        store.gc(1)
        assert store.blob(handle(BIG)) == BIG  # job 2 still references it
        store.gc(0)
        assert store.blob(handle(BIG)) is None


# ------------------------------------------------------------------ tools


class _Reader:
    """A tool whose answer (a document) is typed Blob in its result model."""

    @hookimpl
    def converge_register_tools(self, register: Any) -> None:
        from pydantic import BaseModel

        class Args(BaseModel):
            url: str

        class Page(BaseModel):
            body: Blob

        def fetch(args: Args) -> Page:
            return Page(body=Blob.of(f"<html>{args.url}</html>" + "x" * 10_000))

        register(Tool("fetch", fetch, Args, Page, "a page"))


FETCH = """\
ruleset pages
uses tool fetch
fact Url  { key url: str }
fact Page { key url: str, body: blob, size: int }
agent get {
  when Url(url)
  call fetch(url: url) as p
  emit Page(url: url, body: p.body, size: len(blob_text(p.body)))
}
"""


def test_a_tool_answer_typed_blob_reaches_the_agent_with_its_text_and_the_trace_without(
) -> None:
    pm = get_plugin_manager(entry_points=False)
    pm.register(_Reader(), "reader")
    ruleset = api.loads(FETCH, plugins=collect(pm))
    result = api.run(ruleset, [("Url", {"url": "a.example"})], now=None)
    (page,) = result.facts("Page")
    text = "<html>a.example</html>" + "x" * 10_000
    assert page == {"url": "a.example", "body": handle(text), "size": len(text)}
    (call,) = [json.loads(line) for line in result.trace.lines() if '"tool_call"' in line]
    assert call["result"] == {"body": handle(text)}
    assert result.payloads.texts == {handle(text): text}


# ------------------------------------------------------------------ the language


def test_blob_round_trips_through_the_formatter() -> None:
    once = format_source(DOCS)
    assert "body: blob" in once and format_source(once) == once


def test_text_where_a_blob_is_declared_is_a_type_error_with_its_place() -> None:
    text = ("ruleset r\nfact Doc { key id: str, body: blob }\nfact In { id: str }\n"
            "agent a {\n  when In(id)\n  emit Doc(id: id, body: id)\n}\n")
    with pytest.raises(CheckError) as info:
        api.loads(text, plugins=False)
    assert str(info.value).startswith("<string>:6:26:"), str(info.value)
    assert "blob" in str(info.value)


def test_blob_text_of_a_string_is_a_type_error() -> None:
    text = ("ruleset r\nfact In { key id: str }\nfact Out { key id: str, n: int }\n"
            "agent a {\n  when In(id)\n  emit Out(id: id, n: len(blob_text(id)))\n}\n")
    with pytest.raises(CheckError) as info:
        api.loads(text, plugins=False)
    assert "<string>:6:" in str(info.value) and "blob" in str(info.value)


def test_a_blob_input_that_is_not_text_is_refused_with_its_field() -> None:
    with pytest.raises(InputError) as info:
        api.run(docs(), [("Doc", {"id": "d1", "body": 42})], now=None)
    assert "body" in str(info.value) and "blob" in str(info.value)


def test_a_handle_without_its_payload_cannot_be_read() -> None:
    with pytest.raises(BlobError, match="not in this job"):
        blob_text(Blob(handle("gone")))
    assert blob_text(Blob.of("here")) == "here"


# ------------------------------------------------------------------ replay

PASS_ON = """\
ruleset relay
fact Doc  { key id: str, body: blob }
fact Kept { key id: str, body: blob }
agent keep {
  when Doc(id, body)
  emit Kept(id: id, body: body)
}
"""


def test_a_handle_given_as_input_stays_that_handle() -> None:
    ruleset = api.loads(PASS_ON, plugins=False)
    result = api.run(ruleset, [("Doc", {"id": "d", "body": handle("elsewhere")})], now=None)
    assert result.facts("Kept") == [{"id": "d", "body": handle("elsewhere")}]
    assert result.payloads.texts == {}  # no text: nothing to store


def test_a_blob_job_replays_from_its_trace(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from converge_rules.cli import main

    src = tmp_path / "relay.cvg"
    src.write_text(PASS_ON)
    facts = tmp_path / "in.jsonl"
    facts.write_text(json.dumps({"Doc": {"id": "d", "body": BIG}}) + "\n")
    trace = tmp_path / "trace.jsonl"
    run = CliRunner().invoke(main, ["run", str(src), "-f", str(facts), "--trace",
                                    str(trace), "--no-plugins"])
    assert run.exit_code == 0, run.output
    assert "lorem" not in trace.read_text()
    replay = CliRunner().invoke(main, ["replay", str(src), str(trace), "--no-plugins"])
    assert replay.exit_code == 0, replay.output


def test_store_info_counts_the_payload_and_knowledge_tables(tmp_path: Path) -> None:
    # found by review: `converge store info` listed jobs, trace_lines, cycles,
    # job_specs and schema_version only — not the payloads, often the largest table
    from click.testing import CliRunner

    from converge_rules.cli import main

    db = tmp_path / "run.db"
    api.run(docs(), [("Doc", {"id": "d1", "body": BIG})], store=db, now=None)
    out = CliRunner().invoke(main, ["store", "info", str(db), "--format", "json"])
    assert out.exit_code == 0, out.output
    tables = json.loads(out.output)["tables"]
    assert tables["blobs"]["rows"] == 1 and tables["job_blobs"]["rows"] == 1
    assert tables["knowledge"]["rows"] == 0
    if any(t["bytes"] for t in tables.values() if t is not tables["trace_lines"]):
        assert tables["blobs"]["bytes"] >= len(BIG)  # dbstat: pages on disk
