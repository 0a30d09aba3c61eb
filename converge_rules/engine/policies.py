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
  from the first contender in merge order. An integer sum outside the 64-bit range is
  unresolved (the job stops with status ``conflict``, saying so).
* ``reject``: every conflict fails the job.

A value that a criterion cannot rank (``None`` field, a fact nobody evaluated for
``score``) ranks below every value it can. A plugin criterion (``resolve by using
NAME``) is the :class:`~converge_rules.program.Resolver` the compiler bound into the
criterion from the ruleset's registries; this module keeps no table of them. The
criteria that take no argument are resolvers too (:data:`BUILTIN_RESOLVERS`): the
built-in plugin registers these very functions, so ``using majority`` and
``majority`` are one definition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from converge_rules.engine.deadline_guard import WATCHDOG
from converge_rules.errors import without_addresses
from converge_rules.language.builtins import INT_RANGE, int_in_range, shown_int
from converge_rules.program import Contender, CriterionSpec, PolicySpec, Resolver, TypeSpec
from converge_rules.records import record

__all__ = ["BUILTIN_RESOLVERS", "Contender", "Resolution", "Resolver", "criterion_text",
           "resolve"]


@record
class Resolution:
    """The outcome: ``winner`` is an index into the contenders, or ``None`` for an
    unresolved conflict (the job stops); ``values`` the winning (or combined) values;
    ``reason`` says which criterion decided, for the trace and the result."""

    winner: int | None
    values: tuple[Any, ...] | None
    reason: str


def criterion_text(c: CriterionSpec, type_spec: TypeSpec) -> str:
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


def decided_by(c: CriterionSpec, type_spec: TypeSpec) -> str:
    """The reason :func:`resolve` gives for a conflict that criterion ``c`` decided."""
    return "resolve by " + criterion_text(c, type_spec)


def _best(metric: list[Any], highest: bool) -> list[int]:
    """Indexes with the best metric; ``None`` ranks last."""
    ranked = [m for m in metric if m is not None]
    if not ranked:
        return list(range(len(metric)))
    target = max(ranked) if highest else min(ranked)
    return [i for i, m in enumerate(metric) if m is not None and m == target]


def _by(metric: Callable[[Contender], Any], highest: bool) -> Resolver:
    def criterion(type_spec: TypeSpec, contenders: Sequence[Contender]) -> list[int]:
        return _best([metric(c) for c in contenders], highest)

    return criterion


def _agent_count(c: Contender) -> int:
    return len(c.agents)


BUILTIN_RESOLVERS: Mapping[str, tuple[Resolver, str]] = MappingProxyType({
    # after the cycle, input order: of two input facts for one key the later one is
    # the latest (derived contenders all have order 0: one cycle's are a tie)
    "latest": (_by(lambda c: (c.cycle, c.order), True),
               "the contender merged in the latest cycle (inputs: the later input)"),
    "earliest": (_by(lambda c: (c.cycle, c.order), False),
                 "the contender merged in the earliest cycle (inputs: the earlier input)"),
    "majority": (_by(_agent_count, True), "the value proposed by the most agents"),
    "highest_confidence": (_by(lambda c: c.confidence, True), "the highest confidence"),
    "lowest_confidence": (_by(lambda c: c.confidence, False), "the lowest confidence"),
    "highest_score": (_by(lambda c: c.score, True), "the highest mean evaluation score"),
    "lowest_score": (_by(lambda c: c.score, False), "the lowest mean evaluation score"),
})
"""The criteria that take no argument, as resolvers (name → function, description).
Read-only: the policy code below and the built-in plugin share these functions."""

_BY_KIND: Mapping[str, Resolver] = MappingProxyType({
    kind: BUILTIN_RESOLVERS[kind][0] for kind in ("latest", "earliest", "majority")
})


def _apply(
    c: CriterionSpec, type_spec: TypeSpec, pool: list[Contender]
) -> list[int]:
    highest = c.direction != "lowest"
    if c.kind == "field":
        assert c.position is not None
        pos = c.position
        return _best([p.values[pos] for p in pool], highest)
    if c.kind in ("confidence", "score"):
        return list(BUILTIN_RESOLVERS[f"{c.direction or 'highest'}_{c.kind}"][0](type_spec, pool))
    if c.kind in _BY_KIND:
        return list(_BY_KIND[c.kind](type_spec, pool))
    if c.kind == "priority":
        rank = {name: i for i, name in enumerate(c.agents)}
        unlisted = len(c.agents)
        return _best(
            [min((rank.get(a, unlisted) for a in p.agents), default=unlisted + 1)
             for p in pool],
            False,
        )
    if c.kind == "using":
        return _using(c, type_spec, pool)
    raise AssertionError(f"unknown criterion {c.kind!r}")


def _using(c: CriterionSpec, type_spec: TypeSpec, pool: list[Contender]) -> list[int]:
    resolver = c.resolver_fn
    if resolver is None:
        # compile_ruleset binds every `using NAME`; only a hand-built program lacks one.
        raise LookupError(f"no resolver bound for `using {c.resolver}`; compile the "
                          f"ruleset with the plugin that provides it")
    watchdog = WATCHDOG.get()
    try:
        if watchdog is None:
            answer = list(resolver(type_spec, tuple(pool)))
        else:  # a job with a job_timeout: a resolver that never returns is cut there
            with watchdog.guarded(f"resolver {c.resolver!r} decided a conflict of "
                                  f"{type_spec.name}"):
                answer = list(resolver(type_spec, tuple(pool)))
    except MemoryError:
        raise  # the job's memory budget, not the resolver's answer: the job stops
    except (Exception, SystemExit) as exc:  # a plugin's bug is named, never a crash of the run
        # the reason goes into the trace: an object's repr must not make it differ
        raise LookupError(without_addresses(
            f"resolver {c.resolver!r} raised {type(exc).__name__}: {exc}"
        )) from exc
    # An index is an int: True, 0.0 or "1" are a resolver's bug, not a choice.
    wrong = next((i for i in answer if isinstance(i, bool) or not isinstance(i, int)), None)
    if wrong is not None:
        raise LookupError(without_addresses(
            f"resolver {c.resolver!r} returned {wrong!r} ({type(wrong).__name__}) among "
            f"its choices; a resolver returns int indexes into the {len(pool)} contenders"
        ))
    chosen = sorted(set(answer))
    if not chosen or chosen[0] < 0 or chosen[-1] >= len(pool):
        raise LookupError(
            f"resolver {c.resolver!r} returned {chosen!r}, "
            f"expected indexes into {len(pool)} contenders"
        )
    return chosen


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
                w, contenders[w].values, decided_by(criterion, type_spec)
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
    if type(value) is int and not int_in_range(value):
        return Resolution(None, None, f"combine {func} {type_spec.fields[pos].name}: "
                          f"integer overflow: {shown_int(value)} is outside {INT_RANGE}")
    base = list(contenders[0].values)
    base[pos] = value
    combined = tuple(base)
    winner = next((i for i, c in enumerate(contenders) if c.values == combined), None)
    name = type_spec.fields[pos].name
    return Resolution(
        winner if winner is not None else -1, combined, f"combine {func} {name}"
    )
