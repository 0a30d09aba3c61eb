"""The trace's schema: one pydantic model per event, built only when a trace is read
as events (:meth:`~converge_rules.engine.trace.Trace.events`), or written the slow way.

A module of its own so that running a job, which records events as tuples and writes
their lines straight from them (:mod:`converge_rules.engine.trace`), imports no pydantic
(about 30 ms of a short job's start-up); :mod:`~converge_rules.engine.trace` still
offers every name defined here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from converge_rules.engine.trace import EVENT_KINDS
from converge_rules.jsontext import dumps


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class CycleStart(_Model):
    event: Literal["cycle_start"] = "cycle_start"
    cycle: int
    tier: int
    agents: list[str]


class CycleEnd(_Model):
    event: Literal["cycle_end"] = "cycle_end"
    cycle: int
    tier: int
    added: int
    removed: int
    live: int


class FactAdded(_Model):
    event: Literal["fact_added"] = "fact_added"
    id: int
    type: str
    fields: dict[str, Any]
    agent: str | None
    cycle: int
    support: list[int]
    confidence: float
    #: an ``emit lasting``: ``support`` is what the match used, not what the fact rests
    #: on (it stays when those facts go); left out of the JSON when false
    lasting: bool = False


class FactSupported(_Model):
    event: Literal["fact_supported"] = "fact_supported"
    id: int
    agent: str
    cycle: int
    support: list[int]
    lasting: bool = False


class EffectMerged(_Model):
    event: Literal["effect_merged"] = "effect_merged"
    cycle: int
    agent: str
    outputs: int


class EffectDiscarded(_Model):
    event: Literal["effect_discarded"] = "effect_discarded"
    cycle: int
    agent: str
    reason: str


class OutputSkipped(_Model):
    event: Literal["output_skipped"] = "output_skipped"
    cycle: int
    agent: str
    type: str
    fields: dict[str, Any]
    reason: str


class ToolCall(_Model):
    event: Literal["tool_call"] = "tool_call"
    cycle: int
    agent: str
    tool: str
    args: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None


class Evaluation(_Model):
    event: Literal["evaluation"] = "evaluation"
    cycle: int
    agent: str
    target: int
    score: float
    reason: str | None


class Conflict(_Model):
    event: Literal["conflict"] = "conflict"
    cycle: int
    type: str
    key: dict[str, Any]
    winner: dict[str, Any] | None
    losers: list[dict[str, Any]]
    reason: str


class Replaced(_Model):
    event: Literal["replaced"] = "replaced"
    cycle: int
    id: int
    type: str
    fields: dict[str, Any]
    by: int


class Retracted(_Model):
    event: Literal["retracted"] = "retracted"
    cycle: int
    id: int
    type: str
    fields: dict[str, Any]
    cause: int


class Pruned(_Model):
    event: Literal["pruned"] = "pruned"
    cycle: int
    id: int
    type: str
    fields: dict[str, Any]
    age: int


class IntentClosed(_Model):
    event: Literal["intent_closed"] = "intent_closed"
    cycle: int
    id: int
    type: str
    fields: dict[str, Any]
    agent: str


class InputRetracted(_Model):
    """An input fact taken back by its giver (``Session.retract``) in ``cycle``; the
    facts resting only on it follow as ``retracted`` events."""

    event: Literal["input_retracted"] = "input_retracted"
    cycle: int
    id: int
    type: str
    fields: dict[str, Any]


class BudgetEvent(_Model):
    event: Literal["budget"] = "budget"
    name: str
    limit: float | int | None
    used: float | int | None


class StatusEvent(_Model):
    event: Literal["status"] = "status"
    status: str
    detail: str


class InvariantBroken(_Model):
    """An invariant broken: by an effect, discarded (``outcome`` ``effect_discarded``,
    ``agents`` its agent), or by the context after a cycle (``job_ended``, ``agents``
    those that derived the facts). ``facts`` are the forbidden match's facts, or for an
    ``always`` invariant the facts of its types merged last."""

    event: Literal["invariant_broken"] = "invariant_broken"
    cycle: int
    invariant: str
    rule: str
    agents: list[str]
    facts: list[dict[str, Any]]
    outcome: Literal["effect_discarded", "job_ended"]


class Derivation(_Model):
    """One derivation of a fact: the agent and the facts it rested on."""

    agent: str
    support: list[int]


class ApprovalPending(_Model):
    """A fact an agent derived that its type's approval gate holds: not merged, pending
    under ``id`` until a decision; ``support`` the facts it rests on. ``also``: its
    other derivations in the cycle, the parts of a ``combine`` policy's total combined
    from several candidates at once (left out of the line when there are none)."""

    event: Literal["approval_pending"] = "approval_pending"
    cycle: int
    id: str
    gate: str
    type: str
    fields: dict[str, Any]
    agent: str
    support: list[int]
    confidence: float
    also: list[Derivation] = []


class ApprovalDecided(_Model):
    """A decision applied to a pending fact in ``cycle`` (a cycle of its own): who
    decided, when, why, the edits, and the ``outcome``: ``merged`` (approved; its
    ``fields`` as merged, edits applied), ``rejected``, ``support_gone`` (approved,
    but what it rested on had left the context), or ``discarded`` (approved, but an
    ``invariant … never`` discarded its effect: the ``invariant_broken`` event follows)."""

    event: Literal["approval_decided"] = "approval_decided"
    cycle: int
    id: str
    gate: str
    type: str
    fields: dict[str, Any]
    decision: Literal["approve", "reject"]
    by: str
    at: str
    note: str
    edits: dict[str, Any]
    outcome: Literal["merged", "rejected", "support_gone", "discarded"]


class PendingDropped(_Model):
    """A held fact (``approval_pending``) that is pending no more: facts it rested on
    (``gone``, ids) left the context in ``cycle`` — a revised estimate replaced one —
    so there is nothing left to decide; the job does not wait on it. Derived again from
    new support, it is held again under the same id. ``gone`` empty: a ``combine``
    type's pending total that a later part grew; the new total is held (or enters) in
    the same cycle."""

    event: Literal["pending_dropped"] = "pending_dropped"
    cycle: int
    id: str
    gate: str
    type: str
    fields: dict[str, Any]
    gone: list[int]


class JobTime(_Model):
    """The job's time (what ``now()`` and ``today()`` read), ISO 8601 in UTC: the first
    event of a trace whose program reads the time; a replay runs at this time."""

    event: Literal["job_time"] = "job_time"
    now: str


TraceEvent = Annotated[
    CycleStart | CycleEnd | FactAdded | FactSupported | EffectMerged | EffectDiscarded
    | OutputSkipped | ToolCall | Evaluation | Conflict | Replaced | Retracted | Pruned
    | IntentClosed | BudgetEvent | StatusEvent | JobTime | InvariantBroken
    | InputRetracted | ApprovalPending | ApprovalDecided | PendingDropped,
    Field(discriminator="event"),
]


_EVENT_MODELS: tuple[type[_Model], ...] = (
    CycleStart, CycleEnd, FactAdded, FactSupported, EffectMerged, EffectDiscarded,
    OutputSkipped, ToolCall, Evaluation, Conflict, Replaced, Retracted, Pruned,
    IntentClosed, BudgetEvent, StatusEvent, JobTime, InvariantBroken, InputRetracted,
    ApprovalPending, ApprovalDecided, PendingDropped,
)

# The raw kinds each model is built from (see EVENT_KINDS).
_RAW_KINDS: dict[type[_Model], frozenset[int]] = {
    model: EVENT_KINDS[str(model.model_fields["event"].default)] for model in _EVENT_MODELS
}

_MODELS: dict[str, type[_Model]] = {
    str(model.model_fields["event"].default): model for model in _RAW_KINDS
}
"""Each event name's model (what an :data:`E_LINE` is read back as)."""


def model_data(model: _Model) -> dict[str, Any]:
    """An event's model as the JSON object its trace line holds: ``lasting`` left out
    when false (traces without lasting facts read as they always did), an
    ``approval_pending``'s ``also`` when empty (so do traces without a total combined
    from several candidates at once)."""
    data = model.model_dump(mode="json")
    if data.get("lasting") is False:
        del data["lasting"]
    if data.get("also") == [] and data.get("event") == "approval_pending":
        del data["also"]
    return data


def model_line(model: _Model) -> str:
    """An event's model as its trace line (:func:`model_data`): sorted keys, compact,
    one line."""
    data = model_data(model)
    # one line whatever the strings hold (U+2028, lone surrogates: jsontext)
    return dumps(data, sort_keys=True, separators=(",", ":"))
