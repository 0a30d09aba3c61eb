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
    "a lower tier or the consumer to a higher one. When the producers depend, directly "
    "or not, on the consumer's own facts (`approve` negates Deny and `deny` negates "
    "Approve), no choice of tiers orders them: the message names the cycle, and the "
    "help says which dependency to remove and which agent alone to move. An agent "
    "declared `one at a time by …` may negate or aggregate over what its own tier "
    "produces, itself included: it fires one match per cycle and each firing sees the "
    "result of the one before.",
    wrong=_HEAD + "agent warn {\n  when Cost(sku, amount) where amount < 0\n"
          '  emit Alert(sku: sku, message: "negative cost")\n}\n'
          "agent price {\n  when Cost(sku, amount) and not Alert(sku)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n",
    right=_HEAD + "agent warn tier 1 {\n  when Cost(sku, amount) where amount < 0\n"
          '  emit Alert(sku: sku, message: "negative cost")\n}\n'
          "agent price tier 2 {\n  when Cost(sku, amount) and not Alert(sku)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n",
)

READS_LATER_TIER = define(
    "CVG305", "reads-later-tier", Severity.WARNING,
    "Agent reads a type only a higher tier makes",
    "Each tier runs to a fixpoint before the next one starts, and a lower tier never "
    "runs again: an agent that reads a type which only agents of higher tiers produce "
    "never sees those facts (only input facts of the type, if any). Move it to the "
    "tier of the producers or above, or the producers down to its tier.",
    wrong=_HEAD + "agent price tier 2 {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n"
          "agent check {\n  when Price(sku, amount) where amount < 0.0\n"
          '  emit Alert(sku: sku, message: "negative price")\n}\n',
    right=_HEAD + "agent price {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n"
          "agent check {\n  when Price(sku, amount) where amount < 0.0\n"
          '  emit Alert(sku: sku, message: "negative price")\n}\n',
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


#: one step of a dependency cycle: ``agent`` ``how`` (negates, reads, aggregates …)
#: ``type``, which the next step's agent produces
Link = tuple[Agent, str, str]


def _uses(agent: Agent) -> Iterator[tuple[str, str]]:
    """(how, type name) for every type ``agent`` reads, negates or aggregates over."""
    for p in agent.patterns:
        if not p.negated:
            yield "reads", p.type.name
    for how, type_name, _ in consumed(agent):
        yield how, type_name


def find_cycle(
    start: Agent, how: str, type_name: str, producer: Agent,
    made: dict[str, list[Agent]],
) -> list[Link] | None:
    """The shortest dependency cycle through ``start`` ``how`` ``type_name`` (made by
    ``producer``) back to ``start``: its links in order, the first one that one; None
    when ``producer`` does not depend on ``start``, directly or not. A cycle through a
    negation or an aggregate cannot be ordered by tiers."""
    parent: dict[int, tuple[Agent, str, str] | None] = {id(producer): None}
    queue = [producer]
    for agent in queue:
        for use, t in _uses(agent):
            for p in made.get(t, ()):
                if p is start:
                    links = [(agent, use, t)]
                    node = parent[id(agent)]
                    while node is not None:
                        links.append(node)
                        node = parent[id(node[0])]
                    return [(start, how, type_name), *reversed(links)]
                if id(p) not in parent:
                    parent[id(p)] = (agent, use, t)
                    queue.append(p)
    return None


def _link_text(link: Link, producer: Agent) -> str:
    agent, how, type_name = link
    return f"`{agent.name.name}` {how} {type_name}, which `{producer.name.name}` produces"


def cycle_remedies(cycle: list[Link], agents: tuple[Agent, ...],
                   made: dict[str, list[Agent]]) -> list[str]:
    """What can break ``cycle`` (its first link is the consumer's), one per link whose
    removal leaves every agent orderable, the other agents' links first. Each names
    every agent that must then move up, those outside the cycle that read a moved
    agent's facts included, so that following one literally gives a ruleset that
    checks clean and in which no agent runs before a producer of what it reads. A link
    whose removal leaves another cycle is not offered."""
    n = len(cycle)
    out = []
    for i in [*range(1, n), 0]:
        agent, _, type_name = cycle[i]
        tiers = _ordered_tiers(agents, made, (agent, type_name))
        if tiers is None:
            continue
        moves = [f"`{a.name.name}` to tier {tiers[k]}" for k, a in enumerate(agents)
                 if tiers[k] != a.effective_tier]
        order = ("" if not moves else f", then move only {moves[0]}" if len(moves) == 1
                 else ", then move " + ", ".join(moves))
        out.append(f"remove `{agent.name.name}`'s dependency on {type_name}{order}")
    return out


def _ordered_tiers(agents: tuple[Agent, ...], made: dict[str, list[Agent]],
                   without: tuple[Agent, str] | None = None,
                   moved: tuple[Agent, int] | None = None) -> list[int] | None:
    """The lowest tiers, no lower than the declared ones (nor than ``moved[1]`` for
    agent ``moved[0]``), at which every agent runs after the producers of what it
    reads and above those of what it negates or aggregates over (a ``one at a time``
    agent: not below them), once agent ``without[0]`` no longer uses type
    ``without[1]``; None when none exist (a cycle through a negation or an aggregate
    remains)."""
    index = {id(a): k for k, a in enumerate(agents)}
    tiers = [a.effective_tier for a in agents]
    if moved is not None:
        tiers[index[id(moved[0])]] = max(tiers[index[id(moved[0])]], moved[1])
    needs: list[list[tuple[int, int]]] = []  # per agent: (producer, tiers above it)
    for a in agents:
        edges = []
        for how, t in _uses(a):
            if without is not None and a is without[0] and t == without[1]:
                continue
            strict = int(how != "reads" and a.one_at_a_time is None)
            for producer in made.get(t, ()):
                if producer is a and not strict:
                    continue
                edges.append((index[id(producer)], strict))
        needs.append(edges)
    # longest paths by relaxation: more rounds than agents means a cycle that rises
    for _ in range(len(agents) + 1):
        changed = False
        for k, edges in enumerate(needs):
            for p, strict in edges:
                if tiers[p] + strict > tiers[k]:
                    tiers[k] = tiers[p] + strict
                    changed = True
        if not changed:
            return tiers
    return None


def check_tiers(agents: tuple[Agent, ...], report: Reporter) -> None:
    """Report non-positive tiers and every negation or aggregate over a type that an
    agent of the same or a higher tier produces."""
    made = producers(agents)
    # the highest tier producing each type: most consumers are in a higher one, and then
    # no producer needs looking at
    highest = {name: max(p.effective_tier for p in ps) for name, ps in made.items()}
    lowest = {name: min(p.effective_tier for p in ps) for name, ps in made.items()}
    for a in agents:
        if a.tier is not None and a.tier < 1:
            report.error(BAD_TIER, a.name.span,
                         f"agent `{a.name.name}` has tier {a.tier}; tiers start at 1",
                         "use `tier 1` or higher (or leave the tier out for tier 1)")
        tier = a.effective_tier
        for p in a.patterns:
            first = lowest.get(p.type.name, 0)
            if not p.negated and first > tier:
                later = made[p.type.name]
                report.warning(
                    READS_LATER_TIER, p.span,
                    f"`{a.name.name}` (tier {tier}) reads {p.type.name}, which only "
                    + ", ".join(f"`{x.name.name}` (tier {x.effective_tier})" for x in later)
                    + f" produce{'s' if len(later) == 1 else ''}: tier {tier} has finished "
                    "by then, so it sees only input facts of the type",
                    f"move `{a.name.name}` to tier {first} or higher, or the producers "
                    f"of {p.type.name} down to tier {tier}",
                    tuple(Related(x.name.span, f"`{x.name.name}` produces {p.type.name} "
                                  f"in tier {x.effective_tier}") for x in later))
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
            tiers = _ordered_tiers(agents, made, moved=(a, higher))
            if tiers is not None:
                # an agent that reads what a moved one makes must not run before it
                also = [f"`{x.name.name}` to tier {tiers[k]}" for k, x in enumerate(agents)
                        if x is not a and tiers[k] != x.effective_tier]
                if also:
                    help += (", and with it " + ", ".join(also) + " (an agent must not "
                             "run before what it reads is made)")
            if tier > 1:
                help += f", or every producer of {type_name} to a tier below {tier}"
            if self_loop:
                help = (f"`{a.name.name}` cannot depend on the absence or count of what it "
                        "produces itself; split it into two agents in different tiers")
            else:
                found = next((c for p in late
                              if (c := find_cycle(a, how, type_name, p, made)) is not None),
                             None)
                if found is not None:
                    rest = ", and ".join(
                        _link_text(link, found[(i + 2) % len(found)][0])
                        for i, link in enumerate(found[1:]))
                    cycle += (f", and {rest}: a cycle through a negation or an aggregate, "
                              "which no choice of tiers can order")
                    remedies = cycle_remedies(found, agents, made)
                    help = ("break the cycle in one place (moving all of its agents keeps "
                            "it): " + "; or ".join(remedies) if remedies else
                            "removing any one dependency of this cycle leaves another "
                            "through a negation or an aggregate: rethink how these agents "
                            "depend on each other")
            if a.one_at_a_time is not None:
                above = ", ".join(f"`{p.name.name}`" for p in late if p.effective_tier > tier)
                help = (f"a `one at a time` agent may negate what its own tier produces, "
                        f"not what a higher tier does: move {above} to tier {tier} or lower")
            elif self_loop and top == tier:  # no choice of tiers helps here
                help += (f"; or, to act on one match at a time, declare `agent "
                         f"{a.name.name} one at a time by …`: each firing then sees the "
                         "one before, so it may negate what its tier produces")
            related = tuple(Related(p.name.span, f"`{p.name.name}` produces {type_name} in "
                                    f"tier {p.effective_tier}") for p in late)
            report.error(UNSTRATIFIED, span, f"unstratified: {cycle}", help, related)
