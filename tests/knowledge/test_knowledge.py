"""``prune … into knowledge`` (issue 13 item 5): pruned facts move to the job's
knowledge store instead of being dropped — in memory without a job store, in the
store's ``knowledge`` table with one, written in the cycle's transaction — agents query
it with the built-in ``knowledge_find`` tool (answers recorded, identical for every
executor), ``converge_summarize`` folds moved facts into summaries, and the live
context stays bounded however long the job runs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from converge_rules import api
from converge_rules.errors import CheckError, PluginError
from converge_rules.language.format.formatter import format_source
from converge_rules.plugins import builtin_registries, collect, get_plugin_manager
from converge_rules.plugins.hookspecs import hookimpl
from converge_rules.store.sqlite import SqliteStore

TICKER = """\
ruleset ticker "Old readings move into knowledge; an agent recalls them"

uses tool knowledge_find

root "tick" {
  max_cycles = CYCLES
}

fact Tick    { key n: int }
fact Reading { key n: int, value: int }
fact Recall  { key n: int, seen: int, last: int }

agent tick {
  when Tick(n) where n < LAST
  emit lasting Tick(n: n + 1)
  emit lasting Reading(n: n, value: n * 10)
}

agent recall {
  when Tick(n) where n >= 5 and n % 5 == 0
  call knowledge_find(type: "Reading", n: n - 5) as k
  emit lasting Recall(n: n, seen: k.count, last: k.value)
}

prune Reading when age >= 2 into knowledge
prune Tick when age >= 1
prune Recall when age >= 1 into knowledge
"""


def ticker(last: int = 30) -> api.Ruleset:
    text = TICKER.replace("CYCLES", str(last + 10)).replace("LAST", str(last))
    return api.loads(text, plugins=builtin_registries())


def _trace(result: Any) -> list[str]:
    return list(result.trace.lines())


def test_pruned_facts_move_into_knowledge_and_agents_read_them_back() -> None:
    result = api.run(ticker(), [("Tick", {"n": 0})], now=None)
    assert result.status == "converged"
    knowledge = result.knowledge
    # every Reading but the last two left the live context, into knowledge
    assert [f["n"] for f in result.facts("Reading")] == [29, 30] or [
        f["n"] for f in result.facts("Reading")] == [29]
    rows = knowledge.rows("Reading")
    assert [r.fields for r in rows[:2]] == [{"n": 0, "value": 0}, {"n": 1, "value": 10}]
    assert rows[0].derivations[0]["agent"] == "tick"
    recalls = {r.fields["n"]: r.fields for r in knowledge.rows("Recall")}
    recalls.update({f["n"]: f for f in result.facts("Recall")})
    # Recall(n) found Reading(n - 5) in knowledge, once, with its value
    assert recalls[10] == {"n": 10, "seen": 1, "last": 50}
    assert sorted(recalls) == [5, 10, 15, 20, 25, 30]


def test_the_tool_answers_are_recorded_in_the_trace() -> None:
    result = api.run(ticker(), [("Tick", {"n": 0})], now=None)
    calls = [json.loads(line) for line in _trace(result) if '"tool_call"' in line]
    assert calls, "knowledge_find calls are recorded like any tool's"
    first = calls[0]
    assert first["tool"] == "knowledge_find"
    assert first["args"] == {"n": 0, "type": "Reading"}
    assert first["result"] == {"count": 1, "found": True, "n": 0, "value": 0}


@pytest.mark.parametrize("executor", ["threads", "processes", "asyncio"])
def test_results_and_traces_are_the_same_for_every_executor(executor: str) -> None:
    serial = api.run(ticker(), [("Tick", {"n": 0})], now=None)
    other = api.run(ticker(), [("Tick", {"n": 0})], executor=executor, workers=2, now=None)
    assert _trace(other) == _trace(serial)


@pytest.mark.parametrize("executor", ["serial", "threads", "processes"])
def test_with_a_store_knowledge_is_in_its_table_and_the_job_is_the_same(
        tmp_path: Path, executor: str) -> None:
    memory = api.run(ticker(), [("Tick", {"n": 0})], now=None)
    db = tmp_path / "run.db"
    stored = api.run(ticker(), [("Tick", {"n": 0})], store=db, now=None,
                     executor=executor, workers=2)
    assert _trace(stored) == _trace(memory)
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT seq, cycle, type, fact, data FROM knowledge "
                        "ORDER BY seq").fetchall()
    expected = [(r.seq, r.cycle, r.type, r.fact, r.data())
                for r in sorted((*memory.knowledge.rows("Reading"),
                                 *memory.knowledge.rows("Recall")), key=lambda r: r.seq)]
    assert rows == expected
    # each cycle's knowledge committed with that cycle's trace lines (the cycles the
    # store holds, as it reads them: one `cycles` row holds a transaction's cycles)
    with SqliteStore(db) as store:
        cycles = {c for c, _, _ in store.cycle_sizes(store.job(None).id)}
    assert {r[1] for r in rows} <= cycles


def test_the_live_context_stays_bounded_over_a_long_job() -> None:
    peaks = {}
    for last in (50, 400):
        result = api.run(ticker(last), [("Tick", {"n": 0})], now=None)
        assert result.status == "converged"
        peaks[last] = result.budget["max_facts"]["used"]
        assert result.knowledge.size >= last
    assert peaks[400] == peaks[50] <= 6


def test_explain_still_finds_a_moved_facts_derivation(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from converge_rules.cli import main

    src = tmp_path / "ticker.cvg"
    src.write_text(TICKER.replace("CYCLES", "40").replace("LAST", "8"))
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Tick": {"n": 0}}\n')
    trace = tmp_path / "trace.jsonl"
    out = CliRunner().invoke(main, ["run", str(src), "--facts", str(facts), "--trace",
                                    str(trace), "--no-plugins"])
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(main, ["explain", "Reading(n: 2)", "--trace", str(trace),
                                    "--ruleset", str(src)])
    assert "tick" in out.output and "Tick(n: 2)" in out.output, out.output


# ------------------------------------------------------------------ summaries


class _Counts:
    """Folds each cycle's moved Readings into a ReadingSummary of their count and sum."""

    @hookimpl
    def converge_summarize(self, fact_type: str, facts: list[dict[str, Any]],
                           cycle: int) -> list[dict[str, Any]] | None:
        if fact_type != "Reading":
            return None
        return [{"type": "ReadingSummary",
                 "fields": {"cycle": cycle, "count": len(facts),
                            "total": sum(f["value"] for f in facts)}}]


def _with(plugin: object) -> api.Ruleset:
    pm = get_plugin_manager(entry_points=False)
    pm.register(plugin, "summaries")
    text = TICKER.replace("CYCLES", "40").replace("LAST", "12")
    return api.loads(text, plugins=collect(pm))


def test_a_summarize_hook_folds_moved_facts_into_summaries() -> None:
    result = api.run(_with(_Counts()), [("Tick", {"n": 0})], now=None)
    summaries = result.knowledge.rows("ReadingSummary")
    moved = result.knowledge.rows("Reading")
    assert sum(s.fields["count"] for s in summaries) == len(moved)
    assert sum(s.fields["total"] for s in summaries) == sum(r.fields["value"] for r in moved)
    assert all(s.summary and s.fact is None for s in summaries)


def test_a_summary_is_found_by_the_tool() -> None:
    result = api.run(_with(_Counts()), [("Tick", {"n": 0})], now=None)
    answer = result.knowledge.find({"type": "ReadingSummary", "cycle": 4})
    assert answer == {"count": 1, "found": True, "cycle": 4, "total": 10, }


class _Broken:
    @hookimpl
    def converge_summarize(self, fact_type: str, facts: list[dict[str, Any]],
                           cycle: int) -> Any:
        return "not a list"


def test_a_summarize_hook_answering_nonsense_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match="converge_summarize must return a list"):
        api.run(_with(_Broken()), [("Tick", {"n": 0})], now=None)


# ------------------------------------------------------------------ the tool


def test_the_tool_refuses_a_field_the_type_does_not_have() -> None:
    result = api.run(ticker(8), [("Tick", {"n": 0})], now=None)
    from converge_rules.errors import ToolError

    with pytest.raises(ToolError, match="Reading has no field colour"):
        result.knowledge.find({"type": "Reading", "colour": "red"})
    assert result.knowledge.find({"type": "Reading", "n": 999}) == {"count": 0,
                                                                    "found": False}


# ------------------------------------------------------------------ the language


def test_into_knowledge_round_trips_through_the_formatter() -> None:
    text = ("ruleset r\n\nfact Quote { key id: int, amount: float }\n\n"
            "prune Quote when age > 3   into   knowledge\n"
            "prune Quote using ttl(cycles: 7) into knowledge\n")
    once = format_source(text)
    assert "prune Quote when age > 3 into knowledge\n" in once
    assert "prune Quote using ttl(cycles: 7) into knowledge\n" in once
    assert format_source(once) == once


def test_into_anything_else_is_an_error_at_the_name() -> None:
    text = ("ruleset r\nfact Quote { key id: int, amount: float }\n"
            "prune Quote when age > 3 into archive\n")
    with pytest.raises(CheckError) as info:
        api.loads(text, plugins=False)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "CVG240"
    assert str(info.value) == "<string>:3:31: pruned facts cannot go into `archive`"
    assert "into knowledge" in (diagnostic.help or "")


def test_a_field_named_into_still_works() -> None:
    text = ("ruleset r\nfact Quote { key id: int, into: int }\n"
            "prune Quote when into > 3 into knowledge\n")
    ruleset = api.loads(text, plugins=False)
    result = api.run(ruleset, [("Quote", {"id": 1, "into": 5}),
                               ("Quote", {"id": 2, "into": 1})], now=None)
    assert [f["id"] for f in result.facts("Quote")] == [2]
    assert [r.fields for r in result.knowledge.rows("Quote")] == [{"id": 1, "into": 5}]


# ------------------------------------------------------------------ the store


def test_gc_drops_the_knowledge_and_the_payloads_of_deleted_jobs(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    for _ in range(2):
        api.run(ticker(8), [("Tick", {"n": 0})], store=db, now=None)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO blobs VALUES ('sha256:a', 1, x'61')")
    conn.execute("INSERT INTO blobs VALUES ('sha256:b', 1, x'62')")
    conn.execute("INSERT INTO job_blobs VALUES (1, 'sha256:a')")
    conn.execute("INSERT INTO job_blobs VALUES (2, 'sha256:b')")
    conn.commit()
    conn.close()
    with SqliteStore(db) as store:
        assert store.gc(1) == [1]
    conn = sqlite3.connect(db)
    assert {j for (j,) in conn.execute("SELECT DISTINCT job FROM knowledge")} == {2}
    assert [h for (h,) in conn.execute("SELECT hash FROM blobs")] == ["sha256:b"]


# ---------------------------------------------------- knowledge_find's `type`, checked

def _recalling(call: str) -> str:
    return TICKER.replace("CYCLES", "40").replace("LAST", "30").replace(
        'call knowledge_find(type: "Reading", n: n - 5) as k', call)


def test_a_misspelt_type_is_a_warning_naming_the_fact_type_meant() -> None:
    # found as a user: `type: "Readings"` passed `converge check`, and every call of the
    # job answered found: false — the readings it moved were there, under `Reading`
    ruleset = api.loads(_recalling('call knowledge_find(type: "Readings", n: n - 5) as k'),
                        plugins=builtin_registries())
    (warning,) = [w for w in ruleset.warnings if w.code == "CVG807"]
    assert warning.message.startswith("`knowledge_find` looks for type `Readings`")
    assert warning.help == "did you mean `Reading`?"
    assert (warning.span.line, warning.span.column, warning.span.end_column) == (
        21, 30, 38)  # the name, inside the quotes


@pytest.mark.parametrize("kind", ["ReadingStats", "Summary", "reading_totals"])
def test_a_summary_type_not_spelt_like_a_fact_type_is_quiet(kind: str) -> None:
    ruleset = api.loads(_recalling(f'call knowledge_find(type: "{kind}", n: n - 5) as k'),
                        plugins=builtin_registries())
    assert [w.code for w in ruleset.warnings] == []


def test_a_field_the_fact_type_lacks_is_an_error_at_check_time() -> None:
    # the job refuses such a call (ToolError) in the cycle it is made; check says so first
    with pytest.raises(CheckError) as info:
        api.loads(_recalling('call knowledge_find(type: "Reading", nn: n - 5) as k'),
                  plugins=builtin_registries())
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "CVG103"
    assert diagnostic.message.startswith("Reading has no field `nn`")
    assert diagnostic.help == "did you mean `n`?"


def test_a_type_worked_out_at_run_time_is_left_to_the_job() -> None:
    text = _recalling('call knowledge_find(type: "Read" + "ing", nn: n - 5) as k')
    ruleset = api.loads(text, plugins=builtin_registries())
    assert [w.code for w in ruleset.warnings] == []


@pytest.mark.parametrize(("mocked", "code"), [
    ('mock tool knowledge_find(type: "Readings", n: 2) returns {count: 1, found: true}',
     "CVG807"),
    ('mock tool knowledge_find(type: "Reading", nn: 2) returns {count: 1, found: true}',
     "CVG103"),
])
def test_a_tests_mock_of_knowledge_find_is_checked_like_the_call(mocked: str,
                                                                  code: str) -> None:
    # a mock spelt otherwise than the call never answers it: the test then reads the
    # job's own knowledge, and check said nothing
    text = _recalling('call knowledge_find(type: "Reading", n: n - 5) as k') + (
        'test "recall" {\n  given Tick(n: 7)\n  ' + mocked + "\n}\n")
    try:
        found = [(w.code, w.span.line) for w in api.loads(
            text, plugins=builtin_registries()).warnings]
    except CheckError as info:
        found = [(d.code, d.span.line) for d in info.diagnostics]
    assert found == [(code, text.count("\n") - 1)]


def test_a_type_spelt_like_an_intent_type_is_a_warning_too() -> None:
    # `prune Proposal … into knowledge` moves intents too; "Proposals" was quiet
    text = ('ruleset r\nuses tool knowledge_find\nintent Proposal { n: int }\n'
            'fact Recall { key n: int, seen: int }\n'
            'agent a {\n  when Recall(n)\n'
            '  call knowledge_find(type: "Proposals", n: n) as k\n'
            '  emit Recall(n: n + 1, seen: k.count)\n}\n'
            'agent b {\n  when Recall(n)\n  intend Proposal(n: n)\n}\n'
            'prune Proposal when age >= 2 into knowledge\n')
    ruleset = api.loads(text, plugins=builtin_registries())
    assert [(w.code, w.help) for w in ruleset.warnings] == [
        ("CVG807", "did you mean `Proposal`?")]


def test_the_editors_quick_fix_respells_a_misspelt_type() -> None:
    # the warning's span took the quotes in: the "did you mean" quick fix, which
    # replaces a name, offered nothing
    pytest.importorskip("pygls")
    from converge_rules.lsp.server import fixes_of

    text = _recalling('call knowledge_find(type: "Readings", n: n - 5) as k')
    (warning,) = api.loads(text, plugins=builtin_registries()).warnings
    line = text.splitlines()[20]
    assert [(f["title"], f["start"], f["end"]) for f in fixes_of(
        warning, text.splitlines())] == [
        ("Change `Readings` to `Reading`", line.index("Readings"),
         line.index("Readings") + len("Readings"))]
