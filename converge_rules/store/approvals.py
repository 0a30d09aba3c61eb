"""Approvals of a stored job: the facts its gates hold (read from its trace) and the
decisions people recorded on them (``converge approve/reject``), which ``converge run
--resume`` hands to the engine.

A gate (``approve TYPE when EXPR``) holds a fact an agent would add: the trace records
it as an ``approval_pending`` event with a stable id (``p-…``); when nothing else can
change the job stops with status ``awaiting_approval``. A decision names that id, who
decided, when (UTC, set by the command that records it: the engine never reads the
clock), why, and for an approval the changed field values. The engine applies them
only at a fixpoint, so a resumed job gives the result and trace of a run whose
decisions were given up front, byte for byte.

A decision also keeps the pause it was taken at (``paused_at``: the cycles the job had
run when it stopped, set by the store as it records the decision). A resume re-executes
the job from its inputs with every decision recorded at hand, and the engine applies
each no earlier than its pause: so a job resumes with decisions on *some* of the facts
it waits on — it applies them, goes on, and pauses again with the others still pending
(and any new ones) — and a fact left undecided at one pause and decided at a later one
is applied at the later one, by every re-execution as by the run that paused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PENDING_EVENT = "approval_pending"
DECIDED_EVENT = "approval_decided"
DROPPED_EVENT = "pending_dropped"
"""A held fact whose support left the context: pending no more, nothing to decide."""
AWAITING = "awaiting_approval"
"""The status of a job stopped with facts pending approval."""
KINDS = ("approve", "reject")
_MARK = '"event":"approval_'
"""What every line of an approval event holds (keys are written sorted, unescaped; a
value holding the same text is escaped): lines without it are not parsed."""


@dataclass(frozen=True, slots=True)
class HeldPart:
    """One part of a pending total (a ``combine`` value held on its key): the agent
    and cycle that derived it, the ids of the facts it rests on, and those facts in
    short when the trace holds them."""

    agent: str | None
    cycle: int
    support: tuple[int, ...] = ()
    derivation: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"agent": self.agent, "cycle": self.cycle, "support": list(self.support),
                "derivation": list(self.derivation)}


@dataclass(frozen=True, slots=True)
class PendingFact:
    """A fact a gate holds: its id, the gate, the fact (type and field values), the
    agent and cycle that derived it, the ids of the facts it rests on, and those facts
    in short (``Type(field: value, …)``) when the trace holds them. ``parts``: for a
    pending total that grew (a later part combined with the total held on its key,
    which it replaced), every part held since the key's value, in the order they came
    (the last is the fact's own derivation); empty otherwise."""

    id: str
    gate: str
    type: str
    fields: dict[str, Any]
    agent: str | None
    cycle: int
    support: tuple[int, ...] = ()
    derivation: tuple[str, ...] = ()
    parts: tuple[HeldPart, ...] = ()

    def fact_text(self) -> str:
        return fact_text(self.type, self.fields)

    def to_json(self) -> dict[str, Any]:
        own = HeldPart(self.agent, self.cycle, self.support, self.derivation)
        return {"id": self.id, "gate": self.gate, "type": self.type, "fields": self.fields,
                "agent": self.agent, "cycle": self.cycle, "support": list(self.support),
                "derivation": list(self.derivation),
                "parts": [p.to_json() for p in self.parts or (own,)]}


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A decision on a pending fact, as a store keeps it: ``decision`` is ``approve``
    or ``reject``; ``at`` an ISO 8601 UTC time; ``edits`` the changed field values of
    an approval (JSON values, as the trace writes them); ``paused_at`` the cycles the
    job had run at the pause the decision was taken in (the store sets it as it records
    the decision: :attr:`converge_rules.engine.gates.Decision.paused_at`)."""

    id: str
    decision: str
    by: str
    at: str
    note: str = ""
    edits: dict[str, Any] = field(default_factory=dict)
    paused_at: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "decision": self.decision, "by": self.by, "at": self.at,
                "note": self.note, "edits": self.edits, "paused_at": self.paused_at}


def os_user() -> str:
    """Who decides when nobody says: the OS user (``uid N`` in a bare container without
    a user name)."""
    import getpass
    import os

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def utc_text(at: str | datetime | None = None) -> str:
    """``at`` (now when None) as the ISO 8601 UTC text a decision keeps, to the second:
    ``2026-12-06T17:02:11Z``. A text is checked to be such a time (an offset is
    converted to UTC); a naive time is refused (whose clock would it be?)."""
    if at is None:
        moment = datetime.now(UTC)
    elif isinstance(at, datetime):
        moment = at
    elif isinstance(at, str):
        try:
            moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"at={at!r} is not an ISO 8601 time like "
                             "2026-12-06T17:02:11Z") from None
    else:
        raise TypeError(f"at is an ISO 8601 text or a datetime, got {type(at).__name__}")
    if moment.tzinfo is None:
        raise ValueError(f"at={at!r} has no time zone; give UTC (…Z) or an offset")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def fact_text(type_name: str, fields: Mapping[str, Any]) -> str:
    """``Type(field: value, …)`` with values as JSON writes them."""
    inner = ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in fields.items())
    return f"{type_name}({inner})"


def _events(lines: Iterable[str], kinds: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if _MARK not in line and not any(f'"event":"{k}"' in line for k in kinds):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a damaged line: `converge verify` names it; listing goes on
        if isinstance(event, dict) and event.get("event") in kinds:
            yield event


def pending_events(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The ``approval_pending`` events of a trace whose fact no ``approval_decided``
    event decided later and no ``pending_dropped`` event dropped (its support went),
    one per id, in id order (the order the engine decides them in, and the result
    lists them in)."""
    return _pending_of(_events(lines, (PENDING_EVENT, DECIDED_EVENT, DROPPED_EVENT)))


def _pending_of(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    pending: dict[str, dict[str, Any]] = {}
    for event in events:
        ident = str(event.get("id"))
        if event["event"] == PENDING_EVENT:
            pending.setdefault(ident, event)
        else:
            pending.pop(ident, None)
    return [pending[i] for i in sorted(pending)]


def _support(event: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(int(i) for i in (event.get("support") or ()) if isinstance(i, int))


def _own_parts(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The parts an ``approval_pending`` event holds: its own derivation and, for a
    total combined from several candidates in one cycle, the others (``also``)."""
    also = event.get("also")
    return [event, *({"agent": d.get("agent"), "cycle": event.get("cycle"),
                      "support": d.get("support")}
                     for d in (also if isinstance(also, list) else ())
                     if isinstance(d, dict))]


def pending_facts(lines: Iterable[str], support_lines: Iterable[str] | None = None
                  ) -> list[PendingFact]:
    """The facts pending in a trace (``lines``), with their derivation in short read
    from ``support_lines`` (the same trace read again: a long trace is never held),
    and for a pending total that grew, its parts (read there too)."""
    approvals = list(_events(lines, (PENDING_EVENT, DECIDED_EVENT, DROPPED_EVENT)))
    events = _pending_of(approvals)
    # (every held fact's support: a pending total's earlier parts were held facts)
    wanted = {i for e in approvals if e["event"] == PENDING_EVENT
              for part in _own_parts(e) for i in _support(part)}
    known: dict[int, str] = {}
    # a grown total: its ``pending_dropped`` (nothing gone) is followed at once, in the
    # full trace, by the ``approval_pending`` of the total that replaced it, when that
    # is held (the engine writes nothing between: engine/keyed.py, Gates.supersede)
    chains: dict[str, list[Mapping[str, Any]]] = {}
    grown: dict[str, Any] | None = None
    if wanted and support_lines is not None:
        for line in support_lines:
            after, grown = grown, None
            if '"event":"fact_added"' in line:
                event = json.loads(line)
                if event.get("event") == "fact_added" and event.get("id") in wanted:
                    known[int(event["id"])] = fact_text(str(event.get("type")),
                                                        event.get("fields") or {})
            elif '"event":"pending_dropped"' in line or '"event":"approval_pending"' in line:
                event = json.loads(line)
                kind, ident = event.get("event"), str(event.get("id"))
                if kind == DROPPED_EVENT and event.get("gone") == [] and ident in chains:
                    grown = {**event, "parts": chains.pop(ident)}
                elif kind == DROPPED_EVENT:
                    chains.pop(ident, None)  # its support went: no total grows from it
                elif kind == PENDING_EVENT:
                    chain = _own_parts(event)
                    if after is not None and all(after.get(k) == event.get(k)
                                                 for k in ("cycle", "gate", "type")):
                        last = after["parts"][-1]
                        # the same derivation again: a total rebased on a new value
                        # of its key (an input given later) counts no new part
                        same = (last.get("agent"), _support(last)) == (
                            event.get("agent"), _support(event))
                        chain = [*after["parts"], *([] if same else _own_parts(event))]
                    chains[ident] = chain
    facts = []
    for e in events:
        support = _support(e)
        fields = e.get("fields", e.get("fact"))
        if not isinstance(fields, dict):
            fields = {}
        chain = chains.get(str(e["id"]), [])
        facts.append(PendingFact(
            id=str(e["id"]), gate=str(e.get("gate") or e.get("type")),
            type=str(e.get("type") or e.get("gate")), fields=dict(fields),
            agent=e.get("agent"), cycle=int(e.get("cycle") or 0), support=support,
            derivation=tuple(known.get(i, f"fact #{i}") for i in support),
            parts=tuple(HeldPart(p.get("agent"), int(p.get("cycle") or 0), _support(p),
                                 tuple(known.get(i, f"fact #{i}") for i in _support(p)))
                        for p in chain) if len(chain) > 1 else ()))
    return facts


def decided_ids(lines: Iterable[str]) -> set[str]:
    """The ids an ``approval_decided`` event of the trace decided."""
    return {str(e.get("id")) for e in _events(lines, (DECIDED_EVENT,))}


def engine_decisions(stored: Iterable[StoredDecision]) -> list[Any]:
    """The decisions as the engine takes them (``run(..., decisions=...)``), in the
    order recorded, each applied no earlier than the pause it was taken at."""
    from converge_rules.engine.gates import Decision  # the engine: not on `check`'s path

    return [Decision(id=d.id, approve=d.decision == "approve", by=d.by, at=d.at,
                     note=d.note, edits=dict(d.edits), paused_at=d.paused_at)
            for d in stored]
