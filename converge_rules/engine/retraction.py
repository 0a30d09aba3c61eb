"""Facts leaving the context: replacement, transitive retraction, prune.

When a fact is replaced (a policy chose another value for its key) or pruned, every
derived fact whose derivations all rest on it is retracted in the same merge, and so
on transitively — except the fact that replaced it, which stays even when derived
from it (``Count(id, n) → Count(id, n + 1)`` with ``resolve by latest``). Input facts
are never retracted, nor is a fact made by ``emit lasting``: its derivation rests on
nothing (:meth:`~converge_rules.engine.factstore.FactStore.derive`), so no cascade
reaches it. Each removal goes through
:meth:`~converge_rules.engine.merge.Merger.retire`: a trace event and a delta entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from converge_rules.engine.trace import E_INPUT_RETRACTED, E_PRUNED, E_REPLACED, E_RETRACTED

if TYPE_CHECKING:
    from converge_rules.engine.merge import Merger


class Retraction:
    """Decides which facts leave the context; owned by a
    :class:`~converge_rules.engine.merge.Merger`, which retires them."""

    def __init__(self, merger: Merger) -> None:
        self._merger = merger
        self._store = merger.store
        self._prunes = merger.program.prunes

    def replace(self, cycle: int, old: int, new: int) -> None:
        """``old`` lost its key to ``new``: remove it and retract what rested on it only."""
        self._merger.retire(old, (E_REPLACED, cycle, old, new))
        self._cascade(cycle, old, new)

    def withdraw(self, cycle: int, fid: int) -> None:
        """The input fact ``fid`` was retracted by its giver (a session's ``retract``):
        remove it and retract, transitively, what rested on it only."""
        self._merger.retire(fid, (E_INPUT_RETRACTED, cycle, fid))
        self._cascade(cycle, fid, None)

    def prune(self, cycle: int) -> None:
        """Apply every ``prune`` rule to the live context, rules in declaration order,
        facts in id order; a pruned fact leaves it with the facts resting only on it.
        A rule that raises prunes nothing."""
        store = self._store
        for spec in self._prunes:
            live = store.live[spec.type_id]
            for fid in list(live):
                if fid not in live:
                    continue
                age = cycle - store.cycle_of(fid)
                try:
                    drop = spec.fn(store.values[fid], age)
                except MemoryError:
                    raise  # the job's memory budget: the job stops, never a success
                except Exception:
                    drop = False
                if not drop:
                    continue
                if spec.into_knowledge:
                    self._keep(spec.type_id, fid, cycle)
                self._merger.retire(fid, (E_PRUNED, cycle, fid, age))
                self._cascade(cycle, fid, None)

    def _keep(self, type_id: int, fid: int, cycle: int) -> None:
        """``prune … into knowledge``: the fact goes to the job's knowledge store
        before it leaves (its derivations with it: retiring it forgets them)."""
        knowledge = self._merger.knowledge
        if knowledge is not None:
            store = self._store
            knowledge.put(type_id, store.values[fid], fid, store.cycle_of(fid), cycle,
                          store.derivations.get(fid, ()))

    def cascade(self, cycle: int, root: int, protect: int | None) -> None:
        """Retract, transitively, the facts whose every derivation rests on ``root``
        (``protect``, the fact that replaced it, excepted), ``root`` having left."""
        self._cascade(cycle, root, protect)

    def _cascade(self, cycle: int, root: int, protect: int | None) -> None:
        """Retract, transitively, the facts whose every derivation rests on ``root``
        (``protect``, the fact that replaced it, excepted)."""
        store = self._store
        if not store.retractable:
            return
        dependents = store.dependents
        derivations = store.derivations
        dead = self._merger.dead
        retire = self._merger.retire
        stack = [root]
        while stack:
            x = stack.pop()
            for d in dependents.pop(x, ()):
                if d == protect or d in dead or not store.is_live(d):
                    continue
                derivs = derivations.get(d)
                if derivs is None:
                    continue
                keep = [r for r in derivs if x not in r[2]]
                if keep or store.is_input(d):
                    if len(keep) != len(derivs):
                        derivations[d] = keep
                    continue
                retire(d, (E_RETRACTED, cycle, d, x))
                stack.append(d)
