"""The syntax tree of a ``.cvg`` file: frozen, slotted dataclasses with source spans.

The parser builds these; the checker, the formatter and the compiler read them. Nothing
here knows about lark.

Every node carries a ``span`` that takes no part in equality or hashing, so two trees
that differ only in layout compare equal (``parse(fmt(x)) == parse(x)``).

Names that refer to something declared elsewhere (a fact type, a field, a tool, an
agent) are :class:`Ident` so that a diagnostic can point at exactly that name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, TypeAlias, TypeVar, dataclass_transform
from typing import Literal as Lit

from converge_rules.language.syntax.span import Span


def _span() -> Span:
    return field(compare=False, repr=False)  # type: ignore[no-any-return]


_N = TypeVar("_N")


# `frozen_default` is not in 3.11's signature but passes through its **kwargs; mypy
# reads it.
@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def node(cls: type[_N]) -> type[_N]:
    """``cls`` as a frozen, slotted dataclass whose equality, hash and repr are those
    ``@dataclass(frozen=True, slots=True)`` would give it: over the fields with
    ``compare`` (equality and hash) and ``repr`` set, in order, an instance of another
    class never equal. Only the three methods are shared functions instead of code
    generated per class: compiling that code for ~60 node classes was most of what
    importing this module cost, and every ``converge`` command that parses pays it."""
    made = dataclass(frozen=True, slots=True, eq=False, repr=False)(cls)
    declared = fields(made)  # type: ignore[arg-type]
    shared = {
        "_node_key": staticmethod(_key_of(tuple(f.name for f in declared if f.compare))),
        "_node_shown": tuple(f.name for f in declared if f.repr),
        "__eq__": _node_eq, "__hash__": _node_hash, "__repr__": _node_repr,
    }
    for name, value in shared.items():
        setattr(made, name, value)
    return made


def _key_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """What a node is compared and hashed by: the tuple of the named fields' values
    (a tuple even for one field, as the generated methods compare them)."""
    if not names:
        return lambda _: ()
    get = attrgetter(*names)
    if len(names) == 1:
        return lambda item: (get(item),)
    return get


def _node_eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self._node_key
        return key(self) == key(other)
    return NotImplemented


def _node_hash(self: Any) -> int:
    return hash(self._node_key(self))


def _node_repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._node_shown)
    return f"{self.__class__.__qualname__}({shown})"


@node
class Ident:
    """A name as written, with where it was written."""

    name: str
    span: Span = _span()


# --------------------------------------------------------------------------- types


@node
class TypeRef:
    """``str``, ``Channel``, ``list[str]``, ``float?``. ``args`` holds the element type of
    ``list``; ``optional`` is the trailing ``?``."""

    name: str
    args: tuple[TypeRef, ...]
    optional: bool
    span: Span = _span()


# --------------------------------------------------------------------- expressions


@node
class Literal:
    """A string, int, float or bool literal. ``text`` keeps how a number was written
    (``50_000``) so the formatter can keep it."""

    value: str | int | float | bool
    text: str = field(compare=False)
    span: Span = _span()


@node
class Duration:
    """``250ms``, ``2s``, ``5m``, ``3h``, ``30d``, ``2w``: a duration, held in
    milliseconds."""

    milliseconds: int
    text: str = field(compare=False)
    span: Span = _span()


@node
class Wildcard:
    """``_``: matches anything, binds nothing."""

    span: Span = _span()


@node
class Name:
    """A bare name: a variable, or an enum member written bare (``web``)."""

    id: str
    span: Span = _span()


@node
class Attribute:
    """``p.amount`` (a field of a bound fact or tool result) or ``Channel.web``."""

    value: Expr
    attr: Ident
    span: Span = _span()


UnaryOp: TypeAlias = Lit["-", "not"]
BinaryOp: TypeAlias = Lit[
    "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "in"
]


@node
class Unary:
    op: UnaryOp
    operand: Expr
    span: Span = _span()


@node
class Binary:
    op: BinaryOp
    left: Expr
    right: Expr
    span: Span = _span()


@node
class IfExpr:
    """``if C then A else B``."""

    condition: Expr
    then: Expr
    otherwise: Expr
    span: Span = _span()


@node
class FuncCall:
    """A built-in or plugin function: ``round(x, 2)``, ``lower(name)``."""

    func: Ident
    args: tuple[Expr, ...]
    span: Span = _span()


AggregateFunc: TypeAlias = Lit["count", "sum", "min", "max", "mean"]


@node
class Aggregate:
    """``count(P)``, ``sum(P, field)``, ``min``/``max``/``mean`` over the context.
    ``field`` is None only for ``count``."""

    func: AggregateFunc
    pattern: Pattern
    field: Ident | None
    span: Span = _span()


@node
class ListExpr:
    """``[a, b, c]``."""

    items: tuple[Expr, ...]
    span: Span = _span()


@node
class Record:
    """``{usd: 1.1, name: "x"}``: a record literal (mocked tool results)."""

    fields: tuple[Arg, ...]
    span: Span = _span()


Expr: TypeAlias = (
    Literal | Duration | Wildcard | Name | Attribute | Unary | Binary | IfExpr | FuncCall
    | Aggregate | ListExpr | Record
)


def walk_expr(e: Expr) -> Iterator[Expr]:
    """Every sub-expression of ``e``, ``e`` first, children left to right (pre-order),
    including the field values of aggregate patterns — like :func:`ast.walk`."""
    yield e
    children: tuple[Expr, ...] = ()
    if isinstance(e, Attribute):
        children = (e.value,)
    elif isinstance(e, Unary):
        children = (e.operand,)
    elif isinstance(e, Binary):
        children = (e.left, e.right)
    elif isinstance(e, IfExpr):
        children = (e.condition, e.then, e.otherwise)
    elif isinstance(e, FuncCall):
        children = e.args
    elif isinstance(e, ListExpr):
        children = e.items
    elif isinstance(e, Record):
        children = tuple(a.value for a in e.fields)
    elif isinstance(e, Aggregate):
        children = tuple(fm.value for fm in e.pattern.fields if fm.value is not None)
    for child in children:
        yield from walk_expr(child)


@node
class Arg:
    """``name: EXPR`` in an emit, intend, call, given or record."""

    name: Ident
    value: Expr
    span: Span = _span()


# ------------------------------------------------------------------------ patterns


@node
class FieldMatch:
    """One field of a pattern.

    ``sku`` alone is ``FieldMatch(Ident("sku"), None)``: binds the field to a variable of
    the same name (or, if already bound, constrains it). ``amount: cost`` has
    ``value=Name("cost")``; a literal, expression or ``_`` is a constraint or a wildcard.
    """

    field: Ident
    value: Expr | None
    span: Span = _span()


@node
class Pattern:
    """``[binder:] [not] [intent] Type(field, field: value, …)``.

    ``binder`` binds the whole fact (``p: Price(sku)``). ``negated`` is ``not``;
    ``intent`` is True for ``intent NeedRate(...)``.
    """

    type: Ident
    fields: tuple[FieldMatch, ...]
    binder: Ident | None
    negated: bool
    intent: bool
    span: Span = _span()


# ------------------------------------------------------------------------- agents


@node
class ToolCall:
    """``call TOOL(arg: EXPR, …) as NAME``."""

    tool: Ident
    args: tuple[Arg, ...]
    alias: Ident
    span: Span = _span()


@node
class Emit:
    """``emit [lasting] Type(field: EXPR, …) [confidence EXPR]``. A ``lasting`` fact
    does not rest on the facts its match used: it stays when they leave the context."""

    type: Ident
    args: tuple[Arg, ...]
    confidence: Expr | None
    span: Span = _span()
    lasting: bool = False


@node
class Intend:
    """``intend Intent(field: EXPR, …)``."""

    type: Ident
    args: tuple[Arg, ...]
    span: Span = _span()


@node
class Evaluate:
    """``evaluate VAR score EXPR [reason "text"]``."""

    target: Ident
    score: Expr
    reason: str | None
    span: Span = _span()


Output: TypeAlias = Emit | Intend | Evaluate


@node
class OrderKey:
    """One criterion of a one-at-a-time agent's order: ``lowest NAME`` / ``highest NAME``
    (``var`` is a variable the match binds) or ``earliest`` / ``latest`` (by the age of
    the facts matched; ``var`` is None)."""

    direction: Lit["lowest", "highest", "earliest", "latest"]
    var: Ident | None
    span: Span = _span()


@node
class OneAtATime:
    """``one at a time by KEY, then KEY…``: the agent fires one match per cycle, the
    first in this order."""

    keys: tuple[OrderKey, ...]
    span: Span = _span()


@node
class Agent:
    """``agent NAME [tier N] [one at a time by …] { when … [where …] [call …]* output+ }``.

    ``tier`` is None when not written; the effective tier is then
    :data:`DEFAULT_TIER`. ``one_at_a_time`` is None for an ordinary agent (every match
    of a cycle fires).
    """

    name: Ident
    tier: int | None
    patterns: tuple[Pattern, ...]
    where: Expr | None
    calls: tuple[ToolCall, ...]
    outputs: tuple[Output, ...]
    span: Span = _span()
    one_at_a_time: OneAtATime | None = None

    @property
    def effective_tier(self) -> int:
        return DEFAULT_TIER if self.tier is None else self.tier

    def expressions(self, *, patterns: bool = True) -> Iterator[Expr]:
        """Every top-level expression, in written order: pattern field values (unless
        ``patterns=False``), the ``where`` guard, call arguments, and each output's
        values, confidence and score. Sub-expressions: :func:`walk_expr`."""
        if patterns:
            for p in self.patterns:
                yield from (fm.value for fm in p.fields if fm.value is not None)
        if self.where is not None:
            yield self.where
        for c in self.calls:
            yield from (a.value for a in c.args)
        for out in self.outputs:
            if isinstance(out, Evaluate):
                yield out.score
                continue
            yield from (a.value for a in out.args)
            if isinstance(out, Emit) and out.confidence is not None:
                yield out.confidence


DEFAULT_TIER = 1


# -------------------------------------------------------------------------- items


@node
class RulesetDecl:
    """``ruleset NAME "title"``."""

    name: Ident
    title: str | None
    span: Span = _span()


@node
class Import:
    """``import "path.cvg"`` (relative to the importing file)."""

    path: str
    span: Span = _span()


@node
class Uses:
    """``uses tool A, B``."""

    tools: tuple[Ident, ...]
    span: Span = _span()


@node
class Budget:
    """``max_facts = 50_000`` or ``agent_timeout = 2s`` inside ``root``."""

    name: Ident
    value: Literal | Duration
    span: Span = _span()


@node
class Require:
    """``require EXPR``: a goal checked at convergence."""

    condition: Expr
    span: Span = _span()


@node
class Root:
    """``root "goal" { budgets and requires }``."""

    goal: str
    budgets: tuple[Budget, ...]
    requires: tuple[Require, ...]
    span: Span = _span()


@node
class EnumDecl:
    """``enum NAME { a, b }``."""

    name: Ident
    members: tuple[Ident, ...]
    span: Span = _span()


@node
class FieldDecl:
    """``[key] name: type [= default]``."""

    name: Ident
    type: TypeRef
    key: bool
    default: Expr | None
    span: Span = _span()


@node
class FactDecl:
    """``fact NAME { fields }`` or, with ``intent=True``, ``intent NAME { fields }``."""

    name: Ident
    fields: tuple[FieldDecl, ...]
    intent: bool
    span: Span = _span()

    @property
    def keys(self) -> tuple[FieldDecl, ...]:
        return tuple(f for f in self.fields if f.key)


SortDirection: TypeAlias = Lit["highest", "lowest"]


@node
class ByField:
    """``highest amount`` / ``lowest amount``; the field may be the pseudo-fields
    ``confidence`` or ``score`` (mean evaluation score)."""

    direction: SortDirection
    field: Ident
    span: Span = _span()


@node
class ByCycle:
    """``latest`` / ``earliest``: by the cycle the candidate was proposed in."""

    which: Lit["latest", "earliest"]
    span: Span = _span()


@node
class ByPriority:
    """``priority [agent_a, agent_b]``: earlier in the list wins."""

    agents: tuple[Ident, ...]
    span: Span = _span()


@node
class ByMajority:
    """``majority``: the value proposed by the most agents."""

    span: Span = _span()


@node
class ByResolver:
    """``using NAME``: a resolver a plugin registers."""

    resolver: Ident
    span: Span = _span()


Criterion: TypeAlias = ByField | ByCycle | ByPriority | ByMajority | ByResolver


@node
class Resolve:
    """``resolve by C1, then C2, …``."""

    criteria: tuple[Criterion, ...]
    span: Span = _span()


@node
class Combine:
    """``combine sum|min|max|mean FIELD``: merge the candidates into one fact."""

    func: Lit["sum", "min", "max", "mean"]
    field: Ident
    span: Span = _span()


@node
class KeepAll:
    """``keep all``: the key is off for this type."""

    span: Span = _span()


@node
class RejectAll:
    """``reject``: any conflict is an explicit failure."""

    span: Span = _span()


Strategy: TypeAlias = Resolve | Combine | KeepAll | RejectAll
TieMode: TypeAlias = Lit["reject", "first", "latest"]


@node
class OnTie:
    """``on tie reject|first|latest``."""

    mode: TieMode
    span: Span = _span()


@node
class Policy:
    """``policy FACT { strategy [on tie …] }``."""

    type: Ident
    strategy: Strategy
    on_tie: OnTie | None
    span: Span = _span()


@node
class PrunerUse:
    """``using NAME`` or ``using NAME(arg: CONSTANT, …)`` in a ``prune``: a pruner a
    plugin registers, bound to the arguments."""

    name: Ident
    args: tuple[Arg, ...]
    span: Span = _span()


@node
class Prune:
    """``prune FACT when EXPR``; ``age`` in EXPR is cycles since the fact was merged and
    the fact's fields are in scope by name. Or ``prune FACT using PRUNER(…)``: then
    ``condition`` is None and ``using`` names the plugin pruner. ``into`` is the
    target of ``… into knowledge`` (the facts move to the job's knowledge store), None
    when the pruned facts are dropped."""

    type: Ident
    condition: Expr | None
    span: Span = _span()
    using: PrunerUse | None = None
    into: Ident | None = None


@node
class Invariant:
    """``invariant NAME never PATTERN (and PATTERN)* [where EXPR]`` (``always`` False:
    a pattern that must never match; ``condition`` is its ``where`` guard, or None) or
    ``invariant NAME always EXPR`` (``always`` True, no patterns: a condition over the
    whole context that must hold after every cycle)."""

    name: Ident
    patterns: tuple[Pattern, ...]
    condition: Expr | None
    always: bool
    span: Span = _span()

    def as_agent(self) -> Agent:
        """A ``never`` invariant as the agent that would match what it forbids (no
        outputs): the checker and the compiler read its patterns and guard as such."""
        return Agent(self.name, None, self.patterns, self.condition, (), (), self.span)


@node
class Gate:
    """``approve TYPE [when EXPR]``: an approval gate. A fact of TYPE that an agent's
    effect would merge and for which EXPR holds (the type's fields in scope by name;
    every such fact without ``when``, ``condition`` None) is held as pending until a
    decision approves or rejects it. The gate's name is the type's."""

    type: Ident
    condition: Expr | None
    span: Span = _span()


# -------------------------------------------------------------------------- tests


@node
class Given:
    """``given Type(field: value, …)``."""

    type: Ident
    args: tuple[Arg, ...]
    span: Span = _span()


@node
class GivenNow:
    """``given now EXPR``: the job's time in a test (a datetime), what ``now()`` and
    ``today()`` give."""

    value: Expr
    span: Span = _span()


@node
class Mock:
    """``mock tool NAME(arg: value, …) returns EXPR`` (``returns`` set, ``fails`` None) or
    ``mock tool NAME(arg: value, …) fails "reason"`` (``returns`` None, ``fails`` the
    reason): a matching call answers with the result, or raises a tool error."""

    tool: Ident
    args: tuple[Arg, ...]
    returns: Expr | None
    span: Span = _span()
    fails: str | None = None


@node
class ExpectFact:
    """``expect Type(…)`` (``negated=False``) or ``expect no Type(…)``."""

    pattern: Pattern
    negated: bool
    span: Span = _span()


@node
class ExpectConflict:
    """``expect conflict Type(key: value, …)``."""

    pattern: Pattern
    span: Span = _span()


@node
class ExpectStatus:
    """``expect status converged``."""

    status: Ident
    span: Span = _span()


@node
class Decide:
    """``approve Type(…)`` (``approve`` True) or ``reject Type(…)`` in a test: a
    decision, given up front (by ``"test"``), on every pending fact the pattern
    matches."""

    pattern: Pattern
    approve: bool
    span: Span = _span()


@node
class ExpectPending:
    """``expect pending Type(…)``: a fact the pattern matches is still held by its gate
    when the job ends."""

    pattern: Pattern
    span: Span = _span()


TestStep: TypeAlias = (
    Given | GivenNow | Mock | ExpectFact | ExpectConflict | ExpectStatus | Decide
    | ExpectPending
)


@node
class Cases:
    """``cases { {a: 1, b: 2} … }`` (``rows``) or ``cases "file.csv"`` (``file``, a
    ``.csv`` or ``.jsonl`` path relative to the ruleset): the rows of a table test. Each
    row binds exactly the variables that the test's steps use; each row runs as its own
    case. ``names`` holds each row's name (``case "small claim" {…}``), None for an
    unnamed row; it is empty when no row is named."""

    rows: tuple[Record, ...]
    file: str | None
    span: Span = _span()
    names: tuple[str | None, ...] = ()

    def name_of(self, index: int) -> str | None:
        """The name of row ``index`` (0-based), or None when it is unnamed."""
        return self.names[index] if index < len(self.names) else None


@node
class Test:
    """``test "name" { [cases …] steps }``. ``cases`` is None for a plain test."""

    __test__ = False  # not a pytest class

    name: str
    steps: tuple[TestStep, ...]
    span: Span = _span()
    cases: Cases | None = None


Item: TypeAlias = (
    Import | Uses | Root | EnumDecl | FactDecl | Agent | Policy | Prune | Invariant | Gate
    | Test
)


@node
class Comment:
    """A ``# …`` comment, kept so the formatter can put it back. ``text`` includes the
    ``#``; ``trailing`` is True when code stands before it on the same line."""

    text: str
    trailing: bool
    span: Span = _span()


@node
class Module:
    """One ``.cvg`` file. ``header`` is None only when the file is missing its
    ``ruleset`` line (a diagnostic says so). Comments take no part in equality."""

    header: RulesetDecl | None
    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = field(compare=False, repr=False)
    span: Span = _span()

    def of_type(self, kind: type[Item]) -> list[Item]:
        return [item for item in self.items if isinstance(item, kind)]
