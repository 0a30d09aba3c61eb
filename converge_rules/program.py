"""The compiled program: the one contract between the compiler and the engine.

The compiler turns a :class:`~converge_rules.language.checks.checked.CheckedRuleset` into a
:class:`Program`; the engine runs a ``Program`` and never sees the syntax tree.

Runtime representation (what generated code and the engine agree on):

* A **fact** is a tuple of field values in declared field order, held in a job-scoped
  arena and named by an integer **fact id**. Ids are handed out in merge order and never
  reused, so "new since watermark *w*" is simply ``id >= w``.
* Values: ``str``, ``int``, ``float``, ``bool``, ``None`` (optional fields), enum
  members as their member name (``"web"``), lists as tuples (facts must hash), dates
  as :class:`datetime.date`, datetimes as :class:`datetime.datetime` in UTC, durations
  as :class:`datetime.timedelta`.
* An **index** (declared by the compiler in :attr:`Program.indexes`) maps a key to the
  live ids of one type whose fields at ``positions`` equal that key, in ascending id
  order. A one-position index is keyed by the bare value, a longer one by a tuple.
  Generated code only iterates a bucket (``for f in ix.get(key, ()):``); the engine
  keeps a key held by one fact as a 1-tuple ``(id,)`` (a dict per unique key would
  cost ~200 bytes a fact), and beyond that a list (when facts never leave the
  context) or a dict used as an ordered set.
* An agent function has the signature ``fn(view, since, runtime) -> list[Output]``
  (or :class:`Columns`, the same outputs in columnar form): it reads the
  :class:`View` only, treats ids ``>= since`` as new (semi-naive: every match it
  returns uses at least one new fact, and each match is returned exactly once over
  the life of a job), and returns its outputs in match order.
* An agent whose :attr:`AgentSpec.unblocks` is not empty also takes ``gone``:
  ``fn(view, since, runtime, gone)``, one sequence of fact ids per type of
  ``unblocks``, the facts of that type older than ``since`` that left the context
  since the agent last ran. It then also returns the matches those removals enable
  (matches on old facts only, which one of the facts gone blocked), each exactly once,
  and returns all its outputs in the order a run with ``since=0`` would give them.
"""

from __future__ import annotations

from array import array
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    MutableSequence,
    Sequence,
)
from itertools import repeat
from typing import Any, Literal, Protocol, TypeAlias, overload

from converge_rules.datetypes import datetime
from converge_rules.language.syntax.span import Span
from converge_rules.records import field, record

# ---------------------------------------------------------------- output records
# Tuples, not objects: they are built in the hot loop.
#   (EMIT,     type_id, values, confidence, support)
#   (INTEND,   type_id, values, 1.0,        support)
#   (EVALUATE, fact_id, score,  reason,     support)
# ``support`` is the tuple of fact ids the match rests on (positive patterns, in pattern
# order, intents included). The engine records it as the output's derivation and closes
# every open intent in the support once the effect is merged. The support of an
# ``emit lasting`` is a :class:`Lasting` tuple: the trace records it, but the fact does
# not rest on it.

EMIT = 0
INTEND = 1
EVALUATE = 2

Output: TypeAlias = tuple[Any, ...]


class Lasting(tuple):  # type: ignore[type-arg]
    """The support of an ``emit lasting`` output: the facts the match used, recorded
    for the trace and ``explain``, none of which the fact rests on. It is never
    retracted with them (only replaced on its key, or pruned), and it is merged even
    when one of them left the context earlier in the same merge (the firing happened)."""

    __slots__ = ()


class Columns(Sequence[Output]):
    """A run's outputs in columnar form, the compact alternative to a list of output
    tuples that generated code returns when every output of the agent is a plain
    ``emit`` (no confidence, not ``lasting``) of one unkeyed, non-intent type.

    Output ``i`` is ``(EMIT, type_id, values[i], 1.0, tuple(support[i * width:(i + 1)
    * width]))``: ``values`` holds the value tuples, ``support`` the fact ids of every
    output's support one after another, ``width`` ids each (flat ints, no tuple per
    output: a list, which generated code fills, or an ``array`` of ints). It is a
    read-only sequence of exactly those output tuples (built on access, equal to a
    list of them), so code that does not know the form reads it as a list; the merge
    and the trace read the columns directly. Batching is a representation only: a
    ``Columns`` and the list of its tuples merge into the same facts, ids and trace.
    """

    __slots__ = ("support", "type_id", "values", "width")

    def __init__(self, type_id: int, values: list[tuple[Any, ...]],
                 support: MutableSequence[int], width: int) -> None:
        self.type_id = type_id
        self.values = values
        self.support = support
        self.width = width

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, i: int) -> Output: ...

    @overload
    def __getitem__(self, i: slice) -> list[Output]: ...

    def __getitem__(self, i: int | slice) -> Output | list[Output]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self.values)))]
        vals = self.values[i]  # IndexError, negative indexes: as a list's
        k = i % len(self.values) * self.width
        return (EMIT, self.type_id, vals, 1.0, tuple(self.support[k:k + self.width]))

    def __iter__(self) -> Iterator[Output]:
        # built at C speed: the support's ids grouped ``width`` at a time by zip
        values = self.values
        n = len(values)
        w = self.width
        ids = iter(self.support)
        supports = zip(*[ids] * w, strict=False) if w else repeat((), n)
        return zip(repeat(EMIT, n), repeat(self.type_id, n), values, repeat(1.0, n), supports,
                   strict=False)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Columns):
            return (self.type_id, self.width, self.values, list(self.support)) == (
                other.type_id, other.width, other.values, list(other.support))
        if isinstance(other, list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Columns({self.type_id}, {self.values!r}, {list(self.support)!r}, {self.width})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Columns, (self.type_id, self.values, self.support, self.width))

    def malformed(self) -> str | None:
        """Why these columns break the contract above, or None. In constant time: the
        shape of the columns (as for output tuples, the values themselves are not
        looked at)."""
        if type(self.type_id) is not int or type(self.width) is not int or self.width < 0:
            return "malformed output: Columns needs an int type_id and width"
        if type(self.values) is not list:
            return "malformed output: Columns values must be a list of value tuples"
        support = self.support
        if type(support) is not list and (
                type(support) is not array or support.typecode not in "bhilqBHILQ"):
            return "malformed output: Columns support must be a list or an array of ints"
        if len(self.support) != len(self.values) * self.width:
            return "malformed output: Columns support must hold width ids per output"
        return None


class View(Protocol):
    """A read-only snapshot of the context, as generated agent code sees it.

    The engine's fact store implements it. Agents must not mutate anything reached
    through it; phase 1 runs many agents against one view at once.
    """

    #: fact id → field values (the arena; contains dead facts too — use ``live``).
    values: Sequence[tuple[Any, ...]]
    #: type id → live fact ids of that type, ascending (a dict used as an ordered set).
    live: Sequence[Mapping[int, None]]
    #: index id → key → live fact ids, ascending (a 1-tuple, a list or a dict used as
    #: an ordered set): iterate it, nothing more.
    indexes: Sequence[Mapping[Any, Collection[int]]]

    def new(self, type_id: int, since: int) -> Iterable[int]:
        """Live ids of ``type_id`` that are ``>= since``, ascending."""
        ...

    def key_table(self, type_id: int) -> Mapping[Any, int]:
        """For a keyed fact type: key (the key fields' value, a tuple of them when
        there are several) → the one live fact holding it. Read it, nothing more."""
        ...

    def cycle_of(self, fact_id: int) -> int:
        """The cycle in which a live fact was merged (0 for input facts)."""
        ...

    #: the job's time (a UTC datetime) that ``now()`` and ``today()`` read, or None when
    #: the job was given none; fixed for the whole job, never the clock.
    now: datetime | None

    def same_fact(self, type_id: int, vals: tuple[Any, ...]) -> int | None:
        """The live fact (or closed intent) of ``type_id`` equal to ``vals``, if any."""
        ...

    #: agent name → the matches (their facts' ids, in pattern order) that the ``one at
    #: a time`` agent has fired; it fires none of them again.
    fired: Mapping[str, Collection[tuple[int, ...]]]


class Runtime(Protocol):
    """What an agent may do besides reading: call tools. One runtime per agent run;
    it records each call and result for the trace. A failing call raises
    :class:`~converge_rules.errors.ToolError`, which discards the agent's whole effect."""

    def call(self, tool: str, args: dict[str, Any]) -> dict[str, Any]: ...


class AsyncRuntime(Runtime, Protocol):
    """The runtime an agent's coroutine variant (:attr:`AgentSpec.afn`) is given:
    ``acall`` is ``call`` awaited on the job's event loop, recorded the same way."""

    async def acall(self, tool: str, args: dict[str, Any]) -> dict[str, Any]: ...


AgentFn: TypeAlias = Callable[[View, int, Runtime], list[Output] | Columns]
#: an agent with :attr:`AgentSpec.unblocks` called with the facts gone (see above)
UnblockingAgentFn: TypeAlias = Callable[[View, int, Runtime, Sequence[Sequence[int]]],
                                        list[Output] | Columns]
#: the coroutine variant of an agent that calls tools (:attr:`AgentSpec.afn`), called
#: with ``gone`` too when it has :attr:`AgentSpec.unblocks`
AsyncAgentFn: TypeAlias = Callable[..., Awaitable[list[Output] | Columns]]
PruneFn: TypeAlias = Callable[[tuple[Any, ...], int], bool]   # (values, age) → drop?
RequireFn: TypeAlias = Callable[[View], bool]


# ------------------------------------------------------------------------ types


@record
class ValueType:
    """The runtime type of a field. ``base`` is one of ``str int float bool date
    datetime duration blob enum list``; ``members`` lists an enum's members; ``element``
    is a list's element type. A ``blob`` holds a :class:`~converge_rules.blobs.Blob`."""

    base: Literal["str", "int", "float", "bool", "date", "datetime", "duration", "blob",
                  "enum", "list"]
    optional: bool = False
    enum: str | None = None
    members: tuple[str, ...] = ()
    element: ValueType | None = None

    def __str__(self) -> str:
        text = (
            f"list[{self.element}]" if self.base == "list"
            else self.enum if self.base == "enum" and self.enum
            else self.base
        )
        return text + ("?" if self.optional else "")


class Clock:
    """The type of :data:`CLOCK`."""

    def __repr__(self) -> str:
        return "CLOCK"


CLOCK = Clock()
"""``run(now=CLOCK)``: the job's time is the clock when the job starts."""


class _Missing:
    """Marker for "no default" (a required field)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@record
class FieldSpec:
    """A field of a fact or intent type: its value type, whether it is part of the
    type's key, and its default (``MISSING`` when the field is required)."""

    name: str
    type: ValueType
    key: bool
    default: Any = MISSING       # a runtime value, or MISSING when the field is required

    @property
    def required(self) -> bool:
        return self.default is MISSING and not self.type.optional


@record
class TypeSpec:
    """A fact or intent type. ``key_positions`` is empty for an unkeyed type (which
    never conflicts), and for a type whose policy is ``keep all``."""

    id: int
    name: str
    fields: tuple[FieldSpec, ...]
    key_positions: tuple[int, ...]
    intent: bool
    span: Span

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def position(self, name: str) -> int:
        return self.field_names.index(name)


@record
class IndexSpec:
    """A hash index the engine must keep, on ``positions`` of ``type_id``.

    ``driven_by`` (optional, default empty) lists the types whose *new* facts drive
    every lookup in this index: the types of the patterns whose semi-naive pass uses
    it, and the negated types whose facts gone drive a pass that uses it (see
    :attr:`AgentSpec.unblocks`). Empty means a lookup may happen in any run
    (negation, aggregates, or not known), and the engine keeps the index at all
    times. When every driving type is input-only (no agent emits it), the engine
    builds the index only for cycles in which some agent can still see those inputs
    as new or is handed facts gone, and does not maintain it otherwise (for closure,
    the ``Path(src)`` index of the "Edge is new" pass).

    ``tier`` (optional, default 0) is the lowest tier of the agents that look the
    index up, when only agents do (no invariant, prune, gate or ``requires``): the
    engine builds it at the first cycle of that tier, and maintains it from then on
    (Waltz's routing of edges by ``plotted``, read by its tier 3 agents only, is not
    maintained through the 28,000 updates of tier 2). 0 keeps it from the start."""

    id: int
    type_id: int
    positions: tuple[int, ...]
    driven_by: tuple[int, ...] = ()
    tier: int = 0


# ----------------------------------------------------------------------- agents


@record
class AgentSpec:
    """One compiled agent.

    ``reads`` are the types of its positive patterns (a new fact of one of them may
    give it a new match); ``negates`` are the types it negates or aggregates over
    (a removal there may give it new matches, so the engine re-runs it from
    ``since=0`` when one of them loses a fact, unless ``unblocks`` covers it);
    ``source`` is the generated Python.
    ``unblocks`` are the types it negates (and does not aggregate over) whose removals
    it handles incrementally: when only types of ``unblocks`` lost facts, the engine
    runs it from its watermark with the ids gone (``fn(view, since, runtime, gone)``,
    see the module docstring) instead of from ``since=0``, so a match that was already
    derived is never derived again.
    ``aggregates`` are the types it aggregates over (also in ``negates``);
    ``updates`` the keyed types it emits with an aggregate in a field value: a value
    it derives in a later cycle for a key only it holds is an update of its own
    earlier value (the aggregate's inputs changed), not a conflict.
    ``one_at_a_time``: the agent returns the outputs of at most one match per run (the
    first, in its declared order, whose outputs would change the context), and is
    always run with ``since=0``: in its first cycle, and in every cycle after one in
    which it fired, a type it reads, negates or aggregates over gained a fact, or a
    type it negates or emits lost one.
    ``afn`` (optional) is the coroutine variant of ``fn`` for an agent that calls
    tools: called like ``fn`` with a runtime that has ``acall``, it awaits each call
    (``await runtime.acall(tool, args)``) and returns what ``fn`` returns. Executors
    built on an event loop await it; the others, and every agent without it, use ``fn``.
    """

    name: str
    tier: int
    order: int                   # declaration order across the ruleset; merge order
    fn: AgentFn
    source: str
    reads: tuple[int, ...]
    negates: tuple[int, ...]
    emits: tuple[int, ...]
    tools: tuple[str, ...]
    span: Span
    aggregates: tuple[int, ...] = ()
    updates: tuple[int, ...] = ()
    one_at_a_time: bool = False
    unblocks: tuple[int, ...] = ()
    afn: AsyncAgentFn | None = field(default=None, compare=False, repr=False)


# --------------------------------------------------------------------- policies

CriterionKind: TypeAlias = Literal[
    "field", "confidence", "score", "latest", "earliest", "priority", "majority", "using"
]


@record
class Contender:
    """One distinct value in a conflict, as a resolver sees it.

    ``values`` are the fact's field values in declared order (``TypeSpec.field_names``
    names them); ``confidence`` its confidence (the highest of its proposers);
    ``score`` the mean evaluation score, ``None`` when unevaluated; ``cycle`` when it
    was (or would be) merged; ``agents`` the distinct agents proposing it, in merge
    order (empty for an input fact); ``incumbent`` whether it is the live fact;
    ``order`` an input fact's place in its batch of inputs (its last line in the file,
    its last place among one ``Session.add``), 0 for a derived fact: what ``latest``
    and ``earliest`` compare after ``cycle``, so the later input is the latest.
    Contenders are listed in merge order, the incumbent first."""

    values: tuple[Any, ...]
    confidence: float
    score: float | None
    cycle: int
    agents: tuple[str, ...]
    incumbent: bool
    order: int = 0


class Resolver(Protocol):
    """A criterion for ``resolve by using NAME``, registered by a plugin.

    Called with the conflicting type and the contenders (in merge order, never
    fewer than two); returns the indexes of the contenders it prefers — a non-empty
    subset. One index decides the conflict; several pass the survivors to the next
    criterion (or ``on_tie``). It must be a pure, deterministic function. One that
    raises, or returns anything else, leaves the conflict unresolved: the job stops
    with status ``conflict``, the reason naming the resolver and its error."""

    def __call__(self, type_spec: TypeSpec, contenders: Sequence[Contender]) -> Sequence[int]: ...


@record
class CriterionSpec:
    """One ``resolve by`` criterion. ``direction`` is ``highest``/``lowest`` for
    ``field``, ``confidence`` and ``score``; ``position`` is the field's position for
    ``field``; ``agents`` the order for ``priority``; ``resolver`` the name for
    ``using`` and ``resolver_fn`` the resolver the compiler bound to that name (from
    the registries the ruleset was compiled with)."""

    kind: CriterionKind
    direction: Literal["highest", "lowest"] | None = None
    position: int | None = None
    agents: tuple[str, ...] = ()
    resolver: str | None = None
    resolver_fn: Resolver | None = field(default=None, compare=False, repr=False)


@record
class PolicySpec:
    """How conflicts on one keyed type are resolved.

    ``mode``: ``resolve`` (criteria in order, then ``on_tie``), ``combine`` (merge the
    candidates with ``combine_func`` over the field at ``combine_position``),
    ``reject`` (any conflict fails the job). ``keep all`` compiles to a type with no key
    positions and no policy. ``on_tie`` defaults to ``reject``: failure is explicit.
    """

    type_id: int
    mode: Literal["resolve", "combine", "reject"]
    criteria: tuple[CriterionSpec, ...] = ()
    on_tie: Literal["reject", "first", "latest"] = "reject"
    combine_func: Literal["sum", "min", "max", "mean"] | None = None
    combine_position: int | None = None
    span: Span | None = None


# ----------------------------------------------------------- prune, root, program


@record
class PruneSpec:
    """``prune TYPE when EXPR``: ``fn(values, age)`` is True for a fact to drop;
    ``into_knowledge``: the fact moves to the job's knowledge store (``… into
    knowledge``) instead of being dropped."""

    type_id: int
    fn: PruneFn
    source: str
    text: str
    span: Span
    into_knowledge: bool = False


@record
class RequireSpec:
    """A ``require`` goal; ``text`` is the goal as written, for the result."""

    text: str
    fn: RequireFn
    source: str
    span: Span


@record
class InvariantSpec:
    """An ``invariant``; ``text`` is it as written (after the name), for the result.

    ``always``: ``fn(view)`` is True while it holds; the engine checks it after the
    inputs' merge and every cycle that changed a type of ``types`` (those it
    aggregates over). ``never``: ``fn(view, since, None)`` returns the support (fact
    ids in pattern order) of each forbidden match that has a fact ``>= since`` —
    since 0: every match in the context. The engine checks an effect that adds a fact
    of a type of ``triggers`` (the positive patterns' types) before merging it, giving
    a view whose facts from ``since`` on are the effect's new facts; and after every
    cycle the matches with a fact new in it, or all of them when a type of ``types``
    (those it negates or aggregates over) lost a fact."""

    name: str
    always: bool
    fn: Callable[..., Any]
    source: str
    text: str
    types: tuple[int, ...]
    triggers: tuple[int, ...]
    span: Span
    #: ``never``: the type of each positive pattern, in order (repeats kept)
    pattern_types: tuple[int, ...] = ()


@record
class GateSpec:
    """``approve TYPE [when EXPR]``: ``fn(values)`` is True for a fact of ``type_id``
    that must wait for a decision (always True without ``when``). ``name`` is the
    gate's name in traces and results (the type's); ``text`` the condition as written
    ("" without one)."""

    name: str
    type_id: int
    fn: Callable[[tuple[Any, ...]], bool]
    source: str
    text: str
    span: Span


@record
class Budgets:
    """Root budgets. ``None`` means unlimited. Times are in seconds.

    ``max_facts`` also bounds one agent run: a run that builds more than ``max_facts``
    outputs (duplicates included: each costs memory until the merge) stops the job.
    ``max_string_length`` (characters) and ``max_list_length`` (items) bound a value an
    agent computes for a ``str`` or ``list`` field (each string of a ``list[str]``
    counts against ``max_string_length``); values copied from facts are not measured
    again."""

    max_facts: int = 1_000_000
    max_cycles: int = 1_000
    max_agents: int | None = None
    max_tool_calls: int | None = None
    agent_timeout: float | None = None
    job_timeout: float | None = None
    max_string_length: int = 1_000_000
    max_list_length: int = 100_000


@record
class Program:
    """Everything the engine needs to run a ruleset, and nothing from the syntax tree."""

    name: str
    goal: str | None
    types: tuple[TypeSpec, ...]
    indexes: tuple[IndexSpec, ...]
    agents: tuple[AgentSpec, ...]            # sorted by (tier, order)
    policies: dict[int, PolicySpec]          # by type id
    prunes: tuple[PruneSpec, ...]
    requires: tuple[RequireSpec, ...]
    budgets: Budgets
    tools: tuple[str, ...]                   # tools the ruleset declared with ``uses tool``
    type_ids: dict[str, int] = field(default_factory=dict)
    #: whether some agent or goal reads the job's time (``now()``, ``today()``): the
    #: trace then records the time, and a replay uses it
    reads_time: bool = False
    #: ``invariant`` items, in declaration order
    invariants: tuple[InvariantSpec, ...] = ()
    #: ``approve`` gates by type id (one per type)
    gates: dict[int, GateSpec] = field(default_factory=dict)

    def type(self, name: str) -> TypeSpec:
        return self.types[self.type_ids[name]]

    @property
    def tiers(self) -> tuple[int, ...]:
        return tuple(sorted({a.tier for a in self.agents}))
