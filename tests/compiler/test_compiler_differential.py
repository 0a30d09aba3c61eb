"""Differential property: random agents (joins, constants, wildcards, repeated and
expression constraints, negation, guards) compiled and run semi-naively over random
batches of facts return exactly the matches a naive interpreter finds in the final
context — same supports, same output values, each exactly once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import product
from typing import Any

from compiler_support import ListView, compile_text, run
from hypothesis import given, settings
from hypothesis import strategies as st

SCHEMA = """\
ruleset diff
fact R { a: int, b: int }
fact S { a: int, b: int, c: int }
fact N { a: int, b: int }
fact Out { x: int, y: int }
"""
FIELDS = {"R": ("a", "b"), "S": ("a", "b", "c"), "N": ("a", "b")}
VARS = ("x", "y", "z", "w")


@dataclass(frozen=True)
class Use:
    """A pattern field: ("var", name) · ("const", n) · ("wild",) · ("plus", name, n)."""

    field: str
    kind: str
    name: str = ""
    n: int = 0

    def text(self) -> str:
        if self.kind == "var":
            return f"{self.field}: {self.name}"
        if self.kind == "const":
            return f"{self.field}: {self.n}"
        if self.kind == "wild":
            return f"{self.field}: _"
        return f"{self.field}: {self.name} + {self.n}"


@dataclass(frozen=True)
class Pat:
    type: str
    uses: tuple[Use, ...]
    negated: bool = False

    def text(self) -> str:
        return ("not " if self.negated else "") + \
            f"{self.type}({', '.join(u.text() for u in self.uses)})"


@dataclass(frozen=True)
class Rule:
    positive: tuple[Pat, ...]
    negated: Pat | None
    guard: tuple[str, str, str] | None      # (left var, op, right var or int text)
    out: tuple[str, str]                     # Out(x: …, y: …): var names or int text

    def text(self) -> str:
        pats = [p.text() for p in self.positive]
        if self.negated is not None:
            pats.append(self.negated.text())
        where = f" where {' '.join(self.guard)}" if self.guard else ""
        return (f"agent r {{ when {' and '.join(pats)}{where}\n"
                f"  emit Out(x: {self.out[0]}, y: {self.out[1]}) }}\n")


@st.composite
def rules(draw: Any) -> Rule:
    bound: list[str] = []
    positive = []
    for _ in range(draw(st.integers(1, 3))):
        t = draw(st.sampled_from(["R", "S"]))
        uses = []
        for f in FIELDS[t]:
            kind = draw(st.sampled_from(["var", "var", "var", "const", "wild", "plus"]))
            if kind == "plus" and not bound:
                kind = "var"
            if kind == "var":
                uses.append(Use(f, "var", name=draw(st.sampled_from(VARS))))
            elif kind == "const":
                uses.append(Use(f, "const", n=draw(st.integers(0, 2))))
            elif kind == "wild":
                uses.append(Use(f, "wild"))
            else:
                uses.append(Use(f, "plus", name=draw(st.sampled_from(bound)),
                                n=draw(st.integers(-1, 1))))
        positive.append(Pat(t, tuple(uses)))
        # a pattern's variables are bound only after the whole pattern
        bound += [u.name for u in uses if u.kind == "var" and u.name not in bound]
    values = [*bound, "0", "1", "2"] if bound else ["0", "1"]
    negated = None
    if draw(st.booleans()):
        neg_uses = []
        for f in FIELDS["N"]:
            kind = draw(st.sampled_from(["var", "local", "const", "wild"]))
            if kind == "var" and bound:
                neg_uses.append(Use(f, "var", name=draw(st.sampled_from(bound))))
            elif kind == "local":
                neg_uses.append(Use(f, "var", name="q"))
            elif kind == "const":
                neg_uses.append(Use(f, "const", n=draw(st.integers(0, 2))))
            else:
                neg_uses.append(Use(f, "wild"))
        negated = Pat("N", tuple(neg_uses), negated=True)
    guard = None
    if bound and draw(st.booleans()):
        guard = (draw(st.sampled_from(bound)), draw(st.sampled_from(["<", "!=", "==", ">="])),
                 draw(st.sampled_from(values)))
    out = (draw(st.sampled_from(values)), draw(st.sampled_from(values)))
    return Rule(tuple(positive), negated, guard, out)


def _match(p: Pat, fact: tuple[int, ...], env: dict[str, int]) -> dict[str, int] | None:
    env = dict(env)
    for u, v in zip(p.uses, fact, strict=True):
        if u.kind == "wild":
            continue
        if u.kind == "const":
            if v != u.n:
                return None
        elif u.kind == "plus":
            if v != env[u.name] + u.n:
                return None
        elif u.name in env:
            if env[u.name] != v:
                return None
        else:
            env[u.name] = v
    return env


def _naive(rule: Rule, view: ListView, program: Any) -> Counter[tuple[Any, ...]]:
    pools = [list(view.live[program.type_ids[p.type]]) for p in rule.positive]
    negs = [view.values[f] for f in view.live[program.type_ids["N"]]]
    found: Counter[tuple[Any, ...]] = Counter()
    for combo in product(*pools):
        env: dict[str, int] | None = {}
        for p, fid in zip(rule.positive, combo, strict=True):
            env = _match(p, view.values[fid], env) if env is not None else None
        if env is None:
            continue
        # names the rule binds are constraints; others are local to the negation
        if rule.negated is not None and any(
            _match(rule.negated, n, env) is not None for n in negs
        ):
            continue

        def val(text: str, env: dict[str, int] = env) -> int:
            return env[text] if text in env else int(text)

        if rule.guard is not None:
            left, op, right = val(rule.guard[0]), rule.guard[1], val(rule.guard[2])
            ok = {"<": left < right, "!=": left != right, "==": left == right,
                  ">=": left >= right}[op]
            if not ok:
                continue
        found[(combo, (val(rule.out[0]), val(rule.out[1])))] += 1
    return found


FACT = st.one_of(
    st.tuples(st.just("R"), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("S"), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
)
NEG = st.tuples(st.just("N"), st.integers(0, 2), st.integers(0, 2))


@settings(max_examples=150, deadline=None)
@given(rule=rules(), negs=st.lists(NEG, max_size=3),
       batches=st.lists(st.lists(FACT, max_size=5), min_size=1, max_size=4))
def test_compiled_agent_agrees_with_naive_interpreter(
    rule: Rule, negs: list[tuple[Any, ...]], batches: list[list[tuple[Any, ...]]]
) -> None:
    program = compile_text(SCHEMA + rule.text())
    view = ListView(program)
    for name, *values in negs:        # negated facts do not change between runs
        view.add(name, *values)
    got: Counter[tuple[Any, ...]] = Counter()
    for batch in batches:
        since = len(view.values)
        for name, *values in batch:
            view.add(name, *values)
        for out in run(program, "r", view, since):
            got[(out[4], out[2])] += 1
    assert got == _naive(rule, view, program), program.agents[0].source
