"""Approval gates (``approve TYPE [when EXPR]``; see docs/language.md).

A fact that an agent's effect would put into the context — after the policies settled
its key's conflict: exactly the value that would enter — and that satisfies its type's
gate is *held*: not merged (agents never see it; the key's previous value, if any,
stays), recorded as pending under a stable id (:func:`pending_id`) with an
``approval_pending`` trace event. Input facts are never gated. The same fact derived
again while pending is not held twice.

Decisions are applied only when nothing else can change (every tier at its fixpoint),
pending facts in id order, all of them in one cycle of their own: an approved fact (or
its edited values) is merged through the normal merge and policies as an output of the
agent that derived it, from the same support; a rejected one is dropped. Either way an
``approval_decided`` event records who decided, when, why and the edits. A fact
rejected in this job never enters it again, whatever derives it (dropped silently: the
rejection is in the trace already, and whether an agent derives a match twice is an
evaluation detail). An approved fact derived again later passes its gate. Because
decisions are taken only at that point, a job given its decisions up front and a job
that paused, got them and resumed run the same cycles: same result, same trace.

On a type with a ``combine`` policy the value held on a key is the key's *pending
total*: its value combined with every part (candidate) that came since. A key holds at
most one (:meth:`Gates.on`): a later part is combined with that total, not with the
key's value a second time, and the new total replaces it (:meth:`Gates.supersede`:
``pending_dropped`` with nothing ``gone``, then held again or entering); approved, the
total replaces the key's value (:meth:`KeyedMerge._settled`), rejected, its parts
never enter. See docs/language.md, approval gates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any

from converge_rules.engine.effects import AgentEffect
from converge_rules.engine.trace import (
    E_APPROVAL_DECIDED,
    E_APPROVAL_PENDING,
    E_PENDING_DROPPED,
    Event,
    jsonable,
)
from converge_rules.errors import InputError
from converge_rules.jsontext import dumps
from converge_rules.program import EMIT, Lasting, Program
from converge_rules.records import record

if TYPE_CHECKING:
    from converge_rules.engine.factstore import FactStore

ID_PREFIX = "p-"
"""Pending ids are ``p-`` and 12 hex digits."""


@record
class Decision:
    """A decision on a pending fact: its ``id`` (``result.pending[i]["id"]``),
    ``approve`` (True) or reject (False), who decided (``by``), when (``at``: ISO 8601
    text given by the caller — the engine never reads the clock for it), why
    (``note``), and for an approval ``edits``: field → new value, checked against the
    fact's type as an input fact is; a key field cannot be edited (it would be another
    fact).

    ``paused_at`` is the number of cycles the job had run when it paused awaiting this
    decision (``result.cycles`` of the ``awaiting_approval`` result): the decision is
    applied at the first point of decision at or after that cycle, never at an earlier
    one — where the job that paused had gone on without it. So a job resumed from its
    inputs with every decision given so far re-runs exactly the cycles it ran (a fact
    left undecided at one pause and decided at a later one is decided at the later
    one). 0, the default: at the first point where its fact is pending."""

    id: str
    approve: bool
    by: str = ""
    at: str = ""
    note: str = ""
    edits: Mapping[str, Any] = field(default_factory=dict)
    paused_at: int = 0

    def __post_init__(self) -> None:
        for name in ("id", "by", "at", "note"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"Decision.{name} must be a str, not {type(value).__name__}")
        if not isinstance(self.approve, bool):
            raise TypeError("Decision.approve must be True (approve) or False (reject)")
        if type(self.paused_at) is not int or self.paused_at < 0:
            raise TypeError("Decision.paused_at must be a cycle count (an int >= 0)")
        if not isinstance(self.edits, Mapping) or not all(
                isinstance(k, str) for k in self.edits):
            raise TypeError("Decision.edits must map field names to values")
        if self.edits and not self.approve:
            raise ValueError(f"decision {self.id}: a rejection cannot edit the fact; "
                             "approve it with edits, or reject it")

    @property
    def kind(self) -> str:
        """``"approve"`` or ``"reject"``."""
        return "approve" if self.approve else "reject"


Decider = Callable[[dict[str, Any]], "Decision | None"]
"""Decides a pending fact (given as a ``result.pending`` entry) or leaves it pending
(None); it must be a pure function of what it is given (the job stays deterministic)."""


def pending_id(gate: str, type_name: str, values: Iterable[Any]) -> str:
    """The stable id of a held fact: ``p-`` and the first 12 hex digits of the SHA-256
    of the canonical JSON of (gate, type, values) — the same whatever the executor,
    worker count or resume."""
    import hashlib  # here: a run that holds nothing does not load OpenSSL (~2 ms)

    text = dumps([gate, type_name, [jsonable(v) for v in values]], sort_keys=True,
                 separators=(",", ":"))
    return ID_PREFIX + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


@record(frozen=False)
class Held:
    """A fact held by its gate: what derived it (the first derivation: agent position,
    cycle, support, confidence)."""

    id: str
    gate: str
    type_id: int
    values: tuple[Any, ...]
    agent: int
    cycle: int
    support: tuple[int, ...]
    confidence: float
    #: a value a ``combine`` policy made from the key's incumbent and new candidates
    #: (the key's pending total): that incumbent (its id; None when the key was free),
    #: which the value counts already, and the conflict it resolved (losers' values:
    #: the incumbent's and every part's since; reason), recorded when the value enters
    base: int | None = None
    conflict: tuple[tuple[tuple[Any, ...], ...], str] | None = None
    combined: bool = False
    #: the parts a pending total counts besides its base (the candidates' values, in
    #: the order they came), to combine them again with another base
    #: (:meth:`KeyedMerge.rebase`); None: not combined (its own value is its part), or
    #: unknown (a checkpoint written before they were kept)
    parts: tuple[tuple[Any, ...], ...] | None = None
    #: its other derivations in the cycle it was held (agent position, support): the
    #: parts of a total combined from several candidates at once, which the
    #: ``approval_pending`` event lists (``also``) for ``converge pending``
    also: tuple[tuple[int, tuple[int, ...]], ...] = ()


class Gates:
    """The job's gates: holds facts, keeps them pending, applies decisions. Owned by
    the merger (:attr:`Merger.gates`); the runner asks :meth:`decide` at each point
    where nothing else can change."""

    def __init__(self, program: Program, store: FactStore, events: list[Event],
                 decisions: Iterable[Decision] | Decider | None) -> None:
        self.program = program
        self.store = store
        self.events = events
        self.specs = program.gates
        #: pending facts by id (in the order they were held)
        self.pending: dict[str, Held] = {}
        #: facts that pass their gate: approved ones (edited values included)
        self.approved: set[tuple[int, tuple[Any, ...]]] = set()
        #: ids rejected in this job: never held or merged again
        self.rejected: set[str] = set()
        #: the decisions applied, in order (for the result)
        self.decided: list[dict[str, Any]] = []
        self._decider: Decider | None = None
        self._given: dict[str, Decision] = {}
        self._used: set[str] = set()
        #: the effects of the last :meth:`decide`: their decision's event and entry
        self._approved_at: dict[int, tuple[AgentEffect, int, int]] = {}
        #: approved values a ``combine`` policy made, for the decision cycle's merge:
        #: (type, values) → their held fact (its base and conflict)
        self.settled: dict[tuple[int, tuple[Any, ...]], Held] = {}
        #: gated types with a ``combine`` policy: a value held on one of their keys is
        #: the key's pending total, which later candidates combine with (:meth:`on`)
        self.combining = frozenset(
            t for t, p in program.policies.items() if p.mode == "combine" and t in self.specs)
        #: (type, key) → the id of the value held on that key, for those types
        self._on_key: dict[tuple[int, Any], str] = {}
        self.add(decisions)

    def add(self, decisions: Iterable[Decision] | Decider | None) -> None:
        """Take more decisions (a job re-entered after it paused): a list by id, or a
        decider, which replaces any earlier one. Two different decisions for one id are
        an :class:`InputError`."""
        if callable(decisions):
            self._decider = decisions
        elif decisions is not None:
            for d in decisions:
                if not isinstance(d, Decision):
                    raise TypeError(f"decisions holds {type(d).__name__}, not Decision")
                prior = self._given.get(d.id)
                if prior is not None and prior != d:
                    raise InputError(f"two different decisions for {d.id}",
                                     help="give one decision per pending id")
                self._given[d.id] = d

    # ------------------------------------------------------------------ holding

    def hold(self, cycle: int, agent: int, t: int, vals: tuple[Any, ...],
             support: tuple[int, ...], confidence: float,
             combined: tuple[int | None, tuple[tuple[Any, ...], ...], str] | None = None,
             also: tuple[tuple[int, tuple[int, ...]], ...] = ()) -> bool:
        """Whether the fact ``vals`` of type ``t`` (gated) that ``agent`` would merge
        must not enter: held as pending (recorded once), or rejected earlier in the
        job. A gate whose condition raises holds the fact: a payment whose check cannot
        be evaluated waits for a person. ``combined``: ``vals`` is a ``combine``
        policy's value (the incumbent it counts, the losers' values, the reason; see
        :class:`Held`); ``also``: its other derivations (agent, support) in this
        cycle."""
        spec = self.specs[t]
        if (t, vals) in self.approved:
            return False
        try:
            gated = bool(spec.fn(vals))
        except MemoryError:
            raise  # the job's memory budget: the job stops, never a success
        except Exception:
            gated = True
        if not gated:
            return False
        pid = pending_id(spec.name, self.program.types[t].name, vals)
        if pid in self.rejected or pid in self.pending:
            return True
        held = Held(pid, spec.name, t, vals, agent, cycle, tuple(support), confidence,
                    also=also)
        if combined is not None:
            held.base, held.combined = combined[0], True
            held.conflict = (combined[1], combined[2])
        self.pending[pid] = held
        if t in self.combining:
            self._on_key[(t, self._key(t, vals))] = pid
        self.events.append((E_APPROVAL_PENDING, cycle, pid, spec.name, t, vals, agent,
                            support, confidence, also))
        return True

    def _key(self, t: int, vals: tuple[Any, ...]) -> Any:
        keyget = self.store.keyget[t]
        assert keyget is not None  # (a combine policy is on a keyed type)
        return keyget(vals)

    def _forget(self, pid: str) -> Held:
        """Take ``pid`` out of the pending facts (decided or dropped)."""
        held = self.pending.pop(pid)
        if held.type_id in self.combining:
            self._on_key.pop((held.type_id, self._key(held.type_id, held.values)), None)
        return held

    def parts(self, held: Held) -> tuple[tuple[Any, ...], ...] | None:
        """What the pending total ``held`` counts besides its base (None: unknown)."""
        return held.parts if held.combined else (held.values,)

    def on(self, t: int, key: Any) -> Held | None:
        """The value held on ``key`` of ``t`` (a type with a ``combine`` policy), if
        any: the key's pending total. A later candidate for the key is combined with it
        rather than with the key's value (:meth:`KeyedMerge.merge`), so that a key has
        at most one value held, the total of every part that came since its value."""
        pid = self._on_key.get((t, key))
        return None if pid is None else self.pending[pid]

    def supersede(self, cycle: int, held: Held) -> None:
        """Drop ``held`` (the value held on its key) because a later candidate for the
        key was combined with it: the new total replaces it, held again or entering. A
        ``pending_dropped`` event with no ``gone`` fact: nothing left, it grew."""
        self._forget(held.id)
        self.events.append((E_PENDING_DROPPED, cycle, held.id, held.gate, held.type_id,
                            held.values, ()))

    def withheld(self, t: int, vals: tuple[Any, ...]) -> bool:
        """Whether the fact ``vals`` of the gated type ``t`` is pending or was rejected
        in this job (so it did not enter: an intent it answers stays open)."""
        if (t, vals) in self.approved:
            return False
        pid = pending_id(self.specs[t].name, self.program.types[t].name, vals)
        return pid in self.pending or pid in self.rejected

    # ------------------------------------------------------------- checkpoints

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the gates between cycles: the facts pending (in
        the order held), approved and rejected, the decisions applied and the ids of
        those used. Values are the facts' own (tuples, dates…): the checkpoint's
        format writes them (see :meth:`restore`)."""
        return {
            "pending": [[h.id, h.gate, h.type_id, h.values, h.agent, h.cycle,
                         h.support, h.confidence, type(h.support) is Lasting, h.base,
                         None if h.conflict is None
                         else [[list(v) for v in h.conflict[0]], h.conflict[1]],
                         h.combined, None if h.parts is None else [list(v) for v in h.parts],
                         [[a, list(sup), type(sup) is Lasting] for a, sup in h.also]]
                        for h in self.pending.values()],
            "approved": sorted([t, list(v)] for t, v in self.approved),
            "rejected": sorted(self.rejected),
            "decided": self.decided,
            "used": sorted(self._used),
        }

    def restore(self, doc: dict[str, Any], value: Any) -> None:
        """The gates as :meth:`state` described them; ``value(type id, values)``
        gives a fact's values back as the store holds them."""
        self.pending = {}
        for row in doc["pending"]:
            (pid, gate, t, vals, agent, cycle, support, confidence, lasting, base,
             conflict, combined) = row[:12]
            parts = row[12] if len(row) > 12 else None  # (not in older checkpoints)
            also = tuple((int(a), Lasting(sup) if lasting_part else tuple(sup))
                         for a, sup, lasting_part in (row[13] if len(row) > 13 else ()))
            # an ``emit lasting`` fact's support is a Lasting: approving it does not
            # ask whether that support is still live
            rests: tuple[int, ...] = (Lasting(support) if lasting else tuple(support))
            t = int(t)
            self.pending[pid] = Held(
                pid, gate, t, value(t, vals), int(agent), int(cycle), rests,
                float(confidence), None if base is None else int(base),
                None if conflict is None
                else (tuple(value(t, v) for v in conflict[0]), conflict[1]),
                bool(combined), None if parts is None else tuple(value(t, v) for v in parts),
                also)
        self._on_key = {(h.type_id, self._key(h.type_id, h.values)): pid
                        for pid, h in self.pending.items() if h.type_id in self.combining}
        self.approved = {(int(t), value(int(t), vals)) for t, vals in doc["approved"]}
        self.rejected = set(doc["rejected"])
        self.decided = list(doc["decided"])
        self._used = set(doc["used"])

    def drop_gone(self, cycle: int, dead: set[int]) -> None:
        """Drop the pending facts that rested on a fact of ``dead`` (the facts that
        left the context in ``cycle``'s merge and prune): a ``pending_dropped`` event
        each, in the order they were held. A combined value (:class:`Held`) rests on
        the incumbent it counts too. The job no longer waits on them; derived again,
        a fact is held again under its id."""
        for pid in list(self.pending):
            held = self.pending[pid]
            gone = [] if type(held.support) is Lasting else [
                s for s in held.support if s in dead]
            if held.base is not None and held.base in dead and held.base not in gone:
                gone.append(held.base)
            if gone:
                self._forget(pid)
                self.events.append((E_PENDING_DROPPED, cycle, pid, held.gate, held.type_id,
                                    held.values, tuple(gone)))

    # ---------------------------------------------------------------- deciding

    def ready(self, cycles: int) -> list[tuple[Held, Decision]]:
        """The pending facts with a decision available at a point of decision after
        ``cycles`` cycles (a decision ``paused_at`` a later cycle is not), in id
        order."""
        out: list[tuple[Held, Decision]] = []
        for pid in sorted(self.pending):
            held = self.pending[pid]
            decision = (self._given.get(pid) if self._decider is None
                        else self._decider(self.entry(held)))
            if decision is None or decision.paused_at > cycles:
                continue
            if not isinstance(decision, Decision):
                raise TypeError(f"the decider returned {type(decision).__name__} for {pid}, "
                                "not a Decision or None")
            out.append((held, decision))
        return out

    def decide(self, cycle: int, ready: list[tuple[Held, Decision]]) -> list[AgentEffect]:
        """Apply ``ready`` (from :meth:`ready`) in ``cycle``: ``approval_decided``
        events, and the approved facts as their agents' effects to merge (in position
        order). Each decision is checked first (:func:`check_decision`): a bad one is
        an :class:`InputError` before anything is applied."""
        checked = [(held, d, check_decision(self.program, held, d)) for held, d in ready]
        # each approved fact is an effect of its own: an invariant that discards one
        # (an edited amount above a limit) must not take the others down with it
        approved: list[tuple[int, tuple[Any, ...], int, int]] = []
        self._approved_at = {}
        self.settled = {}
        for held, d, vals in checked:
            self._forget(held.id)
            self._used.add(held.id)
            outcome = "rejected"
            if d.approve:
                support: tuple[int, ...] = held.support
                # an intent it answers is open still (merge closes it now), or was
                # closed by another answer: not gone
                store = self.store
                if (type(support) is Lasting or all(
                        store.is_live(s) or store.is_closed(s) for s in support)) and (
                            not held.combined or self._base_holds(held)):
                    outcome = "merged"
                    self.approved.add((held.type_id, vals))
                    # (its event and entry are appended below, at these indexes)
                    approved.append((held.agent, (EMIT, held.type_id, vals,
                                                  held.confidence, support),
                                     len(self.events), len(self.decided)))
                    if held.combined:
                        # the value counts the key's incumbent already: it replaces
                        # it, never combined with it again (KeyedMerge.merge); it
                        # enters with its other derivations still live
                        held.also = tuple(
                            (a, sup) for a, sup in held.also if type(sup) is Lasting
                            or all(store.is_live(s) or store.is_closed(s) for s in sup))
                        self.settled[(held.type_id, vals)] = held
                else:
                    outcome = "support_gone"
            else:
                self.rejected.add(held.id)
            edits = {k: jsonable(v) for k, v in sorted(d.edits.items())}
            self.events.append((E_APPROVAL_DECIDED, cycle, held.id, held.gate, held.type_id,
                                vals, d.kind, d.by, d.at, d.note, edits, outcome))
            self.decided.append({"id": held.id, "gate": held.gate, "decision": d.kind,
                                 "by": d.by, "at": d.at, "note": d.note, "edits": edits,
                                 "cycle": cycle, "outcome": outcome})
        effects: list[AgentEffect] = []
        # in position order (merge's), each agent's in id order; each effect knows
        # its decision's event and entry, for :meth:`discarded`
        for a, out, at, entry in sorted(approved, key=lambda x: x[0]):
            eff = AgentEffect(a, (out,))
            self._approved_at[id(eff)] = (eff, at, entry)
            effects.append(eff)
        return effects

    def _base_holds(self, held: Held) -> bool:
        """Whether the key of ``held`` (a combined value) still holds what its value
        counts: the same incumbent, or none then and whatever now (a value that came
        after is combined with the approved one, as any later candidate would be)."""
        if held.base is None:
            return True
        keyget = self.store.keyget[held.type_id]
        assert keyget is not None  # (a combine policy is on a keyed type)
        return self.store.incumbent(held.type_id, keyget(held.values)) == held.base

    def discarded(self, screened: Iterable[AgentEffect]) -> None:
        """Mark the decisions whose approved fact's effect the invariants discarded
        (``screened``: :meth:`decide`'s effects after the guard screened them; a
        discarded one is replaced by a failed copy): outcome ``discarded``, in the
        trace event and the result, instead of ``merged``."""
        kept = {id(e) for e in screened}
        # (each entry keeps its effect alive, so that its id() is not reused)
        for key, (_eff, at, entry) in self._approved_at.items():
            if key in kept:
                continue
            event = self.events[at]
            self.events[at] = (*event[:-1], "discarded")
            self.decided[entry]["outcome"] = "discarded"
        self._approved_at = {}

    # ------------------------------------------------------------------ results

    def entry(self, held: Held) -> dict[str, Any]:
        """A pending fact as the result lists it: ``id``, ``gate``, ``type``,
        ``fields``, ``agent``, ``cycle`` and ``support`` (the facts it rests on: ``id``,
        ``type``, ``fields``)."""
        types = self.program.types
        store = self.store
        spec = types[held.type_id]
        return {
            "id": held.id, "gate": held.gate, "type": spec.name,
            "fields": {n: jsonable(v) for n, v in zip(spec.field_names, held.values,
                                                      strict=True)},
            "agent": self.program.agents[held.agent].name, "cycle": held.cycle,
            "support": [{"id": s, "type": types[store.type_of[s]].name,
                         "fields": {n: jsonable(v) for n, v in zip(
                             types[store.type_of[s]].field_names, store.values[s],
                             strict=True)}}
                        for s in held.support],
        }

    def listing(self) -> list[dict[str, Any]]:
        """Every pending fact (:meth:`entry`), in id order."""
        return [self.entry(self.pending[pid]) for pid in sorted(self.pending)]

    def decided_ids(self) -> set[str]:
        """The ids a decision was applied to in this job."""
        return {d["id"] for d in self.decided}

    def unused(self) -> list[str]:
        """The ids of given decisions never applied: no fact of that id was pending at
        a point of decision (a typo, a decision for another job, or a job that ended
        before it got there)."""
        return sorted(set(self._given) - self._used)


def check_decision(program: Program, held: Held, decision: Decision) -> tuple[Any, ...]:
    """The values ``decision`` gives the held fact: its own, or with the edits applied
    and checked against the type as an input fact's fields are. An edit of an unknown
    or key field, or a value of the wrong type, is an :class:`InputError` naming the
    decision and the field."""
    if not decision.edits:
        return held.values
    spec = program.types[held.type_id]
    source = f"decision {decision.id}"
    keys = {spec.fields[p].name for p in spec.key_positions}
    for name in decision.edits:
        if name not in spec.field_names:
            raise InputError(f"{spec.name} has no field {name!r} to edit", source=source,
                             help="fields: " + ", ".join(spec.field_names))
        if name in keys:
            raise InputError(
                f"{name!r} is a key field of {spec.name}: an edit may not change it (the "
                "edited fact would be another fact)", source=source,
                help="reject this fact instead, and give the right one as an input fact")
    fields = {n: jsonable(v) for n, v in zip(spec.field_names, held.values, strict=True)}
    fields.update(decision.edits)
    from converge_rules.engine.inputs import validate_pairs

    rows = validate_pairs(program, [(spec.name, fields)], source=source).rows
    return tuple(rows[0][1])
