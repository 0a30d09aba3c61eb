"""Phase 2 of a cycle: merge effects into the store, one at a time, in merge order.

* A new fact is added; the same fact again is recorded as one more derivation.
* On a keyed type, all of this cycle's candidates for one key and the incumbent are
  gathered (the group is resolved where its first candidate stands in merge order)
  and resolved together by the type's policy; losers and reasons go to the trace and
  :attr:`Merger.conflicts`.
* A fact that is replaced or pruned takes with it, transitively and in the same
  merge, the derived facts that have no other derivation — except the fact that
  replaced it (the update-in-place idiom).
* An output whose support was retracted earlier in this merge is skipped (and reported
  once): it rests on a fact that is gone. When the fact that won a key is retracted
  later in the same merge, the key's group is merged again after the last effect,
  from the candidates still standing.
* Intents in the support of a merged effect close.
* ``max_facts`` is never exceeded: the merge stops before the fact that would.

The per-fact path uses tuples and dict operations only.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence
from itertools import groupby
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, cast

from converge_rules.engine.effects import (
    D_ADD,
    D_CLOSE,
    D_REMOVE,
    AgentEffect,
    Delta,
    RunOutputs,
)
from converge_rules.engine.factstore import FactStore
from converge_rules.engine.keyed import STALE, KeyedMerge, Members, keyed_groups
from converge_rules.engine.knowledge import Knowledge
from converge_rules.engine.policies import Contender, resolve
from converge_rules.engine.retraction import Retraction
from converge_rules.engine.trace import (
    E_EFFECT_DISCARDED,
    E_EFFECT_MERGED,
    E_EVALUATION,
    E_FACT_ADDED,
    E_FACT_SUPPORTED,
    E_INTENT_CLOSED,
    E_OUTPUT_SKIPPED,
    E_PLAIN,
    E_TOOL_CALL,
    Event,
)
from converge_rules.program import EMIT, EVALUATE, INTEND, Columns, Lasting, Program

if TYPE_CHECKING:
    from converge_rules.engine.gates import Gates
    from converge_rules.engine.invariants import InvariantGuard

_TYPE_OF = itemgetter(0)
_VALUES_OF = itemgetter(1)
_POSITION_OF = attrgetter("position")
_OUTPUTS_OF = attrgetter("outputs")
_ERROR_OF = attrgetter("error")
_TOOL_CALLS_OF = attrgetter("tool_calls")


def _drop(item: Any) -> None:
    """Stands in for ``delta.append`` when no executor wants the delta."""


def needs_dependents(program: Program) -> bool:
    """Whether any fact can ever be removed other than by closing an intent (a prune,
    a keyed type with a resolving policy, or an aggregate updated in place): only then
    does retraction need the reverse support edges."""
    if program.prunes or any(a.updates for a in program.agents):
        return True
    return any(
        p.mode in ("resolve", "combine") and program.types[t].key_positions
        for t, p in program.policies.items()
    )


def _repeated(values: list[tuple[Any, ...]]) -> bool:
    """Whether ``values`` is one value more than once and nothing else (``[t] * n``,
    ``n > 1``): at C speed (``count`` tries identity first), after a look at the first
    and the last."""
    n = len(values)
    return n > 1 and values[0] is values[-1] and values.count(values[0]) == n


class Merger:
    """Applies effects to a :class:`FactStore`. After a call, :attr:`stop` is set
    when the job must end (``("conflict" | "budget_exceeded", detail)``).

    Keyed groups are merged by its :attr:`keyed` (:class:`KeyedMerge`), removals
    decided by its :attr:`retraction` (:class:`Retraction`); both record what they
    change through the public methods here (:meth:`retire`, :meth:`note`,
    :meth:`exceed`, :meth:`halt_on_conflict`)."""

    def __init__(self, program: Program, store: FactStore, events: list[Event]) -> None:
        self.program = program
        self.store = store
        self.events = events
        self.max_facts = program.budgets.max_facts
        self.delta: Delta = []
        #: whether to keep the delta (replica executors need it; in-process ones do not)
        self.record_delta = True
        self.dead: set[int] = set()     # ids removed during the current merge
        self.stop: tuple[str, str] | None = None
        self.stop_budget: str | None = None
        #: the job's invariants (set by the runner when the program has some): an
        #: effect that would break a `never` one is not merged
        self.guard: InvariantGuard | None = None
        #: the job's approval gates (set by the runner when the program has some): a
        #: fact of a gated type is held instead of merged when its gate says so
        self.gates: Gates | None = None
        self.gated = frozenset(program.gates)
        self.added = 0
        self.removed = 0
        #: where ``prune … into knowledge`` keeps the facts it moves (set by the job)
        self.knowledge: Knowledge | None = None
        keyed = {t.id for t in program.types if t.key_positions}
        intents = {t.id for t in program.types if t.intent}
        n = len(program.agents)
        if not keyed and not intents and not self.gated:
            # (the common program: the same for every agent, without a set per agent)
            self._agent_keyed, self._agent_intents = [False] * n, [False] * n
            self._agent_plain = [True] * n
        else:
            self._agent_keyed = [bool(keyed.intersection(a.emits)) for a in program.agents]
            self._agent_intents = [bool(intents.intersection(a.reads))
                                   for a in program.agents]
            # agents whose outputs can take the lean path: unkeyed, non-intent,
            # ungated types only
            self._agent_plain = [
                not keyed.intersection(a.emits) and not intents.intersection(a.emits)
                and not self.gated.intersection(a.emits)
                for a in program.agents
            ]
        self.keyed = KeyedMerge(self)
        self.retraction = Retraction(self)

    @property
    def conflict_count(self) -> int:
        """How many conflicts were resolved (or not) so far."""
        return self.keyed.count

    def note(self, change: tuple[Any, ...]) -> None:
        """Record one store change in the delta, when an executor wants it."""
        if self.record_delta:
            self.delta.append(change)

    def take_delta(self) -> Delta:
        """The changes since the last call (for replica executors)."""
        delta, self.delta = self.delta, []
        return delta

    def retire(self, fid: int, event: Event, *, removed: bool = False) -> None:
        """Take a live fact out of the context for good (replaced, retracted or
        pruned): gone from the store (``removed``: the store took it out already), dead
        for the rest of this merge, ``event`` in the trace, a removal in the delta, one
        more in :attr:`removed`."""
        if not removed:
            self.store.remove(fid)
        # what it rested on matters no more (the trace keeps its provenance): a job of
        # updates in place would keep a derivation per replaced fact
        self.store.derivations.pop(fid, None)
        self.dead.add(fid)
        self.events.append(event)
        if self.record_delta:  # note(), inlined: once per replaced fact of a keyed type
            self.delta.append((D_REMOVE, fid))
        self.removed += 1

    def exceed(self, budget: str, detail: str) -> None:
        """Stop the job: ``budget`` would be exceeded."""
        self.stop = ("budget_exceeded", detail)
        self.stop_budget = budget

    def halt_on_conflict(self, detail: str) -> None:
        """Stop the job: a conflict that its policy left unresolved."""
        self.stop = ("conflict", detail)

    def type_name(self, type_id: int) -> str:
        """The declared name of a fact type (for messages)."""
        return self.program.types[type_id].name

    # ---------------------------------------------------------------- inputs

    def merge_inputs(self, types: Sequence[int], values: Sequence[tuple[Any, ...]]) -> None:
        """Add the validated input facts (``values[i]`` of type ``types[i]``):
        deduplicated, grouped by type, keyed types' conflicting inputs resolved by their
        policy at cycle 0."""
        store = self.store
        by_type: dict[int, list[tuple[Any, ...]]] = {}
        if values and types.count(types[0]) == len(types):
            by_type[types[0]] = values if isinstance(values, list) else list(values)
        else:
            # runs of one type (input files usually hold long ones) are gathered at C
            # speed, in input order
            for type_id, run in groupby(zip(types, values, strict=True), key=_TYPE_OF):
                bucket = by_type.get(type_id)
                if bucket is None:
                    by_type[type_id] = list(map(_VALUES_OF, run))
                else:
                    bucket.extend(map(_VALUES_OF, run))
        for type_id in sorted(by_type):
            rows = by_type[type_id]
            # deduplicated in input order; the common case, no duplicate, is found by
            # a set that is dropped at once, and the facts' list is kept as it is
            unique = rows if len(set(rows)) == len(rows) else list(dict.fromkeys(rows))
            keyget = store.keyget[type_id]
            if keyget is not None:
                unique = self._resolve_inputs(type_id, unique, rows)
                if self.stop is not None:
                    return
            room = self.max_facts - store.live_count
            if len(unique) > room:
                store.add_inputs(type_id, unique[: max(room, 0)])
                self.exceed("max_facts", f"{len(values)} input facts exceed max_facts")
                return
            store.add_inputs(type_id, unique)

    def _resolve_inputs(
        self, type_id: int, unique: list[tuple[Any, ...]], rows: Sequence[tuple[Any, ...]],
    ) -> list[tuple[Any, ...]]:
        """The input facts of a keyed type that survive their conflicts, each key's
        settled by the type's policy; ``rows`` are the facts in input order, duplicates
        included: a contender's ``order`` is its last place there, so ``latest`` means
        the later line."""
        keyget = self.store.keyget[type_id]
        assert keyget is not None
        groups: dict[Any, list[tuple[Any, ...]]] = {}
        for vals in unique:
            groups.setdefault(keyget(vals), []).append(vals)
        if len(groups) == len(unique):
            return unique
        out: list[tuple[Any, ...]] = []
        last = {vals: i for i, vals in enumerate(rows)}
        for key, members in groups.items():
            if len(members) == 1:
                out.append(members[0])
                continue
            contenders = [Contender(v, 1.0, None, 0, (), False, last[v]) for v in members]
            res = resolve(self.program.policies.get(type_id), self.program.types[type_id],
                          contenders)
            self.keyed.record_conflict(0, type_id, key, contenders, res.values, res.reason)
            if res.values is None:
                self.halt_on_conflict(f"{self.type_name(type_id)} "
                                      f"{self.keyed.key_text(type_id, key)}: {res.reason}")
                return out
            out.append(res.values)
        return out

    # ----------------------------------------------------------------- cycle

    def merge_cycle(self, cycle: int, effects: Sequence[AgentEffect] | RunOutputs) -> bool:
        """Merge one cycle's effects (sorted by position), or the serial executor's
        columns that stand for them. Returns whether the live context changed (a fact
        added, replaced or removed)."""
        self.added = self.removed = 0
        # Agents saw the context as the last merge and prune left it, so an output can
        # only rest on a dead fact if that fact died earlier in this very merge.
        self.dead = set()
        store = self.store
        store.begin_cycle(cycle)
        ev = self.events.append
        delta = self.delta.append if self.record_delta else _drop
        dead = self.dead
        live = store.live
        type_of = store.type_of
        keyed = self.keyed
        merge_output = self.merge_output
        if (type(effects) is RunOutputs and self.guard is None and not keyed.has_lane
                and not store.retractable and self._columns_only(effects.positions,
                                                                 effects.outputs)):
            # runs that all end in columns of plain types (no keyed output: no
            # groups): merged from the columns, no effect built per run
            return self._merge_columns(cycle, effects.positions, effects.outputs)
        if isinstance(effects, RunOutputs) and (self.guard is not None
                                                or not keyed.has_lane):
            effects = effects.effects()
        if self.guard is not None and not isinstance(effects, RunOutputs):
            # an effect that would break a `never` invariant is discarded before
            # anything merges, as a failed one: it takes no part in keyed groups
            effects = self.guard.screen(cycle, effects)
        groups = (keyed.groups_of_runs(effects) if isinstance(effects, RunOutputs)
                  else self._group_keyed(effects))
        if (groups is None and not store.retractable and not isinstance(effects, RunOutputs)
                and list(map(_ERROR_OF, effects)).count(None) == len(effects)):
            positions = list(map(_POSITION_OF, effects))
            columns = list(map(_OUTPUTS_OF, effects))
            if self._columns_only(positions, columns):
                return self._merge_columns(cycle, positions, columns,
                                           list(map(_TOOL_CALLS_OF, effects)))
        done: set[tuple[int, Any]] = set()
        keyed.begin()
        agent_plain, agent_intents = self._agent_plain, self._agent_intents
        # (columns: keyed.lane merges the runs of agents that emit keyed types itself)
        for eff in (keyed.lane(cycle, effects, groups, done) if isinstance(effects, RunOutputs)
                    else effects):
            a = eff.position
            if eff.tool_calls:
                for call in eff.tool_calls:
                    ev((E_TOOL_CALL, cycle, a, *call))
            if eff.error is not None:
                ev((E_EFFECT_DISCARDED, cycle, a, eff.error))
                continue
            outputs = eff.outputs
            if not dead and agent_plain[a]:
                if not self._merge_plain(cycle, a, outputs):
                    return True
                outputs = ()
            for out in outputs:
                if not merge_output(cycle, a, out, groups, done):
                    return True
            if agent_intents[a]:
                gates = self.gates
                for out in eff.outputs:
                    if gates is not None and out[0] != EVALUATE and out[1] in self.gated \
                            and gates.withheld(out[1], out[2]):
                        # an answer its gate holds (or a rejection dropped) answers
                        # nothing yet: the intent closes when the approved fact merges
                        continue
                    for s in out[4]:
                        st = type_of[s]
                        if st in store.intent_types and s in live[st]:
                            store.close_intent(s)
                            ev((E_INTENT_CLOSED, cycle, s, a))
                            delta((D_CLOSE, s))
                            self.removed += 1
            ev((E_EFFECT_MERGED, cycle, a, len(eff.outputs)))
        if keyed.stopped or (dead and not keyed.rekey(cycle)):
            return True
        return bool(self.added or self.removed)

    def merge_output(self, cycle: int, a: int, out: tuple[Any, ...],
                     groups: dict[tuple[int, Any], Members] | None,
                     done: set[tuple[int, Any]]) -> bool:
        """Merge one output of agent ``a``'s effect (not of the lean path): an
        evaluation, a key's only candidate (:meth:`KeyedMerge.merge_single`), the whole
        group of a key that has several (``groups``; merged once, at its first
        candidate: ``done`` holds the keys merged so far in this merge), or a fact of an
        unkeyed type, added or derived once more. False when the job must stop."""
        if out[0] == EVALUATE:
            self._evaluate(cycle, a, out)
            return True
        store = self.store
        t = out[1]
        vals = out[2]
        keyget = store.keyget[t]
        if keyget is not None:
            key = keyget(vals)
            members = None if groups is None else groups.get((t, key))
            if members is None:  # the key's only candidate in this merge
                return self.keyed.merge_single(cycle, a, out, t, key)
            # the whole group is merged once; keyed.merge skips (and reports, once) the
            # candidates whose support is gone
            if (t, key) in done:
                return True
            done.add((t, key))
            return self.keyed.merge(cycle, t, key, members)
        support = out[4]
        dead = self.dead
        if dead and type(support) is not Lasting and any(s in dead for s in support):
            self.events.append((E_OUTPUT_SKIPPED, cycle, a, t, vals, STALE))
            return True
        fid = store.same_fact(t, vals)
        if fid is None:
            if t in self.gated and self.holds(cycle, a, t, vals, support, out[3]):
                return True
            max_facts = self.max_facts
            if store.live_count >= max_facts:
                self.exceed("max_facts", f"merging a {self.type_name(t)} would exceed "
                            f"max_facts ({max_facts})")
                return False
            fid = store.add(t, vals, cycle)
            store.derive_new(fid, a, cycle, support)
            conf = out[3]
            if conf != 1.0:
                store.confidence[fid] = conf
            self.events.append((E_FACT_ADDED, fid, a, cycle, support, conf))
            if self.record_delta:
                self.delta.append((D_ADD, fid, t, vals, cycle))
            self.added += 1
        else:
            store.derive(fid, a, cycle, support)
            self.events.append((E_FACT_SUPPORTED, fid, a, cycle, support))
            conf = out[3]
            if conf > store.confidence.get(fid, 1.0):
                store.confidence[fid] = conf
        return True

    def _merge_plain(self, cycle: int, a: int, outputs: Sequence[tuple[Any, ...]]) -> bool:
        """The lean path for outputs of unkeyed, non-intent types while nothing has been
        removed in this merge: the store's bulk :meth:`~FactStore.add_outputs`, and one
        trace event for the whole effect (:data:`~converge_rules.engine.trace.E_PLAIN`:
        the fact id each output merged into) instead of one per fact. False when the
        job must stop."""
        store = self.store
        start = store.next_id
        if (type(outputs) is Columns and not store.retractable
                and store.live_count + len(outputs) <= self.max_facts):
            # columns whose facts never leave: merged whole; the trace reads the ids
            # they merged into from the store when it needs them (fids None)
            self.events.append((E_PLAIN, cycle, a, outputs, None, start))
            added = store.add_columns(outputs)
            self.added += added
            self._note_added(cycle, start, added)
            return True
        fids = array("q")
        self.events.append((E_PLAIN, cycle, a, outputs, fids, start))
        try:
            over = store.add_outputs(
                outputs, a, cycle, start + self.max_facts - store.live_count, fids,
                lambda out: self._evaluate(cycle, a, out, trace=False),
            )
        finally:
            added = store.next_id - start
            self.added += added
        self._note_added(cycle, start, added)
        if over is not None:
            self.exceed("max_facts", f"merging a {self.type_name(over)} would exceed "
                        f"max_facts ({self.max_facts})")
            return False
        return True

    def _columns_only(self, positions: Sequence[int], outputs: Sequence[Any]) -> bool:
        """Whether every run of the cycle (agent ``positions[i]``, which gave
        ``outputs[i]`` without an error) takes :meth:`_merge_plain`'s whole-columns
        path (columnar outputs of a plain type, no intent read, room for all of them):
        then :meth:`_merge_columns` merges the cycle."""
        agent_plain, agent_intents = self._agent_plain, self._agent_intents
        total = 0
        for a, outs in zip(positions, outputs, strict=True):
            if type(outs) is not Columns or not agent_plain[a] or agent_intents[a]:
                return False
            total += len(outs.values)
        return self.store.live_count + total <= self.max_facts

    def _merge_columns(self, cycle: int, positions: Sequence[int], outputs: Sequence[Any],
                       tool_calls: Sequence[tuple[Any, ...]] | None = None) -> bool:
        """:meth:`merge_cycle` when :meth:`_columns_only`: the same store, delta and
        events as merging each effect by :meth:`_merge_plain`, with one
        :meth:`~FactStore.add_columns` per run of effects emitting one type instead of
        one per effect (a cycle of a thousand one-fact effects, each an agent's call;
        200 agents deriving one fact 50 times each). Each effect's ``E_PLAIN`` holds
        the id its first new fact took, as one by one: found by bisecting the
        positions of the batch's new facts (never a walk of every output's id: the
        closure's one effect of a million paths is merged as by :meth:`_merge_plain`)."""
        store = self.store
        ev = self.events.append
        start = store.next_id
        columns = cast(Sequence[Columns], outputs)
        k = 0
        n = len(columns)
        while k < n:
            t = columns[k].type_id
            j = k + 1
            while j < n and columns[j].type_id == t:
                j += 1
            # where in the batch each new fact's first output is, when some output
            # was no new fact (equal to a live or an earlier one): the new facts
            # before an effect's outputs are those before its offset
            fresh: list[int] | None = None
            at: list[int] | None = None
            if j == k + 1 and not _repeated(columns[k].values):
                run = columns[k]  # one effect: its first new fact is the first id
            else:
                # an effect whose outputs are one object repeated (a constant emit,
                # extended whole) is given once, at its first output's position: 200
                # agents deriving one fact 50 times each merge 200 outputs, not 10,000
                batch: list[tuple[Any, ...]] = []
                offset = 0  # how many outputs so far (kept from the first one given once)
                for i in range(k, j):
                    vals = columns[i].values
                    size = len(vals)
                    if size > 1 and vals[0] is vals[-1] and vals.count(vals[0]) == size:
                        # (``_repeated``, inlined: once per effect)
                        if at is None:
                            offset = len(batch)
                            at = list(range(offset))
                        batch.append(vals[0])
                        at.append(offset)
                        offset += size
                    else:
                        batch += vals
                        if at is not None:
                            at += range(offset, offset + size)
                            offset += size
                run = Columns(t, batch, [], 0)
                fresh = []
            first = store.next_id
            added = store.add_columns(run, fresh, at)
            if at is None and added == len(run.values):
                fresh = None  # every output a new fact: as many before as outputs
            offset = 0
            for i in range(k, j):
                a = positions[i]
                if tool_calls is not None and tool_calls[i]:
                    for call in tool_calls[i]:
                        ev((E_TOOL_CALL, cycle, a, *call))
                cols = columns[i]
                size = len(cols.values)
                ev((E_PLAIN, cycle, a, cols, None,
                    first + (offset if fresh is None else bisect_left(fresh, offset))))
                ev((E_EFFECT_MERGED, cycle, a, size))
                offset += size
            k = j
        added = store.next_id - start
        self.added += added
        self._note_added(cycle, start, added)
        return bool(self.added or self.removed)

    def _note_added(self, cycle: int, start: int, added: int) -> None:
        """The facts ``start`` to ``start + added`` entered the context: in the delta,
        when an executor wants it."""
        if self.record_delta and added:
            store = self.store
            values, type_of, note = store.values, store.type_of, self.delta.append
            for fid in range(start, start + added):
                note((D_ADD, fid, type_of[fid], values[fid], cycle))

    def _group_keyed(
        self, effects: Sequence[AgentEffect]
    ) -> dict[tuple[int, Any], list[tuple[int, tuple[Any, ...]]]] | None:
        """:func:`~converge_rules.engine.keyed.keyed_groups` of the cycle's effects (a
        failed one proposes nothing)."""
        return keyed_groups([eff.position for eff in effects],
                            [() if eff.error is not None else eff.outputs
                             for eff in effects],
                            self.store.keyget, self._agent_keyed)

    def _evaluate(
        self, cycle: int, agent: int, out: tuple[Any, ...], *, trace: bool = True
    ) -> bool:
        """Attach an evaluation to a live fact; False when the target is gone or the
        same agent already gave the same evaluation."""
        target, score, reason = out[1], out[2], out[3]
        store = self.store
        if not store.is_live(target):
            return False
        record = (agent, float(score), reason)
        evals = store.evaluations.setdefault(target, [])
        if record in evals:
            return False
        evals.append(record)
        if trace:
            self.events.append((E_EVALUATION, cycle, agent, target, float(score), reason))
        return True

    def holds(self, cycle: int, agent: int, t: int, vals: tuple[Any, ...],
              support: tuple[int, ...], confidence: float) -> bool:
        """Whether the new fact ``vals`` of the gated type ``t`` must not enter: its
        approval gate holds it (:meth:`Gates.hold`)."""
        gates = self.gates
        return gates is not None and gates.hold(cycle, agent, t, vals, support, confidence)

    # ------------------------------------------------------ removal, prune

    def prune(self, cycle: int) -> None:
        """Apply every ``prune`` rule (see :meth:`Retraction.prune`); then, the cycle's
        removals all done, drop the facts held for approval whose support left
        (:meth:`Gates.drop_gone`)."""
        self.retraction.prune(cycle)
        gates = self.gates
        if gates is not None and gates.pending and self.dead:
            gates.drop_gone(cycle, self.dead)


__all__ = ["EMIT", "INTEND", "Merger", "needs_dependents"]
