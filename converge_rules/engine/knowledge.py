"""The knowledge of a job: facts that ``prune … into knowledge`` moved out of the live
context, and the summary facts a plugin folded them into.

A fact moved here leaves the live context as any pruned fact does (a ``pruned`` trace
event, the facts resting only on it retracted) but is kept, with its fields, its id in
the trace, the cycle it was merged and the cycle it moved, and its derivations. Agents
read it with the built-in tool ``knowledge_find`` (:data:`KNOWLEDGE_TOOL`), answered by
the job like any tool and recorded in the trace, so replay needs no knowledge store.

What agents can see changes only between cycles (a prune runs after a cycle's merge),
so every agent of a cycle sees the same knowledge, whatever the executor and timing:
answers are deterministic. Without a job store the rows stay in memory for the job;
with one (a sink with ``stage_knowledge``, :class:`KnowledgeSink`), each cycle's rows
are written in that cycle's transaction and only the job's store holds them after.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from converge_rules.engine.trace import jsonable
from converge_rules.errors import PluginError, ToolError
from converge_rules.language.builtins import KNOWLEDGE_TOOL
from converge_rules.program import Program
from converge_rules.records import record

Summarize = Callable[[str, list[dict[str, Any]], int], Iterable[Mapping[str, Any]]]
"""``summarize(fact_type, facts, cycle)`` → summary facts ``{"type": …, "fields": …}``:
the ``converge_summarize`` hooks of the loaded plugins, called once per type and cycle
with the facts of that type the cycle moved (``fields`` of each, oldest first)."""


@record
class KnowledgeRow:
    """One fact in the knowledge store. ``seq`` orders the job's rows (0, 1, …);
    ``fact`` is the fact's id in the trace (None for a summary); ``merged`` the cycle
    the fact was merged; ``cycle`` the cycle it moved (or the summary was made);
    ``derivations``: ``{"agent", "cycle", "support"}`` of each way it was derived
    (empty for an input fact or when the engine kept none)."""

    seq: int
    cycle: int
    type: str
    fields: dict[str, Any]
    fact: int | None
    merged: int
    derivations: tuple[dict[str, Any], ...] = ()

    @property
    def summary(self) -> bool:
        return self.fact is None

    def data(self) -> str:
        """What a store keeps of the row beyond its columns (job, seq, cycle, type,
        fact): canonical JSON."""
        return json.dumps({"fields": self.fields, "merged": self.merged,
                           "derivations": list(self.derivations)},
                          sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_columns(cls, seq: int, cycle: int, type_name: str, fact: int | None,
                     data: str) -> KnowledgeRow:
        d = json.loads(data)
        return cls(seq, cycle, type_name, d["fields"], fact, d["merged"],
                   tuple(d.get("derivations", ())))


@runtime_checkable
class KnowledgeSink(Protocol):
    """A job store's sink that keeps knowledge: rows staged here are written in the
    transaction of the next ``cycle_committed``; ``knowledge_rows`` reads the
    committed rows of a type back, in ``seq`` order."""

    def stage_knowledge(self, rows: Sequence[KnowledgeRow]) -> None: ...

    def knowledge_rows(self, type_name: str) -> Iterable[KnowledgeRow]: ...


class Knowledge:
    """The knowledge of one job (see the module). ``sink``: a job store's sink that
    keeps the rows (None: they stay in memory); ``summarize``: the plugins' hook."""

    def __init__(self, program: Program, *, sink: KnowledgeSink | None = None,
                 summarize: Summarize | None = None) -> None:
        self._program = program
        self._sink = sink
        self._summarize = summarize
        self._fields = {t.name: t.field_names for t in program.types}
        #: the rows of the current cycle, for the sink, in seq order
        self._pending: list[KnowledgeRow] = []
        #: without a sink: every row, by type, in seq order
        self._by_type: dict[str, list[KnowledgeRow]] = {}
        self._seq = 0
        #: rows moved this cycle, per type, for the summarize hook
        self._moved: dict[str, list[dict[str, Any]]] = {}
        #: whether this cycle kept rows (:meth:`end_cycle` has work): the job asks
        #: before calling it, so a cycle that kept none costs one attribute read
        self.rows_waiting = False

    @property
    def size(self) -> int:
        """How many rows the job's knowledge holds (summaries included)."""
        return self._seq

    def resumed(self, size: int) -> None:
        """A job restored from a checkpoint: its store's sink holds ``size`` rows
        (:attr:`size` then), written by the cycles it committed."""
        if self._sink is None:
            raise RuntimeError("only a job whose knowledge is in a store is resumed")
        self._seq = size

    def put(self, type_id: int, values: tuple[Any, ...], fact: int, merged: int,
            cycle: int, derivations: Sequence[tuple[int, int, tuple[int, ...]]]) -> None:
        """Keep the fact ``fact`` (of ``type_id``, with ``values``) that a prune moves
        out of the live context in ``cycle``."""
        spec = self._program.types[type_id]
        fields = {n: jsonable(v) for n, v in zip(spec.field_names, values, strict=True)}
        agents = self._program.agents
        derivs = tuple(
            {"agent": agents[a].name if 0 <= a < len(agents) else str(a), "cycle": c,
             "support": list(support)}
            for a, c, support in derivations
        )
        self._add(KnowledgeRow(self._seq, cycle, spec.name, fields, fact, merged, derivs))
        if self._summarize is not None:
            self._moved.setdefault(spec.name, []).append(fields)

    def _add(self, row: KnowledgeRow) -> None:
        self._seq += 1
        self._pending.append(row)
        self.rows_waiting = True
        if self._sink is None:
            self._by_type.setdefault(row.type, []).append(row)

    def end_cycle(self, cycle: int) -> None:
        """The cycle's prunes are done: fold what moved into summaries (the plugins'
        ``converge_summarize``, type by type in name order) and stage the cycle's rows
        with the sink, for its transaction."""
        moved, self._moved = self._moved, {}
        summarize = self._summarize
        if summarize is not None:
            for name in sorted(moved):
                for summary in summarize(name, moved[name], cycle):
                    self._add(self._summary(summary, cycle))
        if self._sink is not None and self._pending:
            self._sink.stage_knowledge(self._pending)
        self._pending = []  # without a sink, _by_type holds them
        self.rows_waiting = False

    def _summary(self, summary: Mapping[str, Any], cycle: int) -> KnowledgeRow:
        kind = summary.get("type") if isinstance(summary, Mapping) else None
        fields = summary.get("fields") if isinstance(summary, Mapping) else None
        if not isinstance(kind, str) or not isinstance(fields, Mapping):
            raise PluginError("converge_summarize", f"a summary must be {{'type': str, "
                              f"'fields': {{…}}}}, got {summary!r:.80}")
        try:
            text = json.dumps(dict(fields), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise PluginError("converge_summarize", f"the summary {kind} is not JSON: "
                              f"{exc}") from None
        return KnowledgeRow(self._seq, cycle, kind, json.loads(text), None, cycle)

    def rows(self, type_name: str) -> list[KnowledgeRow]:
        """Every row of ``type_name`` (a fact type or a summary's type), oldest first."""
        if self._sink is None:
            return list(self._by_type.get(type_name, ()))
        return [*self._sink.knowledge_rows(type_name),
                *(r for r in self._pending if r.type == type_name)]

    def find(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The ``knowledge_find`` tool: ``type`` names what to look for, every other
        argument a field that must equal it. The answer: ``count`` (how many rows
        match), ``found`` (whether any does), and the fields of the newest match
        (``count`` and ``found`` win over fields of those names)."""
        kind = args.get("type")
        if not isinstance(kind, str):
            raise ToolError(f"{KNOWLEDGE_TOOL} needs `type`, the name of a fact type "
                            f"(e.g. type: \"Quote\"), got {kind!r:.40}")
        wanted = {k: v for k, v in args.items() if k != "type"}
        declared = self._fields.get(kind)
        if declared is not None:
            unknown = sorted(set(wanted) - set(declared))
            if unknown:
                raise ToolError(f"{KNOWLEDGE_TOOL}: {kind} has no field "
                                f"{', '.join(unknown)} (its fields: {', '.join(declared)})")
        matches = [r for r in self.rows(kind)
                   if all(r.fields.get(k) == v for k, v in wanted.items())]
        answer: dict[str, Any] = dict(matches[-1].fields) if matches else {}
        answer["count"] = len(matches)
        answer["found"] = bool(matches)
        return answer

    def bind_tool(self, tools: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """``tools`` with :data:`KNOWLEDGE_TOOL` answered by this job's knowledge when
        the program calls it and the caller gave no tool of its own under that name
        (a test's mock wins; the registered built-in is a stand-in for this)."""
        if not any(KNOWLEDGE_TOOL in a.tools for a in self._program.agents):
            return None if tools is None else dict(tools)
        given = None if tools is None else tools.get(KNOWLEDGE_TOOL)
        bound = dict(tools or {})
        if given is None or _is_builtin_stand_in(given):
            bound[KNOWLEDGE_TOOL] = self.find
        return bound


def _is_builtin_stand_in(tool: Any) -> bool:
    inner = getattr(tool, "tool", None)
    return getattr(inner, "name", None) == KNOWLEDGE_TOOL and getattr(
        inner, "fn", None) == STAND_IN


STAND_IN = "converge_rules.plugins.builtin.knowledge_models:outside_a_job"
"""The registered function of :data:`KNOWLEDGE_TOOL`: a job answers the tool itself."""
