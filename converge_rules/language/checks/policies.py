"""Checks of conflict policies (CVG4xx)."""

from __future__ import annotations

from converge_rules.language.checks.exprs import Typer
from converge_rules.language.checks.scope import UNKNOWN_FIELD, UNKNOWN_TYPE
from converge_rules.language.checks.strata import producers
from converge_rules.language.diagnostics.core import Related, Severity, define
from converge_rules.language.diagnostics.suggest import did_you_mean
from converge_rules.language.syntax.nodes import (
    Agent,
    ByCycle,
    ByField,
    ByMajority,
    ByPriority,
    ByResolver,
    Combine,
    Criterion,
    KeepAll,
    Policy,
    Resolve,
)
from converge_rules.language.syntax.span import Span

_HEAD = ("ruleset r\nfact Cost { key sku: str, amount: float }\n"
         "fact Note { sku: str, text: str }\n"
         "fact Price { key sku: str, amount: float, source: str }\n"
         "agent a {\n  when Cost(sku, amount)\n"
         '  emit Price(sku: sku, amount: amount, source: "a")\n}\n'
         "agent b {\n  when Cost(sku, amount)\n"
         '  emit Price(sku: sku, amount: amount * 2, source: "b")\n}\n')

POLICY_TYPE = define(
    "CVG401", "policy-type", Severity.ERROR, "Policy on an intent type",
    "Policies resolve conflicts between facts; intents are requests and are not "
    "resolved by policies.",
    wrong="ruleset r\nintent NeedRate { currency: str }\n"
          "policy NeedRate { resolve by latest }\n",
    right="ruleset r\nfact Rate { key currency: str, usd: float }\n"
          "policy Rate { resolve by latest }\n",
)
UNKEYED_POLICY = define(
    "CVG402", "policy-unkeyed", Severity.ERROR, "Policy on a type without key fields",
    "A type without `key` fields never conflicts, so a policy for it never applies. Mark "
    "the identifying fields with `key`.",
    wrong=_HEAD + "policy Note { resolve by latest }\n"
          "policy Price { resolve by lowest amount }\n",
    right=_HEAD + "policy Price { resolve by lowest amount }\n",
)
KEEP_ALL_UNKEYED = define(
    "CVG403", "keep-all-unkeyed", Severity.WARNING, "`keep all` on a type without keys",
    "`keep all` turns the key off, but the type has no key: the policy does nothing.",
    wrong=_HEAD + "policy Note { keep all }\npolicy Price { keep all }\n",
    right=_HEAD + "policy Price { keep all }\n",
)
POLICY_FIELD = define(
    "CVG404", "policy-field", Severity.ERROR, "Policy criterion on an unusable field",
    "`highest`/`lowest` order candidates by a field (or `confidence`/`score`): it must "
    "exist and be orderable (a number, a string, a date, a datetime or a duration), and "
    "not be a key field, which all "
    "candidates share.",
    wrong=_HEAD + "policy Price { resolve by lowest amout }\n",
    right=_HEAD + "policy Price { resolve by lowest amount }\n",
)
COMBINE_FIELD = define(
    "CVG405", "combine-field", Severity.ERROR, "`combine` on a non-numeric field",
    "`combine sum|min|max|mean FIELD` merges the candidates' numbers into one fact: FIELD "
    "must be an int or float field that is not a key, and a float field for `mean`.",
    wrong=_HEAD + "policy Price { combine mean source }\n",
    right=_HEAD + "policy Price { combine mean amount }\n",
)
PRIORITY_AGENT = define(
    "CVG406", "priority-agent", Severity.ERROR, "`priority` names an unknown agent",
    "`priority [a, b]` lists agents, earlier wins; every name must be a declared agent.",
    wrong=_HEAD + "policy Price { resolve by priority [a, c] }\n",
    right=_HEAD + "policy Price { resolve by priority [a, b] }\n",
)
UNKNOWN_RESOLVER = define(
    "CVG407", "unknown-resolver", Severity.ERROR, "Unknown resolver",
    "`using NAME` names a resolver a plugin registers. When the installed resolvers are "
    "known, an unknown name is an error. (This example assumes plugins register the "
    "resolver `vendor_rank` only.)",
    wrong=_HEAD + "policy Price { resolve by using vendor_rnak }\n",
    right=_HEAD + "policy Price { resolve by using vendor_rank }\n",
)
DUPLICATE_CRITERION = define(
    "CVG408", "duplicate-criterion", Severity.WARNING, "Criterion repeated",
    "A criterion that repeats an earlier one (the same field, or `latest` after "
    "`earliest`) can never decide anything.",
    wrong=_HEAD + "policy Price { resolve by lowest amount, then highest amount }\n",
    right=_HEAD + "policy Price { resolve by lowest amount, then latest }\n",
)
NO_POLICY = define(
    "CVG409", "missing-policy", Severity.WARNING,
    "Keyed type emitted by several agents without a policy",
    "Two or more agents emit a keyed type and no policy says how their conflicts are "
    "resolved; at run time a conflict fails the job with status `conflict`.",
    wrong=_HEAD,
    right=_HEAD + "policy Price { resolve by highest confidence, then lowest amount }\n",
)
DUPLICATE_POLICY = define(
    "CVG410", "duplicate-policy", Severity.ERROR, "Two policies for one type",
    "A fact type has at most one policy, across all imported files.",
    wrong=_HEAD + "policy Price { resolve by lowest amount }\npolicy Price { resolve by "
          "latest }\n",
    right=_HEAD + "policy Price { resolve by lowest amount, then latest }\n",
)


def check_policies(typer: Typer, policies: list[Policy], agents: tuple[Agent, ...]) -> None:
    """Check every policy, then warn about keyed types emitted by several agents with no
    policy."""
    first: dict[str, Policy] = {}
    for policy in policies:
        name = policy.type.name
        if name in first:
            typer.r.error(DUPLICATE_POLICY, policy.type.span, f"second policy for `{name}`",
                          "merge the two policies into one",
                          (Related(first[name].span, "first policy here"),))
        else:
            first[name] = policy
        _check_policy(typer, policy)
    made = producers(agents)
    for name, emitters in made.items():
        decl = typer.t.facts.get(name)
        if decl is None or decl.intent or not decl.keys or name in first:
            continue
        distinct = {a.name.name for a in emitters}
        if len(distinct) < 2:
            continue
        names = ", ".join(f"`{a}`" for a in sorted(distinct))
        typer.r.warning(NO_POLICY, decl.name.span,
                        f"keyed type `{name}` is emitted by {names} and has no policy; "
                        "a conflict will fail the job",
                        f"add `policy {name} {{ resolve by … }}`",
                        tuple(Related(a.name.span, f"`{a.name.name}` emits {name}")
                              for a in emitters))


def _check_policy(typer: Typer, policy: Policy) -> None:
    t = typer.t
    name = policy.type.name
    decl = t.facts.get(name)
    if decl is None:
        typer.r.error(UNKNOWN_TYPE, policy.type.span, f"policy for unknown type `{name}`",
                      t.type_help(name, intent=False))
        return
    if decl.intent:
        typer.r.error(POLICY_TYPE, policy.type.span,
                      f"`{name}` is an intent type; policies apply to facts",
                      "remove the policy")
        return
    strategy = policy.strategy
    if not decl.keys:
        if isinstance(strategy, KeepAll):
            typer.r.warning(KEEP_ALL_UNKEYED, policy.type.span,
                            f"`keep all` on `{name}`, which has no key fields, does nothing",
                            "remove the policy")
        else:
            typer.r.error(UNKEYED_POLICY, policy.type.span,
                          f"`{name}` has no key fields, so it never conflicts",
                          f"mark the identifying fields of {name} with `key`, or remove "
                          "the policy")
        return
    if isinstance(strategy, Combine):
        f = t.field_of(name, strategy.field.name)
        if f is None:
            _unknown_field(typer, name, strategy.field.name, strategy.field.span)
        elif f.key or not typer.of_field(f).is_numeric or typer.of_field(f).is_any:
            why = "a key field" if f.key else f"of type {typer.of_field(f)}"
            typer.r.error(COMBINE_FIELD, strategy.field.span,
                          f"cannot combine `{strategy.field.name}`: it is {why}",
                          "combine a numeric field that is not a key")
        elif strategy.func == "mean" and typer.of_field(f).kind == "int":
            # the mean of ints is not an int: the fact would hold a float in an int field
            typer.r.error(COMBINE_FIELD, strategy.field.span,
                          f"cannot `combine mean` `{strategy.field.name}`: it is an int "
                          "field, and a mean is a float",
                          f"declare `{strategy.field.name}: float`, or combine with "
                          "`sum`, `min` or `max`")
    elif isinstance(strategy, Resolve):
        seen: dict[str, Criterion] = {}
        for c in strategy.criteria:
            _check_criterion(typer, name, c)
            k = _criterion_key(c)
            if k in seen:
                typer.r.warning(DUPLICATE_CRITERION, c.span,
                                "this criterion repeats an earlier one and never decides",
                                "remove it", (Related(seen[k].span, "first here"),))
            else:
                seen[k] = c


def _criterion_key(c: Criterion) -> str:
    if isinstance(c, ByField):
        return "field:" + c.field.name
    if isinstance(c, ByCycle):
        return "cycle"
    if isinstance(c, ByPriority):
        return "priority"
    if isinstance(c, ByMajority):
        return "majority"
    return "using:" + c.resolver.name


def _check_criterion(typer: Typer, type_name: str, c: Criterion) -> None:
    t = typer.t
    if isinstance(c, ByField):
        if c.field.name in ("confidence", "score"):
            return
        f = t.field_of(type_name, c.field.name)
        if f is None:
            _unknown_field(typer, type_name, c.field.name, c.field.span, pseudo=True)
            return
        ty = typer.of_field(f)
        if f.key:
            typer.r.error(POLICY_FIELD, c.field.span,
                          f"`{c.field.name}` is a key field; all candidates share it",
                          "order by a field that is not a key")
        elif not (ty.is_numeric or ty.kind in ("str", "date", "datetime", "duration")):
            typer.r.error(POLICY_FIELD, c.field.span,
                          f"cannot order by `{c.field.name}` of type {ty}",
                          "order by a number, string, date, datetime or duration field, "
                          "`confidence` or `score`")
    elif isinstance(c, ByPriority):
        for ident in c.agents:
            if ident.name not in t.agents:
                typer.r.error(PRIORITY_AGENT, ident.span, f"unknown agent `{ident.name}`",
                              t.vocabulary("agents").did_you_mean(
                                  ident.name, otherwise="list declared agents"))
    elif isinstance(c, ByResolver) and t.resolvers is not None \
            and c.resolver.name not in t.resolvers:
        known = sorted(t.resolvers)
        typer.r.error(UNKNOWN_RESOLVER, c.resolver.span,
                      f"unknown resolver `{c.resolver.name}`",
                      did_you_mean(c.resolver.name, known, otherwise=(
                          "installed resolvers: " + ", ".join(known) if known else
                          "no installed plugin registers a resolver")))


def _unknown_field(typer: Typer, type_name: str, field: str, span: Span,
                   *, pseudo: bool = False) -> None:
    typer.r.error(POLICY_FIELD if pseudo else UNKNOWN_FIELD, span,
                  f"{type_name} has no field `{field}`",
                  typer.t.field_help(type_name, field,
                                     also=("confidence", "score") if pseudo else ()))
