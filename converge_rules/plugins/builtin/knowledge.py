"""The built-in tool ``knowledge_find``: agents query the job's knowledge store (the
facts ``prune … into knowledge`` moved out of the live context, and the summaries of
them). Registered here so that ``converge check`` knows its signature; a job answers it
from its own knowledge (:meth:`converge_rules.engine.knowledge.Knowledge.find`)."""

from __future__ import annotations

from collections.abc import Callable

from converge_rules.language.builtins import KNOWLEDGE_TOOL
from converge_rules.plugins.api import OPEN, Tool
from converge_rules.plugins.builtin import hook

KNOWLEDGE_FIND = Tool(
    KNOWLEDGE_TOOL,
    "converge_rules.plugins.builtin.knowledge_models:outside_a_job",
    "converge_rules.plugins.builtin.knowledge_models:FindArgs",
    "converge_rules.plugins.builtin.knowledge_models:FindAnswer",
    "the job's knowledge store: `type` and fields to match → count, found and the "
    "newest match's fields",
    arg_types={"type": "str", OPEN: "any"},
    result_types={"count": "int", "found": "bool", OPEN: "any"},
)


@hook
def converge_register_tools(register: Callable[[Tool], None]) -> None:
    register(KNOWLEDGE_FIND)
