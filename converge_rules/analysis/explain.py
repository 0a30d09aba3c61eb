"""Explain a run: how a fact was derived (``explain``) and why a fact was not
(``explain --why-not``).

A derivation tree starts at a fact and follows each derivation (agent, cycle, the facts
its match rested on) down to input facts. Bindings are recomputed by matching the
agent's patterns against its support facts; rule spans come from the ruleset when one
is given. ``why_not`` names every agent that emits the wanted type and the first of its
conditions (pattern, negation, guard, emitted values) that fails in the final context,
judged on the matches that would produce the fact asked about (its key and field values
pick them), never on another key's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from converge_rules.analysis.interpret import EvalError, Fact, Interpreter, values_equal
from converge_rules.analysis.runview import ConflictRecord, Derivation, RunView
from converge_rules.analysis.show import fact_text
from converge_rules.language.checks.checked import CheckedRuleset
from converge_rules.language.format.formatter import format_expr, format_pattern, format_value
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.span import Span

MAX_DEPTH = 12
"""How deep a derivation tree goes before it says "…" (support chains can be long)."""

MAX_DERIVATIONS = 4
"""How many derivations of one fact a tree shows; the others are counted ("… N more"):
a fact derived over many matches (a transitive closure) would multiply the tree by
that many at every level."""

MAX_NODES = 400
"""How many facts one derivation tree shows in all before the rest are counted (shared
support is shown again where it is used, so a tree can grow exponentially with depth
even when each fact has few derivations)."""

MAX_MATCHES = 10_000
"""How many partial matches ``why_not`` explores per agent before it gives up."""

MAX_CALLS_SHOWN = 3
"""How many of an agent's tool calls a why-not reason quotes."""


# ------------------------------------------------------------------- derivations


@dataclass(frozen=True, slots=True)
class Step:
    """One derivation of a fact: the agent, its rule span, the cycle, the recomputed
    bindings and the support facts (each explained in turn); the tool calls whose
    answers it used (``tool_call`` trace events) and, for the derivation that added the
    fact, the confidence it was emitted with."""

    agent: str
    cycle: int
    span: Span | None
    bindings: Mapping[str, Any]
    support: tuple[Node, ...]
    calls: tuple[Mapping[str, Any], ...] = ()
    confidence: float | None = None
    #: an ``emit lasting``: the fact stays when the facts it was matched from go
    lasting: bool = False


@dataclass(frozen=True, slots=True)
class Node:
    """A fact in a derivation tree. ``input`` facts have no steps; ``removed`` says why
    a fact is no longer in the final context; ``won`` lists conflicts it won;
    ``evaluations`` are the ``(agent, score, reason)`` it was given; ``truncated``
    says the tree stops here (too deep, or the fact is its own support); ``more``
    counts the derivations left out to keep the tree small."""

    fact: Fact
    input: bool
    removed: str | None
    steps: tuple[Step, ...]
    won: tuple[ConflictRecord, ...] = ()
    truncated: bool = False
    evaluations: tuple[tuple[str, float, str | None], ...] = ()
    more: int = 0

    @property
    def score(self) -> float | None:
        """The fact's score as policies rank it: the mean of its evaluations."""
        if not self.evaluations:
            return None
        return sum(e[1] for e in self.evaluations) / len(self.evaluations)


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
        """The derivation tree of fact ``fid``, ``max_depth`` levels deep, showing at
        most :data:`MAX_DERIVATIONS` derivations of a fact and :data:`MAX_NODES` facts
        in all; the derivations left out are counted in :attr:`Node.more`."""
        return self._tree(fid, depth, path, max_depth, [MAX_NODES])

    def _tree(self, fid: int, depth: int, path: frozenset[int], max_depth: int,
              budget: list[int]) -> Node:
        # ``budget`` (one counter shared by the whole walk) is how many more facts the
        # tree may show.
        budget[0] -= 1
        fact = self.view.facts[fid]
        derivations = self.view.derivations.get(fid, [])
        won = tuple(c for c in self.view.conflicts
                    if c.type == fact.type and c.winner is not None
                    and _same_values(c.winner, fact.values))
        evaluations = tuple(self.view.evaluations.get(fid, ()))
        if depth >= max_depth or fid in path:
            return Node(fact, not derivations, self.view.removed.get(fid), (), won,
                        truncated=bool(derivations), evaluations=evaluations)
        steps = []
        for i, d in enumerate(derivations[:MAX_DERIVATIONS]):
            present = [s for s in d.support if s in self.view.facts]
            if budget[0] < len(present):
                break
            support = tuple(self._tree(s, depth + 1, path | {fid}, max_depth, budget)
                            for s in present)
            agent = self.agents.get(d.agent)
            env = self._env(agent, d.support)
            steps.append(Step(d.agent, d.cycle, agent.span if agent else None,
                              {k: v for k, v in env.items() if not isinstance(v, Fact)},
                              support, self._calls(d, agent, env),
                              self.view.confidence.get(fid) if i == 0 else None,
                              d.lasting))
        return Node(fact, not derivations, self.view.removed.get(fid), tuple(steps), won,
                    evaluations=evaluations, more=len(derivations) - len(steps))

    def match_of(self, d: Derivation
                 ) -> tuple[dict[str, Any], tuple[Mapping[str, Any], ...]]:
        """The bindings of derivation ``d``'s match (whole facts left out), recomputed
        from its support facts, and the ``tool_call`` events whose answers it used: what
        a :class:`Step` of :meth:`tree` shows, for one derivation alone."""
        agent = self.agents.get(d.agent)
        env = self._env(agent, d.support)
        return ({k: v for k, v in env.items() if not isinstance(v, Fact)},
                self._calls(d, agent, env))

    def _calls(self, d: Derivation, agent: n.Agent | None, env: Mapping[str, Any]
               ) -> tuple[Mapping[str, Any], ...]:
        """The ``tool_call`` events whose answers derivation ``d`` used: each call of
        the agent, its arguments evaluated with the match's bindings (and the answers
        of the calls before it), found among the agent's calls up to that cycle.
        Without the agent's rule, the agent's only call in that cycle, if it made one."""
        if agent is None or self.interp is None:
            this_cycle = [c for c in self.view.tool_calls
                          if c.get("agent") == d.agent and c.get("cycle") == d.cycle]
            return tuple(this_cycle) if len(this_cycle) == 1 else ()
        return tuple(self._answers(agent, env, d.cycle)[0])

    def _answers(self, agent: n.Agent, env: Mapping[str, Any], cycle: int | None = None
                 ) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
        """The ``tool_call`` events of ``agent``'s calls for the match ``env`` (up to
        ``cycle``), in call order, and ``env`` with each answer bound to its call's
        name; the list stops at the first call the trace does not answer (its
        arguments cannot be evaluated, it was never made, or it failed)."""
        interp = self.interp
        assert interp is not None
        name = agent.name.name
        made = [c for c in self.view.tool_calls if c.get("agent") == name
                and (cycle is None or int(c.get("cycle", 0)) <= cycle)]
        found: list[Mapping[str, Any]] = []
        bound = dict(env)
        for call in agent.calls:
            try:
                args = {a.name.name: interp.eval(a.value, bound) for a in call.args}
            except EvalError:
                break
            same = [c for c in made if c.get("tool") == call.tool.name
                    and _same_values(c.get("args", {}), args)]
            if not same:
                break
            found.append(same[-1])  # the latest: an earlier answer may have been retried
            if same[-1].get("error") is not None:
                break
            bound[call.alias.name] = same[-1].get("result")
        return found, bound

    def _env(self, agent: n.Agent | None, support: Sequence[int]) -> dict[str, Any]:
        """The bindings of ``agent``'s match on ``support``, whole facts included."""
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
        return env

    def tree_lines(self, node: Node, indent: str = "") -> list[str]:
        """A tree as indented text lines."""
        head = indent + self.show(node.fact)
        if node.removed:
            head += f"  [no longer in the context: {node.removed}]"
        if node.input:
            head += "  — input fact"
        lines = [head]
        if node.evaluations:
            lines.append(f"{indent}  {_evaluations_text(node)}")
        for conflict in node.won:
            lines.append(f"{indent}  won a conflict in cycle {conflict.cycle} against "
                         + "; ".join(self.show(Fact(conflict.type, dict(loser)))
                                     for loser in conflict.losers)
                         + (f" ({conflict.reason})" if conflict.reason else ""))
        for step in node.steps:
            where = f" at {step.span}" if step.span else ""
            confidence = f", confidence {step.confidence!r}" \
                if step.confidence is not None and step.confidence != 1.0 else ""
            lasting = " (lasting: stays when the facts below go)" if step.lasting else ""
            lines.append(f"{indent}  by agent {step.agent}{where} in cycle {step.cycle}"
                         + confidence + lasting)
            if step.bindings:
                lines.append(f"{indent}    with " + ", ".join(
                    f"{k} = {format_value(v)}" for k, v in sorted(step.bindings.items())))
            lines.extend(f"{indent}    tool {tool_call_text(c)}" for c in step.calls)
            if step.support:
                lines.append(f"{indent}    from")
                for child in step.support:
                    lines.extend(self.tree_lines(child, indent + "      "))
        if node.more:
            lines.append(f"{indent}  … {node.more} more "
                         + ("derivation" if node.more == 1 else "derivations")
                         + " not shown")
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
            "score": node.score,
            "evaluations": [{"agent": a, "score": score, "reason": reason}
                            for a, score, reason in node.evaluations],
            "derivations": [
                {"agent": s.agent, "cycle": s.cycle,
                 "span": str(s.span) if s.span else None,
                 "bindings": dict(sorted(s.bindings.items())),
                 "confidence": s.confidence,
                 "tool_calls": [{k: c.get(k) for k in ("tool", "args", "result", "error")}
                                for c in s.calls],
                 "support": [self.tree_json(c) for c in s.support],
                 **({"lasting": True} if s.lasting else {})}
                for s in node.steps
            ],
            "truncated": node.truncated,
            "more_derivations": node.more,
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
        reasons.extend(self._gated(pattern, env))
        for agent in (self.checked.agents if self.checked else ()):
            # every output of the type: an agent may emit it more than once
            outputs = [o for o in agent.outputs if isinstance(o, n.Emit | n.Intend)
                       and o.type.name == pattern.type.name]
            if outputs:
                reasons.append(self._agent_reason(agent, outputs, pattern, env))
        return reasons

    def _gated(self, pattern: n.Pattern, env: Mapping[str, Any]) -> list[Reason]:
        """The facts matching ``pattern`` that an approval gate holds at the end, or
        that were rejected there: derived, but not in the context for that."""
        assert self.interp is not None
        held: dict[str, Mapping[str, Any]] = {}
        said: list[Reason] = []
        for ev in self.view.approval_events:
            ident = str(ev.get("id"))
            kind = ev.get("event")
            if kind == "approval_pending":
                held[ident] = ev
                continue
            pending = held.pop(ident, None)
            if pending is None or kind != "approval_decided" \
                    or ev.get("decision") != "reject":
                continue
            fact = Fact(str(pending["type"]), dict(pending["fields"]))
            if self.interp.match_fact(pattern, fact, env, tolerant=True) is not None:
                said.append(Reason(None, None, f"{self.show(fact)} was rejected at the "
                                   f"approval gate on {pending['gate']} ({ident}, cycle "
                                   f"{ev.get('cycle')})"))
        for ident, still in held.items():
            fact = Fact(str(still["type"]), dict(still["fields"]))
            if self.interp.match_fact(pattern, fact, env, tolerant=True) is not None:
                said.append(Reason(None, None, f"{self.show(fact)} is held by the approval "
                                   f"gate on {still['gate']}, pending {ident} since cycle "
                                   f"{still.get('cycle')}: it enters when approved"))
        return said

    def _producer(self, fid: int) -> str | None:
        derivations = self.view.derivations.get(fid)
        return derivations[0].agent if derivations else None

    def _agent_reason(self, agent: n.Agent, outputs: Sequence[n.Emit | n.Intend],
                      target: n.Pattern, want: Mapping[str, Any]) -> Reason:
        """Why ``agent`` produced no fact matching ``target``: for each of its
        ``outputs`` of the type, the first condition that fails for the matches that
        would emit the asked fact; the output that got furthest speaks, but one that
        emits the asked key with other values says most of all."""
        best: tuple[tuple[int, int, int], Reason] | None = None
        for output in outputs:
            rank, reason = self._output_reason(agent, output, target, want)
            if best is None or rank > best[0]:
                best = (rank, reason)
        assert best is not None
        return best[1]

    def _output_reason(self, agent: n.Agent, output: n.Emit | n.Intend,
                       target: n.Pattern, want: Mapping[str, Any]
                       ) -> tuple[tuple[int, int, int], Reason]:
        """How far ``agent`` got towards emitting the asked fact with ``output`` and the
        condition that failed. The rank, higher is further: first 1 when a match
        would emit the asked fact, or emits its key with other values (0 otherwise),
        then the number of conditions passed (-1 when its matches emit other values),
        then how many asked fields the quoted fact agrees with.

        The asked fact fixes the variables the output copies into the fields it asks
        about (``emit Pay(id: id)`` asked as ``Pay(id: "b")`` needs ``id = "b"``): a
        match that binds such a variable to another value cannot produce it, so it is
        left out as soon as the variable is bound, and each condition is judged on the
        matches that remain (never on another key's)."""
        interp = self.interp
        assert interp is not None
        name = agent.name.name
        needs = self._needs(output, target, want)
        envs: list[dict[str, Any]] = [{}]
        for step, pattern in enumerate(agent.patterns):
            if pattern.negated:
                kept = [e for e in envs if not any(True for _ in interp.matches(pattern, e))]
                if not kept:
                    blocker = next(f for f, _ in interp.matches(pattern, envs[0]))
                    return (0, step, 0), Reason(name, pattern.span,
                                        f"`{format_pattern(pattern)}` failed: "
                                        f"{self.show(blocker)} exists" + _given(envs[0]))
                envs = kept
                continue
            grown: list[dict[str, Any]] = []
            for e in envs:
                grown.extend(bound for _, bound in self._matches(pattern, e))
                if len(grown) > MAX_MATCHES:
                    break
            fitting = [e for e in grown if _fits(e, needs)]
            if not grown and not needs:
                return (0, step, 0), Reason(name, pattern.span,
                                    f"no fact matches `{format_pattern(pattern)}`"
                                    + _given(envs[0]))
            if not fitting:  # none with the values the asked fact needs, if any at all
                asked = {**envs[0], **needs}
                return (0, step, 0), Reason(
                    name, pattern.span,
                    f"no fact matches `{self.pattern_with(pattern, asked)}`, which "
                    f"`{self.pattern_with(target, want)}` needs" + _given(envs[0]))
            envs = fitting[:MAX_MATCHES]
        step = len(agent.patterns)
        failed: list[dict[str, Any]] = []
        if agent.where is not None:
            passed: list[dict[str, Any]] = []
            for e in envs:
                try:
                    ok = interp.eval(agent.where, e)
                except EvalError as exc:
                    return (0, step, 0), Reason(name, agent.where.span,
                                        f"`where {format_expr(agent.where)}` cannot be "
                                        f"evaluated: {exc.message}" + _given(e))
                (passed if ok else failed).append(e)
            would = [e for e in failed if self._could_emit(output, e, target, want)]
            if not passed:
                return (0, step, 0), self._guard_false(agent, agent.where, would or failed)
            envs = passed
        step += 1
        discarded = [(c, why) for a, c, why in self.view.effects_discarded if a == name]
        answered: dict[int, list[Mapping[str, Any]]] = {}
        if agent.calls:
            # the answers the trace holds for the calls of each match
            resolved: list[dict[str, Any]] = []
            failures: list[Mapping[str, Any]] = []
            for e in envs:
                calls, bound = self._answers(agent, e)
                if len(calls) == len(agent.calls) and calls[-1].get("error") is None:
                    answered[len(resolved)] = calls
                    resolved.append(bound)
                elif calls and calls[-1].get("error") is not None:
                    failures.append(calls[-1])
            if not resolved and failures:
                cycle = failures[0].get("cycle")
                why = f"its effect was discarded in cycle {cycle}: tool" if any(
                    c == cycle for c, _ in discarded) else "tool"
                return (0, step, 0), Reason(name, agent.calls[0].span,
                                    f"its patterns and guard match, but {why} "
                                    f"{tool_call_text(failures[0])}", matched=True)
            if not resolved and discarded:
                return (0, step, 0), Reason(name, agent.span,
                                    f"its patterns and guard match, but its effect was "
                                    f"discarded in cycle {discarded[0][0]}: "
                                    f"{discarded[0][1]}" + self._calls_made(name),
                                    matched=True)
            if not resolved:
                return (0, step, 0), Reason(name, agent.calls[0].span,
                                    f"its patterns and guard match, but it calls tool "
                                    f"`{agent.calls[0].tool.name}`"
                                    + (self._calls_made(name) or
                                       "; look for its tool_call and effect events in "
                                       "the trace"), matched=True)
            envs = resolved
        closest = None
        closest_env: Mapping[str, Any] = {}
        closest_calls: list[Mapping[str, Any]] = []
        agreement = -1
        for i, e in enumerate(envs):
            fact = self._emitted(output, e)
            if interp.match_fact(target, fact, want, tolerant=True) is not None:
                failed_here = self._failed_output(name, output, e, discarded)
                if failed_here is not None:
                    return (1, step + 2, 0), failed_here
                if discarded:
                    cycle, why = discarded[0]
                    return (1, step + 2, 0), Reason(
                        name, agent.span, f"matches and would emit {self.show(fact)}, but "
                        f"its effect was discarded in cycle {cycle}: {why}", matched=True)
                return (1, step + 2, 0), Reason(
                    name, output.span, f"matches and would emit {self.show(fact)}"
                    + _using(answered.get(i, ())) + "; it may have lost a conflict, been "
                    "retracted, or held or rejected at an approval gate (see above), or "
                    "the context changed after it ran",
                    matched=True)
            agrees = self._agreement(target, fact, want)
            if agrees > agreement:  # the first of the closest to the asked fact
                closest, closest_calls, agreement = fact, answered.get(i, []), agrees
                closest_env = e
        would = [e for e in failed if self._could_emit(output, e, target, want)]
        if would and agent.where is not None:
            return (0, step - 1, 0), self._guard_false(agent, agent.where, would)
        assert closest is not None
        failed_closest = self._failed_output(name, output, closest_env, discarded)
        if failed_closest is not None:
            rank = (int(self._same_key(target, closest, want)), step + 1, agreement)
            return rank, failed_closest
        # the least telling answer: another output's failed condition says more,
        # unless this one emits the asked key (with other values)
        rank = (int(self._same_key(target, closest, want)), -1, agreement)
        return rank, Reason(name, output.span,
                            f"matches, but emits {self.show(closest)}"
                            + _using(closest_calls) + ", which is not "
                            f"`{self.pattern_with(target, want)}`", matched=True)

    def _matches(self, pattern: n.Pattern, env: Mapping[str, Any]
                 ) -> Iterator[tuple[Fact, dict[str, Any]]]:
        """The matches of a positive ``pattern`` that its agent saw: live facts, and
        for an intent pattern the intents closed during the run too (an agent that
        answered an intent closed it, so the final context no longer has it)."""
        interp = self.interp
        assert interp is not None
        yield from interp.matches(pattern, env)
        if pattern.intent:
            for fid in sorted(self.view.closed):
                bound = interp.match_fact(pattern, self.view.facts[fid], env)
                if bound is not None:
                    yield self.view.facts[fid], bound

    def _asked(self, target: n.Pattern, want: Mapping[str, Any]) -> dict[str, Any]:
        """The values ``target`` asks its fields to hold (a field left free, or `_`,
        asks nothing)."""
        interp = self.interp
        assert interp is not None
        asked: dict[str, Any] = {}
        for fm in target.fields:
            try:
                constrains, value = interp.field_expected(target.type.name, fm, want)
            except EvalError:
                continue
            if constrains:
                asked[fm.field.name] = value
        return asked

    def _agreement(self, target: n.Pattern, fact: Fact, want: Mapping[str, Any]) -> int:
        """How many of the fields ``target`` asks about ``fact`` holds as asked."""
        return sum(1 for name, value in self._asked(target, want).items()
                   if name in fact.values
                   and values_equal(fact.values[name], value, tolerant=True))

    def _same_key(self, target: n.Pattern, fact: Fact, want: Mapping[str, Any]) -> bool:
        """Whether ``target`` asks about every key field of its type and ``fact``
        holds each as asked: it is the asked fact, with other values."""
        decl = self.checked.facts.get(target.type.name) if self.checked else None
        keys = [k.name.name for k in decl.keys] if decl is not None else []
        asked = self._asked(target, want)
        return bool(keys) and all(
            k in asked and k in fact.values
            and values_equal(fact.values[k], asked[k], tolerant=True) for k in keys)

    def _needs(self, output: n.Emit | n.Intend, target: n.Pattern,
               want: Mapping[str, Any]) -> dict[str, Any]:
        """The variables ``output`` copies as they are into a field ``target`` asks
        for, with the asked values (``emit Pay(id: id)`` asked as ``Pay(id: "b")``:
        ``{"id": "b"}``)."""
        asked = self._asked(target, want)
        needs: dict[str, Any] = {}
        for arg in output.args:
            value = arg.value
            if arg.name.name in asked and isinstance(value, n.Name) \
                    and not self._is_constant(value, output.type.name, arg.name.name):
                needs[value.id] = asked[arg.name.name]
        return needs

    def _is_constant(self, name: n.Name, type_name: str, field_name: str) -> bool:
        """Whether a bare name given to a field is an enum member (as the checker
        reads it: a member of the field's own enum), not a variable."""
        interp = self.interp
        assert interp is not None
        enum = interp.field_enums.get((type_name, field_name))
        return enum is not None and interp.is_member(name.id, enum)

    def _emitted(self, output: n.Emit | n.Intend, env: Mapping[str, Any]) -> Fact:
        """The fact ``output`` emits under ``env`` (a value it cannot evaluate is
        none)."""
        interp = self.interp
        assert interp is not None
        values = {}
        for arg in output.args:
            try:
                values[arg.name.name] = interp.eval(arg.value, env)
            except EvalError:
                values[arg.name.name] = None
        return Fact(output.type.name, self._with_defaults(output.type.name, values))

    def _failed_output(self, name: str, output: n.Emit | n.Intend,
                       env: Mapping[str, Any], discarded: Sequence[tuple[int, str]]
                       ) -> Reason | None:
        """Why ``output`` emits nothing under ``env`` when one of its values cannot be
        evaluated (a division by zero, an overflow…): the effect the trace says was
        discarded, else the failure itself; None when every value evaluates. The none
        :meth:`_emitted` shows for such a value is not what the agent emitted."""
        interp = self.interp
        assert interp is not None
        for arg in output.args:
            try:
                interp.eval(arg.value, env)
            except EvalError as exc:
                said = (f"its effect was discarded in cycle {discarded[0][0]}: "
                        f"{discarded[0][1]}") if discarded else (
                        f"`{format_expr(arg.value)}` cannot be evaluated: {exc.message}")
                return Reason(name, arg.value.span, f"matches, but emits nothing: {said}"
                              + _given(env), matched=True)
        return None

    def _could_emit(self, output: n.Emit | n.Intend, env: Mapping[str, Any],
                    target: n.Pattern, want: Mapping[str, Any]) -> bool:
        """Whether ``output`` under ``env`` emits a fact matching ``target``, were
        the guard true (values that cannot be evaluated, such as a tool's answer,
        are taken to match)."""
        interp = self.interp
        assert interp is not None
        values: dict[str, Any] = {}
        for arg in output.args:
            try:
                values[arg.name.name] = interp.eval(arg.value, env)
            except EvalError:
                continue
        fact = Fact(output.type.name, self._with_defaults(output.type.name, values))
        bound = dict(want)
        for fm in target.fields:
            if fm.field.name not in values and any(
                    a.name.name == fm.field.name for a in output.args):
                continue  # not known before the agent runs
            if fm.field.name not in fact.values:
                return False
            try:
                constrains, expected = interp.field_expected(target.type.name, fm, bound)
            except EvalError:
                continue
            if constrains and not values_equal(fact.values[fm.field.name], expected,
                                               tolerant=True):
                return False
        return True

    def _guard_false(self, agent: n.Agent, guard: n.Expr,
                     envs: Sequence[Mapping[str, Any]]) -> Reason:
        """The guard was false: for the one match that would produce the asked fact,
        the values the guard read; for several, the first of them as an example."""
        shown = self._guard_values(guard, envs[0])
        if len(envs) == 1:
            message = f"`where {format_expr(guard)}` was false" + (
                ": " + shown if shown else "")
        else:
            message = f"`where {format_expr(guard)}` was false for every match" + (
                f" ({len(envs)}), e.g. " + shown if shown else f" ({len(envs)})")
        return Reason(agent.name.name, guard.span, message)

    def _guard_values(self, guard: n.Expr, env: Mapping[str, Any]) -> str:
        """``name = value`` for the variables, fields of bound facts and aggregates
        the guard reads, in written order."""
        interp = self.interp
        assert interp is not None
        parts: dict[str, str] = {}
        skip: set[int] = set()
        for sub in n.walk_expr(guard):
            if id(sub) in skip:
                continue
            if isinstance(sub, n.Aggregate):
                skip.update(id(s) for s in n.walk_expr(sub))
            elif isinstance(sub, n.Attribute) and isinstance(sub.value, n.Name) \
                    and isinstance(env.get(sub.value.id), Fact):
                skip.add(id(sub.value))
            elif not (isinstance(sub, n.Name) and sub.id in env
                      and not isinstance(env[sub.id], Fact)):
                continue
            text = format_expr(sub)
            if text in parts:
                continue
            try:
                parts[text] = format_value(interp.eval(sub, env))
            except EvalError:
                continue
        return ", ".join(f"{k} = {v}" for k, v in parts.items())

    def _calls_made(self, agent: str) -> str:
        """The tool calls ``agent`` made in the run and their answers, as a clause
        (empty when it made none)."""
        calls = [c for c in self.view.tool_calls if c.get("agent") == agent]
        if not calls:
            return ""
        shown = "; ".join(tool_call_text(c) for c in calls[:MAX_CALLS_SHOWN])
        more = f"; … and {len(calls) - MAX_CALLS_SHOWN} more" \
            if len(calls) > MAX_CALLS_SHOWN else ""
        return f"; its tool calls: {shown}{more}"

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


def _fits(env: Mapping[str, Any], needs: Mapping[str, Any]) -> bool:
    """Whether the variables ``env`` has bound hold the values ``needs`` asks for."""
    return all(values_equal(env[k], v, tolerant=True) for k, v in needs.items() if k in env)


def tool_call_text(call: Mapping[str, Any]) -> str:
    """A ``tool_call`` trace event as ``tool(arg: value, …) answered {…}`` (or
    ``failed: reason``)."""
    args = ", ".join(f"{k}: {format_value(v)}" for k, v in call.get("args", {}).items())
    head = f"{call.get('tool')}({args})"
    if call.get("error") is not None:
        return f"{head} failed: {call['error']}"
    return f"{head} answered {format_value(call.get('result'))}"


def _using(calls: Sequence[Mapping[str, Any]]) -> str:
    """`` (tool fx(…) answered {…}, …)`` for the tool answers an emitted fact rests on."""
    if not calls:
        return ""
    return " (tool " + "; tool ".join(tool_call_text(c) for c in calls) + ")"


def _evaluations_text(node: Node) -> str:
    """``score 0.9, by agent judge ("short")``; for several evaluations, their mean
    and each of them."""
    each = [f"{score!r} by agent {agent}" + (f" ({format_value(reason)})" if reason else "")
            for agent, score, reason in node.evaluations]
    if len(each) == 1:
        return f"score {each[0]}"
    return f"score {node.score!r}, the mean of " + "; ".join(each)


def _same_values(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
