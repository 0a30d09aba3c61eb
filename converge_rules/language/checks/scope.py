"""What every part of the checker shares: the reporter that collects diagnostics, the
symbol tables of the whole ruleset, and the variable scope of one rule.

Also defines the name-resolution codes (CVG1xx) that several parts report.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from converge_rules.language.checks.checked import (
    FunctionSignature,
    PrunerSignature,
    ToolSignature,
)
from converge_rules.language.checks.types import PRIMITIVES, Ty
from converge_rules.language.diagnostics.core import Diagnostic, Related, Severity, define
from converge_rules.language.diagnostics.suggest import Vocabulary
from converge_rules.language.syntax.nodes import Agent, EnumDecl, FactDecl, FieldDecl
from converge_rules.language.syntax.span import Span

_FACTS = "fact Cost { key sku: str, amount: float }\nfact Price { key sku: str, amount: float }\n"

UNKNOWN_TYPE = define(
    "CVG101", "unknown-type", Severity.ERROR, "Unknown fact or intent type",
    "A pattern, output, policy, prune or test names a fact or intent type that no file "
    "of the ruleset declares.",
    wrong="ruleset r\n" + _FACTS + "agent a {\n  when Cots(sku, amount)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n",
    right="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n",
)
DUPLICATE_DECL = define(
    "CVG102", "duplicate-declaration", Severity.ERROR, "Name declared twice",
    "Two declarations (facts, intents and enums share one namespace; agents have their "
    "own) use the same name, in one file or across imported files.",
    wrong="ruleset r\nfact Cost { key sku: str }\nfact Cost { key sku: str, amount: float }\n",
    right="ruleset r\nfact Cost { key sku: str, amount: float }\n",
)
UNKNOWN_FIELD = define(
    "CVG103", "unknown-field", Severity.ERROR, "Unknown field",
    "A pattern, output, policy or test names a field its type does not declare.",
    wrong="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amout: x)\n"
          "  emit Price(sku: sku, amount: x)\n}\n",
    right="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amount: x)\n"
          "  emit Price(sku: sku, amount: x)\n}\n",
)
DUPLICATE_MEMBER = define(
    "CVG104", "duplicate-member", Severity.ERROR, "Field or enum member declared twice",
    "A fact, intent or enum declares the same field or member twice.",
    wrong="ruleset r\nfact Cost { key sku: str, amount: float, amount: int }\n",
    right="ruleset r\nfact Cost { key sku: str, amount: float }\n",
)
UNKNOWN_MEMBER = define(
    "CVG105", "unknown-enum-member", Severity.ERROR, "Unknown enum member",
    "A qualified enum member (`Channel.web`) names a member the enum does not have.",
    wrong="ruleset r\nenum Channel { web, store }\nfact Price { key sku: str, channel: Channel }"
          "\nfact Cost { key sku: str }\nagent a {\n  when Cost(sku)\n"
          "  emit Price(sku: sku, channel: Channel.shop)\n}\n",
    right="ruleset r\nenum Channel { web, store }\nfact Price { key sku: str, channel: Channel }"
          "\nfact Cost { key sku: str }\nagent a {\n  when Cost(sku)\n"
          "  emit Price(sku: sku, channel: Channel.store)\n}\n",
)
UNKNOWN_NAME = define(
    "CVG106", "unknown-name", Severity.ERROR, "Unknown variable",
    "An expression uses a name that no pattern binds and that is not a member of the "
    "enum expected there.",
    wrong="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku, amount: amont * 2)\n}\n",
    right="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku, amount: amount * 2)\n}\n",
)
USED_BEFORE_BOUND = define(
    "CVG107", "used-before-bound", Severity.ERROR, "Variable used before it is bound",
    "A variable is used in a pattern constraint, guard or call before the pattern or "
    "call that binds it. Patterns bind left to right; `call … as NAME` binds after the "
    "guard.",
    wrong="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amount: total + 1) and "
          "Price(sku, amount: total)\n  emit Price(sku: sku, amount: total)\n}\n",
    right="ruleset r\n" + _FACTS + "agent a {\n  when Price(sku, amount: total) and "
          "Cost(sku, amount: total + 1)\n  emit Price(sku: sku, amount: total)\n}\n",
)
SHADOWING = define(
    "CVG108", "shadowed-name", Severity.ERROR, "Name bound twice",
    "A whole-fact binder (`p: Price(…)`) or a call result (`as NAME`) reuses a name that "
    "is already bound in the rule. (A field variable bound in two patterns is a join, "
    "not an error.)",
    wrong="ruleset r\n" + _FACTS + "agent a {\n  when p: Cost(sku) and p: Price(sku)\n"
          "  emit Price(sku: sku, amount: 1.0)\n}\n",
    right="ruleset r\n" + _FACTS + "agent a {\n  when c: Cost(sku) and p: Price(sku)\n"
          "  emit Price(sku: sku, amount: 1.0)\n}\n",
)
NOT_A_BINDER = define(
    "CVG109", "evaluate-not-fact", Severity.ERROR, "evaluate needs a whole-fact binder",
    "`evaluate NAME` attaches a score to a matched fact, so NAME must be bound to a whole "
    "fact with `NAME: Type(…)` in a positive pattern.",
    wrong="ruleset r\n" + _FACTS + "agent a {\n  when Price(sku, amount)\n"
          "  evaluate sku score 0.5\n}\n",
    right="ruleset r\n" + _FACTS + "agent a {\n  when p: Price(sku, amount)\n"
          "  evaluate p score 0.5\n}\n",
)
DUPLICATE_ARG = define(
    "CVG110", "duplicate-argument", Severity.ERROR, "Argument given twice",
    "An emit, intend, call, given, mock or record names the same field twice.",
    wrong="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku, amount: amount, amount: 1.0)\n}\n",
    right="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n",
)
MISSING_FIELD = define(
    "CVG111", "missing-field", Severity.ERROR, "Required field missing",
    "An emit, intend or given leaves out a field that has no default and is not "
    "optional (`T?`).",
    wrong="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku)\n}\n",
    right="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n",
)
UNKNOWN_TYPE_NAME = define(
    "CVG112", "unknown-field-type", Severity.ERROR, "Unknown field type",
    "A field is declared with a type that is neither `str int float bool`, `list[T]` nor "
    "a declared enum.",
    wrong="ruleset r\nfact Cost { key sku: str, amount: flaot }\n",
    right="ruleset r\nfact Cost { key sku: str, amount: float }\n",
)
NEGATED_BINDER = define(
    "CVG113", "negated-binder", Severity.ERROR, "Binder on a negated pattern",
    "`p: not T(…)` binds nothing, because a negated pattern matches no fact. Drop the "
    "binder.",
    wrong="ruleset r\n" + _FACTS + "fact Alert { key sku: str }\nagent a {\n"
          "  when Cost(sku, amount) and p: not Alert(sku)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n",
    right="ruleset r\n" + _FACTS + "fact Alert { key sku: str }\nagent a {\n"
          "  when Cost(sku, amount) and not Alert(sku)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n",
)

DUPLICATE_TOOL = define(
    "CVG114", "duplicate-tool", Severity.WARNING, "Tool declared twice",
    "A tool is listed twice in `uses tool` lines (across all files); one is enough.",
    wrong="ruleset r\nuses tool fx_rate, geo\nuses tool fx_rate\n",
    right="ruleset r\nuses tool fx_rate, geo\n",
)

TYPE_MISMATCH = define(
    "CVG201", "type-mismatch", Severity.ERROR, "Value of the wrong type",
    "A value does not have the type its place declares: an emit or given field, a "
    "default, a pattern constraint, a function or tool argument. An `int` is accepted "
    "where a `float` is expected, and an optional `T?` value where a `T` is.",
    wrong="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amount)\n"
          '  emit Price(sku: sku, amount: "cheap")\n}\n',
    right="ruleset r\n" + _FACTS + "agent a {\n  when Cost(sku, amount)\n"
          "  emit Price(sku: sku, amount: amount)\n}\n",
)


class Reporter:
    """Collects diagnostics; the checker never stops at the first one."""

    def __init__(self) -> None:
        self.found: list[Diagnostic] = []

    def error(self, code: str, span: Span | None, message: str, help: str | None = None,
              related: tuple[Related, ...] = ()) -> None:
        self.found.append(Diagnostic(code, Severity.ERROR, message, span, help or None,
                                     related))

    def warning(self, code: str, span: Span | None, message: str, help: str | None = None,
                related: tuple[Related, ...] = ()) -> None:
        self.found.append(Diagnostic(code, Severity.WARNING, message, span, help or None,
                                     related))


Pool = Literal["facts", "intents", "types", "tools", "agents", "functions", "value-types",
               "fields", "members"]
"""The pools of names :meth:`Tables.vocabulary` suggests from."""


@dataclass(slots=True)
class Tables:
    """The ruleset's declarations, gathered from every module (first declaration wins
    when a name is declared twice; the duplicate is reported).

    The lookups below index what they need on first use and keep it, so that each costs
    the same however large the ruleset: fill the tables before asking them anything.
    """

    facts: dict[str, FactDecl] = field(default_factory=dict)
    enums: dict[str, EnumDecl] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    tools: dict[str, ToolSignature | None] = field(default_factory=dict)
    tool_spans: dict[str, Span] = field(default_factory=dict)
    functions: dict[str, FunctionSignature] = field(default_factory=dict)
    resolvers: frozenset[str] | None = None
    #: plugin pruners usable in ``prune T using NAME(…)``; None: not known (any name)
    pruners: Mapping[str, PrunerSignature] | None = None
    _fields: dict[str, dict[str, FieldDecl]] = field(default_factory=dict, init=False,
                                                     repr=False, compare=False)
    _members: dict[str, dict[str, None]] = field(default_factory=dict, init=False,
                                                 repr=False, compare=False)
    _owners: dict[str, list[str]] | None = field(default=None, init=False, repr=False,
                                                 compare=False)
    _vocabularies: dict[tuple[Pool, str], Vocabulary] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def _fields_of(self, type_name: str) -> dict[str, FieldDecl]:
        found = self._fields.get(type_name)
        if found is None:
            found = {}
            decl = self.facts.get(type_name)
            for f in decl.fields if decl else ():
                found.setdefault(f.name.name, f)  # a field declared twice: the first
            self._fields[type_name] = found
        return found

    def field_of(self, type_name: str, name: str) -> FieldDecl | None:
        return self._fields_of(type_name).get(name)

    def field_names(self, type_name: str) -> list[str]:
        decl = self.facts.get(type_name)
        return [f.name.name for f in decl.fields] if decl else []

    def first_field(self, type_name: str) -> str | None:
        """The name of the first field of ``type_name``, if it has one."""
        return next(iter(self._fields_of(type_name)), None)

    def field_help(self, type_name: str, name: str, *, also: tuple[str, ...] = ()) -> str:
        """Suggestions for ``name``, which is not a field of ``type_name`` (nor one of
        ``also``): the closest fields, or the list of all of them."""
        return self.vocabulary("fields", type_name).did_you_mean(
            name, also=also,
            otherwise=lambda: "fields: " + ", ".join([*self.field_names(type_name), *also]))

    def members(self, enum: str) -> list[str]:
        decl = self.enums.get(enum)
        return [m.name for m in decl.members] if decl else []

    def _members_of(self, enum: str) -> dict[str, None]:
        found = self._members.get(enum)
        if found is None:
            decl = self.enums.get(enum)
            found = self._members[enum] = dict.fromkeys(
                m.name for m in decl.members) if decl else {}
        return found

    def is_member(self, enum: str, name: str) -> bool:
        """Is ``name`` a member of enum ``enum``?"""
        return name in self._members_of(enum)

    def owners(self, member: str) -> list[str]:
        """The enums that have a member ``member``, sorted."""
        if self._owners is None:
            owners: dict[str, list[str]] = {}
            for enum in sorted(self.enums):
                for m in self._members_of(enum):
                    owners.setdefault(m, []).append(enum)
            self._owners = owners
        return list(self._owners.get(member, ()))

    def vocabulary(self, pool: Pool, owner: str = "") -> Vocabulary:
        """The names a misspelt one is compared with, indexed once: ``pool`` is one of
        ``facts``, ``intents``, ``types`` (both), ``tools``, ``agents``, ``functions``,
        ``value-types`` (what a field may be declared as), ``fields`` (of fact type
        ``owner``) or ``members`` (of enum ``owner``)."""
        key = (pool, owner)
        found = self._vocabularies.get(key)
        if found is None:
            found = self._vocabularies[key] = Vocabulary(self._pool(pool, owner))
        return found

    def _pool(self, pool: Pool, owner: str) -> list[str]:
        if pool in ("facts", "intents", "types"):
            return [n for n, d in self.facts.items()
                    if pool == "types" or d.intent == (pool == "intents")]
        if pool == "tools":
            return list(self.tools)
        if pool == "agents":
            return list(self.agents)
        if pool == "functions":
            return list(self.functions)
        if pool == "value-types":
            return [*PRIMITIVES, "list", *self.enums]
        if pool == "fields":
            return list(self._fields_of(owner))
        return list(self._members_of(owner))

    def type_help(self, name: str, *, intent: bool | None = None) -> str:
        """Suggestions for an unknown fact/intent type name."""
        pool: Pool = "types" if intent is None else "intents" if intent else "facts"
        return self.vocabulary(pool).did_you_mean(
            name, otherwise="declare it with `fact NAME { … }` or import the file that "
            "declares it")


@dataclass(slots=True)
class Binding:
    """A name bound in a rule: a field variable, a whole fact, or a call result."""

    ty: Ty
    span: Span
    kind: str  # "var", "fact", "tool", "builtin"


@dataclass(slots=True)
class Scope:
    """The names visible at one point of a rule. ``later`` holds names the rule binds
    further on, so a too-early use says "used before bound" rather than "unknown"."""

    names: dict[str, Binding] = field(default_factory=dict)
    later: set[str] = field(default_factory=set)
    #: any name is accepted (typed ``any``): the names could not be known, and why was
    #: already reported (a table test whose fixture file cannot be read)
    open: bool = False
    #: the help of an unknown name when no bound name is close (empty: bind it in a
    #: `when` pattern); a test says what stands for "any value" there
    unbound_help: str = ""
    #: one list per open :meth:`local` block: the names bound in it, and whether each
    #: was in ``later`` before
    _undo: list[list[tuple[str, bool]]] = field(default_factory=list, init=False,
                                                repr=False, compare=False)

    def child(self) -> Scope:
        """A copy: what is bound in it stays there."""
        return Scope(dict(self.names), set(self.later), self.open, self.unbound_help)

    def add(self, name: str, binding: Binding) -> None:
        """Bind ``name`` (not bound yet) from here on."""
        if self._undo:
            self._undo[-1].append((name, name in self.later))
        self.names[name] = binding
        self.later.discard(name)

    @contextmanager
    def local(self) -> Iterator[Scope]:
        """This scope, for a pattern whose bindings must not outlive it (a negated
        pattern, an aggregate's pattern): what :meth:`add` binds in the block is unbound
        when it ends. Unlike a :meth:`child`, nothing is copied, so a rule with many
        such patterns costs no more per pattern than one with few."""
        self._undo.append([])
        try:
            yield self
        finally:
            for name, was_later in reversed(self._undo.pop()):
                del self.names[name]
                if was_later:
                    self.later.add(name)
