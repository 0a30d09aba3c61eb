"""The public API: every python block of docs/api.md runs (in order, one namespace),
plus what the page promises in prose."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import converge_rules
from converge_rules import CheckError, InputError
from converge_rules.errors import ToolError
from converge_rules.plugins.registries import Registries, Tool

REPO = Path(__file__).resolve().parents[1]
API_DOC = REPO / "docs" / "api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)

TOOL_RULESET = """\
ruleset fx
uses tool fx_rate
fact Quote { sku: str, currency: str }
fact Rate  { key currency: str, usd: float }
agent fetch {
  when Quote(currency)
  call fx_rate(currency: currency) as rate
  emit Rate(currency: currency, usd: rate.usd)
}
"""


def python_blocks(text: str) -> list[tuple[int, str]]:
    """Each ```python block with the line it starts on."""
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in BLOCK.finditer(text)]


def test_docs_api_blocks_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(REPO / "rulesets" / "pricing", tmp_path / "rulesets" / "pricing")
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(API_DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 10
    namespace: dict[str, object] = {"__name__": "docs_api"}
    for line, code in blocks:
        try:
            exec(compile(code, f"{API_DOC}:{line}", "exec"), namespace)
        except Exception as exc:  # name the block that broke
            raise AssertionError(f"docs/api.md block at line {line} failed: {exc!r}") from exc
    assert (tmp_path / "trace.jsonl").exists()


def test_every_name_in_all_is_exported() -> None:
    namespace: dict[str, object] = {}
    exec("from converge_rules import *", namespace)  # fails on a name __all__ lists in vain
    assert set(converge_rules.__all__) <= set(namespace)


def test_the_exported_stages_run_a_ruleset_from_text_to_result(tmp_path: Path) -> None:
    from converge_rules import (
        ConvergeError,
        InputError,
        Ruleset,
        RunResult,
        check_file,
        compile_ruleset,
        load,
        parse,
        read_facts,
        run,
    )

    path = REPO / "rulesets" / "counter" / "counter.cvg"
    parsed = parse(path.read_text(encoding="utf-8"), str(path))
    assert parsed.diagnostics == () and parsed.module is not None
    checked = check_file(path)
    assert checked.ok
    assert [a.name for a in compile_ruleset(checked).agents] == ["step"]
    ruleset = load(path)
    assert isinstance(ruleset, Ruleset)
    facts_file = tmp_path / "in.jsonl"
    facts_file.write_text('{"Start": {"id": "a"}}\n{"Count": {"id": "a", "n": 7}}\n',
                          encoding="utf-8")
    result = run(ruleset, read_facts(ruleset, facts_file))
    assert isinstance(result, RunResult)
    assert result.facts("Count") == [{"id": "a", "n": 10}]
    facts_file.write_text('{"Count": {"id": "a", "n": "seven"}}\n', encoding="utf-8")
    with pytest.raises(ConvergeError) as caught:  # the exported errors are what it raises
        read_facts(ruleset, facts_file)
    assert isinstance(caught.value, InputError)


def test_load_and_loads_give_the_same_program() -> None:
    path = REPO / "rulesets" / "counter" / "counter.cvg"
    from_file = converge_rules.load(path)
    from_text = converge_rules.loads(path.read_text(encoding="utf-8"), path=str(path))
    facts = [("Start", {"id": "a"}), ("Count", {"id": "a", "n": 0})]
    assert converge_rules.run(from_file, facts).to_json() == \
        converge_rules.run(from_text, facts).to_json()
    assert from_file.path == str(path)


def test_loads_names_its_path_in_diagnostics() -> None:
    with pytest.raises(CheckError) as caught:
        converge_rules.loads("ruleset x\nfact A { x: nope }\n", path="mine.cvg")
    assert caught.value.diagnostics[0].span is not None
    assert caught.value.diagnostics[0].span.file == "mine.cvg"


def test_syntax_errors_are_check_errors_too() -> None:
    with pytest.raises(CheckError) as caught:
        converge_rules.loads("ruleset x\nfact A { x: int \n")
    assert caught.value.diagnostics[0].code.startswith("CVG0")


def test_a_ruleset_runs_many_times_independently() -> None:
    ruleset = converge_rules.load(REPO / "rulesets" / "counter" / "counter.cvg")
    first = converge_rules.run(ruleset, [("Start", {"id": "a"}), ("Count", {"id": "a", "n": 0})])
    second = converge_rules.run(ruleset, [("Start", {"id": "b"}), ("Count", {"id": "b", "n": 5})])
    assert first.facts("Count") == [{"id": "a", "n": 10}]
    assert second.facts("Count") == [{"id": "b", "n": 10}]
    assert first.cycles == 11 and second.cycles == 6


def test_tools_override_and_missing_tools() -> None:
    ruleset = converge_rules.loads(TOOL_RULESET, plugins=False)
    assert dict(ruleset.tools) == {}
    facts = [("Quote", {"sku": "A", "currency": "EUR"})]
    # issue 10 item 7: a job whose tool nothing provides used to "converge" without
    # the call it was written to make; it is refused before it starts
    with pytest.raises(ToolError, match="no loaded plugin provides tool 'fx_rate'") as info:
        converge_rules.run(ruleset, facts)
    assert "agent `fetch`" in str(info.value)
    assert "'converge-example' provides it" in str(info.value)
    mocked = converge_rules.run(ruleset, facts, tools={"fx_rate": lambda a: {"usd": 2.0}})
    assert mocked.facts("Rate") == [{"currency": "EUR", "usd": 2.0}]


def test_async_tools_are_awaited() -> None:
    ruleset = converge_rules.loads(TOOL_RULESET, plugins=False)

    async def fx_rate(args: dict[str, object]) -> dict[str, object]:
        return {"usd": 0.5}

    result = converge_rules.run(ruleset, [("Quote", {"sku": "A", "currency": "GBP"})],
                                tools={"fx_rate": fx_rate})
    assert result.facts("Rate") == [{"currency": "GBP", "usd": 0.5}]


class _Currency(BaseModel):
    currency: str


class _Rate(BaseModel):
    usd: float


def test_explicit_registries_are_used_instead_of_the_installed_plugins() -> None:
    fixed = Tool("fx_rate", lambda args: _Rate(usd=0.25), _Currency, _Rate)
    ruleset = converge_rules.loads(TOOL_RULESET, plugins=Registries(tools={"fx_rate": fixed}))
    result = converge_rules.run(ruleset, [("Quote", {"sku": "A", "currency": "EUR"})])
    assert result.facts("Rate") == [{"currency": "EUR", "usd": 0.25}]
    empty = converge_rules.loads(TOOL_RULESET, plugins=Registries())
    assert dict(empty.tools) == {}


def test_unknown_executor_is_a_value_error() -> None:
    ruleset = converge_rules.loads(TOOL_RULESET, plugins=False)
    with pytest.raises(converge_rules.ConvergeError, match=r"known executors: .*serial"):
        converge_rules.run(ruleset, [], executor="nope")


def test_read_facts_reads_several_sources_in_order(tmp_path: Path) -> None:
    ruleset = converge_rules.loads(TOOL_RULESET, plugins=False)
    (tmp_path / "a.jsonl").write_text('{"Quote": {"sku": "A", "currency": "EUR"}}\n')
    (tmp_path / "q.csv").write_text("sku,currency\nB,GBP\n")
    facts = converge_rules.read_facts(ruleset, tmp_path / "a.jsonl", f"Quote={tmp_path}/q.csv")
    assert len(facts) == 2
    (tmp_path / "bad.csv").write_text("sku,currency\nB,GBP\nC\n")
    with pytest.raises(InputError) as caught:
        converge_rules.read_facts(ruleset, f"Quote={tmp_path}/bad.csv")
    assert caught.value.line == 3 and caught.value.source.endswith("bad.csv")


def test_one_ruleset_runs_in_several_threads_at_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    ruleset = converge_rules.load(REPO / "rulesets" / "counter" / "counter.cvg")

    def job(i: int) -> str:
        start = i % 10
        return converge_rules.run(ruleset, [("Start", {"id": f"c{i}"}),
                                            ("Count", {"id": f"c{i}", "n": start})]).to_json()

    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(job, range(12)))
    assert together == [job(i) for i in range(12)]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"executor": 123}, TypeError, "executor takes"),
    ({"executor": object()}, TypeError, "executor takes"),
    ({"executor": "serial", "workers": "2"}, TypeError, "whole number"),
    ({"executor": "serial", "workers": 2.5}, TypeError, "whole number"),
    ({"executor": "serial", "workers": 0}, ValueError, "at least 1"),
    ({"workers": 2}, ValueError, "sizes a named executor"),
    ({"stop": True}, TypeError, "stop takes a function"),
    ({"trace_store": "jsonl"}, ValueError, "give trace="),
    ({"trace": "/nonexistent-dir/x.jsonl"}, converge_rules.ConvergeError, "does not exist"),
    ({"trace": "/tmp"}, converge_rules.ConvergeError, "it is a directory"),
])
def test_bad_run_arguments_are_refused_before_anything_runs(
    kwargs: dict[str, Any], error: type[Exception], match: str,
) -> None:
    ruleset = converge_rules.loads(TOOL_RULESET, plugins=False)
    with pytest.raises(error, match=match):
        converge_rules.run(ruleset, [], **kwargs)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"plugins": 1}, "plugins takes True"),
    ({"plugins": None}, "plugins takes True"),
    ({"pruners": "ttl"}, "pruners takes a list of names"),
    ({"pruners": None}, "pruners takes a list of names, got NoneType"),
    ({"allow_paths": "rules"}, r"allow_paths takes a list of folders, got the str 'rules'; "
                               r"write allow_paths=\['rules'\]"),
])
def test_bad_load_arguments_say_what_was_expected(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(TypeError, match=match):
        converge_rules.loads(TOOL_RULESET, **kwargs)
