"""Checks of approval gates (``approve TYPE [when EXPR]``, CVG51x): a known fact type
(not an intent), one gate per type, a bool condition over the type's own fields (no
aggregate: a gate looks at one fact), and a warning for a gate no agent can reach
(input facts are never gated)."""

from __future__ import annotations

from collections.abc import Sequence

from converge_rules.language.checks.exprs import Typer
from converge_rules.language.checks.scope import UNKNOWN_TYPE, Binding, Scope
from converge_rules.language.diagnostics.core import Related, Severity, define
from converge_rules.language.syntax.nodes import Agent, Aggregate, Emit, Gate, walk_expr

_HEAD = ("ruleset r\nfact Claim { key id: str, amount: float }\n"
         "fact Payment { key claim: str, amount: float }\n"
         "agent pay { when Claim(id, amount) emit Payment(claim: id, amount: amount) }\n")

GATE_NOT_BOOL = define(
    "CVG510", "gate-not-bool", Severity.ERROR, "Approval gate condition is not a condition",
    "`approve T when EXPR` holds a fact of T for approval when EXPR is true for it: EXPR "
    "must be true or false (T's fields are in scope by name).",
    wrong=_HEAD + "approve Payment when amount\n",
    right=_HEAD + "approve Payment when amount > 10_000.0\n",
)
DUPLICATE_GATE = define(
    "CVG511", "duplicate-gate", Severity.ERROR, "Second approval gate for a type",
    "A type has at most one approval gate: its name in traces, results and decisions is "
    "the type's. Combine the conditions with `or`.",
    wrong=_HEAD + "approve Payment when amount > 10_000.0\n"
                  'approve Payment when claim == "vip"\n',
    right=_HEAD + 'approve Payment when amount > 10_000.0 or claim == "vip"\n',
)
GATE_ON_INTENT = define(
    "CVG512", "gate-on-intent", Severity.ERROR, "Approval gate on an intent type",
    "An intent is a request that agents answer, not an outcome that acts in the world: "
    "gate the fact type that the answering agent emits instead.",
    wrong="ruleset r\nintent Review { claim: str }\nfact Payment { key claim: str }\n"
          "approve Review\n",
    right="ruleset r\nintent Review { claim: str }\nfact Payment { key claim: str }\n"
          "approve Payment\n",
)
GATE_AGGREGATE = define(
    "CVG513", "gate-aggregate", Severity.ERROR, "Aggregate in an approval gate",
    "An approval gate looks at one fact at a time (its own fields); it cannot count or "
    "sum other facts. Derive a marker field or fact in an agent if the decision needs "
    "other facts.",
    wrong=_HEAD + "approve Payment when count(Payment()) > 10\n",
    right=_HEAD + "approve Payment when amount > 10_000.0\n",
)
GATE_UNREACHED = define(
    "CVG514", "gate-unreached", Severity.WARNING, "Approval gate no agent reaches",
    "Only facts that agents derive are held by a gate: input facts were approved by "
    "whoever gave them. A gate on a type that no agent emits never holds anything.",
    wrong="ruleset r\nfact Payment { key claim: str, amount: float }\n"
          "approve Payment when amount > 10_000.0\n",
    right=_HEAD + "approve Payment when amount > 10_000.0\n",
)


def check_gates(typer: Typer, gates: Sequence[Gate], agents: Sequence[Agent]) -> None:
    """Check every ``approve`` gate (see the module's docstring)."""
    emitted = {o.type.name for a in agents for o in a.outputs if isinstance(o, Emit)}
    seen: dict[str, Gate] = {}
    for gate in gates:
        name = gate.type.name
        decl = typer.t.facts.get(name)
        prior = seen.get(name)
        if prior is not None:
            typer.r.error(DUPLICATE_GATE, gate.span,
                          f"`{name}` already has an approval gate",
                          "combine the conditions with `or` in one `approve` line",
                          (Related(prior.span, "first gate here"),))
        else:
            seen[name] = gate
        if decl is None:
            typer.r.error(UNKNOWN_TYPE, gate.type.span,
                          f"approval gate on unknown type `{name}`",
                          typer.t.type_help(name, intent=False))
        elif decl.intent:
            typer.r.error(GATE_ON_INTENT, gate.type.span,
                          f"`{name}` is an intent type: an approval gate holds facts",
                          "gate the fact type that the agent answering the intent emits")
        elif name not in emitted:
            typer.r.warning(GATE_UNREACHED, gate.type.span,
                            f"no agent emits `{name}`, so this gate never holds a fact",
                            "input facts are not gated; gate a type that agents derive")
        if gate.condition is None:
            continue
        scope = Scope()
        if decl is not None:
            for f in decl.fields:
                scope.names[f.name.name] = Binding(typer.of_field(f), f.span, "var")
        typer.condition(gate.condition, scope, "the approval gate's condition",
                        GATE_NOT_BOOL)
        for e in walk_expr(gate.condition):
            if isinstance(e, Aggregate):
                typer.r.error(GATE_AGGREGATE, e.span,
                              f"an approval gate cannot use `{e.func}`",
                              "decide on the fact's own fields; derive what the decision "
                              "needs in an agent")
