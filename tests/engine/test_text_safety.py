"""Text that would break an output: lone surrogates and line separators.

A lone surrogate (``"\\ud800"`` in JSON) is refused where text comes in — input facts
(naming file, line, type and field), tool answers (a tool error) and plugin function
results (the agent's effect is discarded) — and escaped by every JSON writer should one
come from elsewhere, so no output is ever cut by an encoding error. U+2028, U+2029 and
U+0085 inside strings are written as ``\\u`` escapes, so one event is one line, and
every JSON Lines reader splits on ``\\n`` only (``str.splitlines`` also splits on
them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules.analysis.runview import read_trace
from converge_rules.cli.replay import read_recording
from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import read_facts, run, validate_pairs
from converge_rules.errors import InputError
from converge_rules.language.checks.checked import FunctionSignature
from converge_rules.language.checks.checker import check_file
from converge_rules.testing.cases import read_fixture

CONSOLE_SCRIPT = Path(sys.executable).with_name("converge")

SEPARATORS = "a\u2028b\u2029c\x85d"

RULESET = """\
ruleset t "t"
uses tool fx
fact Note { text: str, tags: list[str] = [] }
fact Echo { text: str }
fact Asked { text: str, answer: str }
agent echo {
  when Note(text)
  emit Echo(text: text)
}
agent ask tier 2 {
  when Echo(text)
  call fx(text: text) as r
  emit Asked(text: text, answer: r.answer)
}
"""


def ruleset() -> converge_rules.Ruleset:
    return converge_rules.loads(RULESET, plugins=False)


def echo_tool(args: dict[str, Any]) -> dict[str, Any]:
    return {"answer": args["text"]}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_one_line_per_document(text: str) -> None:
    """Each line of ``text`` is one JSON document, however it is split into lines."""
    assert text.splitlines() == text.split("\n")[:-1]
    for line in text.split("\n")[:-1]:
        json.loads(line)


# ------------------------------------------------------------- line separators


def test_a_json_lines_input_with_line_separators_in_a_string_is_one_fact(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "in.jsonl", json.dumps({"Note": {"text": SEPARATORS}},
                                                  ensure_ascii=False) + "\n")
    facts = read_facts(ruleset().program, path)
    assert [vals for _, vals in facts.rows] == [(SEPARATORS, ())]


def test_a_trace_and_the_result_document_keep_line_separators_inside_one_line() -> None:
    result = converge_rules.run(ruleset(), [("Note", {"text": SEPARATORS})],
                                tools={"fx": echo_tool})
    assert result.status == "converged"
    trace = result.trace.to_jsonl()
    for char in "\u2028\u2029\x85":
        assert char not in trace
        assert char not in result.to_json(indent=2)
    assert_one_line_per_document(trace)
    events = [json.loads(line) for line in trace.split("\n")[:-1]]
    assert {"text": SEPARATORS} in [e.get("fields") for e in events]
    assert json.loads(result.to_json())["facts"]["Asked"] == [
        {"answer": SEPARATORS, "text": SEPARATORS}]


def test_trace_readers_split_json_lines_on_newlines_only(tmp_path: Path) -> None:
    # written with the separators raw, as another JSON writer may do
    result = converge_rules.run(ruleset(), [("Note", {"text": SEPARATORS})],
                                tools={"fx": echo_tool})
    raw = "".join(json.dumps(json.loads(line), ensure_ascii=False) + "\n"
                  for line in result.trace.lines())
    assert "\u2028" in raw
    path = write(tmp_path, "trace.jsonl", raw)
    view = read_trace(path)
    assert [f.values["text"] for f in view.live("Echo")] == [SEPARATORS]
    assert len(read_recording(path)[0]) == len(result.trace)


def test_a_cases_fixture_splits_json_lines_on_newlines_only(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.jsonl",
                 json.dumps({"text": SEPARATORS}, ensure_ascii=False) + "\n"
                 + json.dumps({"text": "plain"}) + "\n")
    assert read_fixture(path) == [{"text": SEPARATORS}, {"text": "plain"}]


# ------------------------------------------------------------- lone surrogates


@pytest.mark.parametrize(("name", "text", "line", "field"), [
    ("in.jsonl", '{"Note": {"text": "ok"}}\n{"Note": {"text": "x\\ud800"}}\n', 2,
     "Note.text"),
    ("in.json", '[\n {"Note": {"text": "ok"}},\n {"Note": {"text": "ok",\n'
                '   "tags": ["a", "\\udfff"]}}\n]\n', 3, "Note.tags[1]"),
    ("Note=in.csv", 'text,tags\nok,[]\nok,"[""\\udc00""]"\n', 3, "Note.tags[0]"),
])
def test_a_lone_surrogate_in_input_is_refused_naming_file_line_type_and_field(
    tmp_path: Path, name: str, text: str, line: int, field: str,
) -> None:
    file = name.partition("=")[2] or name
    path = write(tmp_path, file, text)
    spec = f"Note={path}" if "=" in name else path
    with pytest.raises(InputError) as info:
        read_facts(ruleset().program, spec)
    err = info.value
    assert (err.source, err.line) == (str(path), line)
    assert err.message.startswith(f"{field} holds a lone surrogate (U+D")
    assert "UTF-8" in err.help


def test_a_lone_surrogate_in_python_facts_or_a_field_name_is_refused() -> None:
    with pytest.raises(InputError) as info:
        validate_pairs(ruleset().program, [("Note", {"text": "ok"}),
                                           ("Note", {"text": "\udc80"})])
    assert (info.value.line, info.value.message) == (
        2, "Note.text holds a lone surrogate (U+DC80) at character 1")
    with pytest.raises(InputError) as info:
        validate_pairs(ruleset().program, [("Note", {"te\ud800xt": "ok"})])
    assert "lone surrogate (U+D800)" in info.value.message


def test_a_tool_answer_with_a_lone_surrogate_fails_the_calling_agent() -> None:
    result = converge_rules.run(ruleset(), [("Note", {"text": "hi"})],
                                tools={"fx": lambda args: {"answer": "x\ud800"}})
    assert result.status == "converged"
    assert result.facts("Asked") == []
    (call,) = [e for e in map(json.loads, result.trace.lines()) if e["event"] == "tool_call"]
    assert call["error"] == ("tool 'fx' returned a result that is not JSON: result.answer "
                             "holds a lone surrogate (U+D800) at character 2")
    (discarded,) = [e for e in map(json.loads, result.trace.lines())
                    if e["event"] == "effect_discarded"]
    assert discarded["agent"] == "ask" and "lone surrogate" in discarded["reason"]
    result.trace.to_jsonl().encode("utf-8")
    result.to_json().encode("utf-8")


def test_a_lone_surrogate_from_a_plugin_function_fails_the_agent(tmp_path: Path) -> None:
    # A function's result was unchecked: Out(text: "x\ud800") was kept and written
    # escaped, a fact no input or tool answer could have given. It is refused as a tool
    # answer holding one is: the agent's effect is discarded, naming the function.
    source = ('ruleset f "f"\nfact Note { text: str }\nfact Out { text: str }\n'
              "agent a {\n  when Note(text)\n  emit Out(text: upper(broken(text)))\n}\n")
    checked = check_file(write(tmp_path, "f.cvg", source),
                         functions={"broken": FunctionSignature("broken", ("str",), "str")})
    program = compile_ruleset(checked, functions={"broken": lambda s: s + "\ud800"})
    result = run(program, [("Note", {"text": "x"})])
    assert result.facts("Out") == []
    (discarded,) = [e for e in map(json.loads, result.trace.lines())
                    if e["event"] == "effect_discarded"]
    assert discarded["reason"] == (
        "BadResult: function 'broken' returned a value no fact can hold: its result holds "
        "a lone surrogate (U+D800) at character 2")
    result.trace.to_jsonl().encode("utf-8")


# ------------------------------------------------------------- the command line


def converge(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CONSOLE_SCRIPT), *args], cwd=tmp_path, capture_output=True,
                          text=True, encoding="utf-8", errors="replace", timeout=120,
                          check=False)


def test_converge_run_refuses_a_lone_surrogate_in_input_with_the_line(
    tmp_path: Path,
) -> None:
    write(tmp_path, "t.cvg", RULESET)
    write(tmp_path, "in.jsonl", '{"Note": {"text": "ok"}}\n{"Note": {"text": "\\ud800"}}\n')
    done = converge(tmp_path, "run", "t.cvg", "--facts", "in.jsonl", "--trace", "t.jsonl",
                    "--format", "json")
    assert done.returncode == 2
    assert "internal error" not in done.stderr
    assert "in.jsonl:2: Note.text holds a lone surrogate (U+D800)" in done.stderr
    assert not (tmp_path / "t.jsonl").exists()


def test_converge_run_and_replay_a_trace_of_strings_with_line_separators(
    tmp_path: Path,
) -> None:
    write(tmp_path, "t.cvg", RULESET.replace("uses tool fx\n", "").split("agent ask")[0])
    write(tmp_path, "in.jsonl",
          json.dumps({"Note": {"text": SEPARATORS}}, ensure_ascii=False) + "\n")
    done = converge(tmp_path, "run", "t.cvg", "--facts", "in.jsonl", "--trace", "t.jsonl")
    assert done.returncode == 0, done.stderr
    assert_one_line_per_document((tmp_path / "t.jsonl").read_text(encoding="utf-8"))
    done = converge(tmp_path, "replay", "t.cvg", "t.jsonl")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("identical: ")
