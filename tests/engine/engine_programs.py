"""Hand-written programs for engine tests: a builder for ``Program`` values whose agent
functions are plain Python following the compiler's contract."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from converge_rules.language.syntax.span import Span
from converge_rules.program import (
    MISSING,
    AgentFn,
    AgentSpec,
    Budgets,
    CriterionSpec,
    FieldSpec,
    IndexSpec,
    PolicySpec,
    Program,
    PruneSpec,
    RequireSpec,
    TypeSpec,
    ValueType,
)

SPAN = Span("<test>", 1, 1, 1, 1)


def f(
    name: str,
    base: str = "str",
    *,
    key: bool = False,
    default: Any = MISSING,
    optional: bool = False,
    members: tuple[str, ...] = (),
    element: str | None = None,
) -> FieldSpec:
    """A field: ``f("sku", key=True)``, ``f("amount", "float")``."""
    return FieldSpec(
        name,
        ValueType(
            base,  # type: ignore[arg-type]
            optional=optional,
            enum="E" if base == "enum" else None,
            members=members,
            element=ValueType(element) if element else None,  # type: ignore[arg-type]
        ),
        key,
        default,
    )


class Builder:
    def __init__(self, name: str = "test") -> None:
        self.name = name
        self.types: list[TypeSpec] = []
        self.indexes: list[IndexSpec] = []
        self.agents: list[AgentSpec] = []
        self.policies: dict[int, PolicySpec] = {}
        self.prunes: list[PruneSpec] = []
        self.requires: list[RequireSpec] = []
        self.budgets = Budgets()

    def fact(self, name: str, *fields: FieldSpec, intent: bool = False, keyed: bool = True) -> int:
        tid = len(self.types)
        keys = tuple(i for i, x in enumerate(fields) if x.key) if keyed else ()
        self.types.append(TypeSpec(tid, name, tuple(fields), keys, intent, SPAN))
        return tid

    def intent(self, name: str, *fields: FieldSpec) -> int:
        return self.fact(name, *fields, intent=True)

    def index(self, type_id: int, *positions: int) -> int:
        iid = len(self.indexes)
        self.indexes.append(IndexSpec(iid, type_id, positions))
        return iid

    def agent(
        self,
        name: str,
        fn: AgentFn,
        *,
        tier: int = 1,
        reads: Sequence[int] = (),
        negates: Sequence[int] = (),
        emits: Sequence[int] = (),
        tools: Sequence[str] = (),
    ) -> str:
        self.agents.append(AgentSpec(
            name, tier, len(self.agents), fn, "", tuple(reads), tuple(negates), tuple(emits),
            tuple(tools), SPAN,
        ))
        return name

    def policy(self, type_id: int, *criteria: CriterionSpec, mode: str = "resolve",
               on_tie: str = "reject", combine: str | None = None,
               position: int | None = None) -> None:
        self.policies[type_id] = PolicySpec(
            type_id, mode, tuple(criteria), on_tie, combine, position  # type: ignore[arg-type]
        )

    def prune(self, type_id: int, fn: Callable[[tuple[Any, ...], int], bool]) -> None:
        self.prunes.append(PruneSpec(type_id, fn, "", "prune", SPAN))

    def require(self, text: str, fn: Callable[[Any], bool]) -> None:
        self.requires.append(RequireSpec(text, fn, "", SPAN))

    def build(self, **budgets: Any) -> Program:
        agents = sorted(self.agents, key=lambda a: (a.tier, a.order))
        return Program(
            name=self.name,
            goal=None,
            types=tuple(self.types),
            indexes=tuple(self.indexes),
            agents=tuple(agents),
            policies=dict(self.policies),
            prunes=tuple(self.prunes),
            requires=tuple(self.requires),
            budgets=Budgets(**budgets),
            tools=(),
            type_ids={t.name: t.id for t in self.types},
        )


def crit(kind: str, direction: str | None = None, position: int | None = None,
         agents: tuple[str, ...] = (), resolver: str | None = None,
         resolver_fn: Any = None) -> CriterionSpec:
    return CriterionSpec(kind, direction, position, agents,  # type: ignore[arg-type]
                         resolver, resolver_fn)


def each(type_id: int, make: Callable[[tuple[Any, ...]], list[tuple[Any, ...]]]) -> AgentFn:
    """A one-pattern agent: for every new fact of ``type_id``, ``make(values)`` returns
    outputs as ``(kind, type, values[, confidence])``; support is the matched fact."""
    from converge_rules.program import EVALUATE

    def fn(view: Any, since: int, runtime: Any) -> list[Any]:
        out: list[Any] = []
        for fid in view.new(type_id, since):
            for o in make(view.values[fid]):
                if o[0] == EVALUATE:  # (EVALUATE, score, reason): evaluate the match
                    out.append((EVALUATE, fid, o[1], o[2], (fid,)))
                else:
                    out.append((o[0], o[1], o[2], o[3] if len(o) > 3 else 1.0, (fid,)))
        return out

    return fn


def const(outputs: list[tuple[Any, ...]]) -> AgentFn:
    """An agent with no patterns: returns fixed outputs (no support) on its one run."""

    def fn(view: Any, since: int, runtime: Any) -> list[Any]:
        return [(o[0], o[1], o[2], o[3] if len(o) > 3 else 1.0, ()) for o in outputs]

    return fn
