"""Conflict policies: choosing among the facts proposed for one key.

A conflict is two or more distinct values for one key of a keyed type: this cycle's
candidates plus the incumbent (the live fact holding the key). They are resolved
together by the type's :class:`~converge_rules.program.PolicySpec`:

* ``resolve``: the criteria narrow the contenders in order; a single survivor wins.
  Survivors of every criterion are a tie, settled by ``on_tie``: ``first`` (earliest
  in merge order, the incumbent first), ``latest`` (last in merge order) or
  ``reject`` (the job stops with status ``conflict``).
* ``combine``: the contenders merge into one fact whose ``combine_position`` field is
  the sum/min/max/mean of theirs (``None`` values are left out); the other fields come
  from the first contender in merge order.
* ``reject``: every conflict fails the job.

A value that a criterion cannot rank (``None`` field, a fact nobody evaluated for
``score``) ranks below every value it can. Plugins add criteria through
:data:`RESOLVERS` (``resolve by using NAME``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from converge_rules.program import CriterionSpec, PolicySpec, TypeSpec


@dataclass(frozen=True, slots=True)
class Contender:
    """One distinct value in a conflict.

    ``agents`` are the distinct agents proposing it, in merge order (empty for an
    input fact); ``score`` the mean evaluation score, ``None`` when unevaluated;
    ``cycle`` when it was (or would be) merged; ``incumbent`` whether it is the live
    fact; contenders are listed in merge order, the incumbent first."""

    values: tuple[Any, ...]
    confidence: float
    score: float | None
    cycle: int
    agents: tuple[str, ...]
    incumbent: bool


class Resolver(Protocol):
    """A plugin criterion for ``resolve by using NAME``.

    Called with the conflicting type and the contenders (in merge order, never
    fewer than two); returns the indexes of the contenders it prefers — a non-empty
    subset. One index decides the conflict; several pass the survivors to the next
    criterion (or ``on_tie``). It must be a pure, deterministic function. One that
    raises, or returns anything else, leaves the conflict unresolved: the job stops
    with status ``conflict``, the reason naming the resolver and its error."""

    def __call__(self, type_spec: TypeSpec, contenders: Sequence[Contender]) -> Sequence[int]: ...


#: name → resolver, filled by plugins (``converge_register_resolvers``).
RESOLVERS: dict[str, Resolver] = {}


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome: ``winner`` is an index into the contenders, or ``None`` for an
    unresolved conflict (the job stops); ``values`` the winning (or combined) values;
    ``reason`` says which criterion decided, for the trace and the result."""

    winner: int | None
    values: tuple[Any, ...] | None
    reason: str


def _criterion_text(c: CriterionSpec, type_spec: TypeSpec) -> str:
    if c.kind == "field":
        assert c.position is not None
        return f"{c.direction} {type_spec.fields[c.position].name}"
    if c.kind in ("confidence", "score"):
        return f"{c.direction} {c.kind}"
    if c.kind == "priority":
        return "priority [" + ", ".join(c.agents) + "]"
    if c.kind == "using":
        return f"using {c.resolver}"
    return c.kind


def _best(metric: list[Any], highest: bool) -> list[int]:
    """Indexes with the best metric; ``None`` ranks last."""
    ranked = [m for m in metric if m is not None]
    if not ranked:
        return list(range(len(metric)))
    target = max(ranked) if highest else min(ranked)
    return [i for i, m in enumerate(metric) if m is not None and m == target]


def _apply(
    c: CriterionSpec, type_spec: TypeSpec, pool: list[Contender]
) -> list[int]:
    highest = c.direction != "lowest"
    if c.kind == "field":
        assert c.position is not None
        pos = c.position
        return _best([p.values[pos] for p in pool], highest)
    if c.kind == "confidence":
        return _best([p.confidence for p in pool], highest)
    if c.kind == "score":
        return _best([p.score for p in pool], highest)
    if c.kind == "latest":
        return _best([p.cycle for p in pool], True)
    if c.kind == "earliest":
        return _best([p.cycle for p in pool], False)
    if c.kind == "priority":
        rank = {name: i for i, name in enumerate(c.agents)}
        unlisted = len(c.agents)
        return _best(
            [min((rank.get(a, unlisted) for a in p.agents), default=unlisted + 1)
             for p in pool],
            False,
        )
    if c.kind == "majority":
        return _best([len(p.agents) for p in pool], True)
    if c.kind == "using":
        resolver = RESOLVERS.get(c.resolver or "")
        if resolver is None:
            known = ", ".join(sorted(RESOLVERS)) or "none registered"
            raise LookupError(f"no resolver named {c.resolver!r} ({known})")
        try:
            chosen = sorted({int(i) for i in resolver(type_spec, tuple(pool))})
        except Exception as exc:  # a plugin's bug is named, never a crash of the run
            raise LookupError(
                f"resolver {c.resolver!r} raised {type(exc).__name__}: {exc}"
            ) from exc
        if not chosen or chosen[0] < 0 or chosen[-1] >= len(pool):
            raise LookupError(
                f"resolver {c.resolver!r} returned {chosen!r}, "
                f"expected indexes into {len(pool)} contenders"
            )
        return chosen
    raise AssertionError(f"unknown criterion {c.kind!r}")


def resolve(
    policy: PolicySpec | None, type_spec: TypeSpec, contenders: Sequence[Contender]
) -> Resolution:
    """Resolve one conflict (two or more distinct values). Pure and deterministic."""
    if policy is None:
        return Resolution(
            None, None, f"no policy for keyed type {type_spec.name}; add "
            f"`policy {type_spec.name} {{ resolve by ... }}` or `keep all`",
        )
    if policy.mode == "reject":
        return Resolution(None, None, f"policy {type_spec.name} rejects conflicts")
    if policy.mode == "combine":
        return _combine(policy, type_spec, contenders)
    alive = list(range(len(contenders)))
    for criterion in policy.criteria:
        pool = [contenders[i] for i in alive]
        try:
            kept = _apply(criterion, type_spec, pool)
        except LookupError as exc:
            return Resolution(None, None, str(exc))
        alive = [alive[i] for i in kept]
        if len(alive) == 1:
            w = alive[0]
            return Resolution(
                w, contenders[w].values, "resolve by " + _criterion_text(criterion, type_spec)
            )
    if policy.on_tie == "first":
        w = alive[0]
        return Resolution(w, contenders[w].values, "tie, on tie first")
    if policy.on_tie == "latest":
        w = alive[-1]
        return Resolution(w, contenders[w].values, "tie, on tie latest")
    return Resolution(None, None, "tie, on tie reject")


def _combine(
    policy: PolicySpec, type_spec: TypeSpec, contenders: Sequence[Contender]
) -> Resolution:
    pos = policy.combine_position
    func = policy.combine_func
    assert pos is not None and func is not None
    nums = [c.values[pos] for c in contenders if c.values[pos] is not None]
    value: Any
    if not nums:
        value = None
    elif func == "sum":
        value = sum(nums)
    elif func == "min":
        value = min(nums)
    elif func == "max":
        value = max(nums)
    else:
        value = sum(nums) / len(nums)
    base = list(contenders[0].values)
    base[pos] = value
    combined = tuple(base)
    winner = next((i for i, c in enumerate(contenders) if c.values == combined), None)
    name = type_spec.fields[pos].name
    return Resolution(
        winner if winner is not None else -1, combined, f"combine {func} {name}"
    )
