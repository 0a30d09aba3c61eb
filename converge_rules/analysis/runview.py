"""A job seen through its trace: the final context, every fact's derivations, the
conflicts, prunes and discarded effects.

Built from trace events as JSON objects (``{"event": "fact_added", …}``), so the same
code reads a trace in memory (a :class:`~converge_rules.engine.result.RunResult`'s
``trace``) and a trace written to a JSON Lines file by ``converge run --trace``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converge_rules.analysis.interpret import Fact
from converge_rules.errors import InputError
from converge_rules.jsontext import jsonl_lines


@dataclass(frozen=True, slots=True)
class Derivation:
    """One way a fact was derived: the agent, the cycle of the merge, and the facts the
    match rested on (ids)."""

    agent: str
    cycle: int
    support: tuple[int, ...]


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
    conflicts: list[ConflictRecord] = field(default_factory=list)
    effects_merged: Counter[str] = field(default_factory=Counter)
    effects_discarded: list[tuple[str, int, str]] = field(default_factory=list)
    outputs_skipped: list[tuple[str, int, str, dict[str, Any], str]] = field(
        default_factory=list)
    pruned_types: Counter[str] = field(default_factory=Counter)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    evaluations: dict[int, list[tuple[str, float, str | None]]] = field(default_factory=dict)
    cycles: int = 0

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
                self.derivations.setdefault(fid, []).append(
                    Derivation(ev["agent"], int(ev["cycle"]), tuple(ev.get("support", ()))))
        elif kind == "fact_supported":
            self.derivations.setdefault(int(ev["id"]), []).append(
                Derivation(ev["agent"], int(ev["cycle"]), tuple(ev.get("support", ()))))
        elif kind == "effect_merged":
            self.effects_merged[ev["agent"]] += 1 if ev.get("outputs", 1) else 0
        elif kind == "effect_discarded":
            self.effects_discarded.append((ev["agent"], int(ev["cycle"]), ev["reason"]))
        elif kind == "output_skipped":
            self.outputs_skipped.append((ev["agent"], int(ev["cycle"]), ev["type"],
                                         dict(ev["fields"]), ev["reason"]))
        elif kind == "conflict":
            self.conflicts.append(ConflictRecord(
                int(ev["cycle"]), ev["type"], dict(ev["key"]), ev.get("winner"),
                tuple(ev.get("losers", ())), ev.get("reason", "")))
        elif kind in ("replaced", "retracted", "pruned"):
            fid = int(ev["id"])
            why = {"replaced": f"replaced by fact {ev.get('by')} in cycle {ev['cycle']}",
                   "retracted": f"retracted in cycle {ev['cycle']} (its support, fact "
                                f"{ev.get('cause')}, left the context)",
                   "pruned": f"pruned in cycle {ev['cycle']} (age {ev.get('age')})"}[kind]
            self.removed[fid] = why
            if kind == "pruned":
                self.pruned_types[ev["type"]] += 1
        elif kind == "intent_closed":
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
        elif kind == "cycle_end":
            self.cycles = max(self.cycles, int(ev["cycle"]))


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
    """Read a JSON Lines trace; a line that is not a JSON object is an
    :class:`~converge_rules.errors.InputError` naming the line."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read trace: {exc.strerror or exc}", source=name,
                         help="give the file written by `converge run --trace FILE`") \
            from exc
    events = []
    for number, line in enumerate(jsonl_lines(text), 1):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not JSON: {exc.msg} (column {exc.colno})", source=name,
                             line=number, help="a trace has one JSON object per line, "
                             "as `converge run --trace FILE` writes it") from exc
        if not isinstance(ev, dict) or "event" not in ev:
            raise InputError("not a trace event (a JSON object with an \"event\" key)",
                             source=name, line=number,
                             help="give the file written by `converge run --trace FILE`")
        events.append(ev)
    return view_from_events(events)
