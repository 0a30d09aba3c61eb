"""Invariants checked while a job runs (``invariant`` items; see docs/language.md).

``never`` invariants are checked against every effect before the cycle's merge: the
effect's new facts (outputs not already live) of a type a positive pattern reads are
joined with the context as the cycle started (what its agent saw); an effect that
would make a forbidden match is discarded whole, as a failed agent's is
(``effect_discarded``, and it takes no part in the cycle's conflicts), after an
``invariant_broken`` event naming the invariant, the agent and the facts. After every
cycle that changed a type an invariant reads, the context is checked: an ``always``
condition that is false, or a ``never`` match that got in another way (two new facts
of the cycle in one match, a fact removed that a ``not`` pattern blocked on), ends the
job with status ``invariant_violated``, naming the facts and the agents that derived
them. Only the invariants whose types changed are evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from converge_rules.engine.deadline_guard import WATCHDOG
from converge_rules.engine.trace import (
    E_FACT_ADDED,
    E_INVARIANT,
    Event,
    jsonable,
)
from converge_rules.errors import without_addresses
from converge_rules.program import EVALUATE, InvariantSpec

if TYPE_CHECKING:
    from converge_rules.engine.effects import AgentEffect
    from converge_rules.engine.factstore import FactStore
    from converge_rules.engine.trace import Trace
    from converge_rules.program import Program

MAX_LISTED = 100
"""The facts an ``always`` violation lists at most (those its types gained last)."""

INVARIANT_REASON_PREFIXES: tuple[str] = ("invariant ",)
"""How the reason of an effect a ``never`` invariant discarded begins (as a tuple, for
``str.startswith``): ``converge run`` warns about those apart from failed agents."""


class _Values:
    """The arena as an invariant checking an effect sees it: the store's values, then
    the effect's new facts from ``base`` on."""

    __slots__ = ("base", "extra", "store")

    def __init__(self, store: Sequence[tuple[Any, ...]], base: int,
                 extra: list[tuple[Any, ...]]) -> None:
        self.store = store
        self.base = base
        self.extra = extra

    def __getitem__(self, fid: int) -> tuple[Any, ...]:
        return self.extra[fid - self.base] if fid >= self.base else self.store[fid]


class _WithEffect:
    """A view of the context plus an effect's new facts (ids from ``base`` on), which
    only :meth:`new` hands out: a ``never`` invariant's generated passes then find
    exactly the matches that use at least one of them."""

    __slots__ = ("_new", "fired", "indexes", "live", "now", "store", "values")

    def __init__(self, store: FactStore, base: int, extra: list[tuple[Any, ...]],
                 new: dict[int, list[int]]) -> None:
        self.store = store
        self.values = _Values(store.values, base, extra)
        self.live = store.live
        self.indexes = store.indexes
        self.now = store.now
        self.fired = store.fired
        self._new = new

    def new(self, type_id: int, since: int) -> list[int]:
        return self._new.get(type_id, [])

    def cycle_of(self, fact_id: int) -> int:
        return self.store.cycle_of(fact_id)

    def same_fact(self, type_id: int, vals: tuple[Any, ...]) -> int | None:
        return self.store.same_fact(type_id, vals)


def _evaluate(inv: InvariantSpec, view: Any, since: int | None = None) -> tuple[Any, str | None]:
    """``inv``'s answer on ``view`` (an ``always`` one's truth, a ``never`` one's
    matches from ``since`` on) and None, or (None, the error) when it fails (a
    division by zero in its guard, say): an invariant that cannot be evaluated is
    taken as broken, as a ``require`` that cannot be is unmet. In a job with a
    ``job_timeout`` the evaluation is cut at the job's deadline (:class:`~converge_rules.
    engine.deadline_guard.JobDeadline`: a plugin function that never returns)."""
    watchdog = WATCHDOG.get()
    try:
        if watchdog is None:
            return (inv.fn(view) if inv.always else inv.fn(view, since, None)), None
        with watchdog.guarded(f"invariant {inv.name} was checked"):
            return (inv.fn(view) if inv.always else inv.fn(view, since, None)), None
    except MemoryError:
        raise
    except Exception as exc:
        return None, without_addresses(f"{type(exc).__name__}: {exc}")


class InvariantGuard:
    """The invariants of one job. The merger has :meth:`screen` the effects of each
    cycle; the runner asks :meth:`after_cycle` after each cycle's merge and prune."""

    def __init__(self, program: Program, store: FactStore, events: list[Event]) -> None:
        self.program = program
        self.store = store
        self.events = events
        self.never = [inv for inv in program.invariants if not inv.always]
        #: the types a ``never`` invariant reads in a positive pattern
        self.triggers = frozenset(t for inv in self.never for t in inv.triggers)
        #: per agent, whether it emits (or intends) one of them: only its effects are
        #: looked at
        self.checks_agent = [bool(self.triggers.intersection(a.emits))
                             for a in program.agents]
        #: what the result reports: one entry per violation, in trace order
        self.violations: list[dict[str, Any]] = []
        n = len(program.invariants)
        #: per invariant, whether two new facts may meet in one of its matches (agents
        #: emit the types of two of its positive patterns): each effect is checked
        #: with its own new facts joined to the context as the cycle started, so such
        #: matches (within one effect, or across two) are looked for after the cycle;
        #: otherwise the cycle's new facts were all checked already
        emitted = {t for a in program.agents for t in a.emits}
        self.within = [inv.always or sum(t in emitted for t in inv.pattern_types) >= 2
                       for inv in program.invariants]
        #: per ``always`` invariant, its types' state when it was last checked (None:
        #: never); per ``never`` one, its types' removals then
        self._state: list[tuple[Any, ...] | None] = [None] * n
        #: per ``never`` invariant, the first fact id it has not been checked with
        self._checked = [0] * n

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the guard between cycles (JSON-able but for
        the tuples, which it writes as lists): see :meth:`restore`."""
        return {"state": self._state, "checked": self._checked,
                "violations": self.violations}

    def restore(self, doc: dict[str, Any]) -> None:
        """The guard as :meth:`state` described it, its lists given back as the
        tuples they were."""
        self._state = list(doc["state"])
        self._checked = [int(c) for c in doc["checked"]]
        self.violations = list(doc["violations"])

    # ------------------------------------------------------------ per effect

    def screen(self, cycle: int, effects: Sequence[AgentEffect]) -> Sequence[AgentEffect]:
        """The cycle's effects, each that would break a ``never`` invariant replaced by
        a failed one (no outputs, ``error`` naming the invariant) after an
        ``invariant_broken`` event. Each is checked against the context as the cycle
        started, what its agent saw, plus its own new facts."""
        screened: list[AgentEffect] | None = None
        for i, eff in enumerate(effects):
            if eff.error is not None or not eff.outputs:
                continue
            reason = self.breaks(cycle, eff.position, eff.outputs)
            if reason is None:
                continue
            if screened is None:
                screened = list(effects)
            screened[i] = replace(eff, outputs=(), error=reason)
        return effects if screened is None else screened

    def breaks(self, cycle: int, agent: int,
               outputs: Sequence[tuple[Any, ...]]) -> str | None:
        """Why merging these outputs of ``agent`` would make a match a ``never``
        invariant forbids (the event is written), or None."""
        if not self.checks_agent[agent]:
            return None
        triggers = self.triggers
        store = self.store
        fresh: dict[tuple[int, tuple[Any, ...]], None] = {}
        for out in outputs:
            if out[0] == EVALUATE or out[1] not in triggers:
                continue
            if store.same_fact(out[1], out[2]) is None:
                fresh[(out[1], out[2])] = None
        if not fresh:
            return None
        base = store.next_id
        extra: list[tuple[Any, ...]] = []
        new: dict[int, list[int]] = {}
        kinds: list[int] = []
        for t, vals in fresh:
            new.setdefault(t, []).append(base + len(extra))
            extra.append(vals)
            kinds.append(t)
        view = _WithEffect(store, base, extra, new)
        for inv in self.never:
            if not any(t in new for t in inv.triggers):
                continue
            matches, error = _evaluate(inv, view, base)
            if error is not None:
                # what cannot be shown to keep the invariant is not merged
                self._record(cycle, agent, inv, [], discarded=True)
                return (f"{INVARIANT_REASON_PREFIXES[0]}{inv.name} could not be checked "
                        f"({error}): {inv.text}")
            if not matches:
                continue
            facts = [(kinds[f - base], extra[f - base]) if f >= base
                     else (store.type_of[f], store.values[f]) for f in matches[0]]
            self._record(cycle, agent, inv, facts, discarded=True)
            return f"{INVARIANT_REASON_PREFIXES[0]}{inv.name} would be broken: {inv.text}"
        return None

    # ------------------------------------------------------------- per cycle

    def after_cycle(self, cycle: int, trace: Trace) -> str | None:
        """Check the invariants whose types changed since they were last checked,
        against the whole context. The first that does not hold is recorded and its
        description returned (the job ends); None when all hold."""
        store = self.store
        top = store.next_id
        for i, inv in enumerate(self.program.invariants):
            view = store.as_view()
            if inv.always:
                state: tuple[Any, ...] = tuple(
                    (store.max_live_id(t), store.removals[t]) for t in inv.types)
                if state == self._state[i]:
                    continue
                self._state[i] = state
                held, error = _evaluate(inv, view)
                if held and error is None:
                    continue
                ids = self._latest_ids(inv.types)
            else:
                # new facts can only make matches with a new fact in them; a removal of
                # a type it negates or aggregates over can make any: from scratch then
                state = tuple(store.removals[t] for t in inv.types)
                since = (0 if state != self._state[i] else self._checked[i]
                         if self.within[i] else top)
                self._state[i] = state
                self._checked[i] = top
                if since >= top:
                    continue
                matches, error = _evaluate(inv, view, since)
                if not matches and error is None:
                    continue
                ids = list(matches[0]) if matches else []
            facts = [(store.type_of[f], store.values[f]) for f in ids]
            agents = self._agents_of(ids, trace)
            self._record(cycle, -1, inv, facts, discarded=False, agents=agents)
            if error is not None:
                return (f"invariant {inv.name} could not be checked after cycle {cycle} "
                        f"({error}): {inv.text}")
            return f"invariant {inv.name} broken after cycle {cycle}: {inv.text}"
        return None

    def _latest_ids(self, types: tuple[int, ...]) -> list[int]:
        """The live facts of ``types`` merged last (at most :data:`MAX_LISTED`)."""
        store = self.store
        ids = sorted((f for t in types for f in store.live[t]), reverse=True)[:MAX_LISTED]
        return sorted(ids)

    def _agents_of(self, ids: list[int], trace: Trace) -> list[str]:
        """The agents that derived the facts ``ids`` (first derivations; inputs: none)."""
        wanted = set(ids)
        found: dict[int, None] = {}
        for ev in trace.fact_events():
            if ev[0] == E_FACT_ADDED and ev[1] in wanted and ev[2] >= 0:
                found[ev[2]] = None
        return sorted({self.program.agents[a].name for a in found})

    def _record(self, cycle: int, agent: int, inv: InvariantSpec,
                facts: list[tuple[int, tuple[Any, ...]]], *, discarded: bool,
                agents: list[str] | None = None) -> None:
        types = self.program.types
        described = [
            {"type": types[t].name,
             "fields": {n: jsonable(v) for n, v in zip(types[t].field_names, vals,
                                                        strict=True)}}
            for t, vals in facts
        ]
        involved = ([self.program.agents[agent].name] if agent >= 0 else agents or [])
        self.events.append((E_INVARIANT, cycle, inv.name, inv.text, agent,
                            tuple(facts), tuple(involved), discarded))
        self.violations.append({
            "invariant": inv.name, "rule": inv.text, "cycle": cycle,
            "agents": involved, "facts": described,
            "outcome": "effect_discarded" if discarded else "job_ended",
        })
