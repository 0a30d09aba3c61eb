"""The models of the built-in ``knowledge_find`` tool (imported when a job uses it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from converge_rules.errors import ToolError


class FindArgs(BaseModel):
    """``type``: the fact type (or summary type) to look for; any other argument is
    a field the row must have with that value."""

    model_config = ConfigDict(extra="allow")
    type: str


class FindAnswer(BaseModel):
    """``count`` rows match, ``found`` whether any does; the newest match's fields."""

    model_config = ConfigDict(extra="allow")
    count: int
    found: bool


def outside_a_job(args: FindArgs) -> FindAnswer:
    """Stands in for the tool outside a job: a job answers ``knowledge_find`` from its
    own knowledge store, so reaching this is a caller's mistake."""
    raise ToolError("knowledge_find is answered by a running job from its knowledge "
                    "store; it cannot be called outside one")
