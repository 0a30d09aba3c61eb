"""A job seen through its trace: the final context, every fact's derivations, the
conflicts, prunes and discarded effects.

Built from trace events as JSON objects (``{"event": "fact_added", …}``), so the same
code reads a trace in memory (a :class:`~converge_rules.engine.result.RunResult`'s
``trace``) and a trace written to a JSON Lines file by ``converge run --trace``.
"""

from __future__ import annotations

import functools
import json
import math
import stat
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from converge_rules.analysis.interpret import Fact
from converge_rules.errors import InputError
from converge_rules.jsontext import jsonl_lines

if TYPE_CHECKING:
    from pydantic import TypeAdapter

MAX_VALUE_DEPTH = 100
"""How deeply the values in a trace (or a ``cases`` fixture) may nest: lists in lists,
objects in objects. Rulesets never come near it (expressions nest at most 100 levels
too); a deeper value is damage, refused before any code recurses into it."""

_TOO_DEEP = object()

TRACE_HELP = "give the file written by `converge run --trace FILE`"


@dataclass(frozen=True, slots=True)
class Derivation:
    """One way a fact was derived: the agent, the cycle of the merge, and the facts the
    match rested on (ids)."""

    agent: str
    cycle: int
    support: tuple[int, ...]
    #: an ``emit lasting``: the fact does not rest on ``support`` (it stays when it goes)
    lasting: bool = False


@dataclass(frozen=True, slots=True)
class ConflictRecord:
    cycle: int
    type: str
    key: Mapping[str, Any]
    winner: Mapping[str, Any] | None
    losers: tuple[Mapping[str, Any], ...]
    reason: str


@dataclass(slots=True)
class RunView:
    """Everything the test runner, coverage and ``explain`` need from one job."""

    status: str = ""
    status_detail: str = ""
    facts: dict[int, Fact] = field(default_factory=dict)
    cycle_added: dict[int, int] = field(default_factory=dict)
    derivations: dict[int, list[Derivation]] = field(default_factory=dict)
    removed: dict[int, str] = field(default_factory=dict)   # id → why it left the context
    #: the intents an agent answered and closed (they are in ``removed`` too)
    closed: set[int] = field(default_factory=set)
    conflicts: list[ConflictRecord] = field(default_factory=list)
    effects_merged: Counter[str] = field(default_factory=Counter)
    effects_discarded: list[tuple[str, int, str]] = field(default_factory=list)
    outputs_skipped: list[tuple[str, int, str, dict[str, Any], str]] = field(
        default_factory=list)
    pruned_types: Counter[str] = field(default_factory=Counter)
    #: invariant name → how many times it was broken (an effect discarded, a job ended)
    invariants_broken: Counter[str] = field(default_factory=Counter)
    #: each ``invariant_broken`` event as it reads (cycle, invariant, rule, agents,
    #: facts, outcome), in trace order
    invariant_events: list[dict[str, Any]] = field(default_factory=list)
    #: each ``approval_pending`` / ``approval_decided`` / ``pending_dropped`` event
    #: (approval gates), in order
    approval_events: list[dict[str, Any]] = field(default_factory=list)
    #: approval gate name → how many facts it held
    gates_held: Counter[str] = field(default_factory=Counter)
    #: the facts approval gates still hold at the end, by pending id (trace order)
    pending: dict[str, Fact] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    evaluations: dict[int, list[tuple[str, float, str | None]]] = field(default_factory=dict)
    #: the confidence a derived fact was first emitted with (its ``fact_added`` event)
    confidence: dict[int, float] = field(default_factory=dict)
    cycles: int = 0
    now: str | None = None   # the job's time (ISO 8601), when the trace records it
    #: ``(cycle, tier, added, removed, live)`` of each cycle, from its ``cycle_end``
    cycle_log: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    #: ``(name, limit, used)`` of each budget the trace reports (``budget`` events)
    budgets: list[tuple[str, float | int | None, float | int | None]] = field(
        default_factory=list)
    #: the agents each cycle scheduled, by cycle (its ``cycle_start``)
    scheduled: dict[int, tuple[str, ...]] = field(default_factory=dict)
    #: how many times each agent ran (its effect merged or discarded)
    agent_runs: Counter[str] = field(default_factory=Counter)

    # ------------------------------------------------------------------ queries

    def live(self, type_name: str | None = None) -> list[Fact]:
        """Facts in the final context (of one type, or all), in merge order."""
        return [f for fid, f in sorted(self.facts.items())
                if fid not in self.removed and (type_name is None or f.type == type_name)]

    def context(self) -> dict[str, list[Fact]]:
        """The final context by type name."""
        out: dict[str, list[Fact]] = {}
        for fact in self.live():
            out.setdefault(fact.type, []).append(fact)
        return out

    def is_input(self, fid: int) -> bool:
        return fid in self.facts and not self.derivations.get(fid)

    # ---------------------------------------------------------------- building

    def add(self, ev: Mapping[str, Any]) -> None:
        """Fold one trace event (a JSON object) into the view."""
        kind = ev.get("event")
        if kind == "fact_added":
            fid = int(ev["id"])
            self.facts[fid] = Fact(ev["type"], dict(ev["fields"]), fid)
            self.cycle_added[fid] = int(ev.get("cycle", 0))
            if ev.get("agent"):
                self.confidence[fid] = float(ev.get("confidence", 1.0))
                self.derivations.setdefault(fid, []).append(
                    Derivation(ev["agent"], int(ev["cycle"]), tuple(ev.get("support", ())),
                               bool(ev.get("lasting", False))))
        elif kind == "fact_supported":
            self.derivations.setdefault(int(ev["id"]), []).append(
                Derivation(ev["agent"], int(ev["cycle"]), tuple(ev.get("support", ())),
                           bool(ev.get("lasting", False))))
        elif kind == "effect_merged":
            self.effects_merged[ev["agent"]] += 1 if ev.get("outputs", 1) else 0
            self.agent_runs[ev["agent"]] += 1
        elif kind == "effect_discarded":
            self.effects_discarded.append((ev["agent"], int(ev["cycle"]), ev["reason"]))
            self.agent_runs[ev["agent"]] += 1
        elif kind == "output_skipped":
            self.outputs_skipped.append((ev["agent"], int(ev["cycle"]), ev["type"],
                                         dict(ev["fields"]), ev["reason"]))
        elif kind == "conflict":
            self.conflicts.append(ConflictRecord(
                int(ev["cycle"]), ev["type"], dict(ev["key"]), ev.get("winner"),
                tuple(ev.get("losers", ())), ev.get("reason", "")))
        elif kind in ("replaced", "retracted", "pruned", "input_retracted"):
            fid = int(ev["id"])
            why = {"replaced": f"replaced by fact {ev.get('by')} in cycle {ev['cycle']}",
                   "input_retracted": f"retracted in cycle {ev['cycle']} by its giver "
                                      "(an input fact a session took back)",
                   "retracted": f"retracted in cycle {ev['cycle']} (its support, fact "
                                f"{ev.get('cause')}, left the context)",
                   "pruned": f"pruned in cycle {ev['cycle']} (age {ev.get('age')})"}[kind]
            self.removed[fid] = why
            if kind == "pruned":
                self.pruned_types[ev["type"]] += 1
        elif kind == "intent_closed":
            self.closed.add(int(ev["id"]))
            self.removed[int(ev["id"])] = (f"intent closed in cycle {ev['cycle']} by agent "
                                           f"{ev.get('agent')}")
        elif kind == "tool_call":
            self.tool_calls.append(dict(ev))
        elif kind == "evaluation":
            self.evaluations.setdefault(int(ev["target"]), []).append(
                (ev["agent"], float(ev["score"]), ev.get("reason")))
        elif kind == "status":
            self.status = str(ev["status"])
            self.status_detail = str(ev.get("detail", ""))
        elif kind == "cycle_start":
            self.scheduled[int(ev["cycle"])] = tuple(ev.get("agents", ()))
        elif kind == "cycle_end":
            self.cycles = max(self.cycles, int(ev["cycle"]))
            self.cycle_log.append((int(ev["cycle"]), int(ev["tier"]), int(ev["added"]),
                                   int(ev["removed"]), int(ev["live"])))
        elif kind == "budget":
            self.budgets.append((str(ev["name"]), ev.get("limit"), ev.get("used")))
        elif kind == "job_time":
            self.now = str(ev["now"])
        elif kind == "invariant_broken":
            self.invariants_broken[str(ev["invariant"])] += 1
            self.invariant_events.append(dict(ev))
        elif kind == "approval_pending":
            self.approval_events.append(dict(ev))
            self.gates_held[str(ev["gate"])] += 1
            self.pending[str(ev["id"])] = Fact(str(ev["type"]), dict(ev["fields"]))
        elif kind in ("approval_decided", "pending_dropped"):
            self.approval_events.append(dict(ev))
            self.pending.pop(str(ev["id"]), None)


def view_from_events(events: Iterable[Mapping[str, Any]]) -> RunView:
    """A :class:`RunView` of trace events (JSON objects), in trace order."""
    view = RunView()
    for ev in events:
        view.add(ev)
    return view


def view_from_result(result: Any) -> RunView:
    """A :class:`RunView` of an engine ``RunResult``: its trace, and its status (which
    wins over the trace's, should they differ)."""
    trace = getattr(result, "trace", None)
    events: Iterable[Mapping[str, Any]] = ()
    if trace is not None:
        events = (m.model_dump(mode="json") for m in trace.events())
    view = view_from_events(events)
    status = getattr(result, "status", None)
    if status is not None:
        view.status = str(getattr(status, "value", status))
    return view


def read_trace(path: str | Path) -> RunView:
    """Read a JSON Lines trace. A line that is not a valid trace event (not JSON, not
    UTF-8, nested too deeply, an unknown event type, a missing field or one of the
    wrong type) is an :class:`~converge_rules.errors.InputError` naming the line; so is
    a file without any event (every job's trace has at least its status)."""
    name = str(path)
    data = read_trace_bytes(Path(path))
    events = trace_events(decode_trace(data, name), name)
    if not events:
        raise InputError("the trace is empty", source=name, help=TRACE_HELP)
    return view_from_events(events)


def read_trace_bytes(path: Path) -> bytes:
    """The bytes of the trace file at ``path`` (a pipe such as /dev/stdin too). A device
    (/dev/zero, which never ends and would fill the memory), a directory or a file that
    cannot be read is an :class:`InputError` naming it."""
    source = str(path)
    try:
        kind = stat.S_IFMT(path.stat().st_mode)
        if kind in (stat.S_IFCHR, stat.S_IFBLK):
            raise InputError("cannot read trace: it is a device, not a trace",
                             source=source, help=TRACE_HELP)
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read trace: {exc.strerror or exc}", source=source,
                         help=TRACE_HELP) from None


def decode_trace(data: bytes, source: str) -> str:
    """A trace file's bytes as text; bytes that are not UTF-8 are an
    :class:`InputError` naming the line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})", source=source,
                         line=data.count(b"\n", 0, exc.start) + 1, help=TRACE_HELP) from None


def trace_events(text: str, source: str) -> list[dict[str, Any]]:
    """The events of a JSON Lines trace (blank lines skipped), each checked against
    the typed trace event models of :mod:`converge_rules.engine.trace` and for the
    facts it refers to; the first bad line is an :class:`InputError` naming it and
    what is wrong with it."""
    events = []
    added: set[int] = set()
    for number, line in enumerate(jsonl_lines(text), 1):
        if not line.strip():
            continue
        event = trace_event(line, source, number)
        for fid in _referenced(event):
            if fid not in added:
                raise InputError(f"a `{event['event']}` event refers to fact {fid}, which "
                                 "no earlier `fact_added` event adds", source=source,
                                 line=number, help=_EDITED)
        if event["event"] == "fact_added":
            added.add(event["id"])
        events.append(event)
    return events


_EDITED = ("the trace was edited or truncated; record it again with "
           "`converge run --trace FILE`")


class _NotFinite(ValueError):
    """A number in a trace line that is not finite (its text is the message)."""


def _no_constant(name: str) -> Any:
    raise _NotFinite(name)  # NaN, Infinity, -Infinity: not JSON


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # `1e400` parses as infinity
        raise _NotFinite(text)
    return value


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def trace_event(line: str, source: str, number: int) -> dict[str, Any]:
    """One line of a trace as a valid event (a JSON object), or an :class:`InputError`
    naming the line and what is wrong with it."""
    from pydantic import ValidationError

    try:
        event = _DECODER.decode(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg} (column {exc.colno})", source=source,
                         line=number, help="a trace has one JSON object per line, as "
                         "`converge run --trace FILE` writes it") from None
    except _NotFinite as exc:
        raise InputError(f"`{exc}` is not a finite number, and converge writes only "
                         "finite ones", source=source, line=number, help=_EDITED) from None
    except RecursionError:
        event = _TOO_DEEP  # reported below, as any value nested too deeply
    if event is _TOO_DEEP or (may_nest_deeper(line) and
                              nested_deeper_than(event, MAX_VALUE_DEPTH)):
        raise InputError(f"a value nested more than {MAX_VALUE_DEPTH} levels deep",
                         source=source, line=number, help=_EDITED)
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        raise InputError('not a trace event (a JSON object with an "event" key)',
                         source=source, line=number, help=TRACE_HELP)
    # the integrity chain's member (`converge verify` checks it; traces before it have none)
    if isinstance(event.get("hash"), str):
        del event["hash"]
    try:
        _event_models().validate_python(event, strict=True)
    except ValidationError as exc:
        raise InputError(_describe(event["event"], exc), source=source, line=number,
                         help=_EDITED) from None
    return event


@functools.cache
def _event_models() -> TypeAdapter[Any]:
    from pydantic import TypeAdapter

    from converge_rules.engine.trace_models import TraceEvent

    return TypeAdapter(TraceEvent)


def _describe(kind: str, exc: Any) -> str:
    """What is wrong with an event, from a pydantic ``ValidationError``, in words and
    without quoting the (possibly huge) value."""
    errors = exc.errors(include_url=False, include_input=False)
    missing = [".".join(str(p) for p in e["loc"][1:]) for e in errors if e["type"] == "missing"]
    if missing:
        return f"a `{kind}` event without " + ", ".join(f"`{m}`" for m in missing)
    error = errors[0]
    field_name = ".".join(str(part) for part in error.get("loc", ())[1:])
    if error["type"] == "union_tag_invalid":
        return f"unknown event type `{kind[:60]}`"
    if error["type"] == "extra_forbidden":
        return f"a `{kind}` event with an unknown field `{field_name[:60]}`"
    return f"a `{kind}` event with a bad `{field_name}`: {error['msg'].lower()}"


def _referenced(event: Mapping[str, Any]) -> list[int]:
    """The fact ids an event names besides the one it adds."""
    kind = event["event"]
    ids: list[int] = list(event.get("support", ())) if kind in (
        "fact_added", "fact_supported") else []
    if kind in ("fact_supported", "replaced", "retracted", "pruned", "intent_closed",
                "input_retracted"):
        ids.append(event["id"])
    if kind == "evaluation":
        ids.append(event["target"])
    return ids


def may_nest_deeper(line: str) -> bool:
    """Whether a JSON line has enough brackets to nest deeper than
    :data:`MAX_VALUE_DEPTH` (counting them is far cheaper than walking every value)."""
    return line.count("[") + line.count("{") > MAX_VALUE_DEPTH


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` (JSON-like: dicts, lists, tuples) nests more than ``limit``
    levels deep; iterative, so that a deep value cannot exhaust the stack here."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
