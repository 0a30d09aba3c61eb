"""Canned model answers for the claims-adjudication showcase (``adjudication.cvg``), as
a plugin module: ``converge --plugin claims_demo run …`` with this directory on
``PYTHONPATH`` and the real ``llm`` tool disabled (``CONVERGE_DISABLE_PLUGINS=
converge-llm``). It registers a tool ``llm`` with converge-llm's signature that answers
from the table below instead of asking a model, so docs/approvals.md can be followed
without an API key and gives the same output every time. Tests mock the tool in the
ruleset's own test blocks instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from converge_rules.errors import ToolError
from converge_rules.plugins.api import OPEN, Tool, hookimpl

ANSWERS: dict[str, dict[str, Any]] = {
    "A branch fell on the car roof.":
        {"consistent": True, "estimate": 1_500.0, "summary": "storm damage to the roof"},
    "Burst pipe flooded the kitchen and the floor must be replaced.":
        {"consistent": True, "estimate": 18_200.0, "summary": "water damage, new floor"},
    "Hail broke the conservatory roof.":
        {"consistent": True, "estimate": 12_400.0, "summary": "hail damage"},
    "Stolen from a locked garage; the door was open.":
        {"consistent": False, "estimate": 0.0, "summary": "the garage was locked and open"},
    "The fence blew over.":
        {"consistent": True, "estimate": 900.0, "summary": "wind damage to a fence"},
}
"""The model's answer to each statement of rulesets/claims/adjudication.jsonl."""


class Args(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt: str
    model: str | None = None
    # ``schema`` would shadow a BaseModel attribute: the ruleset uses the alias
    schema_dsl: str | None = Field(default=None, alias="schema")
    system: str | None = None


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str


def answer(args: Args) -> Answer:
    statement = str((args.model_extra or {}).get("statement", ""))
    canned = ANSWERS.get(statement)
    if canned is None:
        raise ToolError(f"claims_demo: no canned answer for the statement {statement!r}")
    return Answer(text="", **canned)


@hookimpl
def converge_register_tools(register: Callable[[Tool], None]) -> None:
    register(Tool("llm", answer, Args, Answer, "canned answers for the claims showcase",
                  arg_types={"prompt": "str", "model": "str?", "schema": "str?",
                             "system": "str?", OPEN: "any"},
                  result_types={"text": "str", OPEN: "any"}))
