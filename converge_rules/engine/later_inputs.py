"""Input facts that arrive after a job started (a session's ``add`` and ``retract``),
merged as a cycle of their own.

The cycle takes the input facts withdrawn out first (each with what rests only on it,
through :meth:`~converge_rules.engine.retraction.Retraction.withdraw`), then merges the
new ones in input order, grouped by type as the inputs of cycle 0 are:

* an unkeyed fact equal to a live one is not added again; the live one becomes an input
  fact (no cascade retracts it any more);
* a keyed fact is resolved with the other new values for its key and the incumbent by
  the type's policy, like a cycle's candidates: ``latest`` prefers the new inputs (a
  later cycle), and among them the later one (:attr:`Contender.order`); the winner
  replaces the incumbent, with the usual cascade.

Every new fact is an input fact (:meth:`FactStore.is_input`), recorded in the trace as a
``fact_added`` without agent in this cycle, and in the delta for replica executors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from converge_rules.engine.effects import D_ADD
from converge_rules.engine.factstore import FactStore, IdList, IdRange, records
from converge_rules.engine.policies import Contender, resolve
from converge_rules.engine.trace import E_FACT_ADDED

if TYPE_CHECKING:
    from converge_rules.engine.inputs import InputFacts
    from converge_rules.engine.merge import Merger


def open_for_inputs(store: FactStore) -> None:
    """Make ``store`` take input facts after cycle 0 (idempotent): a type whose facts
    were fixed (no agent emits it: its live ids a range) gets live ids that can grow,
    and the indexes kept only while input facts were new are kept for good (new input
    facts may come in any cycle now)."""
    layout = store.layout
    if not layout.static and not layout.lazy:
        return
    store.set_lazy_indexes(True)
    layout = replace(layout, static=frozenset(), lazy=frozenset())
    store.layout = layout
    for type_id, live in enumerate(store.live):
        if type(live) is IdRange:
            if FactStore.grows_only(layout, type_id, store.retractable):
                ids = IdList()
                if live:
                    ids.extend(live.start, live.stop)
                store.live[type_id] = ids
            else:
                store.live[type_id] = dict.fromkeys(live)


def merge_later_inputs(
    merger: Merger, cycle: int, inputs: InputFacts, withdrawn: Sequence[int]
) -> None:
    """Merge ``inputs`` into the merger's store as cycle ``cycle``, after taking out the
    input facts ``withdrawn`` (ids; those no longer live are skipped). Sets the merger's
    ``added``/``removed`` counts; sets its ``stop`` when the job must end (a conflict its
    policy leaves unresolved, ``max_facts``)."""
    store = merger.store
    merger.added = merger.removed = 0
    merger.dead = set()
    merger.keyed.begin()
    store.begin_cycle(cycle)
    merger.retraction.withdraw_all(cycle, sorted(withdrawn))
    by_type: dict[int, list[tuple[Any, ...]]] = {}
    for type_id, run in groupby(zip(inputs.types, inputs.values, strict=True),
                                key=itemgetter(0)):
        by_type.setdefault(type_id, []).extend(vals for _, vals in run)
    for type_id in sorted(by_type):
        rows = by_type[type_id]
        last = {vals: i for i, vals in enumerate(rows)}  # input order: the last place
        if store.keyget[type_id] is None:
            for vals in last:
                if not _add(merger, cycle, type_id, vals):
                    return
        elif not _merge_keyed(merger, cycle, type_id, last):
            return


def _add(merger: Merger, cycle: int, type_id: int, vals: tuple[Any, ...]) -> bool:
    """Merge one input fact whose key (if any) is free or its own. False when the job
    must stop."""
    store = merger.store
    fid = store.same_fact(type_id, vals)
    if fid is not None:
        if store.is_live(fid):
            store.later_inputs.add(fid)  # given now: it stays whatever it rested on
        return True  # (a closed intent given again stays closed, as an output would)
    if store.live_count >= merger.max_facts:
        merger.exceed("max_facts", f"merging an input {merger.type_name(type_id)} would "
                      f"exceed max_facts ({merger.max_facts})")
        return False
    fid = store.add(type_id, vals, cycle)
    store.later_inputs.add(fid)
    merger.events.append((E_FACT_ADDED, fid, -1, cycle, (), 1.0))
    merger.note((D_ADD, fid, type_id, vals, cycle))
    merger.added += 1
    return True


def _merge_keyed(
    merger: Merger, cycle: int, type_id: int, last: dict[tuple[Any, ...], int]
) -> bool:
    """Merge the new input facts of a keyed type (``last``: values → last place in the
    batch, in first-seen order), each key's values against its incumbent. False when
    the job must stop."""
    store, program = merger.store, merger.program
    keyget = store.keyget[type_id]
    assert keyget is not None
    groups: dict[Any, list[tuple[Any, ...]]] = {}
    for vals in last:
        groups.setdefault(keyget(vals), []).append(vals)
    for key, members in groups.items():
        inc = store.incumbent(type_id, key)
        inc_vals = None if inc is None else store.values[inc]
        distinct = [v for v in members if v != inc_vals]
        if not distinct:  # the incumbent given again
            assert inc is not None
            store.later_inputs.add(inc)
            continue
        if inc is None and len(distinct) == 1:
            if not _add(merger, cycle, type_id, distinct[0]) or not merger.keyed.rebase(
                    cycle, type_id, key):
                return False
            continue
        contenders: list[Contender] = []
        if inc is not None:
            assert inc_vals is not None
            agents = program.agents
            names = tuple(dict.fromkeys(agents[d[0]].name
                                        for d in records(store.derivations.get(inc))))
            evals = store.evaluations.get(inc)
            score = sum(e[1] for e in evals) / len(evals) if evals else None
            contenders.append(Contender(inc_vals, store.confidence.get(inc, 1.0), score,
                                        store.cycle_of(inc), names, True))
        contenders.extend(Contender(v, 1.0, None, cycle, (), False, last[v])
                          for v in distinct)
        res = resolve(program.policies.get(type_id), program.types[type_id], contenders)
        merger.keyed.record_conflict(cycle, type_id, key, contenders, res.values, res.reason)
        if res.values is None:
            merger.halt_on_conflict(f"{merger.type_name(type_id)} "
                                    f"{merger.keyed.key_text(type_id, key)}: {res.reason}")
            return False
        if res.values == inc_vals:
            if inc_vals in last:
                assert inc is not None
                store.later_inputs.add(inc)
            continue
        new = store.next_id
        if not _add(merger, cycle, type_id, res.values):
            return False
        if inc is not None:
            # as a cycle's winner does: it takes the key, the incumbent leaves with
            # what rested only on it
            merger.retraction.replace(cycle, inc, new)
        # a total held on the key counts its old value: its parts go on the new one
        if not merger.keyed.rebase(cycle, type_id, key):
            return False
    return True
