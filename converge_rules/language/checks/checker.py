"""Check a loaded ruleset: names, types, tiers, policies, root, prunes, tests and tools.

:func:`check` reports everything it finds in one run, never stopping at the first
error, and returns a :class:`~converge_rules.language.checks.checked.CheckedRuleset` with the
ruleset's symbol tables filled in. Each part lives in its own module:
``_exprs`` (expressions and patterns), ``_agents``, ``_strata`` (tiers), ``_policies``,
``_root`` (root and prune) and ``_testblocks``; this module declares the tables and runs
the parts in order.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping
from pathlib import Path

from converge_rules.language.builtins import builtin_functions
from converge_rules.language.checks.agents import check_agent
from converge_rules.language.checks.checked import (
    CheckedRuleset,
    FunctionSignature,
    PrunerSignature,
    ToolSignature,
)
from converge_rules.language.checks.exprs import Typer
from converge_rules.language.checks.gates import check_gates
from converge_rules.language.checks.invariants import check_invariants
from converge_rules.language.checks.policies import check_policies
from converge_rules.language.checks.root import check_prune, check_roots
from converge_rules.language.checks.scope import (
    DUPLICATE_DECL,
    DUPLICATE_MEMBER,
    DUPLICATE_TOOL,
    TYPE_MISMATCH,
    UNKNOWN_TYPE_NAME,
    Reporter,
    Scope,
    Tables,
)
from converge_rules.language.checks.stepwise import check_one_at_a_time
from converge_rules.language.checks.strata import check_tiers
from converge_rules.language.checks.testblocks import check_tests
from converge_rules.language.checks.types import PRIMITIVES, assignable
from converge_rules.language.diagnostics.core import Diagnostic, Related, Severity, define
from converge_rules.language.diagnostics.suggest import Vocabulary
from converge_rules.language.loader import LoadResult, load_file
from converge_rules.language.syntax.nodes import (
    Agent,
    Attribute,
    Duration,
    EnumDecl,
    Expr,
    FactDecl,
    FuncCall,
    Gate,
    Ident,
    IfExpr,
    Invariant,
    ListExpr,
    Literal,
    Module,
    Name,
    Policy,
    Prune,
    Root,
    Test,
    TypeRef,
    Unary,
    Uses,
)

__all__ = ["check", "check_file", "checked_sources"]

DEFAULT_NOT_CONSTANT = define(
    "CVG209", "default-not-constant", Severity.ERROR, "Field default is not a constant",
    "A default is evaluated once, when the ruleset is compiled: it must be a literal, an "
    "enum member, a negated number, a list of constants or an `if` over constants.",
    wrong='ruleset r\nfact Quote { sku: str, amount: float = 1.5 * 2 }\n',
    right='ruleset r\nfact Quote { sku: str, amount: float = 3.0 }\n',
)
EMPTY_ENUM = define(
    "CVG115", "empty-enum", Severity.ERROR, "Enum without members",
    "An enum is a closed set of symbols; with no members, a field of that type could "
    "never hold a value, and no fact of a type using it could exist.",
    wrong="ruleset r\nenum Channel { }\n",
    right="ruleset r\nenum Channel { web, store }\n",
)
TOOL_NOT_INSTALLED = define(
    "CVG804", "tool-not-installed", Severity.WARNING, "No installed plugin provides a tool",
    "A `uses tool` line names a tool that none of the installed plugins registers. The "
    "ruleset still checks (tests mock tools), but calls of the tool are not "
    "type-checked, and `converge run` refuses to start while an agent calls it. "
    "Reported only when the plugins are known (`converge check` without `--no-plugins`).",
    wrong="ruleset r\nuses tool fx_rat\n",
    right="ruleset r\nuses tool fx_rate\n",
)
KEYED_INTENT = define(
    "CVG212", "keyed-intent", Severity.ERROR, "Key field on an intent",
    "An intent is a request for work: two requests with different fields are two "
    "requests, never a conflict, and no policy may be declared on an intent. So an "
    "intent field cannot be `key`; equal intents are merged as one already.",
    wrong='ruleset r\nintent NeedRate { key currency: str, urgent: bool }\n',
    right='ruleset r\nintent NeedRate { currency: str, urgent: bool }\n',
)


def check(
    loaded: LoadResult,
    *,
    tools: Mapping[str, ToolSignature] | None = None,
    functions: Mapping[str, FunctionSignature] | None = None,
    resolvers: Iterable[str] | None = None,
    pruners: Mapping[str, PrunerSignature] | None = None,
) -> CheckedRuleset:
    """Check every module of ``loaded`` together and return the checked ruleset.

    ``tools`` are the signatures installed plugins provide (a tool declared with
    ``uses tool`` but absent here is called untyped); ``functions`` are plugin
    functions added to the built-ins; ``resolvers`` are the names usable in
    ``policy … using NAME`` (None accepts any name); ``pruners`` the plugin pruners
    usable in ``prune T using NAME(…)``, with their parameters (None accepts any name
    and arguments). The result's diagnostics hold the
    load and parse diagnostics too, de-duplicated and sorted.
    """
    # As in the parser: the checker allocates many small objects while the whole syntax
    # tree is alive, so the cyclic collector would rescan that tree again and again
    # (measured: half of the time of checking 64k lines). Reference counting frees what
    # the checker drops; a cycle, if any, waits for the next collection.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _check(loaded, tools, functions, resolvers, pruners)
    finally:
        if collecting:
            gc.enable()


def _check(
    loaded: LoadResult,
    tools: Mapping[str, ToolSignature] | None,
    functions: Mapping[str, FunctionSignature] | None,
    resolvers: Iterable[str] | None,
    pruners: Mapping[str, PrunerSignature] | None = None,
) -> CheckedRuleset:
    report = Reporter()
    tables = Tables(functions={**builtin_functions(), **(functions or {})},
                    resolvers=None if resolvers is None else frozenset(resolvers),
                    pruners=None if pruners is None else dict(pruners))
    modules = loaded.modules
    items = _Items(modules)
    _declare(items, tables, report, tools)
    typer = Typer(tables, report)
    for decl in items.facts:
        _check_fact(typer, decl)
    for a in items.agents:
        check_agent(typer, a)
    agents = tuple(items.agents)
    check_tiers(agents, report)
    check_one_at_a_time(tables, agents, _first_policies(items.policies), report)
    check_policies(typer, items.policies, agents)
    check_roots(typer, items.roots)
    for p in items.prunes:
        check_prune(typer, p)
    check_invariants(typer, items.invariants)
    check_gates(typer, items.gates, agents)
    check_tests(typer, items.tests, loaded.access,
                gated=frozenset(g.type.name for g in items.gates))
    found = list(dict.fromkeys([*loaded.diagnostics, *_after_syntax(loaded, report.found)]))
    found.sort(key=Diagnostic.sort_key)
    entry = _entry(loaded)
    checked = CheckedRuleset(
        name=entry.header.name.name if entry and entry.header else "",
        title=entry.header.title if entry and entry.header else None,
        modules=modules,
        facts=dict(tables.facts),
        enums=dict(tables.enums),
        agents=agents,
        policies=_first_policies(items.policies),
        prunes=tuple(items.prunes),
        invariants=tuple(items.invariants),
        gates=tuple(items.gates),
        root=items.roots[0] if items.roots else None,
        tests=tuple(items.tests),
        tools=dict(tables.tools),
        functions=dict(tables.functions),
        diagnostics=tuple(found),
        sources=dict(loaded.sources),
    )
    return checked


def check_file(
    path: str | Path,
    *,
    source: str | None = None,
    tools: Mapping[str, ToolSignature] | None = None,
    functions: Mapping[str, FunctionSignature] | None = None,
    resolvers: Iterable[str] | None = None,
    pruners: Mapping[str, PrunerSignature] | None = None,
) -> CheckedRuleset:
    """Load ``path`` (and its imports) and check it; see :func:`check`."""
    return check(load_file(path, source=source), tools=tools, functions=functions,
                 resolvers=resolvers, pruners=pruners)


def checked_sources(checked: CheckedRuleset) -> dict[str, str]:
    """The text of each file of ``checked``, by the path its spans use: kept from the
    load (:attr:`CheckedRuleset.sources`), otherwise read again from disk (files that
    cannot be read are left out)."""
    if checked.sources:
        return dict(checked.sources)
    out: dict[str, str] = {}
    for m in checked.modules:
        try:
            out[m.span.file] = Path(m.span.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError, AttributeError):
            continue
    return out


def _first_policies(policies: list[Policy]) -> dict[str, Policy]:
    out: dict[str, Policy] = {}
    for p in policies:
        out.setdefault(p.type.name, p)  # a second policy for a type is reported
    return out


def _after_syntax(loaded: LoadResult, found: list[Diagnostic]) -> list[Diagnostic]:
    # A line with a syntax error holds a guess of the parser's: checking it again would
    # only repeat the syntax error in other words.
    broken = {(d.span.file, d.span.line) for d in loaded.diagnostics
              if d.span is not None and d.is_error and d.code.startswith("CVG0")}
    return [d for d in found if d.span is None or (d.span.file, d.span.line) not in broken]


def _entry(loaded: LoadResult) -> Module | None:
    for m in reversed(loaded.modules):
        if not loaded.entry or m.span.file == loaded.entry:
            return m
    return None


class _Items:
    """Every item of every module, by kind, in load order."""

    def __init__(self, modules: tuple[Module, ...]) -> None:
        self.facts: list[FactDecl] = []
        self.enums: list[EnumDecl] = []
        self.agents: list[Agent] = []
        self.policies: list[Policy] = []
        self.prunes: list[Prune] = []
        self.invariants: list[Invariant] = []
        self.gates: list[Gate] = []
        self.roots: list[Root] = []
        self.tests: list[Test] = []
        self.uses: list[Uses] = []
        for m in modules:
            for item in m.items:
                if isinstance(item, FactDecl):
                    self.facts.append(item)
                elif isinstance(item, EnumDecl):
                    self.enums.append(item)
                elif isinstance(item, Agent):
                    self.agents.append(item)
                elif isinstance(item, Policy):
                    self.policies.append(item)
                elif isinstance(item, Prune):
                    self.prunes.append(item)
                elif isinstance(item, Invariant):
                    self.invariants.append(item)
                elif isinstance(item, Gate):
                    self.gates.append(item)
                elif isinstance(item, Root):
                    self.roots.append(item)
                elif isinstance(item, Test):
                    self.tests.append(item)
                elif isinstance(item, Uses):
                    self.uses.append(item)


def _declare(items: _Items, tables: Tables, report: Reporter,
             signatures: Mapping[str, ToolSignature] | None) -> None:
    types: dict[str, Ident] = {}

    def claim(ident: Ident, what: str) -> bool:
        prior = types.get(ident.name)
        if prior is not None:
            report.error(DUPLICATE_DECL, ident.span,
                         f"`{ident.name}` is already declared",
                         f"rename this {what} or remove one of the declarations",
                         (Related(prior.span, "first declared here"),))
            return False
        types[ident.name] = ident
        return True

    for enum in items.enums:
        if claim(enum.name, "enum"):
            tables.enums[enum.name.name] = enum
        _unique(enum.members, "member", f"enum {enum.name.name}", report)
        if not enum.members:
            report.error(EMPTY_ENUM, enum.name.span, f"enum `{enum.name.name}` has no members",
                         "list its members (`enum Channel { web, store }`): a field of an "
                         "empty enum could never hold a value")
    for fact in items.facts:
        if claim(fact.name, "intent" if fact.intent else "fact"):
            tables.facts[fact.name.name] = fact
    for agent in items.agents:
        prior = tables.agents.get(agent.name.name)
        if prior is not None:
            report.error(DUPLICATE_DECL, agent.name.span,
                         f"agent `{agent.name.name}` is already declared",
                         "give each agent its own name",
                         (Related(prior.name.span, "first declared here"),))
        else:
            tables.agents[agent.name.name] = agent
    installed = Vocabulary(signatures or ())
    for uses in items.uses:
        for tool in uses.tools:
            first = tables.tool_spans.get(tool.name)
            if first is not None:
                report.warning(DUPLICATE_TOOL, tool.span,
                               f"tool `{tool.name}` is already declared",
                               f"remove this `{tool.name}`",
                               (Related(first, "first declared here"),))
                continue
            tables.tools[tool.name] = (signatures or {}).get(tool.name)
            tables.tool_spans[tool.name] = tool.span
            if signatures is not None and tool.name not in signatures:
                report.warning(TOOL_NOT_INSTALLED, tool.span,
                               f"no installed plugin provides tool `{tool.name}`",
                               installed.did_you_mean(tool.name, otherwise=(
                                   "install the plugin that provides it (`converge "
                                   "plugins` lists what is installed); until then its "
                                   "calls are not type-checked and `converge run` "
                                   "refuses to start")))


def _unique(idents: Iterable[Ident], what: str, owner: str, report: Reporter) -> None:
    seen: dict[str, Ident] = {}
    for ident in idents:
        if ident.name in seen:
            report.error(DUPLICATE_MEMBER, ident.span,
                         f"{what} `{ident.name}` of {owner} is declared twice",
                         f"remove one `{ident.name}`",
                         (Related(seen[ident.name].span, "first declared here"),))
        else:
            seen[ident.name] = ident


def _check_fact(typer: Typer, decl: FactDecl) -> None:
    kind = "intent" if decl.intent else "fact"
    _unique((f.name for f in decl.fields), "field", f"{kind} {decl.name.name}", typer.r)
    for f in decl.fields:
        _check_type_ref(typer, f.type)
        if decl.intent and f.key:
            typer.r.error(KEYED_INTENT, f.name.span,
                          f"intent field `{f.name.name}` is marked `key`",
                          f"remove `key`: intents never conflict (declare a `fact` if "
                          f"`{decl.name.name}` should have one value per key)")
        if f.default is not None:
            if not _constant(f.default):
                typer.r.error(DEFAULT_NOT_CONSTANT, f.default.span,
                              f"the default of `{f.name.name}` is not a constant",
                              "write a literal, an enum member, a list of those, or a "
                              "negated number")
                continue
            want = typer.of_field(f)
            got = typer.infer(f.default, Scope(), want)
            if not assignable(got, want):
                typer.r.error(TYPE_MISMATCH, f.default.span,
                              f"default of `{f.name.name}` is {got}, but the field is {want}",
                              f"give a default of type {want}")


def _constant(e: Expr) -> bool:
    """What the compiler can evaluate once: literals, durations, ``-``/``not`` of a
    constant, enum members bare or qualified, lists of constants, and ``if`` over
    constants."""
    if isinstance(e, Literal | Duration | Name):
        return True
    if isinstance(e, FuncCall):  # date("2026-12-06"), datetime("…Z")
        return e.func.name in ("date", "datetime") and len(e.args) == 1 \
            and isinstance(e.args[0], Literal) and isinstance(e.args[0].value, str)
    if isinstance(e, Unary):
        return _constant(e.operand)
    if isinstance(e, Attribute):
        return isinstance(e.value, Name)
    if isinstance(e, ListExpr):
        return all(_constant(i) for i in e.items)
    if isinstance(e, IfExpr):
        return _constant(e.condition) and _constant(e.then) and _constant(e.otherwise)
    return False


def _check_type_ref(typer: Typer, ref: TypeRef) -> None:
    if ref.name == "list":
        if len(ref.args) != 1:
            typer.r.error(UNKNOWN_TYPE_NAME, ref.span, "`list` needs one element type",
                          "write e.g. `list[str]`")
        for arg in ref.args:
            _check_type_ref(typer, arg)
        return
    if ref.args:
        typer.r.error(UNKNOWN_TYPE_NAME, ref.span, f"`{ref.name}` takes no type arguments",
                      f"write `{ref.name}`")
    if ref.name in PRIMITIVES or ref.name in typer.t.enums:
        return
    if ref.name in typer.t.facts:
        typer.r.error(UNKNOWN_TYPE_NAME, ref.span,
                      f"`{ref.name}` is a fact type; fields hold values, not facts",
                      "store the other fact's key instead (e.g. its `sku`)")
        return
    typer.r.error(UNKNOWN_TYPE_NAME, ref.span, f"unknown type `{ref.name}`",
                  typer.t.vocabulary("value-types").did_you_mean(
                      ref.name, otherwise="types: str, int, float, bool, date, datetime, "
                      "duration, list[T], T?, or a declared enum"))
