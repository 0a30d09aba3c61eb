"""Checks of ``invariant`` items: a ``never`` invariant's patterns and ``where`` as an
agent's are checked (it binds names left to right, the guard is a bool), an
``always`` invariant's condition as a ``require``'s; names are unique."""

from __future__ import annotations

from collections.abc import Sequence

from converge_rules.language.checks.agents import check_agent
from converge_rules.language.checks.exprs import Typer
from converge_rules.language.checks.scope import DUPLICATE_DECL, Scope
from converge_rules.language.diagnostics.core import Related, Severity, define
from converge_rules.language.syntax.nodes import Invariant

_HEAD = ("ruleset r\nfact Payment { key id: str, amount: float }\n"
         "fact Limit { key id: str, max: float }\n")

INVARIANT_NOT_BOOL = define(
    "CVG506", "invariant-not-bool", Severity.ERROR, "`always` invariant is not a condition",
    "`invariant NAME always EXPR` is checked after every cycle: EXPR must be true or "
    "false (aggregates are allowed, as in `require`).",
    wrong=_HEAD + "invariant total always sum(Payment(), amount)\n",
    right=_HEAD + "invariant total always sum(Payment(), amount) <= 100_000.0\n",
)
INVARIANT_NEEDS_PATTERN = define(
    "CVG507", "invariant-needs-pattern", Severity.ERROR,
    "`never` invariant without a positive pattern",
    "`invariant NAME never …` forbids a match that a merged effect would create, so it "
    "needs a pattern that matches facts (not only `not …`). To demand that a fact "
    "exists, write an `always` invariant with `count`.",
    wrong=_HEAD + "invariant has_limit never not Limit()\n",
    right=_HEAD + "invariant has_limit always count(Limit()) > 0\n",
)


def check_invariants(typer: Typer, invariants: Sequence[Invariant]) -> None:
    """Check every invariant, and that no two share a name."""
    seen: dict[str, Invariant] = {}
    for inv in invariants:
        prior = seen.get(inv.name.name)
        if prior is not None:
            typer.r.error(DUPLICATE_DECL, inv.name.span,
                          f"invariant `{inv.name.name}` is already declared",
                          "give each invariant its own name: results and traces name it",
                          (Related(prior.name.span, "first declared here"),))
        else:
            seen[inv.name.name] = inv
        if inv.always:
            assert inv.condition is not None  # the parser gives `always` its condition
            typer.condition(inv.condition, Scope(), "an `always` invariant",
                            INVARIANT_NOT_BOOL)
            continue
        if not any(not p.negated for p in inv.patterns):
            typer.r.error(INVARIANT_NEEDS_PATTERN, inv.span,
                          f"invariant `{inv.name.name}` has no pattern that matches facts",
                          "write `invariant NAME always count(T()) > 0` to demand that a "
                          "fact exists")
        check_agent(typer, inv.as_agent())
