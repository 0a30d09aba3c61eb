"""``compile_ruleset``: a checked ruleset → a :class:`~converge_rules.program.Program`.

Types get ids in declaration order (load order: imports first); agents keep their
declaration order as merge order and are sorted by (tier, order). Each agent, prune
condition and ``require`` goal becomes generated Python source compiled once with
:func:`compile`; the source is kept on its spec so it can be shown
(``converge compile --show AGENT``) and is registered with :mod:`linecache`, so a
traceback through generated code shows the generated line.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import linecache
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from converge_rules.compiler.codegen import AgentGenerator, InvariantGenerator, aggregates_in
from converge_rules.compiler.context import Namespace, ProgramContext, Var
from converge_rules.compiler.expressions import ExprCompiler
from converge_rules.compiler.values import field_specs, result_type
from converge_rules.errors import CheckError, CompileError
from converge_rules.language.builtins import CLOCK_BUILTINS, TIME_KINDS
from converge_rules.language.checks.checked import CheckedRuleset
from converge_rules.language.format.formatter import format_expr, format_pattern
from converge_rules.language.syntax.nodes import (
    Arg,
    ByCycle,
    ByField,
    ByMajority,
    ByPriority,
    ByResolver,
    Combine,
    Duration,
    Expr,
    FuncCall,
    Gate,
    Invariant,
    KeepAll,
    ListExpr,
    Literal,
    Policy,
    Prune,
    PrunerUse,
    RejectAll,
    Require,
    Resolve,
    Root,
    Unary,
    walk_expr,
)
from converge_rules.language.syntax.span import Span
from converge_rules.program import (
    AgentSpec,
    Budgets,
    CriterionSpec,
    GateSpec,
    InvariantSpec,
    PolicySpec,
    Program,
    PruneSpec,
    RequireSpec,
    Resolver,
    TypeSpec,
    ValueType,
)

__all__ = ["CompileError", "compile_ruleset"]

_COUNT_BUDGETS = ("max_facts", "max_cycles", "max_agents", "max_tool_calls",
                  "max_string_length", "max_list_length")
_TIME_BUDGETS = ("agent_timeout", "job_timeout")


def compile_ruleset(
    checked: CheckedRuleset,
    *,
    functions: Mapping[str, Callable[..., Any]] | None = None,
    resolvers: Mapping[str, Resolver] | None = None,
    pruners: Mapping[str, PluginPruner] | None = None,
    registered_pruners: Mapping[str, PluginPruner] | None = None,
    route: bool = True,
) -> Program:
    """Compile a checked ruleset into a :class:`Program` the engine runs.

    What plugins provide is bound into the program here, so the engine looks nothing
    up by name: ``functions`` maps plugin function names to their implementations
    (built-ins need nothing); ``resolvers`` maps resolver names to the resolvers that
    ``resolve by using NAME`` calls; ``pruners`` are the plugin pruners to apply on
    this program, each added as a ``prune`` rule on every fact type it applies to
    (intents excluded), after the ruleset's own, in name order;
    ``registered_pruners`` are every pruner the plugins register, which ``prune T
    using NAME(…)`` in the ruleset binds (through the pruner's ``bind`` when it
    declares ``parameters``). ``route=False`` compiles every agent to scan the new
    facts of a pattern with constants instead of looking them up by those constants:
    the same matches in the same order, for checking that routing changes nothing.

    Raises :class:`CheckError` when the ruleset has error diagnostics, and
    :class:`CompileError` for a ``using NAME`` no given resolver provides and for what a
    checked ruleset never contains.
    """
    errors = [d for d in checked.diagnostics if d.is_error]
    if errors:
        raise CheckError(errors)
    types = _types(checked)
    budgets = _budgets(checked.root)
    ctx = ProgramContext({t.name: t for t in types}, checked.enums, dict(functions or {}),
                         budgets=budgets, tool_times=_tool_times(checked), route=route,
                         results={name: result_type(sig.result, checked.enums)
                                  for name, sig in checked.functions.items()})
    agents = []
    #: index id → the lowest tier of the agents that look it up
    read_from: dict[int, int] = {}
    for order, agent in enumerate(checked.agents):
        generator = AgentGenerator(agent, ctx)
        gen = generator.generate()
        for i in generator.ns.index_locals:
            read_from[i] = min(read_from.get(i, agent.effective_tier), agent.effective_tier)
        fn = _load(gen.source, gen.namespace, "agent", f"agent {agent.name.name}",
                   agent.span)
        afn = None
        if agent.calls:  # the coroutine variant, for executors on an event loop
            agen = AgentGenerator(agent, ctx, asynchronous=True).generate()
            afn = _load(agen.source, agen.namespace, "agent", f"agent {agent.name.name}",
                        agent.span)
        agents.append(AgentSpec(
            name=agent.name.name, tier=agent.effective_tier, order=order, fn=fn,
            source=gen.source, reads=gen.reads, negates=gen.negates, emits=gen.emits,
            tools=gen.tools, span=agent.span, aggregates=gen.aggregates,
            updates=gen.updates, one_at_a_time=agent.one_at_a_time is not None,
            unblocks=gen.unblocks, afn=afn,
        ))
    agents.sort(key=lambda a: (a.tier, a.order))
    prunes = tuple(
        dataclasses.replace(_prune(p, ctx, registered_pruners or {}), into_knowledge=True)
        if p.into is not None else _prune(p, ctx, registered_pruners or {})
        for p in checked.prunes
    )
    requires = tuple(_require(r, ctx) for r in (checked.root.requires if checked.root else ()))
    invariants = tuple(_invariant(inv, ctx) for inv in checked.invariants)
    gates = {spec.type_id: spec for spec in (_gate(g, ctx) for g in checked.gates)}
    if pruners:
        prunes += plugin_prunes(types, pruners)
    policies = {}
    for name, policy in checked.policies.items():
        spec = _policy(policy, ctx, resolvers or {})
        if spec is not None:
            policies[ctx.types[name].id] = spec
    indexes = ctx.index_specs()
    if not (prunes or requires or invariants or gates) and agents:
        # only agents look indexes up: one read from a later tier than the first is
        # built when that tier begins (IndexSpec.tier)
        first = agents[0].tier
        indexes = tuple(
            dataclasses.replace(ix, tier=read_from[ix.id])
            if read_from.get(ix.id, first) > first else ix for ix in indexes)
    return Program(
        name=checked.name,
        goal=checked.root.goal if checked.root else None,
        types=types,
        indexes=indexes,
        agents=tuple(agents),
        policies=policies,
        prunes=prunes,
        requires=requires,
        budgets=budgets,
        tools=tuple(checked.tools),
        type_ids={t.name: t.id for t in types},
        reads_time=reads_time(checked),
        invariants=invariants,
        gates=gates,
    )


def _tool_times(checked: CheckedRuleset) -> dict[str, dict[str, str]]:
    """Per tool, the result fields its signature types as a time (``date``, ``datetime``,
    ``duration``, optional or not) and that type."""
    out: dict[str, dict[str, str]] = {}
    for name, sig in checked.tools.items():
        for field_name, text in (sig.result if sig is not None else {}).items():
            kind = text.rstrip("?").strip()
            if kind in TIME_KINDS:
                out.setdefault(name, {})[field_name] = kind
    return out


def reads_time(checked: CheckedRuleset) -> bool:
    """Whether an agent or goal of ``checked`` calls ``now()`` or ``today()``."""
    exprs: list[Expr | None] = [r.condition for r in
                                (checked.root.requires if checked.root else ())]
    for agent in checked.agents:
        exprs.extend(agent.expressions())
    for inv in checked.invariants:
        exprs.extend(inv.as_agent().expressions())
    exprs.extend(g.condition for g in checked.gates)
    return any(isinstance(e, FuncCall) and e.func.name in CLOCK_BUILTINS
               for top in exprs if top is not None for e in walk_expr(top))


# ------------------------------------------------------------------------ types


def _types(checked: CheckedRuleset) -> tuple[TypeSpec, ...]:
    out = []
    for i, decl in enumerate(checked.facts.values()):
        fields = field_specs(decl, checked.enums)
        keep_all = isinstance(getattr(checked.policies.get(decl.name.name), "strategy", None),
                              KeepAll)
        keys = () if keep_all else tuple(i for i, f in enumerate(fields) if f.key)
        out.append(TypeSpec(i, decl.name.name, fields, keys, decl.intent, decl.span))
    return tuple(out)


# --------------------------------------------------------------------- policies


def _policy(
    policy: Policy, ctx: ProgramContext, resolvers: Mapping[str, Resolver]
) -> PolicySpec | None:
    spec = ctx.types[policy.type.name]
    on_tie = policy.on_tie.mode if policy.on_tie is not None else "reject"
    strategy = policy.strategy
    if isinstance(strategy, KeepAll):
        return None
    if isinstance(strategy, RejectAll):
        return PolicySpec(spec.id, "reject", on_tie=on_tie, span=policy.span)
    if isinstance(strategy, Combine):
        return PolicySpec(spec.id, "combine", on_tie=on_tie, combine_func=strategy.func,
                          combine_position=_position(spec, strategy.field.name, policy),
                          span=policy.span)
    assert isinstance(strategy, Resolve)
    criteria = []
    for c in strategy.criteria:
        if isinstance(c, ByField):
            name = c.field.name
            # `confidence` and `score` are always the pseudo-fields (as the checker reads them).
            if name == "confidence":
                criteria.append(CriterionSpec("confidence", direction=c.direction))
            elif name == "score":
                criteria.append(CriterionSpec("score", direction=c.direction))
            else:
                criteria.append(CriterionSpec("field", direction=c.direction,
                                              position=_position(spec, name, policy)))
        elif isinstance(c, ByCycle):
            criteria.append(CriterionSpec(c.which))
        elif isinstance(c, ByPriority):
            criteria.append(CriterionSpec("priority", agents=tuple(a.name for a in c.agents)))
        elif isinstance(c, ByMajority):
            criteria.append(CriterionSpec("majority"))
        elif isinstance(c, ByResolver):
            name = c.resolver.name
            bound = resolvers.get(name)
            if bound is None:
                known = ", ".join(sorted(resolvers)) or "none"
                raise CompileError(
                    f"{c.resolver.span}: policy {policy.type.name} resolves by `using "
                    f"{name}`, which no loaded plugin provides (resolvers: {known}); "
                    f"install the plugin that registers it (see `converge plugins`)"
                )
            criteria.append(CriterionSpec("using", resolver=name, resolver_fn=bound))
    return PolicySpec(spec.id, "resolve", tuple(criteria), on_tie=on_tie, span=policy.span)


def _position(spec: TypeSpec, name: str, policy: Policy) -> int:
    if name not in spec.field_names:
        raise CompileError(f"{policy.span}: {spec.name} has no field {name!r}")
    return spec.position(name)


# ------------------------------------------------------------------------- root


def _budgets(root: Root | None) -> Budgets:
    if root is None:
        return Budgets()
    values: dict[str, Any] = {}
    for b in root.budgets:
        name, v = b.name.name, b.value
        if name in _TIME_BUDGETS:
            values[name] = (v.milliseconds / 1000.0 if isinstance(v, Duration)
                            else float(v.value))
        elif name in _COUNT_BUDGETS:
            if isinstance(v, Duration) or isinstance(v.value, (bool, str)):
                raise CompileError(f"{b.span}: {name} takes a whole number")
            values[name] = int(v.value)
        else:
            raise CompileError(f"{b.span}: unknown budget {name!r}")
    return Budgets(**values)


def _require(req: Require, ctx: ProgramContext) -> RequireSpec:
    ns = Namespace()
    ex = ExprCompiler(ctx, ns)
    cond = ex.condition(req.condition)
    lines = [f"# require at {req.span}", "def require(view):", "    vals = view.values",
             *ns.view_locals(), f"    return bool({cond})", ""]
    source = "\n".join(lines)
    fn = _load(source, ns.values, "require", f"require {req.span}", req.span)
    return RequireSpec(_text(req.condition), fn, source, req.span)


def _invariant(inv: Invariant, ctx: ProgramContext) -> InvariantSpec:
    """An ``always`` invariant as a goal's function; a ``never`` one as the generated
    agent of its patterns (:class:`InvariantGenerator`), not routed (the engine hands it
    an effect's new facts through ``new``, which a routed pass would not read) and with
    its indexes kept up to date in every cycle (none is lazy)."""
    name = inv.name.name
    agg_types = [ctx.types[a.pattern.type.name].id
                 for a in aggregates_in([inv.condition]) if a.pattern.type.name in ctx.types]
    if inv.always:
        assert inv.condition is not None  # the parser gives `always` its condition
        ns = Namespace()
        cond = ExprCompiler(ctx, ns).condition(inv.condition)
        source = "\n".join([f"# invariant {name!r} at {inv.span}", "def invariant(view):",
                            "    vals = view.values", *ns.view_locals(),
                            f"    return bool({cond})", ""])
        fn = _load(source, ns.values, "invariant", f"invariant {name}", inv.span)
        types = tuple(dict.fromkeys(agg_types))
        return InvariantSpec(name, True, fn, source, "always " + _text(inv.condition),
                             types, (), inv.span)
    route, ctx.route = ctx.route, False
    try:
        gen_ = InvariantGenerator(inv.as_agent(), ctx)
        gen = gen_.generate()
    finally:
        ctx.route = route
    by_id = {i: key for key, i in ctx.indexes.items()}
    for i in gen_.ns.index_locals:
        ctx.drivers[by_id[i]] = None  # looked up in any cycle: never lazy
    fn = _load(gen.source, gen.namespace, "agent", f"invariant {name}", inv.span)
    patterns = " and ".join(format_pattern(p) for p in inv.patterns)
    where = "" if inv.condition is None else " where " + _text(inv.condition)
    return InvariantSpec(name, False, fn, gen.source, f"never {patterns}{where}",
                         gen.negates, gen.reads, inv.span,
                         tuple(info.spec.id for info in gen_.infos))


def _gate(gate: Gate, ctx: ProgramContext) -> GateSpec:
    """``approve T [when EXPR]`` as ``gate(values)``, compiled as a prune condition is
    (T's fields in scope by name; no aggregates); always true without ``when``."""
    spec = ctx.types.get(gate.type.name)
    if spec is None:
        raise CompileError(f"{gate.type.span}: unknown type {gate.type.name!r}")
    if gate.condition is None:
        cond, text, ns = "True", "", Namespace()
    else:
        if _has_aggregate(gate.condition):
            raise CompileError(f"{gate.span}: an approval gate cannot use aggregates")
        ns = Namespace()
        ex = ExprCompiler(ctx, ns)
        for pos, f in enumerate(spec.fields):
            ex.scope[f.name] = Var(f"values[{pos}]", f.type)
        cond, text = ex.condition(gate.condition), _text(gate.condition)
    source = "\n".join([f"# approve {spec.name!r} at {gate.span}", "def gate(values):",
                        f"    return bool({cond})", ""])
    fn = _load(source, ns.values, "gate", f"approve {spec.name}", gate.span)
    return GateSpec(spec.name, spec.id, fn, source, text, gate.span)


def _prune(
    prune: Prune, ctx: ProgramContext, registered: Mapping[str, PluginPruner]
) -> PruneSpec:
    spec = ctx.types.get(prune.type.name)
    if spec is None:
        raise CompileError(f"{prune.type.span}: unknown type {prune.type.name!r}")
    if prune.using is not None:
        return _pruner_rule(prune, prune.using, spec, registered)
    assert prune.condition is not None  # the parser gives a condition or a pruner
    if _has_aggregate(prune.condition):
        raise CompileError(f"{prune.span}: a prune condition cannot use aggregates")
    ns = Namespace()
    ex = ExprCompiler(ctx, ns)
    # The fact's fields are in scope by name; a field named `age` hides the age.
    ex.scope["age"] = Var("age", _INT)
    for pos, f in enumerate(spec.fields):
        ex.scope[f.name] = Var(f"values[{pos}]", f.type)
    cond = ex.condition(prune.condition)
    source = "\n".join([
        f"# prune {spec.name!r} at {prune.span}",
        "def prune(values, age):",
        f"    return bool({cond})",
        "",
    ])
    fn = _load(source, ns.values, "prune", f"prune {spec.name}", prune.span)
    return PruneSpec(spec.id, fn, source, _text(prune.condition), prune.span)


def _pruner_rule(
    prune: Prune, use: PrunerUse, spec: TypeSpec, registered: Mapping[str, PluginPruner]
) -> PruneSpec:
    """``prune T using NAME(…)``: the registered pruner, bound to the arguments when it
    declares parameters, applied to T alone."""
    name = use.name.name
    pruner = registered.get(name)
    if pruner is None:
        known = ", ".join(sorted(registered)) or "none"
        raise CompileError(
            f"{use.name.span}: prune {spec.name} uses the pruner `{name}`, which no loaded "
            f"plugin provides (pruners: {known}); install the plugin that registers it "
            "(see `converge plugins`)")
    args = {a.name.name: _constant(a.value) for a in use.args}
    bind = getattr(pruner, "bind", None)
    if getattr(pruner, "parameters", None) is not None and callable(bind):
        try:
            pruner = bind(args)
        except (Exception, SystemExit) as exc:
            raise CompileError(f"{use.span}: the pruner `{name}` refused its arguments: "
                               f"{type(exc).__name__}: {exc}") from None
    elif args:
        raise CompileError(f"{use.span}: the pruner `{name}` takes no arguments")
    applies = getattr(pruner, "applies_to", None)
    if applies is not None and not applies(spec.name, spec.field_names):
        raise CompileError(f"{use.span}: the pruner `{name}` does not apply to {spec.name} "
                           f"(fields: {', '.join(spec.field_names)})")
    text = f"using {name}" + (f"({_args_text(use.args)})" if use.args else "")
    return PruneSpec(spec.id, _PrunerRule(pruner, spec.name, spec.field_names),
                     f"# prune {spec.name!r} {text} (plugin pruner) at {prune.span}", text,
                     prune.span)


def _args_text(args: Sequence[Arg]) -> str:
    return ", ".join(f"{a.name.name}: {_text(a.value)}" for a in args)


def _constant(e: Expr) -> Any:
    """The value of a constant the checker accepted (``is_constant``)."""
    if isinstance(e, Literal):
        return e.value
    if isinstance(e, Duration):
        return timedelta(milliseconds=e.milliseconds)  # as a plugin function receives one
    if isinstance(e, Unary) and e.op == "-" and isinstance(e.operand, Literal) and \
            isinstance(e.operand.value, int | float) and not isinstance(e.operand.value, bool):
        return -e.operand.value
    if isinstance(e, ListExpr):
        return [_constant(i) for i in e.items]
    raise CompileError(f"{e.span}: a pruner's argument must be a constant")


def _has_aggregate(expr: Expr) -> bool:
    return bool(aggregates_in([expr]))


def _text(expr: Expr) -> str:
    """The expression as the formatter writes it (the canonical form of what was
    written)."""
    return format_expr(expr)


# ------------------------------------------------------------------------ load


def _load(source: str, namespace: dict[str, Any], name: str, label: str,
          span: Span) -> Any:
    """Compile generated ``source`` and return the function ``name`` it defines.

    The pseudo file name carries a digest of the source, so compiling the same ruleset
    again reuses one :mod:`linecache` entry instead of adding another. Code Python
    refuses for its size (more than 20 nested loops: one per joined pattern) is a
    :class:`CompileError` naming the rule at ``span``."""
    digest = hashlib.sha1(source.encode("utf-8", "surrogatepass"),
                          usedforsecurity=False).hexdigest()[:12]
    filename = f"<converge {label} {digest}>"
    try:
        code = compile(source, filename, "exec")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise CompileError(
            f"{span}: {label} is too large for Python to compile ({reason}); split it "
            "into smaller agents that emit intermediate facts: each pattern of a `when` "
            "is one nested loop, and Python allows about 19") from None
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    glob = dict(namespace)
    glob["__builtins__"] = builtins
    glob["__name__"] = "converge_rules.compiler.generated"
    exec(code, glob)
    fn = glob[name]
    fn.__qualname__ = f"{name}[{label}]"   # what profilers and reprs show
    return fn


_INT = ValueType("int")


class PluginPruner(Protocol):
    """A plugin pruner as the compiler binds it (``converge_rules.plugins.api.Pruner``):
    ``pruner(fact_type, fields, age) -> drop?``, optionally with
    ``applies_to(fact_type, field_names) -> bool``."""

    def __call__(self, fact_type: str, fields: Mapping[str, Any], age: int) -> bool: ...


def plugin_prunes(
    types: Sequence[TypeSpec], pruners: Mapping[str, PluginPruner]
) -> tuple[PruneSpec, ...]:
    added: list[PruneSpec] = []
    for name, pruner in sorted(pruners.items()):
        applies = getattr(pruner, "applies_to", None)
        for spec in types:
            if spec.intent or (applies is not None and not applies(spec.name, spec.field_names)):
                continue
            added.append(PruneSpec(
                type_id=spec.id,
                fn=_PrunerRule(pruner, spec.name, spec.field_names),
                source=f"# plugin pruner {name!r}",
                text=f"using pruner {name}",
                span=spec.span,
            ))
    return tuple(added)


@dataclass(frozen=True, slots=True)
class _PrunerRule:
    """A pruner as the engine calls a ``prune`` rule: ``(values, age) -> drop?``."""

    pruner: PluginPruner
    fact_type: str
    field_names: tuple[str, ...]

    def __call__(self, values: tuple[Any, ...], age: int) -> bool:
        return bool(self.pruner(self.fact_type, dict(zip(self.field_names, values, strict=True)),
                                age))
