"""Checks of the root intent and its budgets (CVG5xx) and of ``prune`` rules."""

from __future__ import annotations

from collections.abc import Mapping

from converge_rules.language.builtins import CLOCK_BUILTINS
from converge_rules.language.checks.exprs import NOT_BOOL, Typer
from converge_rules.language.checks.scope import UNKNOWN_TYPE, Binding, Scope
from converge_rules.language.checks.types import INT, assignable, from_text
from converge_rules.language.diagnostics.core import Related, Severity, define
from converge_rules.language.diagnostics.suggest import did_you_mean
from converge_rules.language.format.formatter import format_expr
from converge_rules.language.syntax.nodes import (
    Aggregate,
    Duration,
    Expr,
    FuncCall,
    ListExpr,
    Literal,
    Prune,
    PrunerUse,
    Root,
    Unary,
    walk_expr,
)

_HEAD = "ruleset r\nfact Alert { sku: str, message: str }\n"

BUDGETS: dict[str, str] = {
    "max_facts": "int",
    "max_cycles": "int",
    "max_agents": "int",
    "max_tool_calls": "int",
    "agent_timeout": "duration",
    "job_timeout": "duration",
    "max_string_length": "int",
    "max_list_length": "int",
}
"""The budgets a root may set and the kind of value each takes."""

SECOND_ROOT = define(
    "CVG501", "second-root", Severity.ERROR, "More than one root",
    "A job has one root intent. Across the entry file and its imports there may be at "
    "most one `root` block.",
    wrong=_HEAD + 'root "one" {\n  max_cycles = 10\n}\nroot "two" {\n  max_facts = 100\n}\n',
    right=_HEAD + 'root "one" {\n  max_cycles = 10\n  max_facts = 100\n}\n',
)
UNKNOWN_BUDGET = define(
    "CVG502", "unknown-budget", Severity.ERROR, "Unknown budget",
    "A root sets a budget that does not exist. Budgets: max_facts, max_cycles, "
    "max_agents, max_tool_calls, agent_timeout, job_timeout, max_string_length, "
    "max_list_length.",
    wrong=_HEAD + 'root "goal" {\n  max_cycle = 10\n}\n',
    right=_HEAD + 'root "goal" {\n  max_cycles = 10\n}\n',
)
BUDGET_VALUE = define(
    "CVG503", "budget-value", Severity.ERROR, "Budget value of the wrong kind",
    "`max_*` budgets take a positive whole number; `agent_timeout` and `job_timeout` "
    "take a positive duration (`250ms`, `2s`, `5m`).",
    wrong=_HEAD + 'root "goal" {\n  agent_timeout = 2\n}\n',
    right=_HEAD + 'root "goal" {\n  agent_timeout = 2s\n}\n',
)
REQUIRE_NOT_BOOL = define(
    "CVG504", "require-not-bool", Severity.ERROR, "`require` is not a condition",
    "A `require` line is a goal checked at convergence: it must be true or false.",
    wrong=_HEAD + 'root "goal" {\n  require count(Alert())\n}\n',
    right=_HEAD + 'root "goal" {\n  require count(Alert()) == 0\n}\n',
)
_QUOTE = "ruleset r\nfact Quote { key vendor: str, amount: float }\n"
UNKNOWN_PRUNER = define(
    "CVG805", "unknown-pruner", Severity.ERROR, "Unknown pruner",
    "`prune T using NAME` names a pruner a plugin registers (`converge plugins` lists "
    "them). When the installed pruners are known (`converge check` without "
    "`--no-plugins`, `converge run`), an unknown name is an error. The examples assume "
    "the pruner `ttl(cycles: int?)` of converge-example is installed.",
    wrong=_QUOTE + "prune Quote using tll(cycles: 7)\n",
    right=_QUOTE + "prune Quote using ttl(cycles: 7)\n",
)
PRUNER_ARGUMENT = define(
    "CVG806", "pruner-argument", Severity.ERROR, "Bad argument of a pruner",
    "A pruner's arguments are named, constant, and checked against the parameters its "
    "plugin declares: an unknown name, a value of the wrong type, a required parameter "
    "left out, or a value computed from names is an error.",
    wrong=_QUOTE + "prune Quote using ttl(days: 7)\n",
    right=_QUOTE + "prune Quote using ttl(cycles: 7)\n",
)
DUPLICATE_BUDGET = define(
    "CVG505", "duplicate-budget", Severity.ERROR, "Budget set twice",
    "A root sets the same budget twice; keep one.",
    wrong=_HEAD + 'root "goal" {\n  max_cycles = 10\n  max_cycles = 20\n}\n',
    right=_HEAD + 'root "goal" {\n  max_cycles = 20\n}\n',
)

PRUNE_AGGREGATE = define(
    "CVG211", "prune-aggregate", Severity.ERROR, "Aggregate in a prune condition",
    "A prune condition looks at one fact at a time (its fields and `age`); it cannot "
    "count or sum over the context.",
    wrong=_HEAD + "prune Alert when count(Alert(sku)) > 10\n",
    right=_HEAD + "prune Alert when age > 10\n",
)


def check_roots(typer: Typer, roots: list[Root]) -> None:
    """Check every root; all but the first are reported as extra."""
    for i, root in enumerate(roots):
        if i:
            typer.r.error(SECOND_ROOT, root.span, "a second `root`: a job has one root",
                          "merge the budgets and goals into one root",
                          (Related(roots[0].span, "first root here"),))
        _check_root(typer, root)


def _check_root(typer: Typer, root: Root) -> None:
    seen: dict[str, Related] = {}
    for b in root.budgets:
        name = b.name.name
        kind = BUDGETS.get(name)
        if kind is None:
            typer.r.error(UNKNOWN_BUDGET, b.name.span, f"unknown budget `{name}`",
                          did_you_mean(name, BUDGETS, otherwise="budgets: "
                                       + ", ".join(BUDGETS)))
            continue
        if name in seen:
            typer.r.error(DUPLICATE_BUDGET, b.name.span, f"budget `{name}` is set twice",
                          "keep one", (seen[name],))
        seen.setdefault(name, Related(b.span, "first set here"))
        v = b.value
        if kind == "duration":
            if not isinstance(v, Duration):
                typer.r.error(BUDGET_VALUE, v.span, f"`{name}` needs a duration",
                              f"write a unit, e.g. `{name} = {format_expr(v)}s` or `500ms`")
            elif v.milliseconds <= 0:
                typer.r.error(BUDGET_VALUE, v.span, f"`{name}` must be positive",
                              "give a duration above zero")
        elif not (isinstance(v, Literal) and type(v.value) is int and v.value > 0):
            typer.r.error(BUDGET_VALUE, v.span,
                          f"`{name}` needs a positive whole number, found `{format_expr(v)}`",
                          f"write e.g. `{name} = 1_000`")
    for req in root.requires:
        typer.condition(req.condition, Scope(), "`require`", REQUIRE_NOT_BOOL)

PRUNE_CLOCK = define(
    "CVG232", "prune-clock", Severity.ERROR, "`now()`/`today()` in a prune condition",
    "A prune condition looks at one fact at a time (its fields and `age`, in cycles); "
    "the job's time is read by agents, which derive what a prune, a policy or another "
    "agent needs from it.",
    wrong="ruleset r\nfact Quote { key sku: str, until: date }\n"
          "prune Quote when until < today()\n",
    right="ruleset r\nfact Quote { key sku: str, until: date }\n"
          "prune Quote when age > 10\n",
)
PRUNE_INTO = define(
    "CVG240", "prune-into", Severity.ERROR, "Unknown place for pruned facts",
    "`prune T when … into knowledge` moves the pruned facts into the job's knowledge "
    "store (agents query it with the `knowledge_find` tool) instead of dropping them; "
    "`knowledge` is the only place there is.",
    wrong="ruleset r\nfact Quote { key sku: str, amount: float }\n"
          "prune Quote when age > 10 into archive\n",
    right="ruleset r\nfact Quote { key sku: str, amount: float }\n"
          "prune Quote when age > 10 into knowledge\n",
)


def _check_pruner_use(typer: Typer, use: PrunerUse) -> None:
    known = typer.t.pruners
    name = use.name.name
    typer.args_unique(use.args)
    for arg in use.args:
        if not is_constant(arg.value):
            typer.r.error(PRUNER_ARGUMENT, arg.value.span,
                          f"the argument `{arg.name.name}` of pruner `{name}` is not a "
                          f"constant", "write a literal value: the pruner is set up once, "
                          "before the job runs")
    if known is None:
        return  # the installed pruners are not known (`--no-plugins`)
    sig = known.get(name)
    if sig is None:
        typer.r.error(UNKNOWN_PRUNER, use.name.span, f"unknown pruner `{name}`",
                      did_you_mean(name, sorted(known), otherwise=(
                          "installed pruners: " + ", ".join(sorted(known)) if known else
                          "no installed plugin registers a pruner (`converge plugins` "
                          "lists what is installed)")))
        return
    given = {a.name.name: a for a in use.args}
    for arg in use.args:
        want = sig.params.get(arg.name.name)
        if want is None:
            typer.r.error(PRUNER_ARGUMENT, arg.name.span,
                          f"pruner `{name}` has no parameter `{arg.name.name}`",
                          did_you_mean(arg.name.name, sorted(sig.params), otherwise=(
                              f"its parameters: {_params_text(sig.params)}" if sig.params
                              else f"it takes no arguments: write `using {name}`")))
            continue
        ty = from_text(want, typer.t.enums)
        got = typer.infer(arg.value, Scope(), ty)
        if ty is not None and not got.is_any and not assignable(got, ty):
            typer.r.error(PRUNER_ARGUMENT, arg.value.span,
                          f"the argument `{arg.name.name}` of pruner `{name}` is {got}, "
                          f"not {want}", f"give a value of type {want.rstrip('?')}")
    missing = [p for p, t in sig.params.items()
               if p not in given and not t.strip().endswith("?")]
    if missing:
        typer.r.error(PRUNER_ARGUMENT, use.span,
                      f"pruner `{name}` needs {', '.join(f'`{m}`' for m in missing)}",
                      f"write `using {name}({', '.join(f'{m}: …' for m in missing)})`; its "
                      f"parameters: {_params_text(sig.params)}")


def _params_text(params: Mapping[str, str]) -> str:
    return ", ".join(f"{p}: {t}" for p, t in params.items())


def is_constant(e: Expr) -> bool:
    """Whether ``e`` is a value written out: a literal, a negative number, or a list
    of those."""
    if isinstance(e, Literal | Duration):
        return True
    if isinstance(e, Unary) and e.op == "-":
        return isinstance(e.operand, Literal) and not isinstance(e.operand.value, str | bool)
    if isinstance(e, ListExpr):
        return all(is_constant(i) for i in e.items)
    return False


def check_prune(typer: Typer, prune: Prune) -> None:
    """Check ``prune T when EXPR`` (``age`` and T's fields are in scope) or ``prune T
    using NAME(…)`` (a known pruner, its arguments constants that match its
    parameters), and its ``into`` target (only ``knowledge``)."""
    if prune.into is not None and prune.into.name != "knowledge":
        typer.r.error(PRUNE_INTO, prune.into.span,
                      f"pruned facts cannot go into `{prune.into.name}`",
                      "write `into knowledge` to keep them in the job's knowledge store, "
                      "or leave `into …` out to drop them")
    scope = Scope()
    decl = typer.t.facts.get(prune.type.name)
    if decl is None:
        typer.r.error(UNKNOWN_TYPE, prune.type.span, f"prune of unknown type "
                      f"`{prune.type.name}`", typer.t.type_help(prune.type.name))
    if prune.using is not None:
        _check_pruner_use(typer, prune.using)
        return
    assert prune.condition is not None  # the parser gives a condition or a pruner
    if decl is not None:
        for f in decl.fields:
            scope.names[f.name.name] = Binding(typer.of_field(f), f.span, "var")
    scope.names.setdefault("age", Binding(INT, prune.span, "builtin"))
    typer.condition(prune.condition, scope, "the prune condition", NOT_BOOL)
    for e in walk_expr(prune.condition):
        if isinstance(e, FuncCall) and e.func.name in CLOCK_BUILTINS:
            typer.r.error(PRUNE_CLOCK, e.span,
                          f"a prune condition cannot read the job's time (`{e.func.name}()`)",
                          "derive a marker fact in an agent (`when q: Quote(valid_until) "
                          "where valid_until < today()`), or prune by `age`")
        if isinstance(e, Aggregate):
            typer.r.error(PRUNE_AGGREGATE, e.span,
                          f"a prune condition cannot use `{e.func}`",
                          "decide on the fact's own fields and `age`; derive a marker fact "
                          "in an agent if the decision needs other facts")
