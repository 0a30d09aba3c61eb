"""Keyed types: all of a cycle's candidates for one key, and the incumbent, merged
together.

Equal values are one proposal (its agents and derivations gathered); one distinct
value is merged like any fact; two or more are a conflict, resolved by the type's
policy (:mod:`~converge_rules.engine.policies`). The winner replaces the incumbent
(:meth:`~converge_rules.engine.retraction.Retraction.replace`), every resolved
conflict is recorded for the result and the trace, and an unresolved one stops the
job. A combined value is derived from every candidate, even when it equals one of
them. A candidate whose support was retracted earlier in the merge is skipped, and
reported once, here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from converge_rules.engine.effects import D_ADD, D_REMOVE, AgentEffect, RunOutputs, made_effect
from converge_rules.engine.factstore import Updater, derivation_entry, records
from converge_rules.engine.policies import Contender, decided_by, resolve
from converge_rules.engine.trace import (
    E_CONFLICT,
    E_EFFECT_MERGED,
    E_FACT_ADDED,
    E_FACT_SUPPORTED,
    E_KEYED_UPDATE,
    E_OUTPUT_SKIPPED,
    E_REPLACED,
)
from converge_rules.program import EVALUATE, Lasting

if TYPE_CHECKING:
    from converge_rules.engine.gates import Held
    from converge_rules.engine.merge import Merger

STALE = "its support was retracted earlier in this merge"

HELD = -1
"""What :meth:`KeyedMerge._add` returns for a value its approval gate held: the key
keeps its incumbent (if any), and the merge goes on."""

#: the candidates for one key, in merge order: (agent position, output)
Members = list[tuple[int, tuple[Any, ...]]]

_HOLDER = itemgetter(0)
_KIND = itemgetter(0)
_TYPE = itemgetter(1)
_VALUES = itemgetter(2)


def keyed_groups(positions: Sequence[int], outputs: Sequence[Sequence[tuple[Any, ...]]],
                 keyget_of: Sequence[Any], emits_keyed: Sequence[bool],
                 ) -> dict[tuple[int, Any], Members] | None:
    """The keyed candidates of a cycle by (type, key), in merge order, for the keys
    that have more than one (a key's only candidate is merged alone); None when no key
    has (the common case: found without building the groups). The agent at
    ``positions[i]`` emitted ``outputs[i]`` (none for a failed run);
    ``emits_keyed[a]``: whether agent ``a`` emits a keyed type; ``keyget_of[t]``: the
    key of a fact of type ``t`` (None when unkeyed)."""
    # per keyed type, the keys proposed so far; a run whose outputs are all emits of
    # one type (every Waltz labelling run) is checked at C speed
    seen: dict[int, set[Any]] = {}
    for a, outs in zip(positions, outputs, strict=True):
        if not outs or not emits_keyed[a]:
            continue
        types = set(map(_TYPE, outs))
        if len(types) == 1 and EVALUATE not in map(_KIND, outs):
            (t,) = types
            keyget = keyget_of[t]
            if keyget is None:
                continue
            keys = seen.get(t)
            if keys is None:
                keys = seen[t] = set()
            known = len(keys)
            keys.update(map(keyget, map(_VALUES, outs)))
            if len(keys) - known != len(outs):
                return _groups_of_several(positions, outputs, keyget_of, emits_keyed)
            continue
        for out in outs:
            if out[0] == EVALUATE:
                continue
            t = out[1]
            keyget = keyget_of[t]
            if keyget is None:
                continue
            keys = seen.get(t)
            if keys is None:
                keys = seen[t] = set()
            key = keyget(out[2])
            if key in keys:
                return _groups_of_several(positions, outputs, keyget_of, emits_keyed)
            keys.add(key)
    return None


def _groups_of_several(positions: Sequence[int], outputs: Sequence[Sequence[tuple[Any, ...]]],
                       keyget_of: Sequence[Any], emits_keyed: Sequence[bool],
                       ) -> dict[tuple[int, Any], Members]:
    """:func:`keyed_groups` once some key has several candidates."""
    groups: dict[tuple[int, Any], Members] = {}
    for a, outs in zip(positions, outputs, strict=True):
        if not outs or not emits_keyed[a]:
            continue
        for out in outs:
            if out[0] == EVALUATE:
                continue
            keyget = keyget_of[out[1]]
            if keyget is None:
                continue
            groups.setdefault((out[1], keyget(out[2])), []).append((a, out))
    return {gk: members for gk, members in groups.items() if len(members) > 1}


class KeyedMerge:
    """The keyed groups of one job's merges, and how many conflicts they resolved
    (each recorded as a trace event, which the result reads). Owned
    by a :class:`~converge_rules.engine.merge.Merger`, whose changes it records
    through the merger's public methods."""

    #: whether :meth:`merge_single` applies an update in place in one pass (tests turn
    #: it off to compare with the general path: the outcome must be the same)
    fused = True

    def __init__(self, merger: Merger) -> None:
        self._merger = merger
        self._program = merger.program
        self._store = merger.store
        self._events = merger.events
        #: how many conflicts were recorded (each is an ``E_CONFLICT`` trace event,
        #: from which the result builds them: nothing is kept here per conflict)
        self.count = 0
        self._policies = merger.program.policies
        self._updates = [agent.updates for agent in merger.program.agents]
        #: keyed type → how the fast paths decide its updates (see _fast_criterion)
        self._fast: dict[int, tuple[str, int, bool, str] | None] = {
            spec.id: self._fast_criterion(spec.id)
            for spec in merger.program.types if spec.key_positions
        }
        #: (type, key) → (the fact holding it, the candidates) for every group merged
        #: in the current merge, in merge order (see :meth:`rekey`); a group of one
        #: fused candidate as (the fact holding it, its agent, its output)
        self.held: dict[tuple[int, Any], tuple[Any, ...]] = {}
        #: keyed type → how merge_single decides its updates in one pass (its
        #: _fast_criterion), None when it may not: the store keeps no removals, the type
        #: is gated (a new value must pass its gate, which merge asks), or fusing is off
        self._fusable: list[tuple[str, int, bool, str] | None] = [
            self._fast.get(spec.id) if self.fused and merger.store.retractable
            and spec.id not in merger.gated else None
            for spec in merger.program.types
        ]
        #: per agent, whether :meth:`lane` may merge its effects: it emits a keyed type
        #: that may fuse and closes no intent (whose support :meth:`lane` never reads)
        emits_fusable = {spec.id for spec in merger.program.types
                         if self._fusable[spec.id] is not None}
        intents = {spec.id for spec in merger.program.types if spec.intent}
        self._lane = ([bool(emits_fusable.intersection(agent.emits))
                       and not intents.intersection(agent.reads)
                       for agent in merger.program.agents] if emits_fusable
                      else [False] * len(merger.program.agents))
        #: whether any agent's effects may take :meth:`lane`
        self.has_lane = any(self._lane)
        #: whether :meth:`lane` stopped the current merge (the job must stop)
        self.stopped = False

    def begin(self) -> None:
        """A new merge starts: forget the groups of the last one."""
        self.held = {}
        self.stopped = False

    def merge(self, cycle: int, t: int, key: Any, members: Members) -> bool:
        """Merge every candidate for one key. False when the job must stop."""
        store = self._store
        ev = self._events.append
        dead = self._merger.dead
        gates = self._merger.gates
        if gates is not None and gates.settled and len(members) == 1:
            settled = self._settled(cycle, t, key, members[0])
            if settled is not None:
                return settled
        if gates is not None and t in gates.combining:
            pending = gates.on(t, key)
            if pending is not None:
                return self._merge_held(cycle, t, key, members, pending)
        if len(members) == 1 and not (
            dead and type(members[0][1][4]) is not Lasting
            and any(s in dead for s in members[0][1][4])
        ):
            done = self._merge_one(cycle, t, key, members)
            if done is not None:
                return done
        # distinct values in merge order → [confidence, agents, (agent, support)…]
        proposals: dict[tuple[Any, ...], list[Any]] = {}
        for a, out in members:
            support = out[4]
            if dead and type(support) is not Lasting and any(s in dead for s in support):
                ev((E_OUTPUT_SKIPPED, cycle, a, t, out[2], STALE))
                continue
            entry = proposals.get(out[2])
            if entry is None:
                proposals[out[2]] = [out[3], [a], [(a, support)]]
            else:
                entry[0] = max(entry[0], out[3])
                if a not in entry[1]:
                    entry[1].append(a)
                entry[2].append((a, support))
        if not proposals:
            return True
        inc = store.incumbent(t, key)
        inc_vals = store.values[inc] if inc is not None else None
        if inc is not None and len(proposals) == 1 and inc_vals in proposals:
            self._support(cycle, inc, proposals[inc_vals])
            self.held[(t, key)] = (inc, members)
            return True
        if inc is None and len(proposals) == 1:
            vals, entry = next(iter(proposals.items()))
            fid = self._add(cycle, t, vals, entry, None)
            if fid is None:
                return False
            if fid == HELD:
                return True
            self.held[(t, key)] = (fid, members)
            return True
        if inc is not None and len(proposals) == 1 and self._is_update(cycle, t, inc, proposals):
            vals, entry = next(iter(proposals.items()))
            fid = self._add(cycle, t, vals, entry, inc)
            if fid is None:
                return False
            if fid == HELD:
                return True
            self.held[(t, key)] = (fid, members)
            self._merger.retraction.replace(cycle, inc, fid)
            return True
        if inc is not None and inc_vals is not None and len(proposals) == 1:
            # one new value, from several candidates (two agents relabelling one Waltz
            # edge in one cycle): decided as _merge_one decides one candidate
            vals, entry = next(iter(proposals.items()))
            fast = self._fusable[t]
            if fast is not None and self._new_wins(fast, cycle, inc, inc_vals, vals, entry[0]):
                fid = self._replace(cycle, t, vals, entry, inc,
                                    (E_CONFLICT, cycle, t, key, vals, (inc_vals,), fast[3]))
                self.held[(t, key)] = (fid, members)
                return True
        # a real conflict
        agents = self._program.agents
        contenders: list[Contender] = []
        if inc is not None:
            assert inc_vals is not None
            names = [agents[d[0]].name for d in records(store.derivations.get(inc))]
            same = proposals.get(inc_vals)
            if same is not None:
                names.extend(agents[x].name for x in same[1])
            contenders.append(Contender(
                inc_vals, store.confidence.get(inc, 1.0), self._mean_score(inc),
                store.cycle_of(inc), tuple(dict.fromkeys(names)), True,
            ))
        for vals, entry in proposals.items():
            if vals == inc_vals:
                continue
            contenders.append(Contender(
                vals, entry[0], None, cycle, tuple(agents[x].name for x in entry[1]), False,
            ))
        policy = self._program.policies.get(t)
        res = resolve(policy, self._program.types[t], contenders)
        win = res.values
        if win is None or (inc is not None and win == inc_vals):
            self.record_conflict(cycle, t, key, contenders, win, res.reason)
        if win is None:
            self._merger.halt_on_conflict(
                f"{self._merger.type_name(t)} {self.key_text(t, key)}: {res.reason}"
            )
            return False
        chosen: list[Any] | None
        combined = policy is not None and policy.mode == "combine"
        if combined:
            # a combined value rests on every candidate, whichever value it happens to
            # equal: each one is a derivation
            conf = max(e[0] for e in proposals.values())
            chosen = [conf, [], [d for e in proposals.values() for d in e[2]]]
        else:
            chosen = proposals.get(win)
        if inc is not None and win == inc_vals:
            if chosen is not None:
                self._support(cycle, inc, chosen)
            self.held[(t, key)] = (inc, members)
            return True
        # resolve picks a contender: the incumbent (above) or a proposal
        assert chosen is not None
        # (the conflict is recorded by _add once the winner passes its gate, if any: a
        # held value is no winner until approved)
        losers = tuple(c.values for c in contenders if c.values != win)
        fid = self._add(cycle, t, win, chosen, inc,
                        (E_CONFLICT, cycle, t, key, win, losers, res.reason), combined)
        if fid is None:
            return False
        if fid == HELD:
            if combined:  # the key's pending total: the parts it counts
                self._held_parts(t, key, tuple(v for v in proposals if v != inc_vals))
            return True
        self.held[(t, key)] = (fid, members)
        if inc is not None:
            self._merger.retraction.replace(cycle, inc, fid)
        return True

    def merge_single(self, cycle: int, a: int, out: tuple[Any, ...], t: int, key: Any) -> bool:
        """:meth:`merge` of a key whose only candidate in this merge is ``out`` (agent
        ``a``'s), with the common case fused: an update in place that the policy's
        first criterion decides for the new value (``Count(id, n) → Count(id, n + 1)``
        with ``resolve by latest``) is recorded and applied in one pass — the same
        store, delta and (once expanded: :data:`E_KEYED_UPDATE`) trace as :meth:`merge`,
        without its intermediate records. Anything else goes to :meth:`merge`. False
        when the job must stop."""
        merger = self._merger
        store = self._store
        fast = self._fusable[t]
        inc = store.incumbent(t, key)
        support = out[4]
        dead = merger.dead
        if inc is None and merger.gates is None and not (
                dead and type(support) is not Lasting and not dead.isdisjoint(support)):
            # a new key, no gate to ask: merge → _merge_one → _add, without the two
            # calls between (every Edge and Junction of Waltz)
            fid = self._add(cycle, t, out[2], [out[3], [a], [(a, support)]], None)
            if fid is None:
                return False
            self.held[(t, key)] = (fid, a, out)  # (no gate: never HELD)
            return True
        if fast is None or inc is None or (dead and type(support) is not Lasting
                                           and not dead.isdisjoint(support)):
            return self.merge(cycle, t, key, [(a, out)])
        vals = out[2]
        inc_vals = store.values[inc]
        if inc_vals == vals or t in self._updates[a]:
            return self.merge(cycle, t, key, [(a, out)])
        if not self._new_wins(fast, cycle, inc, inc_vals, vals, out[3]):
            # a tie, a value it cannot rank, or the incumbent wins: the general path
            return self.merge(cycle, t, key, [(a, out)])
        # the new value wins: record_one, _add, then retraction.replace, inlined, their
        # three events recorded as one (E_KEYED_UPDATE)
        self.count += 1
        fid = store.update_in_place(inc, vals, cycle)
        conf = out[3]
        if conf != 1.0:
            store.confidence[fid] = conf
        # store.derive(fid, a, cycle, support) of a new fact, inlined; the reverse edge
        # from the incumbent is left out: the cascade below would drop it at once
        dependents = store.dependents
        derivations = store.derivations
        if type(support) is Lasting:
            derivations[fid] = (a, cycle, ())
        else:
            derivations[fid] = (a, cycle, support)
            touched = store.touched
            for s in support:
                if s != inc:
                    edges = dependents.get(s)
                    if edges is None:
                        dependents[s] = fid
                    elif isinstance(edges, list):
                        edges.append(fid)
                    else:
                        dependents[s] = [edges, fid]
                    if touched is not None:  # as derive notes them: their dependents grew
                        touched.add(s)
        merger.added += 1
        self.held[(t, key)] = (fid, a, out)  # (a single candidate: see rekey)
        # Merger.retire of the incumbent (its store.remove done above), then the
        # cascade from it, which spares ``fid``
        derivations.pop(inc, None)
        dead.add(inc)
        self._events.append((E_KEYED_UPDATE, cycle, a, fid, inc, support, conf))
        if merger.record_delta:
            merger.delta.append((D_ADD, fid, t, vals, cycle))
            merger.delta.append((D_REMOVE, inc))
        merger.removed += 1
        if inc in dependents:
            merger.retraction.cascade(cycle, inc, fid)
        return True

    def lane(self, cycle: int, runs: RunOutputs,
             groups: dict[tuple[int, Any], Members] | None,
             done: set[tuple[int, Any]]) -> Iterator[AgentEffect]:
        """The effects of a cycle's ``runs`` (the serial executor's columns), those of
        the agents that may take this lane (:attr:`has_lane`) merged here, output by
        output, in one loop: an output that :meth:`merge_single` would fuse (a key's
        only candidate in this merge, not in ``groups``) is applied as it does; any
        other goes to :meth:`~converge_rules.engine.merge.Merger.merge_output`, as
        :meth:`~converge_rules.engine.merge.Merger.merge_cycle` would send it (``done``:
        its groups merged so far); then the run's ``effect_merged`` event. Every other
        run is yielded as its :class:`AgentEffect`, at its place in merge order, for
        ``merge_cycle`` to merge. A cycle of keyed updates costs one loop, instead of an
        effect, a call into ``merge_single`` and the merge's per-output work for each.
        When the job must stop, :attr:`stopped` is set and nothing more is merged."""
        merger = self._merger
        store = self._store
        lane = self._lane
        fusable = self._fusable
        updates = self._updates
        keyget_of = store.keyget
        key_table = store.key_table
        tables: dict[int, dict[Any, int]] = {}
        values = store.values
        store_add = store.add
        # how a keyed type's facts are updated in place in this merge: the first time
        # by update_in_place, from the second on by the type's updater (its lookups
        # done once: a function made once a merge pays when it is used again)
        update_in_place = store.update_in_place
        updaters: dict[int, Updater] = {}
        confidence = store.confidence
        derivations = store.derivations
        dependents = store.dependents
        dead = merger.dead
        held = self.held
        ev = self._events.append
        merge_output = merger.merge_output
        add = self._add
        gateless = merger.gates is None
        # a new key's fact is added here, not through _add, when nothing needs more
        # than its one lasting derivation: no gate, room for it (a checkpoint's delta
        # needs nothing noted of a new fact resting on nothing: see FactStore.touched)
        max_facts = merger.max_facts
        retractable = store.retractable
        touched = store.touched  # (set between cycles, never during a merge)
        delta = merger.delta.append if merger.record_delta else None
        this_cycle = store.next_id  # the first id of this cycle (the merge begins)
        for a, outputs in zip(runs.positions, runs.outputs, strict=True):
            if not lane[a] or type(outputs) is not tuple:
                yield made_effect(a, outputs, ())
                continue
            # the run's updates in place and new keys' lasting facts, counted here and
            # added to the conflicts, the facts added and the facts removed when its
            # outputs are merged (nothing reads those counts before)
            updated = fresh = 0
            # the derivation record of the run's lasting facts: one tuple for all of
            # them (equal records; one object fewer a fact to allocate and for the
            # young collections to walk)
            rested = (a, cycle, ())
            for out in outputs:
                # merge_single's decision (inc None: not fused) and its fused update,
                # inlined (keep them alike)
                inc = None
                # (an output is a 5-tuple: the executor checked the contract)
                what, t, vals, conf, support = out
                keyget = None if what == EVALUATE else keyget_of[t]
                if keyget is not None:
                    key = keyget(vals)
                    if groups is None or (t, key) not in groups:
                        table = tables.get(t)
                        if table is None:
                            table = tables[t] = key_table(t)
                        inc = table.get(key)
                        if inc is None:
                            if gateless:
                                # a new key: merge_single's first case, without the
                                # calls between (every Edge and Junction of Waltz)
                                if (type(support) is Lasting and retractable
                                        and store.live_count < max_facts):
                                    # _add and _derived, inlined. A lasting fact rests
                                    # on nothing: no cascade reaches it, so it holds
                                    # its key to the merge's end (rekey needs no entry
                                    # in ``held``)
                                    fid = store_add(t, vals, cycle, key)
                                    if conf != 1.0:
                                        confidence[fid] = conf
                                    derivations[fid] = rested
                                    ev((E_FACT_ADDED, fid, a, cycle, support, conf))
                                    if delta is not None:
                                        delta((D_ADD, fid, t, vals, cycle))
                                    fresh += 1
                                    continue
                                if not (dead and type(support) is not Lasting
                                        and not dead.isdisjoint(support)):
                                    added = add(cycle, t, vals, [conf, [a], [(a, support)]],
                                                None)
                                    if added is None:
                                        self.stopped = True
                                        self.count += updated
                                        merger.added += updated + fresh
                                        merger.removed += updated
                                        return
                                    held[(t, key)] = (added, a, out)
                                    continue
                        else:
                            fast = fusable[t]
                            inc_vals = values[inc]
                            if fast is None or (dead and type(support) is not Lasting
                                                and not dead.isdisjoint(support)) \
                                    or inc_vals == vals or t in updates[a]:
                                inc = None
                            else:
                                kind, position, highest, _ = fast
                                if kind == "latest":
                                    # the incumbent's cycle is this one (a tie: the
                                    # general path) when its id is this cycle's, else an
                                    # earlier one: the new value is the latest
                                    if inc >= this_cycle:
                                        inc = None
                                elif kind == "field" or kind == "confidence":
                                    old: Any
                                    new: Any
                                    if kind == "field":
                                        old, new = inc_vals[position], vals[position]
                                    else:
                                        old, new = confidence.get(inc, 1.0), conf
                                    if old is None or new is None or old == new \
                                            or (new > old) != highest:
                                        inc = None
                                else:  # earliest: the incumbent is as old or older
                                    inc = None
                    elif (t, key) not in done and retractable and gateless:
                        # the first candidate of a key that has several: merge
                        # decides the group here, or below when it is not the common
                        # case (one value, every candidate lasting, winning at once)
                        fast = fusable[t]
                        if fast is not None and self._fused_group(
                                cycle, t, key, groups[(t, key)], fast, updaters,
                                update_in_place):
                            done.add((t, key))
                            continue
                if inc is None:
                    if not merge_output(cycle, a, out, groups, done):
                        self.stopped = True
                        self.count += updated
                        merger.added += updated + fresh
                        merger.removed += updated
                        return
                    continue
                updated += 1
                update = updaters.get(t)
                if update is None:
                    update = updaters[t] = update_in_place
                elif update is update_in_place:
                    update = updaters[t] = store.updater(t)
                fid = update(inc, vals, cycle, key)
                if conf != 1.0:
                    confidence[fid] = conf
                if type(support) is Lasting:
                    # (held to the merge's end, as a new key's lasting fact above)
                    derivations[fid] = rested
                else:
                    derivations[fid] = (a, cycle, support)
                    for s in support:
                        if s != inc:
                            edges = dependents.get(s)
                            if edges is None:
                                dependents[s] = fid
                            elif isinstance(edges, list):
                                edges.append(fid)
                            else:
                                dependents[s] = [edges, fid]
                            if touched is not None:  # (their dependents grew)
                                touched.add(s)
                    held[(t, key)] = (fid, a, out)
                derivations.pop(inc, None)
                dead.add(inc)
                ev((E_KEYED_UPDATE, cycle, a, fid, inc, support, conf))
                if delta is not None:
                    delta((D_ADD, fid, t, vals, cycle))
                    delta((D_REMOVE, inc))
                if inc in dependents:
                    merger.retraction.cascade(cycle, inc, fid)
            if updated or fresh:
                self.count += updated
                merger.added += updated + fresh
                merger.removed += updated
            ev((E_EFFECT_MERGED, cycle, a, len(outputs)))

    def _fused_group(self, cycle: int, t: int, key: Any, members: Members,
                     fast: tuple[str, int, bool, str],
                     updaters: dict[int, Updater], update_in_place: Updater,
                     ) -> bool:
        """:meth:`merge` of a key's several candidates in the common case, in one pass:
        they propose one value (two Waltz agents labelling one edge alike), every one
        lasting, and the policy's first criterion decides for it over the incumbent.
        The same store, events and delta as ``merge`` → :meth:`_replace` →
        ``Retraction.replace``; no entry in :attr:`held` (a holder whose derivations
        are all lasting cannot be retracted later in the merge). False, having changed
        nothing, in any other case. For :meth:`lane`: no gate; ``updaters`` and
        ``update_in_place``: how the lane updates each keyed type in this merge (see
        :meth:`lane`)."""
        first, out = members[0]
        vals = out[2]
        conf = out[3]
        updates = self._updates
        for a, other in members:
            if other[2] != vals or type(other[4]) is not Lasting or t in updates[a]:
                return False
            conf = max(conf, other[3])
        store = self._store
        inc = store.incumbent(t, key)
        if inc is None:
            return False
        inc_vals = store.values[inc]
        if inc_vals == vals or not self._new_wins(fast, cycle, inc, inc_vals, vals, conf):
            return False
        self.count += 1
        ev = self._events.append
        ev((E_CONFLICT, cycle, t, key, vals, (inc_vals,), fast[3]))
        update = updaters.get(t)
        if update is None:
            update = updaters[t] = update_in_place
        elif update is update_in_place:
            update = updaters[t] = store.updater(t)
        fid = update(inc, vals, cycle, key)
        if conf != 1.0:
            store.confidence[fid] = conf
        derivs: list[tuple[int, int, tuple[int, ...]]] = [(first, cycle, ())]
        ev((E_FACT_ADDED, fid, first, cycle, out[4], conf))
        for a, other in members[1:]:
            derivs.append((a, cycle, ()))
            ev((E_FACT_SUPPORTED, fid, a, cycle, other[4]))
        derivations = store.derivations
        derivations[fid] = derivation_entry(derivs)
        merger = self._merger
        merger.added += 1
        # Merger.retire of the incumbent (the store took it out above), then the
        # cascade from it, which spares ``fid``
        derivations.pop(inc, None)
        merger.dead.add(inc)
        ev((E_REPLACED, cycle, inc, fid))
        if merger.record_delta:
            merger.delta.append((D_ADD, fid, t, vals, cycle))
            merger.delta.append((D_REMOVE, inc))
        merger.removed += 1
        if inc in store.dependents:
            merger.retraction.cascade(cycle, inc, fid)
        return True

    def groups_of_runs(self, runs: RunOutputs) -> dict[tuple[int, Any], Members] | None:
        """:func:`keyed_groups` of a cycle's runs as columns."""
        merger = self._merger
        return keyed_groups(runs.positions, runs.outputs, self._store.keyget,
                            merger._agent_keyed)

    def rekey(self, cycle: int) -> bool:
        """Merge again, in the order they were first merged, the keyed groups whose
        holder was retracted later in this merge (its support died after the group was
        resolved): the candidates still standing get the key, as if the dead one had
        never been proposed. The key is free then, so this retracts nothing and one
        pass suffices. False when the job must stop."""
        dead = self._merger.dead
        if dead.isdisjoint(map(_HOLDER, self.held.values())):
            return True  # (the common case, checked at C speed)
        for (t, key), entry in list(self.held.items()):
            if entry[0] in dead and not self.merge(cycle, t, key, self._members(entry)):
                return False
        return True

    @staticmethod
    def _members(entry: tuple[Any, ...]) -> Members:
        """The candidates of a group in :attr:`held`: ``(holder, members)``, or for
        one that :meth:`merge_single` fused, ``(holder, agent, output)``."""
        if len(entry) == 3:
            return [(entry[1], entry[2])]
        members: Members = entry[1]
        return members

    def _is_update(
        self, cycle: int, t: int, inc: int, proposals: dict[tuple[Any, ...], list[Any]]
    ) -> bool:
        """Whether the one new value for a key is its holder's agent re-deriving an
        aggregate: one agent proposes it, that agent emits ``t`` with an aggregate in a
        value (``AgentSpec.updates``), and every derivation of the holder is that
        agent's, from an earlier cycle. Its aggregate's inputs changed since; a new
        value is an update in place, not a conflict with itself."""
        (entry,) = proposals.values()
        if len(entry[1]) != 1:
            return False
        a = entry[1][0]
        if t not in self._program.agents[a].updates or self._store.is_input(inc):
            return False
        derivs = records(self._store.derivations.get(inc))
        if not derivs:
            return False
        return all(d[0] == a and d[1] < cycle for d in derivs)

    def record_conflict(
        self, cycle: int, t: int, key: Any, contenders: Sequence[Contender],
        winner: tuple[Any, ...] | None, reason: str,
    ) -> None:
        """Record a conflict and how it was resolved (``winner`` None: it was not), for
        the result and the trace."""
        losers = tuple(c.values for c in contenders if c.values != winner)
        self.count += 1
        self._events.append((E_CONFLICT, cycle, t, key, winner, losers, reason))

    def _merge_one(self, cycle: int, t: int, key: Any, members: Members) -> bool | None:
        """The fast path for a key with one candidate in this merge, its support live: a
        new key, the incumbent again, or an update in place that the policy's
        first criterion decides between the two values at once (``latest``,
        ``earliest``, a field, confidence). No contender objects, and a compact
        conflict record, exactly what :func:`~converge_rules.engine.policies.resolve`
        would have recorded. None when the general path must decide."""
        store = self._store
        a, out = members[0]
        vals = out[2]
        inc = store.incumbent(t, key)
        if inc is None:
            added = self._add(cycle, t, vals, [out[3], [a], [(a, out[4])]], None)
            if added is None:
                return False
            if added == HELD:
                return True
            self.held[(t, key)] = (added, members)
            return True
        inc_vals = store.values[inc]
        if inc_vals == vals:
            self._support(cycle, inc, [out[3], [a], [(a, out[4])]])
            self.held[(t, key)] = (inc, members)
            return True
        try:
            fast = self._fast[t]
        except KeyError:
            fast = self._fast[t] = self._fast_criterion(t)
        if fast is None:
            return None
        if t in self._program.agents[a].updates:
            return None  # maybe an aggregate's update of its own value (_is_update)
        kind, position, highest, reason = fast
        old: Any
        new: Any
        if kind == "field":
            old, new = inc_vals[position], vals[position]
        elif kind == "confidence":
            old, new = store.confidence.get(inc, 1.0), out[3]
        else:
            old, new = store.cycle_of(inc), cycle
        if old == new:
            return None  # a tie on the first criterion: the next ones decide
        # as _best ranks them: a value it cannot rank (None) loses to any it can
        new_wins = old is None if old is None or new is None else (new > old) == highest
        if not new_wins:
            self.record_one(cycle, t, key, inc_vals, vals, reason)
            self.held[(t, key)] = (inc, members)
            return True
        fid = self._add(cycle, t, vals, [out[3], [a], [(a, out[4])]], inc,
                        (E_CONFLICT, cycle, t, key, vals, (inc_vals,), reason))
        if fid is None:
            return False
        if fid == HELD:
            return True
        self.held[(t, key)] = (fid, members)
        self._merger.retraction.replace(cycle, inc, fid)
        return True

    def _fast_criterion(self, t: int) -> tuple[str, int, bool, str] | None:
        """How :meth:`_merge_one` decides an update of type ``t``: the first criterion
        of its policy as (kind, field position, whether the highest wins, the reason
        :func:`~converge_rules.engine.policies.resolve` gives when it decides); None
        when that criterion is not one it decides (or there is no resolving policy)."""
        policy = self._policies.get(t)
        if policy is None or policy.mode != "resolve" or not policy.criteria:
            return None
        c = policy.criteria[0]
        if c.kind not in ("latest", "earliest", "field", "confidence"):
            return None
        highest = c.kind == "latest" if c.kind in ("latest", "earliest") else (
            c.direction != "lowest")
        position = c.position if c.position is not None else -1
        return c.kind, position, highest, decided_by(c, self._program.types[t])

    def record_one(self, cycle: int, t: int, key: Any, winner: tuple[Any, ...],
                   loser: tuple[Any, ...], reason: str) -> None:
        """Record a conflict of two values resolved in favour of ``winner``."""
        self.count += 1
        self._events.append((E_CONFLICT, cycle, t, key, winner, (loser,), reason))

    def _add(
        self, cycle: int, t: int, vals: tuple[Any, ...], entry: list[Any], inc: int | None,
        conflict: tuple[Any, ...] | None = None, combined: bool = False,
    ) -> int | None:
        """Add ``vals`` as the key's new holder (``inc``: the holder it replaces, which
        the caller retracts), with ``entry``'s derivations; ``conflict``, the conflict
        event that made it the winner, is recorded first. A value its approval gate
        holds is not added (HELD) and its conflict is not recorded: it is no winner
        while held (``combined``: a ``combine`` policy made it, see
        :class:`~converge_rules.engine.gates.Held`). None when the job must stop."""
        merger = self._merger
        store = self._store
        derivs = entry[2]
        if t in merger.gated:
            gates = merger.gates
            if gates is not None and gates.hold(
                    cycle, derivs[0][0], t, vals, derivs[0][1], entry[0],
                    (inc, conflict[5], conflict[6]) if combined and conflict else None,
                    tuple(derivs[1:])):
                return HELD
        if conflict is not None:
            self.count += 1
            self._events.append(conflict)
        if inc is None and store.live_count >= merger.max_facts:
            merger.exceed("max_facts", f"merging a {merger.type_name(t)} would exceed "
                          f"max_facts ({merger.max_facts})")
            return None
        fid = store.add(t, vals, cycle)
        self._derived(cycle, t, fid, vals, entry)
        return fid

    def _derived(self, cycle: int, t: int, fid: int, vals: tuple[Any, ...],
                 entry: list[Any]) -> None:
        """Record the key's new holder ``fid`` (``vals``, just stored) as ``entry``
        derived it: its confidence, its derivations with their events, the delta."""
        store = self._store
        ev = self._events.append
        conf = entry[0]
        if conf != 1.0:
            store.confidence[fid] = conf
        derivs = entry[2]
        first_agent, first_support = derivs[0]
        store.derive_new(fid, first_agent, cycle, first_support)
        ev((E_FACT_ADDED, fid, first_agent, cycle, first_support, conf))
        for a, support in derivs[1:]:
            store.derive(fid, a, cycle, support)
            ev((E_FACT_SUPPORTED, fid, a, cycle, support))
        merger = self._merger
        merger.note((D_ADD, fid, t, vals, cycle))
        merger.added += 1

    def _new_wins(self, fast: tuple[str, int, bool, str], cycle: int, inc: int,
                  inc_vals: tuple[Any, ...], vals: tuple[Any, ...], confidence: float,
                  ) -> bool:
        """Whether the first criterion of the policy (``fast``: its
        :meth:`_fast_criterion`) decides for the new value ``vals`` (of ``confidence``,
        proposed in ``cycle``) over the incumbent ``inc``; False when it decides for the
        incumbent, ties, or cannot rank one of them (the general path decides)."""
        kind, position, highest, _ = fast
        old: Any
        new: Any
        if kind == "field":
            old, new = inc_vals[position], vals[position]
        elif kind == "confidence":
            old, new = self._store.confidence.get(inc, 1.0), confidence
        else:
            old, new = self._store.cycle_of(inc), cycle
        return not (old is None or new is None or old == new or (new > old) != highest)

    def _replace(self, cycle: int, t: int, vals: tuple[Any, ...], entry: list[Any], inc: int,
                 conflict: tuple[Any, ...]) -> int:
        """``_add`` of ``vals``, the winner of ``conflict``, as the key's new holder in
        place of ``inc``, then ``Retraction.replace`` of ``inc``: the same store, events
        and delta, the store's change made in one step
        (:meth:`~converge_rules.engine.factstore.FactStore.update_in_place`). For a
        type that may fuse (:attr:`_fusable`: no gate, the store keeps removals).
        Returns the new holder's id."""
        self.count += 1
        self._events.append(conflict)
        fid = self._store.update_in_place(inc, vals, cycle)
        self._derived(cycle, t, fid, vals, entry)
        self._merger.retraction.replace(cycle, inc, fid, removed=True)
        return fid

    def _settled(self, cycle: int, t: int, key: Any, member: tuple[int, tuple[Any, ...]]
                 ) -> bool | None:
        """The merge of an approved value a ``combine`` policy made (the decision
        cycle's): it counts the key's incumbent of when it was held already, so it
        replaces that incumbent, never combined with it a second time; its conflict is
        recorded now, when it enters. A value that came to the key after is combined with
        it as usual (None: the general path)."""
        gates = self._merger.gates
        assert gates is not None
        a, out = member
        held = gates.settled.pop((t, out[2]), None)
        if held is None or held.conflict is None:
            return None
        vals = out[2]
        losers, reason = held.conflict
        conflict = (E_CONFLICT, cycle, t, key, vals, losers, reason)
        inc = self._store.incumbent(t, key)
        if inc != held.base:
            self.count += 1
            self._events.append(conflict)
            return None
        # (with the other derivations of a total combined in one cycle, as it would
        # have entered unheld)
        fid = self._add(cycle, t, vals, [out[3], [a], [(a, out[4]), *held.also]], inc,
                        conflict)
        if fid is None:
            return False
        if fid == HELD:  # (cannot be: the value is approved)
            return True
        self.held[(t, key)] = (fid, [member])
        if inc is not None:
            self._merger.retraction.replace(cycle, inc, fid)
        return True

    def _merge_held(self, cycle: int, t: int, key: Any, members: Members, pending: Held
                    ) -> bool:
        """Merge the candidates for a key of a ``combine`` type on which a value is
        held (``pending``, the key's pending total: its value combined with the parts
        that came since). They are combined with that total, as they would be with the
        key's value had it been approved, and the new total replaces it: held in its
        turn (its parts are all those of the old one and these), or entering if its
        gate no longer holds it. So no part is ever lost to, nor counted twice by, a
        held value (docs/language.md, approval gates). False when the job must stop."""
        merger = self._merger
        gates = merger.gates
        assert gates is not None
        dead = merger.dead
        agents = self._program.agents
        proposals: dict[tuple[Any, ...], list[Any]] = {}
        for a, out in members:
            support = out[4]
            if dead and type(support) is not Lasting and any(s in dead for s in support):
                self._events.append((E_OUTPUT_SKIPPED, cycle, a, t, out[2], STALE))
                continue
            entry = proposals.get(out[2])
            if entry is None:
                proposals[out[2]] = [out[3], [a], [(a, support)]]
            else:
                entry[0] = max(entry[0], out[3])
                if a not in entry[1]:
                    entry[1].append(a)
                entry[2].append((a, support))
        new = [vals for vals in proposals if vals != pending.values]
        if not new:
            return True  # the held total derived again: held once
        contenders = [Contender(pending.values, pending.confidence, None, pending.cycle,
                                (agents[pending.agent].name,), True)]
        contenders.extend(Contender(vals, proposals[vals][0], None, cycle,
                                    tuple(agents[x].name for x in proposals[vals][1]), False)
                          for vals in new)
        res = resolve(self._policies.get(t), self._program.types[t], contenders)
        win = res.values
        if win is None:
            self.record_conflict(cycle, t, key, contenders, None, res.reason)
            merger.halt_on_conflict(f"{merger.type_name(t)} {self.key_text(t, key)}: "
                                    f"{res.reason}")
            return False
        if win == pending.values:  # (parts that leave the total as it is: ``max`` of less)
            known = gates.parts(pending)
            if pending.combined and known is not None:
                pending.parts = (*known, *new)
            return True
        # what the total counts: the key's value and every part (the conflict the
        # approved total records when it enters)
        counted = pending.conflict[0] if pending.combined and pending.conflict else (
            pending.values,)
        losers = (*counted, *(vals for vals in new if vals != win))
        parts = gates.parts(pending)
        gates.supersede(cycle, pending)
        inc = self._store.incumbent(t, key)
        chosen = [max(e[0] for e in proposals.values()), [],
                  [d for e in proposals.values() for d in e[2]]]
        fid = self._add(cycle, t, win, chosen, inc,
                        (E_CONFLICT, cycle, t, key, win, losers, res.reason), True)
        if fid is None:
            return False
        if fid == HELD:
            self._held_parts(t, key, None if parts is None else (*parts, *new))
            return True
        self.held[(t, key)] = (fid, members)
        if inc is not None:
            merger.retraction.replace(cycle, inc, fid)
        return True

    def _held_parts(self, t: int, key: Any, parts: tuple[tuple[Any, ...], ...] | None
                    ) -> None:
        """Note the parts of the total just held on ``key`` (if one was: a value
        rejected earlier is not held again)."""
        gates = self._merger.gates
        assert gates is not None
        held = gates.on(t, key)
        if held is not None:
            held.parts = parts

    def rebase(self, cycle: int, t: int, key: Any) -> bool:
        """After an input fact given later took ``key`` (inputs are never gated: it
        enters, combined with the key's value as the policy says), combine the parts
        of the total held on the key, if any, with that new value: the new total
        replaces the held one (held, or entering if its gate no longer holds it), so
        no part is lost to it (docs/language.md, approval gates). A total whose parts
        are unknown (restored from an older checkpoint) is dropped instead, its base
        gone (:meth:`Gates.drop_gone`). False when the job must stop."""
        merger = self._merger
        gates = merger.gates
        if gates is None or t not in gates.combining:
            return True
        pending = gates.on(t, key)
        store = self._store
        inc = store.incumbent(t, key)
        if pending is None or inc is None or pending.base == inc:
            return True
        parts = gates.parts(pending)
        if parts is None:
            return True
        inc_vals = store.values[inc]
        name = (self._program.agents[pending.agent].name,)
        contenders = [Contender(inc_vals, store.confidence.get(inc, 1.0), None,
                                store.cycle_of(inc), (), True)]
        contenders.extend(Contender(v, pending.confidence, None, pending.cycle, name, False)
                          for v in dict.fromkeys(parts) if v != inc_vals)
        gates.supersede(cycle, pending)
        if len(contenders) == 1:
            return True  # (its parts were the new value itself)
        res = resolve(self._policies.get(t), self._program.types[t], contenders)
        win = res.values
        if win is None:
            self.record_conflict(cycle, t, key, contenders, None, res.reason)
            merger.halt_on_conflict(f"{merger.type_name(t)} {self.key_text(t, key)}: "
                                    f"{res.reason}")
            return False
        if win == inc_vals:
            return True  # (parts that leave the new value as it is: ``max`` of less)
        losers = tuple(c.values for c in contenders if c.values != win)
        fid = self._add(cycle, t, win, [pending.confidence, [], [(pending.agent,
                                                                  pending.support)]],
                        inc, (E_CONFLICT, cycle, t, key, win, losers, res.reason), True)
        if fid is None:
            return False
        if fid == HELD:
            self._held_parts(t, key, parts)
            return True
        merger.retraction.replace(cycle, inc, fid)
        return True

    def _support(self, cycle: int, fid: int, entry: list[Any]) -> None:
        store = self._store
        for a, support in entry[2]:
            store.derive(fid, a, cycle, support)
            self._events.append((E_FACT_SUPPORTED, fid, a, cycle, support))
        if entry[0] > store.confidence.get(fid, 1.0):
            store.confidence[fid] = entry[0]

    def _mean_score(self, fid: int) -> float | None:
        evals = self._store.evaluations.get(fid)
        if not evals:
            return None
        return sum(e[1] for e in evals) / len(evals)

    def key_text(self, t: int, key: Any) -> str:
        """``(field: value, …)`` for the key fields of type ``t`` (for messages)."""
        spec = self._program.types[t]
        parts = key if len(spec.key_positions) > 1 else (key,)
        return "(" + ", ".join(
            f"{spec.fields[p].name}: {v!r}"
            for p, v in zip(spec.key_positions, parts, strict=True)
        ) + ")"
