"""The outcome of a job: one status, the final (or partial) context, and how it got there.

:meth:`RunResult.to_json` is the document ``converge run --format json`` prints, byte
for byte the same for the same ruleset, inputs and tool answers:
``{"status", "cycles", "facts", "conflicts", "budget", "unmet"}`` (plus ``"loop"`` when
the status is ``oscillating``), facts of each type sorted by their fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any, Literal, TypeAlias

from converge_rules.engine.factstore import FactStore
from converge_rules.engine.factstore import records as derivation_records
from converge_rules.engine.trace import Trace, jsonable
from converge_rules.jsontext import dumps
from converge_rules.language.builtins import TIME_KINDS, time_kind
from converge_rules.program import Program

_JSON_FORMS = ("list", *TIME_KINDS)
"""Field types whose values JSON holds in another form (:func:`jsonable`)."""

Status: TypeAlias = Literal[
    "converged", "unmet_goal", "budget_exceeded", "conflict", "oscillating", "interrupted",
    "invariant_violated", "awaiting_approval",
]


def sort_key(value: Any) -> tuple[Any, ...]:
    """A total order over runtime values (None, bools, numbers, strings, tuples, dates,
    datetimes and durations mixed)."""
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, tuple | list):
        return (4, tuple(sort_key(v) for v in value))
    kind = time_kind(value)
    if kind is not None:  # one field holds one of them: never compared across kinds
        return (5, TIME_KINDS.index(kind), value)
    return (6, repr(value))


def fact_sort_key(vals: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(sort_key(v) for v in vals)


class RunResult:
    """What :func:`converge_rules.engine.run` returns. Partial results are always
    present: the live context at the moment the job ended."""

    __slots__ = (
        "_conflict_count", "_conflicts", "budget", "cycles", "decided", "detail",
        "invariants", "knowledge", "loop", "payloads", "pending", "program", "resumed_from",
        "status", "store", "trace", "unmet", "unused_decisions",
    )

    def __init__(
        self,
        *,
        program: Program,
        store: FactStore,
        status: Status,
        detail: str,
        cycles: int,
        conflicts: list[dict[str, Any]] | Callable[[], Iterable[dict[str, Any]]],
        conflict_count: int | None = None,
        unmet: list[dict[str, Any]],
        budget: dict[str, dict[str, Any]],
        trace: Trace,
        loop: dict[str, Any] | None = None,
        invariants: list[dict[str, Any]] | None = None,
    ) -> None:
        self.program = program
        self.store = store
        self.status: Status = status
        self.detail = detail
        self.cycles = cycles
        # a callable builds them on first use: a job of many updates in place records
        # many conflicts, which most callers never read (or only the first few)
        self._conflicts = conflicts
        self._conflict_count = conflict_count
        self.unmet = unmet
        self.budget = budget
        self.trace = trace
        self.loop = loop
        #: every invariant broken, in order: ``invariant``, ``rule``, ``cycle``,
        #: ``agents``, ``facts`` (type and fields) and ``outcome`` (``effect_discarded``
        #: or ``job_ended``); in the JSON document only when there is one
        self.invariants: list[dict[str, Any]] = invariants or []
        #: the job's knowledge (:class:`~converge_rules.engine.knowledge.Knowledge`):
        #: what ``prune … into knowledge`` moved; set by the engine, None otherwise
        self.knowledge: Any = None
        #: the payloads of its blobs (:class:`~converge_rules.engine.payloads.Payloads`)
        self.payloads: Any = None
        #: the facts approval gates still hold, in id order: ``id``, ``gate``,
        #: ``type``, ``fields``, ``agent``, ``cycle`` and ``support`` (the facts it
        #: rests on: ``id``, ``type``, ``fields``); the status is then
        #: ``awaiting_approval``. In the JSON document only when there is one
        self.pending: list[dict[str, Any]] = []
        #: the decisions applied, in order: ``id``, ``gate``, ``decision``
        #: (``approve``/``reject``), ``by``, ``at``, ``note``, ``edits``, ``cycle`` and
        #: ``outcome`` (``merged``, ``rejected``, ``support_gone``, ``discarded``); in the JSON
        #: document (as ``decisions``) only when there is one
        self.decided: list[dict[str, Any]] = []
        #: ids of decisions given that were never applied: no fact of that id was
        #: pending when the job decided (a warning, in the JSON document only when
        #: there is one)
        self.unused_decisions: list[str] = []
        #: a job resumed from its checkpoints: the last cycle it had committed, whose
        #: state was restored (no cycle up to it ran again); None otherwise (a job run
        #: in one go, or resumed by re-executing it from its inputs)
        self.resumed_from: int | None = None

    @property
    def conflicts(self) -> list[dict[str, Any]]:
        """Every conflict resolved (or not: the job then stopped) in the job, in order:
        ``cycle``, ``type``, ``key`` and the ``winner``'s and ``losers``' fields (JSON
        values), and the ``reason``."""
        if callable(self._conflicts):
            self._conflicts = list(self._conflicts())
        return self._conflicts

    @property
    def conflict_count(self) -> int:
        """How many conflicts :attr:`conflicts` holds, without building them."""
        if callable(self._conflicts) and self._conflict_count is not None:
            return self._conflict_count
        return len(self.conflicts)

    def first_conflicts(self, limit: int | None) -> list[dict[str, Any]]:
        """The first ``limit`` conflicts (all of them for None), building only those."""
        if limit is None or not callable(self._conflicts):
            return self.conflicts if limit is None else self.conflicts[:limit]
        return list(islice(self._conflicts(), limit))

    def __repr__(self) -> str:
        return f"<RunResult {self.status} after {self.cycles} cycles: {self.detail}>"

    def count(self, type_name: str) -> int:
        """How many live facts of a type there are (without building them)."""
        return len(self.store.live[self.program.type_ids[type_name]])

    def fact_ids(self, type_name: str, limit: int | None = None) -> list[int]:
        """Live fact ids of a type, sorted by their fields; the first ``limit`` of them
        when it is given (found without sorting them all)."""
        store = self.store
        live = store.live[self.program.type_ids[type_name]]
        if limit is not None and limit < len(live):
            import heapq  # (here: a run's start never needs it)

            try:
                return heapq.nsmallest(limit, live, key=store.values.__getitem__)
            except TypeError:
                return heapq.nsmallest(limit, live,
                                       key=lambda f: fact_sort_key(store.values[f]))
        try:  # a column of one type each (the common case) sorts natively
            return sorted(live, key=store.values.__getitem__)
        except TypeError:  # None beside values, or mixed types: the total order
            return sorted(live, key=lambda f: fact_sort_key(store.values[f]))

    def facts(self, type_name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The live facts of a type as ``{field: value}`` dicts, sorted by their fields,
        with values as JSON holds them (lists as lists; dates, datetimes and durations
        as ISO 8601 text); the first ``limit`` of them when it is given. A ``KeyError``
        names an undeclared type."""
        if type_name not in self.program.type_ids:
            raise KeyError(f"no fact type named {type_name!r}")
        spec = self.program.type(type_name)
        names = spec.field_names
        values = self.store.values
        ids = self.fact_ids(type_name, limit)
        if any(f.type.base in _JSON_FORMS for f in spec.fields):
            return [
                {n: jsonable(v) for n, v in zip(names, values[f], strict=True)}
                for f in ids
            ]
        return [dict(zip(names, values[f], strict=True)) for f in ids]

    def provenance(self, fact_id: int) -> list[dict[str, Any]]:
        """Every derivation of a fact: agent, cycle and support ids (empty for input).
        For a live fact, those it still rests on; for a fact that left the context,
        every derivation the trace recorded for it."""
        agents = self.program.agents
        store = self.store
        if store.retractable and (fact_id in store.derivations or store.is_live(fact_id)):
            records = derivation_records(store.derivations.get(fact_id))
        else:  # the store keeps no derivations when nothing can be retracted, nor
            # those of a fact that left the context
            records = [
                (ev[2], ev[3], ev[4]) for ev in self.trace.fact_events() if ev[1] == fact_id
            ]
        return [
            {"agent": agents[a].name, "cycle": c, "support": list(s)}
            for a, c, s in records if a >= 0
        ]

    def decisions(self, type_name: str) -> list[dict[str, Any]]:
        """For each live fact of a type, in the order of :meth:`facts`, what policies
        rank it by: ``@confidence`` (what it was emitted with; inputs 1.0),
        ``@score`` (the mean of its evaluations, None without any) and
        ``@evaluations`` (``{"agent", "score", "reason"}`` each). The ``@`` keeps the
        names apart from field names, which cannot start with it."""
        agents = self.program.agents
        store = self.store
        out = []
        for fid in self.fact_ids(type_name):
            evals = store.evaluations.get(fid, [])
            out.append({
                "@confidence": store.confidence.get(fid, 1.0),
                "@score": sum(e[1] for e in evals) / len(evals) if evals else None,
                "@evaluations": [{"agent": agents[a].name, "score": score, "reason": reason}
                                 for a, score, reason in evals],
            })
        return out

    def to_dict(self, *, with_confidence: bool = False) -> dict[str, Any]:
        """The result document; ``with_confidence`` adds to each fact the
        :meth:`decisions` keys (``@confidence``, ``@score``, ``@evaluations``)."""
        facts: dict[str, list[dict[str, Any]]] = {}
        for spec in self.program.types:
            if not spec.intent and self.store.live[spec.id]:
                facts[spec.name] = self.facts(spec.name)
                if with_confidence:
                    for fact, extra in zip(facts[spec.name], self.decisions(spec.name),
                                           strict=True):
                        fact.update(extra)
        out: dict[str, Any] = {
            "status": self.status,
            "cycles": self.cycles,
            "facts": facts,
            "conflicts": self.conflicts,
            "budget": self.budget,
            "unmet": self.unmet,
        }
        if self.loop is not None:
            out["loop"] = self.loop
        if self.invariants:
            out["invariants"] = self.invariants
        if self.pending:
            out["pending"] = self.pending
        if self.decided:
            out["decisions"] = self.decided
        if self.unused_decisions:
            out["unused_decisions"] = self.unused_decisions
        if self.trace.written:  # the job wrote its trace: the proof binds the two
            out["integrity"] = self.integrity(facts)
        return out

    def integrity(self, facts: dict[str, list[dict[str, Any]]] | None = None
                  ) -> dict[str, str]:
        """The result's integrity proof (:mod:`converge_rules.integrity`): the Merkle
        root of the final facts and the hash of the trace's last line. In
        :meth:`to_dict` when the job wrote its trace (``--trace``, ``--store``)."""
        from converge_rules.integrity import ALGORITHM, facts_root

        if facts is None:
            facts = {spec.name: self.facts(spec.name) for spec in self.program.types
                     if not spec.intent and self.store.live[spec.id]}
        return {"algorithm": ALGORITHM, "facts_root": facts_root(facts),
                "trace_head": self.trace.head()}

    def to_json(self, *, indent: int | None = None, with_confidence: bool = False) -> str:
        """The result document; deterministic bytes (sorted keys). See
        :meth:`to_dict` for ``with_confidence``."""
        return dumps(self.to_dict(with_confidence=with_confidence), sort_keys=True,
                     indent=indent)
