"""The data of a job's report, built from a :class:`~converge_rules.analysis.runview.RunView`
(the one reader of traces) and, when given, the checked ruleset (rule locations,
bindings, declared field order, budget limits).

Everything here is JSON-ready and holds the trace's values as they are: escaping is the
renderer's business (:mod:`converge_rules.report.html`). Small parts (summary, timeline,
agents) are rendered into the page; the large ones (facts, conflicts, tool calls,
derivations) go into the embedded JSON document the page's script pages through.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from converge_rules.analysis.runview import RunView
from converge_rules.language.builtins import iso_text
from converge_rules.language.format.formatter import format_value

MAX_BOUND = 20_000
"""How many derivations get their bindings and tool calls recomputed (each is a match
of the agent's patterns); beyond that the explorer shows agent, cycle and support, and
says that `converge explain` gives the rest."""

MAX_BARS = 240
"""How many bars a timeline chart draws at most; more cycles are summed in buckets."""

CHART_WIDTH = 720
MAX_BAR_WIDTH = 24
CHART_HEIGHT = 90

NOT_TIMED = ("not recorded for this job. The trace holds no clock readings (it is the "
             "same on every executor and run), so timings are kept beside it: a job run "
             "with `converge run --store run.db` keeps them in the store (`converge report "
             "run.db` shows them); for a trace file, run with `--trace run.jsonl --timings "
             "run.timings.jsonl` and give `converge report run.jsonl --timings "
             "run.timings.jsonl`")
"""Why the report shows no tool latency or agent time, and how to record them, said
where they would be."""

SLOWEST = 5
"""How many tools (by their total latency) and single calls the summary names."""


@dataclass(frozen=True, slots=True)
class JobMeta:
    """What a store knows of a job besides its trace: its id, ruleset, and when it
    started and finished (wall clock)."""

    id: int
    ruleset: str
    status: str
    started: str
    finished: str | None


@dataclass(slots=True)
class RunReport:
    """A job's report: what the template renders (``summary``, ``timeline``,
    ``agents``, ``tools``) and the embedded document (``data``)."""

    title: str
    source: str
    summary: dict[str, Any]
    timeline: list[dict[str, Any]]
    agents: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    data: dict[str, Any] = field(default_factory=dict)


def build_run_report(view: RunView, *, title: str, source: str, checked: Any = None,
                     program: Any = None, functions: Mapping[str, Any] | None = None,
                     job: JobMeta | None = None,
                     timings: Sequence[Mapping[str, Any]] | None = None) -> RunReport:
    """The report of the job ``view`` shows. ``checked`` (a ``CheckedRuleset``) adds
    rule locations, bindings, tiers and field order; ``program`` (its compiled
    ``Program``) the budget limits; ``job`` what the store recorded of the job;
    ``timings`` the job's timings records (:mod:`converge_rules.engine.timings`: from
    its store, or ``--timings FILE``), which add tool latency, agent and cycle time
    (None or empty: the page says they were not recorded, and how to record them).
    With ``checked``, the view's date, datetime and duration fields are read into
    values in place (as ``explain`` does) once the page's rows are taken."""
    types = _types(view, checked)
    agents = _agent_names(view, checked)
    index = {name: i for i, name in enumerate(agents)}
    timed = Timed(view, timings or ())
    calls = [[int(c.get("cycle", 0)), c.get("agent"), c.get("tool"),
              _args_text(c.get("args") or {}),
              None if c.get("error") is not None else format_value(_json(c.get("result"))),
              c.get("error"), *(timed.calls[i] if timed.on else ())]
             for i, c in enumerate(view.tool_calls)]
    show = _shower(checked)
    conflicts = [[c.cycle, c.type, show(c.type, c.key)[len(c.type) + 1:-1],
                  None if c.winner is None else show(c.type, c.winner),
                  [show(c.type, loser) for loser in c.losers], c.reason]
                 for c in view.conflicts]
    data: dict[str, Any] = {
        "agents": agents,
        "spans": {},
        "types": types,
        "removed": {str(k): v for k, v in view.removed.items()},
        "won": _won(view),
        "conflicts": conflicts,
        "calls": calls,
        "evaluations": {str(k): [[a, s, r] for a, s, r in v]
                        for k, v in view.evaluations.items()},
        "confidence": {str(k): v for k, v in view.confidence.items() if v != 1.0},
        "derivs": {},
        "ruleset": checked is not None,
        "enums": [],
        "timed": timed.on,
        "invariants": _invariants(view, show),
        "approvals": _approvals(view, show),
    }
    explainer = _explainer(view, checked, functions)
    if explainer is not None:
        data["spans"] = {name: str(a.span) for name, a in explainer.agents.items()}
        data["enums"] = sorted(f"{t}.{f}" for t, f in explainer.field_enums)
    call_index = {id(c): i for i, c in enumerate(view.tool_calls)}
    bound = 0
    for fid, derivations in view.derivations.items():
        rows = []
        for d in derivations:
            bindings: str | None = None
            used: list[int] = []
            if explainer is not None and bound < MAX_BOUND:
                bound += 1
                env, made = explainer.match_of(d)
                bindings = ", ".join(f"{k} = {format_value(v)}"
                                     for k, v in sorted(env.items()))
                used = [call_index[id(c)] for c in made if id(c) in call_index]
            rows.append([index.get(d.agent, -1), d.cycle, list(d.support), int(d.lasting),
                         bindings, used])
        data["derivs"][str(fid)] = rows
    summary = _summary(view, program, job)
    summary.update(timed.summary())
    summary["invariants"] = sorted(view.invariants_broken.items())
    summary["approvals"] = _approval_counts(view)
    return RunReport(title=title, source=source,
                     summary=summary,
                     timeline=_timeline(view, timed),
                     agents=_agents(view, checked, timed),
                     tools=_tools(view, timed),
                     data=data)


def _args_text(values: Mapping[str, Any]) -> str:
    """``name: value, …`` as rule text writes arguments and keys."""
    return ", ".join(f"{k}: {format_value(_json(v))}" for k, v in values.items())


def _shower(checked: Any) -> Any:
    """``show(type, values)``: a fact as rule text, its fields in declared order and
    enum members bare when the ruleset is known."""
    from converge_rules.analysis.interpret import Fact
    from converge_rules.analysis.show import fact_text

    enums: dict[tuple[str, str], str] = {}
    order: dict[str, list[str]] = {}
    if checked is not None:
        names = set(checked.enums)
        for type_name, decl in checked.facts.items():
            order[type_name] = [f.name.name for f in decl.fields]
            for f in decl.fields:
                if f.type.name in names:
                    enums[(type_name, f.name.name)] = f.type.name

    def show(type_name: str, values: Mapping[str, Any]) -> str:
        ordered = {k: _json(values[k]) for k in order.get(type_name, []) if k in values}
        ordered.update((k, _json(v)) for k, v in values.items() if k not in ordered)
        return fact_text(Fact(type_name, ordered), enums)

    return show


def _explainer(view: RunView, checked: Any, functions: Mapping[str, Any] | None) -> Any:
    """An :class:`Explainer` on the ruleset, or None without one."""
    if checked is None:
        return None
    from converge_rules.analysis.explain import Explainer
    from converge_rules.analysis.interpret import interpreter_for, job_time, read_times

    # the facts' rows are built: from here their dates may become the values rules see
    read_times(view.facts, checked)
    interp = interpreter_for(checked, view.context(), dict(functions or {}),
                             now=job_time(view.now))
    return Explainer(view, checked, interp)


def _types(view: RunView, checked: Any) -> list[dict[str, Any]]:
    """Every fact type of the trace (and of the ruleset), each with its fields in
    declared order (sorted by name without a ruleset), its key fields, and its facts
    as rows ``[id, cycle, removed (0/1), value…]`` in merge order."""
    decls = checked.facts if checked is not None else {}
    by_type: dict[str, list[int]] = {}
    for fid in sorted(view.facts):
        by_type.setdefault(view.facts[fid].type, []).append(fid)
    out = []
    for name in sorted(set(by_type) | set(decls)):
        ids = by_type.get(name, [])
        decl = decls.get(name)
        if decl is not None:
            fields = [f.name.name for f in decl.fields]
            keys = [k.name.name for k in decl.keys]
            intent = bool(getattr(decl, "intent", False))
        else:
            fields, keys, intent = [], [], False
        seen = set(fields)
        for fid in ids:
            for k in view.facts[fid].values:
                if k not in seen:
                    seen.add(k)
                    fields.append(k)
        if decl is None:
            fields.sort()
        rows = []
        live = 0
        for fid in ids:
            values = view.facts[fid].values
            gone = fid in view.removed
            live += not gone
            rows.append([fid, view.cycle_added.get(fid, 0), int(gone),
                         *(_json(values.get(f)) for f in fields)])
        floats = sorted({f for fid in ids for f, v in view.facts[fid].values.items()
                         if isinstance(v, float)})
        out.append({"name": name, "fields": fields, "keys": keys, "rows": rows,
                    "live": live, "intent": intent, "floats": floats})
    return out


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _json(value: Any) -> Any:
    """A fact's value as JSON holds it: a view whose times were read
    (:func:`~converge_rules.analysis.interpret.read_times`) holds dates, datetimes and
    durations, written back as their ISO 8601 text."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, date | timedelta):
        return iso_text(value)
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def _agent_names(view: RunView, checked: Any) -> list[str]:
    names: dict[str, None] = {}
    for a in checked.agents if checked is not None else ():
        names[a.name.name] = None
    for derivations in view.derivations.values():
        for d in derivations:
            names.setdefault(d.agent, None)
    for name in view.agent_runs:
        names.setdefault(name, None)
    return list(names)


def _won(view: RunView) -> dict[str, list[int]]:
    """Fact id → the conflicts it won (indexes into ``conflicts``): the winner of a
    conflict is the fact of its type with the winner's values added in that cycle (or
    the one that held them before)."""
    contested = {c.type for c in view.conflicts if c.winner is not None}
    by_values: dict[tuple[str, str], list[int]] = {}
    for fid in sorted(view.facts) if contested else ():
        fact = view.facts[fid]
        if fact.type in contested:
            by_values.setdefault((fact.type, _key(fact.values)), []).append(fid)
    won: dict[str, list[int]] = {}
    for i, c in enumerate(view.conflicts):
        if c.winner is None:
            continue
        ids = by_values.get((c.type, _key(c.winner)), [])
        before = [f for f in ids if view.cycle_added.get(f, 0) <= c.cycle]
        if before:
            won.setdefault(str(before[-1]), []).append(i)
    return won


def _key(values: Mapping[str, Any]) -> str:
    return json.dumps(_json(dict(values)), sort_keys=True, default=str)


def _summary(view: RunView, program: Any, job: JobMeta | None) -> dict[str, Any]:
    facts = len(view.facts)
    removed = len(view.removed)
    errors = sum(1 for c in view.tool_calls if c.get("error") is not None)
    failed = sorted({agent for agent, _, _ in view.effects_discarded})
    unmet: list[str] = []
    if view.status == "unmet_goal" and view.status_detail.startswith("goal not met: "):
        unmet = view.status_detail.removeprefix("goal not met: ").split("; ")
    return {
        "status": view.status or "unknown (the trace has no status event)",
        "detail": view.status_detail,
        "cycles": view.cycles,
        "facts": facts,
        "live": facts - removed,
        "removed": removed,
        "inputs": sum(1 for fid in view.facts if not view.derivations.get(fid)),
        "conflicts": len(view.conflicts),
        "tool_calls": len(view.tool_calls),
        "tool_errors": errors,
        "failed_agents": failed,
        "discarded": len(view.effects_discarded),
        "unmet": unmet,
        "budgets": _budgets(view, program),
        "job": _job(job),
        "now": view.now,
        "not_timed": NOT_TIMED,
    }


def _job(job: JobMeta | None) -> dict[str, Any] | None:
    if job is None:
        return None
    from datetime import datetime

    took = None
    if job.finished:
        try:
            seconds = (datetime.fromisoformat(job.finished)
                       - datetime.fromisoformat(job.started)).total_seconds()
            took = f"{seconds:g} s"
        except ValueError:
            took = None
    return {"id": job.id, "ruleset": job.ruleset, "status": job.status,
            "started": job.started, "finished": job.finished or "did not finish",
            "took": took}


def _budgets(view: RunView, program: Any) -> list[dict[str, Any]]:
    """Each budget with a limit (from the ruleset) or reported by the trace: its limit,
    what the job used (as far as the trace tells), and whether it was exceeded."""
    live_peak = max([row[4] for row in view.cycle_log]
                    + [sum(1 for f in view.cycle_added.values() if f == 0)])
    used: dict[str, float | int | None] = {
        "max_cycles": view.cycles,
        "max_facts": live_peak,
        "max_tool_calls": len(view.tool_calls),
        "max_agents": max((len(a) for a in view.scheduled.values()), default=0),
    }
    limits: dict[str, float | int | None] = {}
    budgets = getattr(program, "budgets", None)
    for name in ("max_facts", "max_cycles", "max_agents", "max_tool_calls",
                 "agent_timeout", "job_timeout"):
        if budgets is not None:
            limits[name] = getattr(budgets, name, None)
    exceeded = set()
    for name, limit, was in view.budgets:
        limits[name] = limit
        used[name] = was
        exceeded.add(name)
    out = []
    for name in sorted(limits):
        limit = limits.get(name)
        value = used.get(name)
        share = None
        if isinstance(limit, int | float) and limit and isinstance(value, int | float):
            share = min(1.0, value / limit)
        out.append({"name": name,
                    "limit": "unlimited" if limit is None else _number(limit),
                    "used": "not in the trace" if value is None else _number(value),
                    "share": share, "exceeded": name in exceeded})
    return out


def _number(value: float | int) -> str:
    """``1,000,000`` for an int (a budget's limit is read at a glance), ``2.0`` for a
    float (seconds)."""
    return f"{value:,}" if isinstance(value, int) else format_value(value)


def _bucket(cycles: Sequence[int]) -> int:
    return max(1, math.ceil(len(cycles) / MAX_BARS))


def _timeline(view: RunView, timed: Timed | None = None) -> list[dict[str, Any]]:
    """Three charts, one bar per cycle (or per bucket of cycles): facts added and
    removed, conflicts, tool calls; each bar is coloured by its tier and titled with
    its numbers. Cycle 0 is the merge of the input facts. With timings, three more:
    each cycle's wall time (evaluation and merge), its agents' time, its tool latency."""
    zero = {"tier": 0, "added": 0, "removed": 0, "conflicts": 0, "calls": 0,
            "evaluate": 0.0, "merge": 0.0, "agents": 0.0, "latency": 0.0}
    per: dict[int, dict[str, Any]] = {}
    inputs = sum(1 for c in view.cycle_added.values() if c == 0)
    if inputs:
        per[0] = {**zero, "added": inputs}
    for cycle, tier, added, removed, _live in view.cycle_log:
        per[cycle] = {**zero, "tier": tier, "added": added, "removed": removed}
    conflicts = Counter(c.cycle for c in view.conflicts)
    calls = Counter(int(c.get("cycle", 0)) for c in view.tool_calls)
    for cycle, n in conflicts.items():
        per.setdefault(cycle, dict(zero))["conflicts"] = n
    for cycle, n in calls.items():
        per.setdefault(cycle, dict(zero))["calls"] = n
    charts_of: list[tuple[str, tuple[str, ...], bool]] = [
        ("Facts added and removed", ("added", "removed"), False),
        ("Conflicts", ("conflicts",), False),
        ("Tool calls", ("calls",), False)]
    if timed is not None and timed.on:
        for cycle, (evaluate, merge) in timed.cycle_wall.items():
            row = per.setdefault(cycle, dict(zero))
            row["evaluate"], row["merge"] = evaluate, merge
        for cycle, seconds in timed.agent_time.items():
            per.setdefault(cycle, dict(zero))["agents"] = seconds
        for cycle, seconds in timed.tool_time.items():
            per.setdefault(cycle, dict(zero))["latency"] = seconds
        charts_of += [("Cycle time (seconds)", ("evaluate", "merge"), True),
                      ("Agent time (seconds)", ("agents",), True),
                      ("Tool latency (seconds)", ("latency",), True)]
    cycles = sorted(per)
    if not cycles:
        return []
    size = _bucket(cycles)
    buckets = [cycles[i:i + size] for i in range(0, len(cycles), size)]
    charts = []
    for title, parts, seconds in charts_of:
        sums = [{p: sum(per[c][p] for c in b) for p in parts} for b in buckets]
        top = max((sum(s.values()) for s in sums), default=0) or 1
        width = min(CHART_WIDTH / len(buckets), MAX_BAR_WIDTH)
        show: Any = seconds_text if seconds else int  # counts stay numbers
        bars = []
        for i, (bucket, s) in enumerate(zip(buckets, sums, strict=True)):
            tiers = sorted({per[c]["tier"] for c in bucket})
            label = (f"cycle {bucket[0]}" if len(bucket) == 1
                     else f"cycles {bucket[0]}–{bucket[-1]}")
            label += " (inputs)" if bucket == [0] else \
                f", tier {', '.join(str(t) for t in tiers)}"
            label += ": " + ", ".join(f"{show(v)} {p}" for p, v in s.items())
            y = float(CHART_HEIGHT)
            for p in parts:
                h = s[p] / top * (CHART_HEIGHT - 4)
                y -= h
                bars.append({"x": round(i * width, 2), "y": round(y, 2),
                             "w": round(max(width - 1, 0.5), 2), "h": round(h, 2),
                             "part": p, "tier": tiers[0] % 6, "label": label})
        total = sum(sum(s.values()) for s in sums)
        charts.append({"title": title, "bars": bars, "top": show(top),
                       "first": cycles[0], "last": cycles[-1], "bucket": size,
                       "total": show(total), "width": CHART_WIDTH, "height": CHART_HEIGHT,
                       "seconds": seconds})
    return charts


def _agents(view: RunView, checked: Any, timed: Timed | None = None
            ) -> list[dict[str, Any]]:
    """Each agent: its tier and rule location, how often it ran, the facts it produced
    (first derivations) and supported again, outputs skipped, effects discarded (with
    the first reasons), its tool calls and, with timings, the time it spent (all its
    runs, tool calls included) and its slowest run."""
    tiers = {a.name.name: (a.effective_tier, str(a.span))
             for a in (checked.agents if checked is not None else ())}
    produced: Counter[str] = Counter()
    supported: Counter[str] = Counter()
    for derivations in view.derivations.values():
        if derivations:
            produced[derivations[0].agent] += 1
            for d in derivations[1:]:
                supported[d.agent] += 1
    types: dict[str, Counter[str]] = {}
    for fid, derivations in view.derivations.items():
        if derivations:
            types.setdefault(derivations[0].agent, Counter())[view.facts[fid].type] += 1
    skipped = Counter(a for a, *_ in view.outputs_skipped)
    discarded: dict[str, list[str]] = {}
    for agent, cycle, reason in view.effects_discarded:
        discarded.setdefault(agent, []).append(f"cycle {cycle}: {reason}")
    calls = Counter(str(c.get("agent")) for c in view.tool_calls)
    errors = Counter(str(c.get("agent")) for c in view.tool_calls if c.get("error") is not None)
    out = []
    for name in _agent_names(view, checked):
        tier, span = tiers.get(name, (None, None))
        out.append({"name": name, "tier": tier, "span": span,
                    "runs": view.agent_runs.get(name, 0),
                    "produced": produced.get(name, 0),
                    "types": ", ".join(f"{t} ×{n}" for t, n in sorted(types.get(name, {}).items())),
                    "supported": supported.get(name, 0),
                    "skipped": skipped.get(name, 0),
                    "failures": len(discarded.get(name, [])),
                    "reasons": discarded.get(name, [])[:3],
                    "calls": calls.get(name, 0), "errors": errors.get(name, 0),
                    **_spent(timed, name)})
    return out


def _spent(timed: Timed | None, agent: str) -> dict[str, Any]:
    """An agent's time spent and slowest run, as text and as seconds (to sort by)."""
    if timed is None or not timed.on or agent not in timed.agent_total:
        return {"time": None, "seconds": 0.0, "slowest": None}
    total = timed.agent_total[agent]
    return {"time": seconds_text(total), "seconds": total,
            "slowest": seconds_text(timed.agent_slowest[agent])}


def _tools(view: RunView, timed: Timed | None = None) -> list[dict[str, Any]]:
    """Each tool: how often it was called, by which agents, and how often it failed;
    with timings, its total, mean and slowest latency and how many calls were paid."""
    count: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    agents: dict[str, set[str]] = {}
    for c in view.tool_calls:
        tool = str(c.get("tool"))
        count[tool] += 1
        errors[tool] += c.get("error") is not None
        agents.setdefault(tool, set()).add(str(c.get("agent")))
    out = []
    for t in sorted(count):
        row: dict[str, Any] = {"name": t, "calls": count[t], "errors": errors[t],
                               "agents": ", ".join(sorted(agents[t])), "total": None,
                               "seconds": 0.0, "mean": None, "max": None, "paid": None}
        latency = timed.tool_latency.get(t) if timed is not None else None
        if latency:
            row.update(total=seconds_text(sum(latency)), seconds=sum(latency),
                       mean=seconds_text(sum(latency) / len(latency)),
                       max=seconds_text(max(latency)), paid=timed.tool_paid[t] if timed
                       else None)
        out.append(row)
    return out


def seconds_text(value: float) -> str:
    """Seconds as a person reads them: ``850 µs``, ``12.3 ms``, ``1.24 s``, ``2 min 5 s``."""
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    if value < 120:
        return f"{value:.3g} s"
    if not math.isfinite(value):  # a sum of huge (hand-written) records
        return "∞"
    return f"{int(value // 60)} min {value % 60:.0f} s"


class Timed:
    """A job's timings records joined to its trace: each tool call of ``view`` gets the
    latency and source of its record (matched by cycle, agent, tool and key, in call
    order), and the sums per cycle, agent and tool. ``on`` is False without records."""

    def __init__(self, view: RunView, records: Sequence[Mapping[str, Any]]) -> None:
        from collections import deque

        from converge_rules.engine.timings import call_key

        self.on = bool(records)
        self.cycle_wall: dict[int, tuple[float, float]] = {}
        self.agent_time: dict[int, float] = {}
        self.tool_time: dict[int, float] = {}
        self.agent_total: dict[str, float] = {}
        self.agent_slowest: dict[str, float] = {}
        self.tool_latency: dict[str, list[float]] = {}
        self.tool_paid: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.slowest_calls: list[tuple[float, int, str, str]] = []
        waiting: dict[tuple[int, str, str, str], deque[tuple[float, str]]] = {}
        for r in records:
            kind, cycle = r.get("kind"), int(r.get("cycle", 0))
            if kind == "cycle":
                self.cycle_wall[cycle] = (float(r["evaluate"]), float(r["merge"]))
            elif kind == "agent":
                seconds, agent = float(r["seconds"]), str(r.get("agent"))
                self.agent_time[cycle] = self.agent_time.get(cycle, 0.0) + seconds
                self.agent_total[agent] = self.agent_total.get(agent, 0.0) + seconds
                self.agent_slowest[agent] = max(self.agent_slowest.get(agent, 0.0), seconds)
            elif kind == "tool":
                seconds, tool = float(r["seconds"]), str(r.get("tool"))
                source = str(r.get("source"))
                self.tool_time[cycle] = self.tool_time.get(cycle, 0.0) + seconds
                self.tool_latency.setdefault(tool, []).append(seconds)
                self.tool_paid[tool] += source == "called"
                self.sources[source] += 1
                self.slowest_calls.append((seconds, cycle, str(r.get("agent")), tool))
                waiting.setdefault((cycle, str(r.get("agent")), tool, str(r.get("key"))),
                                   deque()).append((seconds, source))
        #: ``[seconds, source]`` of each of the view's tool calls (``[None, None]``
        #: when no record matches it)
        self.calls: list[list[Any]] = []
        for c in view.tool_calls:
            tool = str(c.get("tool"))
            args = c.get("args")
            key = call_key(tool, args if isinstance(args, Mapping) else {})
            queue = waiting.get((int(c.get("cycle", 0)), str(c.get("agent")), tool, key))
            self.calls.append(list(queue.popleft()) if queue else [None, None])

    def summary(self) -> dict[str, Any]:
        """What the summary shows of the timings: totals, and the slowest tools (by
        their total latency) and calls."""
        if not self.on:
            return {"timed": False}
        tools = sorted(self.tool_latency.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
        calls = sorted(self.slowest_calls, key=lambda c: (-c[0], c[1], c[2], c[3]))
        evaluate = sum(e for e, _ in self.cycle_wall.values())
        merge = sum(m for _, m in self.cycle_wall.values())
        return {
            "timed": True,
            "tool_time": seconds_text(sum(sum(v) for v in self.tool_latency.values())),
            "agent_time": seconds_text(sum(self.agent_total.values())),
            "evaluate_time": seconds_text(evaluate),
            "merge_time": seconds_text(merge),
            "paid": self.sources.get("called", 0),
            "memo": self.sources.get("memo", 0),
            "recorded": self.sources.get("record", 0),
            "slowest_tools": [{"name": t, "total": seconds_text(sum(v)), "calls": len(v),
                               "max": seconds_text(max(v))} for t, v in tools[:SLOWEST]],
            "slowest_calls": [{"tool": t, "agent": a, "cycle": c,
                               "seconds": seconds_text(x)} for x, c, a, t in calls[:SLOWEST]],
        }


def _invariants(view: RunView, show: Any) -> list[list[Any]]:
    """Each broken invariant, in trace order: ``[cycle, invariant, outcome, agents,
    facts (as rule text), rule]``."""
    rows = []
    for ev in view.invariant_events:
        facts = []
        for f in ev.get("facts") or ():
            if isinstance(f, Mapping) and isinstance(f.get("fields"), Mapping):
                facts.append(show(str(f.get("type")), f["fields"]))
        rows.append([int(ev.get("cycle", 0)), str(ev.get("invariant")),
                     str(ev.get("outcome")), [str(a) for a in ev.get("agents") or ()],
                     facts, str(ev.get("rule", ""))])
    return rows


_APPROVAL_SHOWN = ("event", "cycle", "id", "gate", "agent", "type", "fields", "decision",
                   "outcome", "hash")


def _approvals(view: RunView, show: Any) -> list[list[Any]]:
    """Each approval event (``approval_pending``: a fact its gate holds;
    ``approval_decided``: the decision applied), in trace order: ``[cycle, "pending" |
    "decided", pending id, gate, agent, fact (rule text), decision, details]``. A held
    fact's decision is ``awaiting`` until one is applied to its id; a decision reads
    ``approve (merged)``, ``reject (rejected)``…; ``details`` are the event's other
    members as ``name: value`` text (who decided and when, the note, the edits, the
    support and confidence of a held fact)."""
    rows = []
    events = view.approval_events
    for at, ev in enumerate(events):
        fields = ev.get("fields")
        fact = (show(str(ev.get("type")), fields) if isinstance(fields, Mapping)
                else str(ev.get("type") or ""))
        pending = ev.get("event") == "approval_pending"
        dropped = ev.get("event") == "pending_dropped"
        if pending:
            # what became of it: the next event about its id (held again later, the
            # same id is a new pending row)
            later = next((e for e in events[at + 1:] if str(e.get("id")) == str(ev.get("id"))
                          and e.get("event") != "approval_pending"), None)
            decision = "awaiting" if later is None else (
                f"dropped in cycle {later.get('cycle')}"
                if later.get("event") == "pending_dropped"
                else f"decided in cycle {later.get('cycle')}")
        elif dropped:
            # (nothing gone: a combine policy's pending total, grown by a later part)
            decision = "dropped (support gone)" if ev.get("gone") else "dropped (grown)"
        else:
            decision = str(ev.get("decision", ""))
            if ev.get("outcome") is not None:
                decision += f" ({ev.get('outcome')})"
        details = ", ".join(f"{k}: {format_value(_json(v))}" for k, v in sorted(ev.items())
                            if k not in _APPROVAL_SHOWN)
        cycle = ev.get("cycle")
        rows.append([cycle if isinstance(cycle, int) else 0,
                     "pending" if pending else "dropped" if dropped else "decided",
                     "" if ev.get("id") is None else str(ev.get("id")),
                     "" if ev.get("gate") is None else str(ev.get("gate")),
                     "" if ev.get("agent") is None else str(ev.get("agent")),
                     fact, decision, details])
    return rows


def _approval_counts(view: RunView) -> dict[str, int]:
    """How many facts their gates held, how many decisions were applied, how many
    held facts were dropped (their support went), and how many still await a decision
    when the trace ends."""
    held = [str(ev.get("id")) for ev in view.approval_events
            if ev.get("event") == "approval_pending"]
    decided = {str(ev.get("id")) for ev in view.approval_events
               if ev.get("event") == "approval_decided"}
    dropped = sum(1 for ev in view.approval_events if ev.get("event") == "pending_dropped")
    return {"held": len(held), "decided": len(decided), "dropped": dropped,
            "awaiting": len(view.pending)}
