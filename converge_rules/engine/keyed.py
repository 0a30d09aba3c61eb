"""Keyed types: all of a cycle's candidates for one key, and the incumbent, merged
together.

Equal values are one proposal (its agents and derivations gathered); one distinct
value is merged like any fact; two or more are a conflict, resolved by the type's
policy (:mod:`~converge_rules.engine.policies`). The winner replaces the incumbent
(:func:`~converge_rules.engine.retraction.replace`), every resolved conflict is recorded
for the result and the trace, and an unresolved one stops the job. A combined value
is derived from every candidate, even when it equals one of them. A candidate whose
support was retracted earlier in the merge is skipped, and reported once, here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from converge_rules.engine.effects import D_ADD
from converge_rules.engine.policies import Contender, resolve
from converge_rules.engine.retraction import replace
from converge_rules.engine.trace import (
    E_CONFLICT,
    E_FACT_ADDED,
    E_FACT_SUPPORTED,
    E_OUTPUT_SKIPPED,
    jsonable,
)

if TYPE_CHECKING:
    from converge_rules.engine.merge import Merger

STALE = "its support was retracted earlier in this merge"


def merge_key(
    merger: Merger, cycle: int, t: int, key: Any, members: list[tuple[int, tuple[Any, ...]]]
) -> bool:
    """Merge every candidate for one key. False when the job must stop."""
    store = merger.store
    ev = merger.events.append
    dead = merger.dead
    # distinct values in merge order → [confidence, agents, (agent, support)…]
    proposals: dict[tuple[Any, ...], list[Any]] = {}
    for a, out in members:
        support = out[4]
        if dead and any(s in dead for s in support):
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
        support_fact(merger, cycle, inc, proposals[inc_vals])
        merger.held[(t, key)] = (inc, members)
        return True
    if inc is None and len(proposals) == 1:
        vals, entry = next(iter(proposals.items()))
        fid = add_keyed(merger, cycle, t, vals, entry, None)
        if fid is None:
            return False
        merger.held[(t, key)] = (fid, members)
        return True
    # a real conflict
    agents = merger.program.agents
    contenders: list[Contender] = []
    if inc is not None:
        assert inc_vals is not None
        names = [agents[d[0]].name for d in store.derivations.get(inc, ())]
        same = proposals.get(inc_vals)
        if same is not None:
            names.extend(agents[x].name for x in same[1])
        contenders.append(Contender(
            inc_vals, store.confidence.get(inc, 1.0), mean_score(merger, inc),
            store.cycle_of(inc), tuple(dict.fromkeys(names)), True,
        ))
    for vals, entry in proposals.items():
        if vals == inc_vals:
            continue
        contenders.append(Contender(
            vals, entry[0], None, cycle, tuple(agents[x].name for x in entry[1]), False,
        ))
    policy = merger.program.policies.get(t)
    res = resolve(policy, merger.program.types[t], contenders)
    record_conflict(merger, cycle, t, key, contenders, res.values, res.reason)
    if res.values is None:
        merger.stop = ("conflict", f"{merger._tname(t)} {key_text(merger, t, key)}: {res.reason}")
        return False
    win = res.values
    chosen: list[Any] | None
    if policy is not None and policy.mode == "combine":
        # a combined value rests on every candidate, whichever value it happens to
        # equal: each one is a derivation
        conf = max(e[0] for e in proposals.values())
        chosen = [conf, [], [d for e in proposals.values() for d in e[2]]]
    else:
        chosen = proposals.get(win)
    if inc is not None and win == inc_vals:
        if chosen is not None:
            support_fact(merger, cycle, inc, chosen)
        merger.held[(t, key)] = (inc, members)
        return True
    # resolve picks a contender: the incumbent (above) or a proposal
    assert chosen is not None
    fid = add_keyed(merger, cycle, t, win, chosen, inc)
    if fid is None:
        return False
    merger.held[(t, key)] = (fid, members)
    if inc is not None:
        replace(merger, cycle, inc, fid)
    return True

def add_keyed(
    merger: Merger, cycle: int, t: int, vals: tuple[Any, ...], entry: list[Any], inc: int | None
) -> int | None:
    store = merger.store
    if inc is None and store.live_count >= merger.max_facts:
        merger._budget("max_facts", f"merging a {merger._tname(t)} would exceed "
                     f"max_facts ({merger.max_facts})")
        return None
    fid = store.add(t, vals, cycle)
    conf = entry[0]
    if conf != 1.0:
        store.confidence[fid] = conf
    derivs = entry[2]
    first_agent, first_support = derivs[0]
    store.derive(fid, first_agent, cycle, first_support)
    merger.events.append((E_FACT_ADDED, fid, first_agent, cycle, first_support, conf))
    for a, support in derivs[1:]:
        store.derive(fid, a, cycle, support)
        merger.events.append((E_FACT_SUPPORTED, fid, a, cycle, support))
    merger.note((D_ADD, fid, t, vals, cycle))
    merger.added += 1
    return fid

def support_fact(merger: Merger, cycle: int, fid: int, entry: list[Any]) -> None:
    store = merger.store
    for a, support in entry[2]:
        store.derive(fid, a, cycle, support)
        merger.events.append((E_FACT_SUPPORTED, fid, a, cycle, support))
    if entry[0] > store.confidence.get(fid, 1.0):
        store.confidence[fid] = entry[0]

def mean_score(merger: Merger, fid: int) -> float | None:
    evals = merger.store.evaluations.get(fid)
    if not evals:
        return None
    return sum(e[1] for e in evals) / len(evals)

def key_text(merger: Merger, t: int, key: Any) -> str:
    spec = merger.program.types[t]
    parts = key if len(spec.key_positions) > 1 else (key,)
    return "(" + ", ".join(
        f"{spec.fields[p].name}: {v!r}" for p, v in zip(spec.key_positions, parts, strict=True)
    ) + ")"

def record_conflict(
    merger: Merger, cycle: int, t: int, key: Any, contenders: Sequence[Contender],
    winner: tuple[Any, ...] | None, reason: str,
) -> None:
    spec = merger.program.types[t]
    names = spec.field_names
    parts = key if len(spec.key_positions) > 1 else (key,)
    key_fields = {
        names[p]: jsonable(v) for p, v in zip(spec.key_positions, parts, strict=True)
    }

    def fields(vals: tuple[Any, ...]) -> dict[str, Any]:
        return {n: jsonable(v) for n, v in zip(names, vals, strict=True)}

    win = fields(winner) if winner is not None else None
    losers = [fields(c.values) for c in contenders if c.values != winner]
    merger.conflicts.append({
        "cycle": cycle, "type": spec.name, "key": key_fields, "winner": win,
        "losers": losers, "reason": reason,
    })
    merger.events.append((E_CONFLICT, cycle, t, key_fields, win, losers, reason))
