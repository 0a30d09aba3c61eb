"""The ``llm`` tool, offline, with the ``echo`` model from ``llm-echo``.

``echo`` answers with a JSON object describing what it received (``prompt``,
``system``, ``stream``…), or, when the prompt is a JSON object with a ``raw`` key,
with exactly that raw text. So these tests see the filled-in prompt and the schema
instruction the plugin sent, and can script answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from converge_rules.errors import ToolError
from converge_rules.plugins import collect, get_plugin_manager
from converge_rules.plugins.registries import ValidatedTool, tools_for_engine

pytest.importorskip("llm_echo")


@pytest.fixture(scope="module")
def llm_tool() -> ValidatedTool:
    """The tool as the engine gets it, from the installed plugin's entry point."""
    registries = collect(get_plugin_manager(environ={"CONVERGE_PLUGINS": "converge-llm"}))
    return tools_for_engine(registries, allowed=["llm"])["llm"]


def ask(tool: ValidatedTool, **args: Any) -> dict[str, Any]:
    pending = tool(args)
    assert asyncio.iscoroutine(pending)
    result: dict[str, Any] = asyncio.run(pending)
    return result


def scripted(answer: str) -> str:
    """A prompt template that makes ``echo`` answer ``answer`` verbatim (braces doubled
    because the prompt is a template)."""
    return json.dumps({"prompt": "classify", "raw": answer}).replace("{", "{{").replace(
        "}", "}}")


def test_signature_for_the_checker(llm_tool: ValidatedTool) -> None:
    sig = llm_tool.tool.signature()
    assert sig.plugin == "converge-llm"
    assert sig.args == {"prompt": "str", "model": "str?", "schema": "str?", "system": "str?",
                        "*": "any"}
    assert sig.result == {"text": "str", "*": "any"}


def test_prompt_template_is_filled_from_arguments(llm_tool: ValidatedTool) -> None:
    result = ask(llm_tool, prompt="Subject: {subject}\nTags: {tags}", subject="Refund",
                 tags=["billing", "urgent"], model="echo", system="You triage tickets.")
    echoed = json.loads(result["text"])
    assert echoed["prompt"] == "Subject: Refund\nTags: billing, urgent"
    assert echoed["system"] == "You triage tickets."
    assert set(result) == {"text"}


def test_schema_answers_become_result_fields(llm_tool: ValidatedTool) -> None:
    result = ask(llm_tool, prompt="Ticket {id}", id="T1", model="echo",
                 schema="prompt, stream bool")
    # echo's answer is a JSON object with these two fields among others.
    assert result["prompt"] == "Ticket T1"
    assert result["stream"] is False
    assert "previous" not in result  # only the schema's fields are kept
    # echo does not support schemas natively: the schema went into the system prompt.
    system = json.loads(result["text"])["system"]
    assert system.startswith("Answer with one JSON object")
    assert '"stream": {"type": "boolean"}' in system


def test_scripted_structured_answer(llm_tool: ValidatedTool) -> None:
    answer = 'Sure! ```json\n{"category": "billing", "urgency": 3}\n```'
    result = ask(llm_tool, prompt=scripted(answer), model="echo",
                 schema="category, urgency int")
    assert (result["category"], result["urgency"]) == ("billing", 3)
    assert result["text"] == answer


def test_an_answer_that_breaks_the_schema_is_a_tool_error(llm_tool: ValidatedTool) -> None:
    answer = '{"category": "billing", "urgency": "very"}'
    with pytest.raises(ToolError, match="does not match the schema: urgency"):
        ask(llm_tool, prompt=scripted(answer), model="echo", schema="category, urgency int")


def test_an_answer_that_is_not_json_is_a_tool_error(llm_tool: ValidatedTool) -> None:
    with pytest.raises(ToolError, match="did not answer JSON"):
        ask(llm_tool, prompt=scripted("billing, I think"), model="echo", schema="category")


@pytest.mark.parametrize("answer", ['{"score": 1e-400}', 'Here: {"score": 1e-400}'])
def test_a_number_no_float_holds_is_a_tool_error(llm_tool: ValidatedTool, answer: str) -> None:
    # json.loads reads 1e-400 as 0.0: a nonzero score became zero without a word
    with pytest.raises(ToolError, match="number no fact can hold: `1e-400` is below"):
        ask(llm_tool, prompt=scripted(answer), model="echo", schema="score float")


def test_unknown_model_is_a_tool_error(llm_tool: ValidatedTool) -> None:
    with pytest.raises(ToolError, match="Unknown model: no-such-model"):
        ask(llm_tool, prompt="hi", model="no-such-model")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"prompt": "About {subject}"}, r"\{subject\} has no value"),
        ({"prompt": "hi", "subject": "x"}, "subject not used by the prompt"),
        ({"prompt": "hi {"}, "bad prompt template"),
        ({"prompt": "hi", "schema": "text, category"}, "may not be named `text`"),
        ({"model": "echo"}, "bad arguments: prompt"),
    ],
)
def test_bad_calls_are_tool_errors(
    llm_tool: ValidatedTool, args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        ask(llm_tool, **{"model": "echo", **args})


RULESET = """
ruleset summarise
uses tool llm

fact Ticket { key id: str, subject: str }
fact Echoed { key ticket: str, prompt: str }

agent ask {
  when Ticket(id, subject)
  call llm(prompt: "Ticket {id}: {subject}", id: id, subject: subject, model: "echo",
           schema: "prompt") as answer
  emit Echoed(ticket: id, prompt: answer.prompt)
}
"""


def test_a_ruleset_calls_the_model_through_the_engine() -> None:
    from converge_rules import api

    result = api.run(api.loads(RULESET), [("Ticket", {"id": "T1", "subject": "Refund"})])
    assert result.status == "converged"
    assert result.facts("Echoed") == [{"ticket": "T1", "prompt": "Ticket T1: Refund"}]


def test_the_declared_types_are_what_the_models_say() -> None:
    """``converge check`` reads the declared types without importing the models; a job
    imports the models. Both must describe the same tool."""
    import dataclasses

    from converge_llm import TOOL

    derived = dataclasses.replace(TOOL, arg_types=None, result_types=None).signature()
    assert TOOL.signature() == derived
    TOOL.load()  # what a job does first: imports and compares, raising if they differ
