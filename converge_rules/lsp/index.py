"""Every name written in a checked ruleset: what it names, where that is declared, and
where else it is used. Built from the checker's result (its syntax trees and symbol
tables), so go-to-definition, find-references, hover and the outline agree with what
``converge check`` understood.

Positions are the language's: lines and columns count from 1, in characters.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from converge_rules.language.builtins import KNOWLEDGE_TOOL
from converge_rules.language.checks.checked import (
    CheckedRuleset,
    FunctionSignature,
    ToolSignature,
)
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.span import Span

Kind = Literal["type", "field", "member", "agent", "tool", "function", "budget", "file",
               "variable"]


@dataclass(frozen=True, slots=True)
class Symbol:
    """What a name refers to. ``key`` identifies it: ``("Cost",)`` for a type,
    ``("Cost", "amount")`` for a field, ``("Channel", "web")`` for an enum member, the
    resolved path for an imported file, ``(item, aggregate, name)`` for a variable
    (``item`` is where the agent, test or invariant that binds it starts,
    ``file:line:column``; ``aggregate`` is where the aggregate inside it that binds it
    starts, ``line:column``, or empty: two agents' ``x`` are two variables), the name
    otherwise."""

    kind: Kind
    key: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.key[-1]


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One written name: where, what it refers to, and whether it declares it."""

    span: Span
    symbol: Symbol
    declaration: bool = False
    shorthand: bool = False  # a pattern's bare `sku`: the field and a variable in one name


@dataclass(frozen=True, slots=True)
class Outline:
    """An entry of a file's outline: an item and its members."""

    name: str
    kind: str  # "ruleset", "fact", "intent", "enum", "agent", "policy", "prune", "gate", …
    span: Span
    selection: Span
    detail: str = ""
    children: tuple[Outline, ...] = ()


@dataclass
class RulesetIndex:
    """The names of one ruleset (an entry file and its imports)."""

    checked: CheckedRuleset
    occurrences: dict[str, list[Occurrence]] = field(default_factory=dict)
    _starts: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    # ------------------------------------------------------------ lookups

    def at(self, file: str, line: int, column: int) -> Occurrence | None:
        """The name written at ``line``:``column`` of ``file`` (the cursor may stand just
        after its last character), innermost first; a pattern's bare ``sku`` is the
        field (the variable it binds is reached from its uses)."""
        found = self.occurrences.get(file, [])
        starts = self._starts.get(file)
        if starts is None:
            starts = self._starts[file] = [(o.span.line, o.span.column) for o in found]
        best: Occurrence | None = None
        upto = bisect.bisect_right(starts, (line, column))
        for o in reversed(found[max(0, upto - 64):upto]):
            s = o.span
            if (s.line, s.column) <= (line, column) <= (s.end_line, s.end_column) and (
                    best is None or (s.line, s.column) >= (best.span.line, best.span.column)):
                best = o
        return best

    def declarations(self, symbol: Symbol) -> list[Span]:
        """Where ``symbol`` is declared in the ruleset (none for a tool, a function, a
        budget or a file: they are declared outside it)."""
        return [o.span for o in self.all() if o.symbol == symbol and o.declaration]

    def references(self, symbol: Symbol, *, declarations: bool = True) -> list[Span]:
        """Every place ``symbol`` is written, in file and position order."""
        return [o.span for o in self.all() if o.symbol == symbol
                and (declarations or not o.declaration)]

    def all(self) -> Iterator[Occurrence]:
        for found in self.occurrences.values():
            yield from found

    # ------------------------------------------------------------ descriptions

    def fact(self, name: str) -> n.FactDecl | None:
        return self.checked.facts.get(name)

    def field_decl(self, type_name: str, field_name: str) -> n.FieldDecl | None:
        return _field_decl(self.checked, type_name, field_name)

    def agents_reading(self, type_name: str) -> list[str]:
        return [a.name.name for a in self.checked.agents
                if any(p.type.name == type_name for p in a.patterns)]

    def agents_writing(self, type_name: str) -> list[str]:
        return [a.name.name for a in self.checked.agents
                if any(not isinstance(o, n.Evaluate) and o.type.name == type_name
                       for o in a.outputs)]


def build(checked: CheckedRuleset, *, base: Path | None = None) -> RulesetIndex:
    """The index of ``checked``. Imported files are named by their resolved path,
    found relative to the importing file (spans name files relative to ``base``, the
    working directory by default)."""
    walker = _Walker(checked, base or Path.cwd())
    for module in checked.modules:
        walker.module(module)
    index = RulesetIndex(checked)
    for o in walker.found:
        index.occurrences.setdefault(o.span.file, []).append(o)
    for found in index.occurrences.values():
        found.sort(key=lambda o: (o.span.line, o.span.column, o.span.end_line,
                                  o.span.end_column))
    return index


def _ident_span(span: Span, name: str) -> Span:
    """The span of ``name`` written at the start of ``span``."""
    return Span(span.file, span.line, span.column, span.line, span.column + len(name))


@dataclass
class _Scope:
    """The variables one item binds (an agent, a test, an invariant, an aggregate's
    pattern inside another scope): each name's key and, for a pattern's binder, the
    type of the fact it holds. ``binds`` is False in a test, whose steps bind nothing
    (its ``cases`` rows do)."""

    owner: str
    names: dict[str, tuple[tuple[str, str, str], str | None]] = field(
        default_factory=dict)
    binds: bool = True
    within: str = ""  # the aggregates it is inside, outermost first

    def inner(self, span: Span) -> _Scope:
        where = f"{span.line}:{span.column}"
        return _Scope(self.owner, dict(self.names), self.binds,
                      f"{self.within}/{where}" if self.within else where)


def _owner(span: Span) -> str:
    return f"{span.file}:{span.line}:{span.column}"


class _Walker:
    def __init__(self, checked: CheckedRuleset, base: Path) -> None:
        self.checked = checked
        self.base = base
        self.found: list[Occurrence] = []
        self.symbols: dict[tuple[Kind, tuple[str, ...]], Symbol] = {}
        members: dict[str, list[str]] = {}
        for enum in checked.enums.values():
            for m in enum.members:
                members.setdefault(m.name, []).append(enum.name.name)
        # a bare member name is a member when one enum alone has it
        self.bare_members = {m: owners[0] for m, owners in members.items()
                             if len(owners) == 1}

    def add(self, span: Span, kind: Kind, *key: str, declaration: bool = False,
            shorthand: bool = False) -> None:
        symbol = self.symbols.get((kind, key))
        if symbol is None:  # one Symbol per name: most are written many times
            symbol = self.symbols[kind, key] = Symbol(kind, key)
        self.found.append(Occurrence(span, symbol, declaration, shorthand))

    def type_ref(self, ident: n.Ident) -> None:
        if ident.name in self.checked.facts or ident.name in self.checked.enums:
            self.add(ident.span, "type", ident.name)

    def module(self, module: n.Module) -> None:
        for item in module.items:
            self.item(item)

    def item(self, item: n.Item) -> None:
        if isinstance(item, n.Import):
            importer = Path(item.span.file)
            if not importer.is_absolute():
                importer = self.base / importer
            target = (importer.parent / item.path).resolve()
            self.add(item.span, "file", str(target))
        elif isinstance(item, n.Uses):
            for tool in item.tools:
                self.add(tool.span, "tool", tool.name)
        elif isinstance(item, n.Root):
            for budget in item.budgets:
                self.add(budget.name.span, "budget", budget.name.name)
            for require in item.requires:
                self.expr(require.condition, _Scope(_owner(item.span)))
        elif isinstance(item, n.EnumDecl):
            self.add(item.name.span, "type", item.name.name, declaration=True)
            for m in item.members:
                self.add(m.span, "member", item.name.name, m.name, declaration=True)
        elif isinstance(item, n.FactDecl):
            self.add(item.name.span, "type", item.name.name, declaration=True)
            for f in item.fields:
                self.add(f.name.span, "field", item.name.name, f.name.name, declaration=True)
                self.type_name(f.type)
                if f.default is not None:
                    self.expr(f.default, _Scope(_owner(f.span)))
        elif isinstance(item, n.Agent):
            self.agent(item)
        elif isinstance(item, n.Policy):
            self.type_ref(item.type)
            self.strategy(item.type.name, item.strategy)
        elif isinstance(item, n.Prune | n.Gate):
            self.type_ref(item.type)
            if item.condition is not None:
                self.expr(item.condition, _Scope(_owner(item.span)),
                          fields_of=item.type.name)
        elif isinstance(item, n.Invariant):
            scope = _Scope(_owner(item.span))
            for p in item.patterns:
                self.pattern(p, scope)
            if item.condition is not None:
                self.expr(item.condition, scope)
        elif isinstance(item, n.Test):
            self.test(item)

    def type_name(self, ref: n.TypeRef) -> None:
        if ref.name in self.checked.facts or ref.name in self.checked.enums:
            self.add(_ident_span(ref.span, ref.name), "type", ref.name)
        for arg in ref.args:
            self.type_name(arg)

    def strategy(self, type_name: str, strategy: n.Strategy) -> None:
        if isinstance(strategy, n.Resolve):
            for c in strategy.criteria:
                if isinstance(c, n.ByField) and c.field.name not in ("confidence", "score"):
                    self.add(c.field.span, "field", type_name, c.field.name)
                elif isinstance(c, n.ByPriority):
                    for a in c.agents:
                        self.add(a.span, "agent", a.name)
        elif isinstance(strategy, n.Combine):
            self.add(strategy.field.span, "field", type_name, strategy.field.name)

    def bind(self, name: str, span: Span, scope: _Scope, fact_type: str | None = None, *,
             shorthand: bool = False) -> None:
        """``name`` written where a pattern binds it: the variable's declaration, or a
        use when the scope has bound it already (the match then compares with it)."""
        known = scope.names.get(name)
        if known is not None:
            self.add(span, "variable", *known[0], shorthand=shorthand)
        elif scope.binds:
            key = (scope.owner, scope.within, name)
            scope.names[name] = (key, fact_type)
            self.add(span, "variable", *key, declaration=True, shorthand=shorthand)

    def pattern(self, p: n.Pattern, scope: _Scope) -> None:
        self.type_ref(p.type)
        if p.binder is not None:
            self.bind(p.binder.name, p.binder.span, scope, p.type.name)
        for fm in p.fields:
            self.add(fm.field.span, "field", p.type.name, fm.field.name,
                     shorthand=fm.value is None)
            if fm.value is None:
                self.bind(fm.field.name, fm.field.span, scope, shorthand=True)
            elif isinstance(fm.value, n.Name) and fm.value.id not in scope.names:
                if self.member_value(p.type.name, fm.field.name, fm.value):
                    pass
                elif scope.binds:
                    self.bind(fm.value.id, fm.value.span, scope)
                else:
                    self.expr(fm.value, scope)
            else:
                self.expr(fm.value, scope)

    def member_value(self, type_name: str, field_name: str, value: n.Name) -> bool:
        """Record ``value``, written bare as the field's value, as a member of the
        field's enum when it is one (the field's type says which enum, also for a
        member name that two enums have); False when it is none."""
        enum = self._enum_of(type_name, field_name)
        if enum is None or not any(m.name == value.id
                                   for m in self.checked.enums[enum].members):
            return False
        self.add(value.span, "member", enum, value.id)
        return True

    def args(self, type_name: str, args: Iterable[n.Arg], scope: _Scope) -> None:
        for a in args:
            self.add(a.name.span, "field", type_name, a.name.name)
            if not (isinstance(a.value, n.Name) and a.value.id not in scope.names
                    and self.member_value(type_name, a.name.name, a.value)):
                self.expr(a.value, scope)

    def knowledge_find(self, args: Iterable[n.Arg]) -> None:
        """``knowledge_find(type: "Reading", n: …)``, called or mocked: the text names a
        fact type (the characters between its quotes) and the other arguments its
        fields, so a rename of either edits the call (and a test's mock of it) too."""
        args = tuple(args)
        kind = next((a.value for a in args if a.name.name == "type"), None)
        if not (isinstance(kind, n.Literal) and isinstance(kind.value, str)
                and kind.value in self.checked.facts):
            return
        inside = kind.span.quoted(kind.value)
        if inside is None:
            return  # (written with escapes: not renamed)
        self.add(inside, "type", kind.value)
        for a in args:
            if a.name.name != "type" and self._has_field(kind.value, a.name.name):
                self.add(a.name.span, "field", kind.value, a.name.name)

    def agent(self, agent: n.Agent) -> None:
        self.add(agent.name.span, "agent", agent.name.name, declaration=True)
        scope = _Scope(_owner(agent.span))
        for p in agent.patterns:
            self.pattern(p, scope)
        if agent.one_at_a_time is not None:
            for k in agent.one_at_a_time.keys:
                if k.var is not None:
                    self.expr(n.Name(k.var.name, k.var.span), scope)
        if agent.where is not None:
            self.expr(agent.where, scope)
        for c in agent.calls:
            self.add(c.tool.span, "tool", c.tool.name)
            if c.tool.name == KNOWLEDGE_TOOL:
                self.knowledge_find(c.args)
            for a in c.args:
                self.expr(a.value, scope)
            self.bind(c.alias.name, c.alias.span, scope)
        for out in agent.outputs:
            if isinstance(out, n.Evaluate):
                self.expr(n.Name(out.target.name, out.target.span), scope)
                self.expr(out.score, scope)
                continue
            self.type_ref(out.type)
            self.args(out.type.name, out.args, scope)
            if isinstance(out, n.Emit) and out.confidence is not None:
                self.expr(out.confidence, scope)

    def test(self, test: n.Test) -> None:
        scope = _Scope(_owner(test.span))
        if test.cases is not None:
            for row in test.cases.rows:
                for a in row.fields:
                    self.bind(a.name.name, a.name.span, scope)
                    self.expr(a.value, scope)
        scope.binds = False
        for step in test.steps:
            if isinstance(step, n.Given):
                self.type_ref(step.type)
                self.args(step.type.name, step.args, scope)
            elif isinstance(step, n.GivenNow):
                self.expr(step.value, scope)
            elif isinstance(step, n.Mock):
                self.add(step.tool.span, "tool", step.tool.name)
                if step.tool.name == KNOWLEDGE_TOOL:
                    self.knowledge_find(step.args)
                for a in step.args:
                    self.expr(a.value, scope)
                if step.returns is not None:
                    self.expr(step.returns, scope)
            elif isinstance(step, (n.ExpectFact, n.ExpectConflict, n.Decide,
                                   n.ExpectPending)):
                self.pattern(step.pattern, scope)

    def expr(self, e: n.Expr, scope: _Scope, fields_of: str | None = None) -> None:
        if isinstance(e, n.Attribute):
            base = e.value
            if isinstance(base, n.Name) and base.id in scope.names:
                key, fact_type = scope.names[base.id]
                self.add(base.span, "variable", *key)
                if fact_type is not None:
                    self.add(e.attr.span, "field", fact_type, e.attr.name)
                return
            if isinstance(base, n.Name) and base.id in self.checked.enums:
                self.add(base.span, "type", base.id)
                self.add(e.attr.span, "member", base.id, e.attr.name)
                return
            self.expr(base, scope, fields_of)
        elif isinstance(e, n.Name):
            if fields_of is not None and self._has_field(fields_of, e.id):
                self.add(e.span, "field", fields_of, e.id)
            elif e.id in scope.names:
                self.add(e.span, "variable", *scope.names[e.id][0])
            elif e.id in self.bare_members:
                self.add(e.span, "member", self.bare_members[e.id], e.id)
        elif isinstance(e, n.FuncCall):
            self.add(e.func.span, "function", e.func.name)
            for a in e.args:
                self.expr(a, scope, fields_of)
        elif isinstance(e, n.Aggregate):
            inner = scope.inner(e.span)
            inner.binds = True
            self.pattern(e.pattern, inner)
            if e.field is not None:
                self.add(e.field.span, "field", e.pattern.type.name, e.field.name)
        elif isinstance(e, n.Unary):
            self.expr(e.operand, scope, fields_of)
        elif isinstance(e, n.Binary):
            self.expr(e.left, scope, fields_of)
            self.expr(e.right, scope, fields_of)
        elif isinstance(e, n.IfExpr):
            for part in (e.condition, e.then, e.otherwise):
                self.expr(part, scope, fields_of)
        elif isinstance(e, n.ListExpr):
            for item in e.items:
                self.expr(item, scope, fields_of)
        elif isinstance(e, n.Record):
            for arg in e.fields:
                self.expr(arg.value, scope, fields_of)

    def _has_field(self, type_name: str, name: str) -> bool:
        return _field_decl(self.checked, type_name, name) is not None

    def _enum_of(self, type_name: str, field_name: str) -> str | None:
        f = _field_decl(self.checked, type_name, field_name)
        return None if f is None or f.type.name not in self.checked.enums else f.type.name


def _field_decl(checked: CheckedRuleset, type_name: str, field_name: str
                ) -> n.FieldDecl | None:
    """The declaration of ``type_name``'s field ``field_name``, or None."""
    decl = checked.facts.get(type_name)
    if decl is None:
        return None
    return next((f for f in decl.fields if f.name.name == field_name), None)


# ------------------------------------------------------------------ outline


def outline(module: n.Module) -> list[Outline]:
    """The outline of one file: its ruleset line and items, with fields, enum members
    and the agents' outputs as children."""
    out: list[Outline] = []
    if module.header is not None:
        h = module.header
        out.append(Outline(h.name.name, "ruleset", h.span, h.name.span, h.title or ""))
    for item in module.items:
        entry = _outline_item(item)
        if entry is not None:
            out.append(entry)
    return out


def _outline_item(item: n.Item) -> Outline | None:
    if isinstance(item, n.FactDecl):
        kids = tuple(Outline(f.name.name, "field", f.span, f.name.span,
                             ("key " if f.key else "") + _type_text(f.type))
                     for f in item.fields)
        return Outline(item.name.name, "intent" if item.intent else "fact", item.span,
                       item.name.span, "intent" if item.intent else "fact", kids)
    if isinstance(item, n.EnumDecl):
        kids = tuple(Outline(m.name, "member", m.span, m.span) for m in item.members)
        return Outline(item.name.name, "enum", item.span, item.name.span, "enum", kids)
    if isinstance(item, n.Agent):
        return Outline(item.name.name, "agent", item.span, item.name.span,
                       f"tier {item.effective_tier}")
    if isinstance(item, n.Policy):
        return Outline(f"policy {item.type.name}", "policy", item.span, item.type.span)
    if isinstance(item, n.Prune):
        return Outline(f"prune {item.type.name}", "prune", item.span, item.type.span)
    if isinstance(item, n.Invariant):
        return Outline(item.name.name, "invariant", item.span, item.name.span,
                       "always" if item.always else "never")
    if isinstance(item, n.Gate):
        return Outline(f"approve {item.type.name}", "gate", item.span, item.type.span)
    if isinstance(item, n.Root):
        return Outline(f"root {item.goal!r}", "root", item.span, item.span)
    if isinstance(item, n.Test):
        return Outline(f"test {item.name!r}", "test", item.span, item.span)
    if isinstance(item, n.Import):
        return Outline(f"import {item.path!r}", "import", item.span, item.span)
    if isinstance(item, n.Uses):
        return Outline("uses tool " + ", ".join(t.name for t in item.tools), "uses",
                       item.span, item.span)
    return None


def _type_text(ref: n.TypeRef) -> str:
    inner = f"[{', '.join(_type_text(a) for a in ref.args)}]" if ref.args else ""
    return f"{ref.name}{inner}{'?' if ref.optional else ''}"


# ------------------------------------------------------------------ hover


def describe(index: RulesetIndex, symbol: Symbol, *,
             tools: Mapping[str, ToolSignature | None] | None = None,
             tool_docs: Mapping[str, str] | None = None,
             functions: Mapping[str, FunctionSignature] | None = None,
             function_docs: Mapping[str, str] | None = None,
             budgets: Mapping[str, str] | None = None) -> str | None:
    """Markdown for a hover over ``symbol``, or None when there is nothing to say."""
    checked = index.checked
    if symbol.kind == "type":
        decl: n.FactDecl | n.EnumDecl | None = checked.facts.get(symbol.name) \
            or checked.enums.get(symbol.name)
        if decl is None:
            return None
        text = _source_of(checked, decl.span)
        extra = ""
        if isinstance(decl, n.FactDecl):
            readers = index.agents_reading(symbol.name)
            writers = index.agents_writing(symbol.name)
            extra = ("\n\nemitted by: " + (", ".join(writers) or "input only")
                     + "\n\nread by: " + (", ".join(readers) or "no agent"))
        return f"```converge\n{text}\n```{extra}"
    if symbol.kind == "field":
        f = index.field_decl(*symbol.key)
        if f is None:
            return None
        key = "key " if f.key else ""
        default = ""
        if f.default is not None:
            from converge_rules.language.format.formatter import format_expr

            default = f" = {format_expr(f.default)}"
        return (f"```converge\n{key}{f.name.name}: {_type_text(f.type)}{default}\n```\n\n"
                f"field of `{symbol.key[0]}`" + (" (part of its key)" if f.key else ""))
    if symbol.kind == "member":
        return f"```converge\n{symbol.key[0]}.{symbol.key[1]}\n```\n\nmember of enum " \
               f"`{symbol.key[0]}`"
    if symbol.kind == "agent":
        agent = next((a for a in checked.agents if a.name.name == symbol.name), None)
        if agent is None:
            return None
        reads = sorted({p.type.name for p in agent.patterns})
        emits = sorted({o.type.name for o in agent.outputs if not isinstance(o, n.Evaluate)})
        calls = sorted({c.tool.name for c in agent.calls})
        lines = [f"```converge\nagent {agent.name.name} tier {agent.effective_tier}\n```",
                 "reads: " + (", ".join(reads) or "nothing"),
                 "emits: " + (", ".join(emits) or "nothing")]
        if calls:
            lines.append("calls: " + ", ".join(calls))
        return "\n\n".join(lines)
    if symbol.kind == "tool":
        sig = (tools or {}).get(symbol.name, checked.tools.get(symbol.name))
        doc = (tool_docs or {}).get(symbol.name, "")
        return tool_markdown(symbol.name, sig, doc)
    if symbol.kind == "function":
        fsig = (functions or checked.functions).get(symbol.name)
        if fsig is None:
            return None
        return function_markdown(fsig, (function_docs or {}).get(symbol.name, ""))
    if symbol.kind == "budget":
        kind = (budgets or {}).get(symbol.name)
        return None if kind is None else f"```converge\n{symbol.name} = <{kind}>\n```\n\n" \
                                         "budget of the root"
    if symbol.kind == "file":
        return f"imported file `{symbol.name}`"
    if symbol.kind == "variable":
        return f"variable `{symbol.name}`"
    return None


def tool_markdown(name: str, sig: ToolSignature | None, doc: str) -> str:
    """A tool's signature and description, as Markdown."""
    if sig is None:
        head = f"tool {name}(…)"
        where = "no installed plugin describes it"
    else:
        args = ", ".join(f"{k}: {v}" for k, v in sig.args.items())
        result = ", ".join(f"{k}: {v}" for k, v in sig.result.items())
        head = f"tool {name}({args}) -> {{{result}}}"
        where = f"from plugin `{sig.plugin}`" if sig.plugin else ""
    parts = [f"```converge\n{head}\n```"] + [p for p in (doc, where) if p]
    return "\n\n".join(parts)


def function_markdown(sig: FunctionSignature, doc: str) -> str:
    """A function's signature and description, as Markdown."""
    args = ", ".join(sig.args) + ("…" if sig.variadic else "")
    parts = [f"```converge\n{sig.name}({args}) -> {sig.result}\n```"]
    if doc:
        parts.append(doc)
    parts.append(f"from plugin `{sig.plugin}`" if sig.plugin else "built-in function")
    return "\n\n".join(parts)


def _source_of(checked: CheckedRuleset, span: Span) -> str:
    text = checked.sources.get(span.file)
    if text is None:
        return ""
    lines = text.split("\n")[span.line - 1:span.end_line]
    if not lines:
        return ""
    if len(lines) == 1:
        return lines[0][span.column - 1:span.end_column - 1]
    lines[0] = lines[0][span.column - 1:]
    lines[-1] = lines[-1][:span.end_column - 1]
    return "\n".join(lines)
