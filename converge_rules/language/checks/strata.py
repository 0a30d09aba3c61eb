"""Tiers and stratification (CVG3xx).

Agents run by tier, lowest first, each tier to a fixpoint. Negation and aggregation
are only sound over facts that are complete when the agent runs: a type produced only in
lower tiers, or never produced at all (input only). A ``one at a time`` agent may also
negate or aggregate over what its own tier produces: it fires one match per cycle, each
firing reading the context the last one left.
"""

from __future__ import annotations

from collections.abc import Iterator

from converge_rules.language.checks.scope import Reporter
from converge_rules.language.diagnostics.core import Related, Severity, define
from converge_rules.language.syntax.nodes import (
    Agent,
    Aggregate,
    Emit,
    Intend,
    Pattern,
    walk_expr,
)
from converge_rules.language.syntax.span import Span

_HEAD = ("ruleset r\nfact Cost { key sku: str, amount: float }\n"
         "fact Alert { sku: str, message: str }\n"
         "fact Price { key sku: str, amount: float }\n")

BAD_TIER = define(
    "CVG301", "bad-tier", Severity.ERROR, "Tier is not a positive number",
    "Tiers count from 1 (the default); an agent's tier must be a positive integer.",
    wrong=_HEAD + "agent a tier 0 {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n",
    right=_HEAD + "agent a tier 1 {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n",
)
UNSTRATIFIED = define(
    "CVG302", "unstratified", Severity.ERROR, "Negation or aggregate over a type not yet complete",
    "An agent may negate (`not T(…)`) or aggregate (`count(T(…))`…) over a type only if "
    "every agent producing T runs in a lower tier (or T is only given as input). "
    "Otherwise the answer could change after the agent has acted. Move the producers to "
    "a lower tier or the consumer to a higher one. An agent declared `one at a time by …` "
    "may negate or aggregate over what its own tier produces, itself included: it fires "
    "one match per cycle and each firing sees the result of the one before.",
    wrong=_HEAD + "agent warn {\n  when Cost(sku, amount) where amount < 0\n"
          '  emit Alert(sku: sku, message: "negative cost")\n}\n'
          "agent price {\n  when Cost(sku, amount) and not Alert(sku)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n",
    right=_HEAD + "agent warn tier 1 {\n  when Cost(sku, amount) where amount < 0\n"
          '  emit Alert(sku: sku, message: "negative cost")\n}\n'
          "agent price tier 2 {\n  when Cost(sku, amount) and not Alert(sku)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n",
)


def consumed(agent: Agent) -> Iterator[tuple[str, str, Span]]:
    """(how, type name, where) for each negation and aggregate in ``agent``."""
    for p in agent.patterns:
        if p.negated:
            yield "negates", p.type.name, p.span
    for top in agent.expressions():
        for e in walk_expr(top):
            if isinstance(e, Aggregate):
                yield f"aggregates (`{e.func}`) over", e.pattern.type.name, e.span
                yield from _negated_inside(e.pattern)


def _negated_inside(p: Pattern) -> Iterator[tuple[str, str, Span]]:
    if p.negated:
        yield "negates", p.type.name, p.span


def producers(agents: tuple[Agent, ...]) -> dict[str, list[Agent]]:
    """Agents that emit or intend each type, in declaration order."""
    out: dict[str, list[Agent]] = {}
    for a in agents:
        # An agent joins a type's list while its own outputs are walked, so asking "is
        # it there already" of its own outputs suffices (and costs nothing per agent
        # already listed, unlike `a not in list`, which compares whole agents).
        done: set[str] = set()
        for o in a.outputs:
            if isinstance(o, Emit | Intend) and o.type.name not in done:
                done.add(o.type.name)
                out.setdefault(o.type.name, []).append(a)
    return out


def check_tiers(agents: tuple[Agent, ...], report: Reporter) -> None:
    """Report non-positive tiers and every negation or aggregate over a type that an
    agent of the same or a higher tier produces."""
    made = producers(agents)
    # the highest tier producing each type: most consumers are in a higher one, and then
    # no producer needs looking at
    highest = {name: max(p.effective_tier for p in ps) for name, ps in made.items()}
    for a in agents:
        if a.tier is not None and a.tier < 1:
            report.error(BAD_TIER, a.name.span,
                         f"agent `{a.name.name}` has tier {a.tier}; tiers start at 1",
                         "use `tier 1` or higher (or leave the tier out for tier 1)")
        tier = a.effective_tier
        for how, type_name, span in consumed(a):
            top = highest.get(type_name)
            if top is None or top < tier:
                continue
            late = [p for p in made[type_name] if p.effective_tier >= tier]
            if not late or (a.one_at_a_time is not None and top == tier):
                # one at a time: each firing sees the context as the last one left it
                continue
            names = ", ".join(f"`{p.name.name}` (tier {p.effective_tier})" for p in late)
            self_loop = any(p is a for p in late)
            cycle = (f"`{a.name.name}` (tier {tier}) {how} {type_name}, which {names} "
                     f"produce{'s' if len(late) == 1 else ''}")
            higher = max(p.effective_tier for p in late) + 1
            help = f"move `{a.name.name}` to tier {higher}"
            if tier > 1:
                help += f", or every producer of {type_name} to a tier below {tier}"
            if self_loop:
                help = (f"`{a.name.name}` cannot depend on the absence or count of what it "
                        "produces itself; split it into two agents in different tiers")
            if a.one_at_a_time is not None:
                above = ", ".join(f"`{p.name.name}`" for p in late if p.effective_tier > tier)
                help = (f"a `one at a time` agent may negate what its own tier produces, "
                        f"not what a higher tier does: move {above} to tier {tier} or lower")
            elif top == tier:
                help += (f"; or, to act on one match at a time, declare `agent "
                         f"{a.name.name} one at a time by …`: each firing then sees the "
                         "one before, so it may negate what its tier produces")
            related = tuple(Related(p.name.span, f"`{p.name.name}` produces {type_name} in "
                                    f"tier {p.effective_tier}") for p in late)
            report.error(UNSTRATIFIED, span, f"unstratified: {cycle}", help, related)
