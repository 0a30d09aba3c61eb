"""Facts leaving the context: replacement, transitive retraction, prune.

When a fact is replaced (a policy chose another value for its key), pruned or withdrawn
(a session's ``retract``), every derived fact that no longer has a derivation grounded
in the facts that stay is retracted in the same merge — except the fact that replaced
it, which stays even when derived from it (``Count(id, n) → Count(id, n + 1)`` with
``resolve by latest``). Input facts are never retracted, nor is a fact made by ``emit
lasting``: its derivation rests on nothing
(:meth:`~converge_rules.engine.factstore.FactStore.derive`), so no cascade reaches it.
Each removal goes through :meth:`~converge_rules.engine.merge.Merger.retire`: a trace
event and a delta entry.

Counting derivations is not enough when facts support each other through a cycle:
``Path(0, 1)`` rests on ``Edge(0, 1)`` and on itself (``Path(0, 1) + Edge(1, 1)``), so
it would outlive ``Edge(0, 1)``. Removal is therefore delete-and-rederive (DRed) over
the recorded derivations, in two steps (:meth:`Retraction._cascade`, then
:meth:`Retraction._settle`):

1. *Count*: from the removed fact, retract transitively the facts whose every
   derivation rests on a removed fact; a fact that loses some derivations but keeps one
   is *touched*. Without cycles this is exact, and it is the whole cost.
2. *Re-derive*: the touched facts and everything they support (the *suspects*, ``C``:
   closed under the reverse support edges, not going past input facts and the fact
   that replaced the removed one) are set aside, and a fact of ``C`` is kept when one
   of its derivations rests only on facts outside ``C`` or on facts of ``C`` already
   kept — a least fixpoint, computed by counting each derivation's supports still in
   doubt (Horn satisfiability, linear in the derivations of ``C``). The rest of ``C``
   is retracted, and the derivations of the facts that stay forget it.

   Most touched facts are plainly still grounded (a path with another route): a short
   search downwards (:class:`_Proofs`, bounded) finds them a *proof* — a derivation
   whose supports have proofs by derivations of earlier cycles, down to input facts —
   and such a fact is no suspect, nor is what rests on the suspects only through it.
   Only the rest, the facts a cycle of support may hold up, and what they support,
   make ``C``; without that, ``C`` would be every fact downstream of a touched one.

Why this is right (the invariant: every live derived fact has a *well-founded*
derivation, a finite tree of recorded derivations down to input facts, lasting facts
and replacements, through facts that are live): a live fact outside ``C`` keeps its
tree — were a node of the tree removed, the first node above it on the tree's path to
the fact lost a derivation, so it was removed or touched, and every fact above a
touched one is in ``C``. So a support outside ``C`` is well-founded, and the fixpoint
keeps exactly the facts of ``C`` that have a well-founded tree: the least fixpoint
holds no fact resting only on itself. With the search of :class:`_Proofs`, a fact
outside ``C`` that rested on a suspect does so through a fact with a proof: replace
the tree above it by that proof, and the argument stands (a proof is such a tree).
The recorded derivations are every match the
agents fired (each match is derived once, and a match of live facts was fired), so a
run over the remaining facts derives exactly the facts kept (for the rulesets of the
session contract, :mod:`converge_rules.engine.session`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from converge_rules.engine.factstore import dependent_ids, derivation_entry, records
from converge_rules.engine.trace import E_INPUT_RETRACTED, E_PRUNED, E_REPLACED, E_RETRACTED

if TYPE_CHECKING:
    from converge_rules.engine.factstore import FactStore
    from converge_rules.engine.merge import Merger


class Retraction:
    """Decides which facts leave the context; owned by a
    :class:`~converge_rules.engine.merge.Merger`, which retires them."""

    def __init__(self, merger: Merger) -> None:
        self._merger = merger
        self._store = merger.store
        self._prunes = merger.program.prunes
        #: touched facts (they lost a derivation and kept one) → the removed fact that
        #: took it, waiting for :meth:`_settle`
        self._touched: dict[int, int] = {}

    def replace(self, cycle: int, old: int, new: int, *, removed: bool = False) -> None:
        """``old`` lost its key to ``new``: remove it and retract what rested on it only
        (``removed``: the store took it out already, in ``update_in_place``)."""
        self._merger.retire(old, (E_REPLACED, cycle, old, new), removed=removed)
        self._cascade(cycle, old, new)

    def withdraw(self, cycle: int, fid: int) -> None:
        """The input fact ``fid`` was retracted by its giver (a session's ``retract``):
        remove it and retract, transitively, what rested on it only."""
        self._merger.retire(fid, (E_INPUT_RETRACTED, cycle, fid))
        self._cascade(cycle, fid, None)

    def withdraw_all(self, cycle: int, fids: Iterable[int]) -> None:
        """:meth:`withdraw` each of the input facts ``fids`` still live, in the order
        given, then re-derive once for all of them (one pass over the suspects, not one
        per fact)."""
        store, dead = self._store, self._merger.dead
        for fid in fids:
            if store.is_live(fid) and fid not in dead:
                self._merger.retire(fid, (E_INPUT_RETRACTED, cycle, fid))
                self._cascade(cycle, fid, None, settle=False)
        self._settle(cycle, None)

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
                          records(store.derivations.get(fid)))

    def cascade(self, cycle: int, root: int, protect: int | None) -> None:
        """Retract, transitively, the facts whose every derivation rests on ``root``
        (``protect``, the fact that replaced it, excepted), ``root`` having left."""
        self._cascade(cycle, root, protect)

    def _cascade(
        self, cycle: int, root: int, protect: int | None, *, settle: bool = True
    ) -> None:
        """Retract, transitively, the facts whose every derivation rests on ``root``
        (``protect``, the fact that replaced it, excepted); then, unless ``settle`` is
        false, the facts left without a well-founded derivation (:meth:`_settle`)."""
        store = self._store
        if not store.retractable:
            return
        dependents = store.dependents
        derivations = store.derivations
        dead = self._merger.dead
        retire = self._merger.retire
        touched = self._touched
        stack = [root]
        while stack:
            x = stack.pop()
            for d in dependent_ids(dependents.pop(x, None)):
                if d == protect or d in dead or not store.is_live(d):
                    continue
                entry = derivations.get(d)
                if entry is None:
                    continue
                derivs = records(entry)
                keep = [r for r in derivs if x not in r[2]]
                if keep or store.is_input(d):
                    if len(keep) != len(derivs):
                        derivations[d] = derivation_entry(keep)
                        if keep and d not in touched and not store.is_input(d):
                            touched[d] = x
                    continue
                retire(d, (E_RETRACTED, cycle, d, x))
                stack.append(d)
        if settle:
            self._settle(cycle, protect)

    def _settle(self, cycle: int, protect: int | None) -> None:
        """Step 2 of the module's DRed: retract the suspects (the touched facts and what
        they support) that have no derivation grounded outside the suspects; each
        retracted fact's cause is the removed fact that touched its first suspect."""
        touched, self._touched = self._touched, {}
        if not touched:
            return
        store = self._store
        dependents = store.dependents
        derivations = store.derivations
        dead = self._merger.dead
        is_live, is_input = store.is_live, store.is_input
        # the suspects, in the order they are found (deterministic: dependents lists
        # grow in merge order), each with its cause; a fact shown well-founded by a
        # short search downwards is no suspect, nor what rests on the suspects only
        # through it
        proofs = _Proofs(store, protect, 64 * len(touched) + 4096)
        cause: dict[int, int] = {}
        stack: list[int] = []
        for d, x in touched.items():
            if d not in dead and is_live(d) and not proofs.holds(d):
                cause[d] = x
                stack.append(d)
        while stack:
            y = stack.pop()
            why = cause[y]
            for d in dependent_ids(dependents.get(y)):
                if (d in cause or d == protect or d in dead or not is_live(d)
                        or is_input(d) or d not in derivations):
                    continue
                # the search only for a fact with a derivation on no suspect and not on
                # itself (a fact held up by a cycle has none: searching it is waste)
                if any(d not in sup and not any(x in cause for x in sup)
                       for _, _, sup in records(derivations[d])) and proofs.holds(d):
                    continue
                cause[d] = why
                stack.append(d)
        # Horn satisfiability: per derivation, how many of its supports are suspects
        # not yet kept; a derivation at zero keeps its fact
        kept: set[int] = set()
        doubts: dict[int, list[int]] = {}
        watch: dict[int, list[tuple[int, int]]] = {}
        ready: list[int] = []
        for d in cause:
            counts: list[int] = []
            for i, (_, _, support) in enumerate(records(derivations[d])):
                n = 0
                for s in support:
                    if s in cause:
                        n += 1
                        lst = watch.get(s)
                        if lst is None:
                            watch[s] = [(d, i)]
                        else:
                            lst.append((d, i))
                counts.append(n)
                if n == 0 and d not in kept:
                    kept.add(d)
                    ready.append(d)
            doubts[d] = counts
        while ready:
            s = ready.pop()
            for d, i in watch.get(s, ()):
                if d in kept:
                    continue
                counts = doubts[d]
                counts[i] -= 1
                if counts[i] == 0:
                    kept.add(d)
                    ready.append(d)
        if len(kept) == len(cause):
            return
        doomed = [d for d in cause if d not in kept]
        gone = set(doomed)
        retire = self._merger.retire
        for d in doomed:
            retire(d, (E_RETRACTED, cycle, d, cause[d]))
        for u in doomed:
            for d in dependent_ids(dependents.pop(u, None)):
                if d in gone or d == protect or d in dead or not is_live(d):
                    continue
                entry = derivations.get(d)
                if entry is None:
                    continue
                derivs = records(entry)
                keep = [r for r in derivs if u not in r[2]]
                if len(keep) != len(derivs):
                    derivations[d] = derivation_entry(keep)


class _Proofs:
    """A bounded search for proofs of facts (one re-derivation's): a fact *holds* when
    it is an input fact, the fact that replaced the removed one, not live (a replaced or
    closed fact a derivation still names, as the counting keeps them), has no recorded
    derivations (nothing can retract it), or has a derivation recorded in cycle ``c``
    whose supports all hold by derivations of cycles before ``c``. The cycles strictly
    decrease down a proof, so it has no cycle of support: what holds is well-founded.
    Sufficient, not necessary: a fact re-grounded by a later derivation, or any fact once
    the search has spent ``budget`` derivations, does not hold here (it stays a suspect,
    decided by the fixpoint)."""

    __slots__ = ("_budget", "_cuts", "_derivations", "_is_input", "_is_live", "_protect",
                 "_proven", "_refuted")

    def __init__(self, store: FactStore, protect: int | None, budget: int) -> None:
        self._derivations = store.derivations
        self._is_input = store.is_input
        self._is_live = store.is_live
        self._protect = protect
        self._budget = budget
        #: fact → the cycle of the top derivation of a proof found for it
        self._proven: dict[int, int] = {}
        #: fact → a bound below which it has no proof (a search the budget did not cut)
        self._refuted: dict[int, int] = {}
        self._cuts = 0  # searches cut by the budget or the depth so far

    def holds(self, fid: int) -> bool:
        """Whether a proof of ``fid`` was found (within the budget)."""
        return self._below(fid, _ANY_CYCLE, 0)

    def _below(self, fid: int, bound: int, depth: int) -> bool:
        """Whether ``fid`` has a proof whose top derivation is of a cycle before
        ``bound``."""
        if fid == self._protect or self._is_input(fid) or not self._is_live(fid):
            return True
        found = self._proven.get(fid)
        if found is not None and found < bound:
            return True
        entry = self._derivations.get(fid)
        if entry is None:
            return True
        if self._refuted.get(fid, -1) >= bound:
            return False
        if depth > _MAX_DEPTH or self._budget < 0:
            self._cuts += 1
            return False
        cuts = self._cuts
        for _, at, support in records(entry):
            if at >= bound:
                continue
            self._budget -= 1
            if all(self._below(s, at, depth + 1) for s in support):
                if found is None or at < found:
                    self._proven[fid] = at
                return True
        if self._cuts == cuts:  # a complete search: no proof below ``bound``
            self._refuted[fid] = max(bound, self._refuted.get(fid, -1))
        return False


_ANY_CYCLE = 1 << 62
_MAX_DEPTH = 200  # a proof searched deeper is left to the fixpoint (and the stack alone)
