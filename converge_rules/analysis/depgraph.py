"""The dependency graph of a ruleset: which agents read, negate, aggregate over and
produce which fact and intent types, tier by tier.

Built from syntax-tree modules alone (no engine), so ``converge graph`` and coverage
reports can draw it for any ruleset that parses. Rendered as Graphviz DOT or Mermaid;
both renderings are pure functions of the graph, so the same ruleset always gives the
same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from converge_rules.language.syntax import nodes as n

EdgeKind = Literal["reads", "negates", "aggregates", "emits", "intends", "evaluates", "calls"]

DASHED: frozenset[EdgeKind] = frozenset({"negates", "aggregates"})
"""Edges that stratification cares about: drawn dashed."""


@dataclass(frozen=True, slots=True)
class TypeNode:
    """A fact or intent type; ``input_only`` when no agent produces it."""

    name: str
    intent: bool
    keyed: bool
    policy: str | None
    pruned: bool
    input_only: bool


@dataclass(frozen=True, slots=True)
class AgentNode:
    name: str
    tier: int


@dataclass(frozen=True, slots=True, order=True)
class Edge:
    """``source`` and ``target`` are node ids (:func:`type_id`, :func:`agent_id`,
    :func:`tool_id`)."""

    source: str
    target: str
    kind: EdgeKind


@dataclass(frozen=True, slots=True)
class DependencyGraph:
    name: str
    types: tuple[TypeNode, ...]
    agents: tuple[AgentNode, ...]
    tools: tuple[str, ...]
    edges: tuple[Edge, ...]

    @property
    def tiers(self) -> tuple[int, ...]:
        return tuple(sorted({a.tier for a in self.agents}))


def type_id(name: str) -> str:
    return f"t_{name}"


def agent_id(name: str) -> str:
    return f"a_{name}"


def tool_id(name: str) -> str:
    return f"tool_{name}"


def build_graph(modules: Sequence[n.Module]) -> DependencyGraph:
    """The graph of every declaration in ``modules`` (imports first, entry file last, as
    the loader returns them). Names that are declared nowhere still get a node, so a
    ruleset with unknown names still draws."""
    facts: dict[str, n.FactDecl] = {}
    agents: list[n.Agent] = []
    policies: dict[str, n.Policy] = {}
    pruned: set[str] = set()
    tools: set[str] = set()
    for module in modules:
        for item in module.items:
            if isinstance(item, n.FactDecl):
                facts.setdefault(item.name.name, item)
            elif isinstance(item, n.Agent):
                agents.append(item)
            elif isinstance(item, n.Policy):
                policies.setdefault(item.type.name, item)
            elif isinstance(item, n.Prune):
                pruned.add(item.type.name)
            elif isinstance(item, n.Uses):
                tools.update(t.name for t in item.tools)

    edges: set[Edge] = set()
    for agent in agents:
        edges.update(_agent_edges(agent))
        tools.update(c.tool.name for c in agent.calls)

    mentioned = {e.source[2:] for e in edges if e.source.startswith("t_")}
    mentioned |= {e.target[2:] for e in edges if e.target.startswith("t_")}
    produced = {e.target[2:] for e in edges if e.kind in ("emits", "intends")}
    names = list(facts) + sorted(mentioned - set(facts))
    types = tuple(
        TypeNode(
            name=name,
            intent=bool(facts[name].intent) if name in facts else False,
            keyed=bool(facts[name].keys) if name in facts else False,
            policy=describe_policy(policies[name]) if name in policies else None,
            pruned=name in pruned,
            input_only=name not in produced,
        )
        for name in names
    )
    name = modules[-1].header.name.name if modules and modules[-1].header else "ruleset"
    return DependencyGraph(
        name=name,
        types=types,
        agents=tuple(AgentNode(a.name.name, a.effective_tier) for a in agents),
        tools=tuple(sorted(tools)),
        edges=tuple(sorted(edges)),
    )


def _agent_edges(agent: n.Agent) -> Iterator[Edge]:
    me = agent_id(agent.name.name)
    for pattern in agent.patterns:
        kind: EdgeKind = "negates" if pattern.negated else "reads"
        yield Edge(type_id(pattern.type.name), me, kind)
        for fm in pattern.fields:
            if fm.value is not None:
                yield from _aggregate_edges(fm.value, me)
    exprs: list[n.Expr] = [agent.where] if agent.where is not None else []
    for call in agent.calls:
        yield Edge(me, tool_id(call.tool.name), "calls")
        exprs.extend(a.value for a in call.args)
    for output in agent.outputs:
        if isinstance(output, n.Emit):
            yield Edge(me, type_id(output.type.name), "emits")
            exprs.extend(a.value for a in output.args)
            if output.confidence is not None:
                exprs.append(output.confidence)
        elif isinstance(output, n.Intend):
            yield Edge(me, type_id(output.type.name), "intends")
            exprs.extend(a.value for a in output.args)
        else:
            exprs.append(output.score)
            target = _binder_type(agent, output.target.name)
            if target is not None:
                yield Edge(me, type_id(target), "evaluates")
    for expr in exprs:
        yield from _aggregate_edges(expr, me)


def _binder_type(agent: n.Agent, binder: str) -> str | None:
    for pattern in agent.patterns:
        if pattern.binder is not None and pattern.binder.name == binder:
            return pattern.type.name
    return None


def _aggregate_edges(expr: n.Expr, me: str) -> Iterator[Edge]:
    for aggregate in aggregates(expr):
        yield Edge(type_id(aggregate.pattern.type.name), me, "aggregates")


def aggregates(expr: n.Expr) -> Iterator[n.Aggregate]:
    """Every aggregate inside ``expr``, outermost first."""
    return (e for e in n.walk_expr(expr) if isinstance(e, n.Aggregate))


def describe_policy(policy: n.Policy) -> str:
    """A one-line summary: ``highest confidence, lowest amount; tie reject``."""
    strategy = policy.strategy
    if isinstance(strategy, n.Resolve):
        text = ", ".join(_criterion(c) for c in strategy.criteria)
    elif isinstance(strategy, n.Combine):
        text = f"combine {strategy.func} {strategy.field.name}"
    elif isinstance(strategy, n.KeepAll):
        text = "keep all"
    else:
        text = "reject"
    if policy.on_tie is not None:
        text += f"; tie {policy.on_tie.mode}"
    return text


def _criterion(criterion: n.Criterion) -> str:
    if isinstance(criterion, n.ByField):
        return f"{criterion.direction} {criterion.field.name}"
    if isinstance(criterion, n.ByCycle):
        return criterion.which
    if isinstance(criterion, n.ByPriority):
        return "priority [" + ", ".join(a.name for a in criterion.agents) + "]"
    if isinstance(criterion, n.ByMajority):
        return "majority"
    return f"using {criterion.resolver.name}"


# ----------------------------------------------------------------------- rendering


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _type_label(node: TypeNode) -> str:
    lines = [("intent " if node.intent else "") + node.name]
    if node.policy:
        lines.append(f"policy: {node.policy}")
    if node.pruned:
        lines.append("pruned")
    return "\n".join(lines)


def to_dot(graph: DependencyGraph) -> str:
    """Graphviz DOT: types as boxes (intents rounded, input-only types shaded), agents as
    ellipses grouped in one cluster per tier, tools as hexagons; negation and aggregate
    edges dashed."""
    out = [f"digraph {_dot_string(graph.name)} {{", "  rankdir=LR;",
           '  node [fontname="Helvetica"];', '  edge [fontname="Helvetica"];']
    for t in graph.types:
        style = "rounded" if t.intent else ""
        if t.input_only:
            style = ",".join(s for s in (style, "filled") if s)
        attrs = [f"label={_dot_string(_type_label(t))}", "shape=box"]
        if style:
            attrs.append(f'style="{style}"')
        if t.input_only:
            attrs.append('fillcolor="#eeeeee"')
        out.append(f"  {type_id(t.name)} [{', '.join(attrs)}];")
    for tier in graph.tiers:
        out.append(f"  subgraph cluster_tier_{tier} {{")
        out.append(f"    label={_dot_string(f'tier {tier}')};")
        out.append("    style=dashed;")
        for a in graph.agents:
            if a.tier == tier:
                out.append(f"    {agent_id(a.name)} [label={_dot_string(a.name)}, "
                           "shape=ellipse];")
        out.append("  }")
    for tool in graph.tools:
        out.append(f"  {tool_id(tool)} [label={_dot_string('tool ' + tool)}, shape=hexagon];")
    for e in graph.edges:
        attrs = []
        if e.kind in DASHED:
            attrs += ["style=dashed", f"label={_dot_string(_edge_word(e.kind))}"]
        elif e.kind in ("evaluates", "calls"):
            attrs += ["style=dotted", f"label={_dot_string(_edge_word(e.kind))}"]
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        out.append(f"  {e.source} -> {e.target}{suffix};")
    out.append("}")
    return "\n".join(out) + "\n"


def _edge_word(kind: EdgeKind) -> str:
    return {"negates": "not", "aggregates": "aggregate", "evaluates": "evaluate",
            "calls": "call"}.get(kind, kind)


def _mermaid_text(text: str) -> str:
    # Mermaid labels are quoted; a double quote inside one is written as #quot;.
    return '"' + text.replace('"', "#quot;").replace("\n", "<br/>") + '"'


def to_mermaid(graph: DependencyGraph) -> str:
    """A Mermaid ``flowchart LR``: one subgraph per tier; negation and aggregate edges
    dashed (``-.->``)."""
    out = ["flowchart LR"]
    for t in graph.types:
        label = _mermaid_text(_type_label(t))
        out.append(f"  {type_id(t.name)}([{label}])" if t.intent
                   else f"  {type_id(t.name)}[{label}]")
    for tier in graph.tiers:
        out.append(f'  subgraph tier_{tier}["tier {tier}"]')
        for a in graph.agents:
            if a.tier == tier:
                out.append(f"    {agent_id(a.name)}(({_mermaid_text(a.name)}))")
        out.append("  end")
    for tool in graph.tools:
        out.append(f"  {tool_id(tool)}{{{{{_mermaid_text('tool ' + tool)}}}}}")
    for e in graph.edges:
        if e.kind in DASHED or e.kind in ("evaluates", "calls"):
            out.append(f"  {e.source} -. {_edge_word(e.kind)} .-> {e.target}")
        else:
            out.append(f"  {e.source} --> {e.target}")
    inputs = [type_id(t.name) for t in graph.types if t.input_only]
    if inputs:
        out.append("  classDef input fill:#eeeeee")
        out.append(f"  class {','.join(inputs)} input")
    return "\n".join(out) + "\n"
