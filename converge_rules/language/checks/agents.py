"""Checks of agents: patterns, guard, tool calls and outputs, plus the field lists of
``emit``/``intend``/``given`` that the test checks share."""

from __future__ import annotations

from collections import Counter

from converge_rules.language.builtins import KNOWLEDGE_TOOL
from converge_rules.language.checks.checked import ToolSignature
from converge_rules.language.checks.exprs import MEMBER_TYPO, Typer
from converge_rules.language.checks.scope import (
    MISSING_FIELD,
    NOT_A_BINDER,
    UNKNOWN_FIELD,
    UNKNOWN_NAME,
    UNKNOWN_TYPE,
    USED_BEFORE_BOUND,
    Scope,
)
from converge_rules.language.checks.types import ANY, FLOAT, Ty, fact_ty
from converge_rules.language.diagnostics.core import Severity, define
from converge_rules.language.diagnostics.suggest import did_you_mean, one_edit_apart
from converge_rules.language.format.formatter import format_expr
from converge_rules.language.syntax.nodes import (
    Agent,
    Aggregate,
    Arg,
    Emit,
    Evaluate,
    Expr,
    Ident,
    Intend,
    Literal,
    Name,
    ToolCall,
    walk_expr,
)
from converge_rules.language.syntax.span import Span

_FACTS = "fact Cost { key sku: str, amount: float }\nfact Price { key sku: str, amount: float }\n"

NOT_A_NUMBER = define(
    "CVG207", "bad-score", Severity.ERROR, "Confidence or score is not a number in 0..1",
    "`confidence` and `score` take a number between 0 and 1.",
    wrong="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku, amount: amount) confidence 80\n}\n",
    right="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku, amount: amount) confidence 0.8\n}\n",
)
OUTPUT_KIND = define(
    "CVG208", "output-kind", Severity.ERROR, "emit of an intent, or intend of a fact",
    "`emit` proposes a fact, so it names a `fact` type; `intend` opens an intent, so it "
    "names an `intent` type.",
    wrong="ruleset r\nfact Quote { sku: str, currency: str }\nintent NeedRate { currency: str }"
          "\nagent a {\n  when Quote(currency)\n  emit NeedRate(currency: currency)\n}\n",
    right="ruleset r\nfact Quote { sku: str, currency: str }\nintent NeedRate { currency: str }"
          "\nagent a {\n  when Quote(currency)\n  intend NeedRate(currency: currency)\n}\n",
)
UNDECLARED_TOOL = define(
    "CVG801", "undeclared-tool", Severity.ERROR, "Call of a tool not declared with `uses tool`",
    "A ruleset lists the tools it may call with `uses tool A, B`: a capability list that "
    "a reviewer can audit. Calling any other tool is an error.",
    wrong="ruleset r\nfact Quote { sku: str, currency: str }\nfact Rate { key currency: str, "
          "usd: float }\nagent a {\n  when Quote(currency)\n  call fx_rate(currency: currency)"
          " as rate\n  emit Rate(currency: currency, usd: rate.usd)\n}\n",
    right="ruleset r\nuses tool fx_rate\nfact Quote { sku: str, currency: str }\nfact Rate { "
          "key currency: str, usd: float }\nagent a {\n  when Quote(currency)\n  call "
          "fx_rate(currency: currency) as rate\n  emit Rate(currency: currency, usd: rate.usd)"
          "\n}\n",
)
KNOWLEDGE_TYPE = define(
    "CVG807", "knowledge-type", Severity.WARNING,
    "`knowledge_find` looks for a type spelt like a fact type",
    "`call knowledge_find(type: \"T\", …)` finds the facts of type T that `prune … into "
    "knowledge` moved out of the context, and the summaries a plugin's "
    "`converge_summarize` made under that name. A `type` that is no fact (or intent) "
    "type of the ruleset but is spelt like one is most likely a typo: the call would "
    "find nothing, every time, without an error. (The fields of a type named there are "
    "checked too: one it does not have is CVG103.)",
    wrong="ruleset r\nuses tool knowledge_find\nfact Reading { key n: int, value: int }\n"
          "fact Recall { key n: int, seen: int }\n"
          "agent a {\n  when Reading(n)\n  call knowledge_find(type: \"Readings\", n: n - 1) as k\n"
          "  emit Recall(n: n, seen: k.count)\n}\n"
          "prune Reading when age >= 2 into knowledge\n",
    right="ruleset r\nuses tool knowledge_find\nfact Reading { key n: int, value: int }\n"
          "fact Recall { key n: int, seen: int }\n"
          "agent a {\n  when Reading(n)\n  call knowledge_find(type: \"Reading\", n: n - 1) as k\n"
          "  emit Recall(n: n, seen: k.count)\n}\n"
          "prune Reading when age >= 2 into knowledge\n",
)


def check_agent(typer: Typer, agent: Agent) -> None:
    """Check one agent, binding its variables left to right."""
    scope = Scope(later=_bound_later(agent))
    typer.member_typos.clear()
    for p in agent.patterns:
        if p.negated:  # what a negated pattern binds is not visible after it
            with scope.local():
                typer.pattern(p, scope, "bind")
        else:
            typer.pattern(p, scope, "bind")
    if agent.where is not None:
        typer.condition(agent.where, scope, "the `where` guard")
    for call in agent.calls:
        check_call(typer, call, scope)
    for out in agent.outputs:
        if isinstance(out, Emit):
            check_fields(typer, out.type, out.args, scope, intent=False, verb="emit")
            if out.confidence is not None:
                unit_number(typer, out.confidence, scope, "confidence")
        elif isinstance(out, Intend):
            check_fields(typer, out.type, out.args, scope, intent=True, verb="intend")
        else:
            _evaluate(typer, out, scope)
    _warn_member_typos(typer, agent)


def _warn_member_typos(typer: Typer, agent: Agent) -> None:
    """CVG117 for each new variable of an enum field spelt like a member that the
    agent uses nowhere else: it only matches any member, most likely a misspelt one."""
    if not typer.member_typos:
        return
    uses: Counter[str] = Counter()
    exprs: list[Expr] = []
    for p in agent.patterns:
        for fm in p.fields:
            if fm.value is None:
                uses[fm.field.name] += 1
            else:
                exprs.append(fm.value)
    exprs.extend(e for e in (agent.where,) if e is not None)
    exprs.extend(a.value for c in agent.calls for a in c.args)
    for out in agent.outputs:
        if isinstance(out, Emit | Intend):
            exprs.extend(a.value for a in out.args)
            if isinstance(out, Emit) and out.confidence is not None:
                exprs.append(out.confidence)
        else:
            exprs.append(out.score)
            uses[out.target.name] += 1
    for e in exprs:
        for sub in walk_expr(e):
            if isinstance(sub, Name):
                uses[sub.id] += 1
            elif isinstance(sub, Aggregate):  # `count(Quote(sku))` uses `sku`
                uses.update(fm.field.name for fm in sub.pattern.fields if fm.value is None)
    for name, span, enum, member in typer.member_typos:
        if uses[name] == 1:
            typer.r.warning(MEMBER_TYPO, span,
                            f"`{name}` binds a new variable, which matches any {enum}: it "
                            f"is not a member of {enum}, and nothing else uses it",
                            f"did you mean `{member}`? (`_` matches any value)")
    typer.member_typos.clear()


def _bound_later(agent: Agent) -> set[str]:
    names: set[str] = set()
    for p in agent.patterns:
        if p.negated:
            continue
        if p.binder is not None:
            names.add(p.binder.name)
        for fm in p.fields:
            if fm.value is None:
                names.add(fm.field.name)
            elif isinstance(fm.value, Name):
                names.add(fm.value.id)
    names.update(c.alias.name for c in agent.calls)
    return names


def check_call(typer: Typer, call: ToolCall, scope: Scope) -> None:
    """Check ``call TOOL(args) as NAME`` and bind NAME to the result."""
    tools = typer.t.tools
    args = typer.args_unique(call.args)
    result: Ty = ANY
    if call.tool.name not in tools:
        near = typer.t.vocabulary("tools").did_you_mean(call.tool.name)
        typer.r.error(UNDECLARED_TOOL, call.tool.span,
                      f"tool `{call.tool.name}` is not declared with `uses tool`",
                      (f"{near} Or " if near else "")
                      + f"add `uses tool {call.tool.name}` near the top of the file")
        for a in call.args:
            typer.infer(a.value, scope)
    else:
        sig = tools[call.tool.name]
        if sig is None:
            for a in call.args:
                typer.infer(a.value, scope)
        else:
            for arg in call.args:
                name = arg.name.name
                want = sig.args.get(name)
                if args.get(name) is not arg:
                    typer.infer(arg.value, scope)
                    continue
                if want is None and "*" in sig.args:  # an open tool takes any name
                    typer.infer(arg.value, scope)
                elif want is None:
                    typer.r.error(UNKNOWN_FIELD, arg.name.span,
                                  f"tool `{sig.name}` has no argument `{name}`",
                                  did_you_mean(name, sig.args, otherwise="arguments: "
                                               + ", ".join(sig.args)))
                    typer.infer(arg.value, scope)
                else:
                    typer.expect(arg.value, scope, typer.of_text(want),
                                 f"argument `{name}` of tool `{sig.name}`")
            missing = [n for n, t in sig.args.items()
                       if n != "*" and n not in args and not t.strip().endswith("?")]
            if missing:
                typer.r.error(MISSING_FIELD, call.tool.span,
                              f"call of `{sig.name}` is missing argument"
                              f"{'s' if len(missing) > 1 else ''} "
                              + ", ".join(f"`{m}`" for m in missing),
                              "add " + ", ".join(f"{m}: …" for m in missing))
            result = Ty("record", fields=tuple((k, typer.of_text(v))
                                               for k, v in sorted(sig.result.items())))
            check_knowledge_find(typer, sig, call.args)
    typer.bind(call.alias.name, result, call.alias.span, "tool", scope)


def check_knowledge_find(typer: Typer, sig: ToolSignature, args: tuple[Arg, ...]) -> None:
    """The arguments of a call or ``mock tool`` of the tool ``sig`` when it is
    ``knowledge_find(type: "T", field: value, …)``, the built-in tool that reads the
    job's knowledge (an open tool: the checker knows only ``type``; each argument given
    once, CVG110); any other tool's are not its business. When ``type``
    is written as a text, a fact type's other arguments must be its fields (the job
    would refuse the call), and a name that is no fact type but is spelt like one (or
    like an intent's, which a prune moves too) is most likely a typo (CVG807, one edit
    from the type's name: the call would find nothing; a summary's type, which a
    plugin names — ``ReadingStats`` — is not)."""
    if sig.name != KNOWLEDGE_TOOL or sig.args.get("type") != "str":
        return
    given = next((a for a in args if a.name.name == "type"), None)
    if given is None or not isinstance(given.value, Literal) or not isinstance(
            given.value.value, str):
        return  # (a type worked out at run time: the job checks it)
    kind = given.value.value
    if kind not in typer.t.facts:
        near = [t for t in typer.t.vocabulary("types").closest(kind)
                if one_edit_apart(kind, t)]
        if near:
            # the name, so an editor's "did you mean" quick fix can respell it
            typer.r.warning(KNOWLEDGE_TYPE, given.value.span.quoted(kind) or given.value.span,
                            f"`{KNOWLEDGE_TOOL}` looks for type `{kind}`, which is no fact "
                            "or intent type of this ruleset: the call finds only summaries "
                            "of that name", f"did you mean `{near[0]}`?")
        return
    for arg in args:
        name = arg.name.name
        if name != "type" and typer.t.field_of(kind, name) is None:
            typer.r.error(UNKNOWN_FIELD, arg.name.span,
                          f"{kind} has no field `{name}` (`{KNOWLEDGE_TOOL}` matches each "
                          "argument but `type` against a field)",
                          typer.t.field_help(kind, name))


def check_fields(typer: Typer, type_: Ident, args: tuple[Arg, ...], scope: Scope, *,
                 intent: bool | None, verb: str, span: Span | None = None) -> None:
    """Check ``Type(field: value, …)`` as an emit, intend or given: the type exists and
    is of the right kind, every field is declared, given once and of the right type,
    and every required field is present."""
    decl = typer.t.facts.get(type_.name)
    given = typer.args_unique(args)
    if decl is None:
        typer.r.error(UNKNOWN_TYPE, type_.span, f"unknown type `{type_.name}`",
                      typer.t.type_help(type_.name, intent=intent))
        for a in args:
            typer.infer(a.value, scope)
        return
    if intent is False and decl.intent:
        typer.r.error(OUTPUT_KIND, type_.span, f"`{type_.name}` is an intent type; "
                      f"`{verb}` needs a fact type", f"write `intend {type_.name}(…)`")
    elif intent is True and not decl.intent:
        typer.r.error(OUTPUT_KIND, type_.span, f"`{type_.name}` is a fact type; "
                      f"`{verb}` needs an intent type", f"write `emit {type_.name}(…)`")
    for a in args:
        fdecl = typer.t.field_of(type_.name, a.name.name)
        if fdecl is None:
            typer.r.error(UNKNOWN_FIELD, a.name.span,
                          f"{type_.name} has no field `{a.name.name}`",
                          typer.t.field_help(type_.name, a.name.name))
            typer.infer(a.value, scope)
        elif given.get(a.name.name) is a:
            typer.expect(a.value, scope, typer.of_field(fdecl),
                         f"field `{a.name.name}` of {type_.name}")
        else:
            typer.infer(a.value, scope)
    missing = [f.name.name for f in decl.fields
               if f.default is None and not f.type.optional and f.name.name not in given]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        typer.r.error(MISSING_FIELD, span or type_.span,
                      f"{verb} {type_.name} is missing field{plural} "
                      + ", ".join(f"`{m}`" for m in missing),
                      "add " + ", ".join(f"{m}: …" for m in missing)
                      + " (or give the field a default in its declaration)")


def unit_number(typer: Typer, e: Expr, scope: Scope, what: str) -> None:
    """Check that ``e`` is a number; a literal must also lie in 0..1."""
    ty = typer.infer(e, scope, FLOAT)
    if not ty.is_numeric or ty.optional:
        typer.r.error(NOT_A_NUMBER, e.span, f"{what} must be a number in 0..1, found {ty}",
                      f"write a {what} such as 0.8")
    elif isinstance(e, Literal) and not isinstance(e.value, bool | str) \
            and not 0 <= e.value <= 1:
        typer.r.error(NOT_A_NUMBER, e.span, f"{what} {format_expr(e)} is outside 0..1",
                      f"write a {what} between 0 and 1, e.g. 0.8")


def _evaluate(typer: Typer, out: Evaluate, scope: Scope) -> None:
    target = out.target.name
    bound = scope.names.get(target)
    if bound is None:
        if target in scope.later:
            typer.r.error(USED_BEFORE_BOUND, out.target.span,
                          f"`{target}` is used before it is bound",
                          "bind it in a `when` pattern")
        else:
            facts = [n for n, b in scope.names.items() if b.kind == "fact"]
            typer.r.error(UNKNOWN_NAME, out.target.span, f"unknown name `{target}`",
                          did_you_mean(target, facts,
                                       otherwise=f"bind the fact with `{target}: Type(…)`"))
    elif bound.kind != "fact" or bound.ty != fact_ty(bound.ty.name):
        typer.r.error(NOT_A_BINDER, out.target.span,
                      f"`{target}` is not bound to a whole fact (it is {bound.ty})",
                      f"bind the fact with `{target}: Type(…)` in the `when` line")
    unit_number(typer, out.score, scope, "score")


__all__ = ["check_agent", "check_call", "check_fields", "unit_number"]
