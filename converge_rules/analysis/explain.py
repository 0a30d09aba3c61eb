"""Explain a run: how a fact was derived (``explain``) and why a fact was not
(``explain --why-not``).

A derivation tree starts at a fact and follows each derivation (agent, cycle, the facts
its match rested on) down to input facts. Bindings are recomputed by matching the
agent's patterns against its support facts; rule spans come from the ruleset when one
is given. ``why_not`` names every agent that emits the wanted type and the first of its
conditions (pattern, negation, guard, emitted values) that fails in the final context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from converge_rules.analysis.interpret import EvalError, Fact, Interpreter, values_equal
from converge_rules.analysis.runview import ConflictRecord, RunView
from converge_rules.analysis.show import fact_text
from converge_rules.language.checks.checked import CheckedRuleset
from converge_rules.language.format.formatter import format_expr, format_pattern, format_value
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.span import Span

MAX_DEPTH = 12
"""How deep a derivation tree goes before it says "…" (support chains can be long)."""

MAX_MATCHES = 10_000
"""How many partial matches ``why_not`` explores per agent before it gives up."""


# ------------------------------------------------------------------- derivations


@dataclass(frozen=True, slots=True)
class Step:
    """One derivation of a fact: the agent, its rule span, the cycle, the recomputed
    bindings and the support facts (each explained in turn)."""

    agent: str
    cycle: int
    span: Span | None
    bindings: Mapping[str, Any]
    support: tuple[Node, ...]
    #: an ``emit lasting``: the fact stays when the facts it was matched from go
    lasting: bool = False


@dataclass(frozen=True, slots=True)
class Node:
    """A fact in a derivation tree. ``input`` facts have no steps; ``removed`` says why
    a fact is no longer in the final context; ``won`` lists conflicts it won."""

    fact: Fact
    input: bool
    removed: str | None
    steps: tuple[Step, ...]
    won: tuple[ConflictRecord, ...] = ()
    truncated: bool = False


@dataclass(slots=True)
class Explainer:
    """Builds derivation trees and why-not reports for one run (``view``) of one
    ruleset (``checked``, optional: without it there are no spans or bindings)."""

    view: RunView
    checked: CheckedRuleset | None = None
    interp: Interpreter | None = None
    agents: dict[str, n.Agent] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.checked is not None:
            self.agents = {a.name.name: a for a in self.checked.agents}
            if self.interp is None:
                from converge_rules.analysis.interpret import interpreter_for

                self.interp = interpreter_for(self.checked, self.view.context())
        elif self.interp is None:
            self.interp = Interpreter(enums={}, facts=self.view.context())

    @property
    def field_enums(self) -> Mapping[tuple[str, str], str]:
        return self.interp.field_enums if self.interp is not None else {}

    def show(self, fact: Fact) -> str:
        """The fact as source text, fields in declared order when the ruleset is known
        (a trace read from JSON Lines has them sorted by name)."""
        decl = self.checked.facts.get(fact.type) if self.checked is not None else None
        if decl is not None:
            order = [f.name.name for f in decl.fields]
            values = {k: fact.values[k] for k in order if k in fact.values}
            values.update((k, v) for k, v in fact.values.items() if k not in values)
            fact = Fact(fact.type, values, fact.id)
        return fact_text(fact, self.field_enums)

    def pattern_with(self, pattern: n.Pattern, env: Mapping[str, Any]) -> str:
        """The pattern as written, with the variables ``env`` binds (a table test's
        case) replaced by their values."""
        if not env:
            return format_pattern(pattern)
        interp = self.interp
        assert interp is not None
        shown: dict[str, str] = {}
        for fm in pattern.fields:
            try:
                constrains, value = interp.field_expected(pattern.type.name, fm, env)
            except EvalError:
                constrains, value = False, None
            if constrains:
                enum = (pattern.type.name, fm.field.name) in interp.field_enums
                shown[fm.field.name] = format_value(value, enum=enum)
        return format_pattern(pattern, shown)

    # ---------------------------------------------------------------- finding

    def find(self, pattern: n.Pattern, env: Mapping[str, Any] | None = None,
             *, include_removed: bool = False) -> list[Fact]:
        """Facts matching ``pattern`` (live ones; also removed ones when asked)."""
        assert self.interp is not None
        found = []
        facts = self.view.facts.values() if include_removed else self.view.live()
        for fact in sorted(facts, key=lambda f: f.id or 0):
            if self.interp.match_fact(pattern, fact, env or {}, tolerant=True) is not None:
                found.append(fact)
        return found

    # ------------------------------------------------------------------ trees

    def tree(self, fid: int, depth: int = 0, path: frozenset[int] = frozenset(),
             *, max_depth: int = MAX_DEPTH) -> Node:
        """The derivation tree of fact ``fid``, ``max_depth`` levels deep."""
        fact = self.view.facts[fid]
        derivations = self.view.derivations.get(fid, [])
        won = tuple(c for c in self.view.conflicts
                    if c.type == fact.type and c.winner is not None
                    and _same_values(c.winner, fact.values))
        if depth >= max_depth or fid in path:
            return Node(fact, not derivations, self.view.removed.get(fid), (), won,
                        truncated=bool(derivations))
        steps = []
        for d in derivations:
            support = tuple(self.tree(s, depth + 1, path | {fid}, max_depth=max_depth)
                            for s in d.support if s in self.view.facts)
            agent = self.agents.get(d.agent)
            steps.append(Step(d.agent, d.cycle, agent.span if agent else None,
                              self._bindings(agent, d.support), support, d.lasting))
        return Node(fact, not derivations, self.view.removed.get(fid), tuple(steps), won)

    def _bindings(self, agent: n.Agent | None, support: Sequence[int]) -> dict[str, Any]:
        if agent is None or self.interp is None:
            return {}
        env: dict[str, Any] = {}
        positive = [p for p in agent.patterns if not p.negated]
        for pattern, fid in zip(positive, support, strict=False):
            fact = self.view.facts.get(fid)
            if fact is None:
                return env
            try:
                bound = self.interp.match_fact(pattern, fact, env)
            except EvalError:
                return env
            if bound is None:
                return env
            env = bound
        return {k: v for k, v in env.items() if not isinstance(v, Fact)}

    def tree_lines(self, node: Node, indent: str = "") -> list[str]:
        """A tree as indented text lines."""
        head = indent + self.show(node.fact)
        if node.removed:
            head += f"  [no longer in the context: {node.removed}]"
        if node.input:
            head += "  — input fact"
        lines = [head]
        for conflict in node.won:
            lines.append(f"{indent}  won a conflict in cycle {conflict.cycle} against "
                         + "; ".join(self.show(Fact(conflict.type, dict(loser)))
                                     for loser in conflict.losers)
                         + (f" ({conflict.reason})" if conflict.reason else ""))
        for step in node.steps:
            where = f" at {step.span}" if step.span else ""
            lasting = " (lasting: stays when the facts below go)" if step.lasting else ""
            lines.append(f"{indent}  by agent {step.agent}{where} in cycle {step.cycle}"
                         f"{lasting}")
            if step.bindings:
                lines.append(f"{indent}    with " + ", ".join(
                    f"{k} = {format_value(v)}" for k, v in sorted(step.bindings.items())))
            if step.support:
                lines.append(f"{indent}    from")
                for child in step.support:
                    lines.extend(self.tree_lines(child, indent + "      "))
        if node.truncated:
            lines.append(f"{indent}  … (the whole derivation: converge explain)")
        return lines

    def tree_json(self, node: Node) -> dict[str, Any]:
        """A tree as JSON-ready data."""
        return {
            "type": node.fact.type,
            "id": node.fact.id,
            "fields": dict(node.fact.values),
            "input": node.input,
            "removed": node.removed,
            "won": [{"cycle": c.cycle, "losers": list(c.losers), "reason": c.reason}
                    for c in node.won],
            "derivations": [
                {"agent": s.agent, "cycle": s.cycle,
                 "span": str(s.span) if s.span else None,
                 "bindings": dict(sorted(s.bindings.items())),
                 "support": [self.tree_json(c) for c in s.support],
                 **({"lasting": True} if s.lasting else {})}
                for s in node.steps
            ],
            "truncated": node.truncated,
        }

    # ---------------------------------------------------------------- why not

    def why_not(self, pattern: n.Pattern, env: Mapping[str, Any] | None = None
                ) -> list[Reason]:
        """For each agent that emits ``pattern``'s type, the first condition that kept
        it from producing a matching fact in the final context; plus, for facts that
        were produced but are gone or lost a conflict, what happened to them."""
        reasons: list[Reason] = []
        env = dict(env or {})
        for fact in self.find(pattern, env, include_removed=True):
            if fact.id is not None and fact.id in self.view.removed:
                reasons.append(Reason(self._producer(fact.id), None,
                                      f"{self.show(fact)} was derived but is no longer in "
                                      f"the context: {self.view.removed[fact.id]}"))
        for conflict in self.view.conflicts:
            if conflict.type != pattern.type.name:
                continue
            for loser in conflict.losers:
                fact = Fact(conflict.type, dict(loser))
                assert self.interp is not None
                if self.interp.match_fact(pattern, fact, env, tolerant=True) is not None:
                    won = self.show(Fact(conflict.type, dict(conflict.winner))) \
                        if conflict.winner else "nothing (the job stopped)"
                    reasons.append(Reason(None, None,
                                          f"{self.show(fact)} lost a conflict in cycle "
                                          f"{conflict.cycle} to {won}"
                                          + (f" ({conflict.reason})" if conflict.reason
                                             else "")))
        for agent in (self.checked.agents if self.checked else ()):
            # every output of the type: an agent may emit it more than once
            outputs = [o for o in agent.outputs if isinstance(o, n.Emit | n.Intend)
                       and o.type.name == pattern.type.name]
            if outputs:
                reasons.append(self._agent_reason(agent, outputs, pattern, env))
        return reasons

    def _producer(self, fid: int) -> str | None:
        derivations = self.view.derivations.get(fid)
        return derivations[0].agent if derivations else None

    def _agent_reason(self, agent: n.Agent, outputs: Sequence[n.Emit | n.Intend],
                      target: n.Pattern, want: Mapping[str, Any]) -> Reason:
        interp = self.interp
        assert interp is not None
        name = agent.name.name
        envs: list[dict[str, Any]] = [{}]
        for pattern in agent.patterns:
            if pattern.negated:
                kept = [e for e in envs if not any(True for _ in interp.matches(pattern, e))]
                if not kept:
                    blocker = next(f for f, _ in interp.matches(pattern, envs[0]))
                    return Reason(name, pattern.span,
                                  f"`{format_pattern(pattern)}` failed: "
                                  f"{self.show(blocker)} exists")
                envs = kept
                continue
            grown: list[dict[str, Any]] = []
            for e in envs:
                grown.extend(bound for _, bound in interp.matches(pattern, e))
                if len(grown) > MAX_MATCHES:
                    break
            if not grown:
                return Reason(name, pattern.span,
                              f"no fact matches `{format_pattern(pattern)}`"
                              + _given(envs[0]))
            envs = grown[:MAX_MATCHES]
        if agent.where is not None:
            passed, first_false = [], None
            for e in envs:
                try:
                    ok = interp.eval(agent.where, e)
                except EvalError as exc:
                    return Reason(name, agent.where.span,
                                  f"`where {format_expr(agent.where)}` cannot be evaluated: "
                                  f"{exc.message}")
                if ok:
                    passed.append(e)
                elif first_false is None:
                    first_false = e
            if not passed:
                return Reason(name, agent.where.span,
                              f"`where {format_expr(agent.where)}` was false for every match"
                              + _given(first_false or {}, "e.g. with"))
            envs = passed
        discarded = [(c, why) for a, c, why in self.view.effects_discarded if a == name]
        if agent.calls and discarded:
            return Reason(name, agent.span,
                          f"its patterns and guard match, but its effect was discarded in "
                          f"cycle {discarded[0][0]}: {discarded[0][1]}", matched=True)
        if agent.calls:
            return Reason(name, agent.calls[0].span,
                          f"its patterns and guard match, but it calls tool "
                          f"`{agent.calls[0].tool.name}`; look for its tool_call and "
                          "effect events in the trace", matched=True)
        closest = None
        for e in envs:
            for output in outputs:
                values = {}
                for arg in output.args:
                    try:
                        values[arg.name.name] = interp.eval(arg.value, e)
                    except EvalError:
                        values[arg.name.name] = None
                fact = Fact(output.type.name, self._with_defaults(output.type.name, values))
                if interp.match_fact(target, fact, want, tolerant=True) is not None:
                    if discarded:
                        cycle, why = discarded[0]
                        return Reason(name, agent.span,
                                      f"matches and would emit {self.show(fact)}, but its "
                                      f"effect was discarded in cycle {cycle}: {why}",
                                      matched=True)
                    return Reason(name, output.span,
                                  f"matches and would emit {self.show(fact)}; it may have "
                                  "lost a conflict or been retracted (see above), or the "
                                  "context changed after it ran", matched=True)
                closest = closest or fact
        assert closest is not None
        return Reason(name, outputs[0].span,
                      f"matches, but emits {self.show(closest)}, which is not "
                      f"`{self.pattern_with(target, want)}`", matched=True)


    def _with_defaults(self, type_name: str, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` of an emitted fact with the fields it leaves out as the engine
        fills them: the declared default, else none (an optional field)."""
        decl = self.checked.facts.get(type_name) if self.checked is not None else None
        assert self.interp is not None
        for f in decl.fields if decl is not None else ():
            if f.name.name not in values:
                values[f.name.name] = None if f.default is None \
                    else self.interp.eval(f.default, {})
        return values


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a fact was not produced: by ``agent`` (None for facts that were produced
    and then lost), at ``span`` (the condition that failed)."""

    agent: str | None
    span: Span | None
    message: str
    matched: bool = False

    def text(self) -> str:
        if self.agent is None:
            return self.message
        where = f" ({self.span})" if self.span else ""
        return f"agent {self.agent}{where}: {self.message}"

    def json(self) -> dict[str, Any]:
        return {"agent": self.agent, "span": str(self.span) if self.span else None,
                "message": self.message, "matched": self.matched}


def _given(env: Mapping[str, Any], word: str = "with") -> str:
    shown = {k: v for k, v in env.items() if not isinstance(v, Fact)}
    if not shown:
        return ""
    return f" ({word} " + ", ".join(f"{k} = {format_value(v)}" for k, v in sorted(shown.items())) \
        + ")"


def _same_values(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
