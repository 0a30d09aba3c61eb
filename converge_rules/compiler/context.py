"""What code generation shares: the program's types and indexes, and, per generated
module, the namespace of helpers and constants the generated source refers to.

Generated source contains only names made here (``v0``, ``t1``, ``ix3``, ``_k0``…) and
literals made with :func:`repr` of Python values; every other value reaches the code
through the namespace under a generated name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from converge_rules.compiler.runtime import RUNTIME_HELPERS
from converge_rules.language.syntax.nodes import EnumDecl
from converge_rules.program import Budgets, IndexSpec, TypeSpec, ValueType


@dataclass(slots=True)
class ProgramContext:
    """The whole program's tables: types by name and the indexes declared so far
    (deduplicated by type and positions, ids in order of first use)."""

    types: dict[str, TypeSpec]
    enums: Mapping[str, EnumDecl]
    functions: Mapping[str, Callable[..., Any]]
    indexes: dict[tuple[int, tuple[int, ...]], int] = field(default_factory=dict)
    #: index key → the types whose new facts drive every lookup in it, or None once a
    #: lookup may happen in any run (negation, aggregates): ``IndexSpec.driven_by``.
    drivers: dict[tuple[int, tuple[int, ...]], set[int] | None] = field(default_factory=dict)
    #: the root budgets: generated agents check what they build against them
    budgets: Budgets = field(default_factory=Budgets)
    #: tool → its result fields of a time type → that type (from its signature)
    tool_times: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: whether a pattern's new facts are looked up by its constants (routing) rather
    #: than scanned; off only to check that routing changes nothing
    route: bool = True
    #: plugin function → its declared result type, which its result is checked against
    #: (:func:`~converge_rules.compiler.values.result_type`; None: ``any``)
    results: Mapping[str, ValueType | str | None] = field(default_factory=dict)

    def index(self, type_id: int, positions: tuple[int, ...],
              driven_by: int | None = None) -> int:
        """The id of the index on ``positions`` of ``type_id``, declared on first use.
        ``driven_by`` is the type of the pattern that is new in the semi-naive pass
        making this lookup; None for a lookup that may happen in any run."""
        key = (type_id, tuple(sorted(positions)))
        found = self.indexes.get(key)
        if found is None:
            found = self.indexes[key] = len(self.indexes)
            self.drivers[key] = set()
        drivers = self.drivers[key]
        if driven_by is None:
            self.drivers[key] = None
        elif drivers is not None:
            drivers.add(driven_by)
        return found

    def index_specs(self) -> tuple[IndexSpec, ...]:
        specs = []
        for key, i in sorted(self.indexes.items(), key=lambda kv: kv[1]):
            drivers = self.drivers.get(key)
            specs.append(IndexSpec(i, key[0], key[1], tuple(sorted(drivers or ()))))
        return tuple(specs)


def tuple_src(parts: list[str]) -> str:
    """Python source of a tuple of ``parts`` (``(a,)``, ``(a, b)``, ``()``)."""
    return f"({parts[0]},)" if len(parts) == 1 else "(" + ", ".join(parts) + ")"


def key_src(parts: list[str]) -> str:
    """Python source of an index key: the bare value for one part, else a tuple."""
    return parts[0] if len(parts) == 1 else tuple_src(parts)


@dataclass(slots=True)
class Namespace:
    """The globals of one generated module: runtime helpers, constants that have no
    plain literal form, and plugin functions; plus the locals the function prologue
    must bind (indexes and live sets it uses).

    With ``memo`` (an agent's function: one call reads one unchanging context), an
    aggregate that names nothing of the match is computed at most once per call
    (:meth:`memoized`) instead of once per match that reaches it."""

    values: dict[str, Any] = field(default_factory=lambda: dict(RUNTIME_HELPERS))
    notes: list[str] = field(default_factory=list)
    index_locals: set[int] = field(default_factory=set)
    live_locals: set[int] = field(default_factory=set)
    key_table_locals: set[int] = field(default_factory=set)
    memo: bool = False
    _memo_keys: dict[str, int] = field(default_factory=dict)
    _constants: dict[tuple[type, Any], str] = field(default_factory=dict)
    _functions: dict[str, str] = field(default_factory=dict)

    def literal(self, value: Any) -> str:
        """Python source for the runtime value ``value``."""
        if value is None or isinstance(value, (bool, int, str)):
            return repr(value)
        if isinstance(value, float):
            return repr(value) if math.isfinite(value) else self.constant(value)
        if isinstance(value, tuple):
            return tuple_src([self.literal(v) for v in value])
        return self.constant(value)

    def constant(self, value: Any) -> str:
        key = (type(value), value)
        name = self._constants.get(key)
        if name is None:
            name = self._constants[key] = f"_k{len(self._constants)}"
            self.values[name] = value
        return name

    def function(self, name: str, fn: Callable[..., Any]) -> str:
        """The generated name under which plugin function ``name`` is reachable."""
        local = self._functions.get(name)
        if local is None:
            local = self._functions[name] = f"_fn{len(self._functions)}"
            self.values[local] = fn
            self.notes.append(f"{local} = plugin function {name!r}")
        return local

    def index(self, index_id: int) -> str:
        self.index_locals.add(index_id)
        return f"ix{index_id}"

    def live(self, type_id: int) -> str:
        self.live_locals.add(type_id)
        return f"live{type_id}"

    def key_table(self, type_id: int) -> str:
        """The local holding the key table of keyed type ``type_id``
        (``View.key_table``: key → the live fact holding it)."""
        self.key_table_locals.add(type_id)
        return f"kt{type_id}"

    def memoized(self, code: str) -> str:
        """Code for the value of expression ``code`` computed on first use in a call
        and reused after it (the same ``code`` shares one slot); ``code`` itself when
        memoizing is off. ``code`` must depend on the call's context alone."""
        if not self.memo:
            return code
        key = self._memo_keys.setdefault(code, len(self._memo_keys))
        # an expression (no assignment statement fits where aggregates appear):
        # setdefault stores the value computed on the first use
        return f"(memo[{key}] if {key} in memo else memo.setdefault({key}, {code}))"

    def view_locals(self) -> list[str]:
        """Prologue lines binding the live sets and indexes the body uses (and the
        memo of aggregates when one is used)."""
        lines = ["    live = view.live"] if self.live_locals else []
        if self._memo_keys:
            lines.append("    memo = {}")
        if self.index_locals:
            lines.append("    indexes = view.indexes")
        lines += [f"    ix{i} = indexes[{i}]" for i in sorted(self.index_locals)]
        lines += [f"    live{t} = live[{t}]" for t in sorted(self.live_locals)]
        lines += [f"    kt{t} = view.key_table({t})" for t in sorted(self.key_table_locals)]
        return lines


# -------------------------------------------------------------- names in a rule scope


@dataclass(frozen=True, slots=True)
class Var:
    """A field variable: ``code`` reads it; ``type`` is its field's type (None when
    unknown)."""

    code: str
    type: ValueType | None


@dataclass(frozen=True, slots=True)
class FactRef:
    """A whole-fact binder: ``values`` is the code for its value tuple, ``fact_id`` for
    its id."""

    values: str
    fact_id: str
    spec: TypeSpec


@dataclass(frozen=True, slots=True)
class ToolRef:
    """A ``call … as NAME`` result: a dict. ``times`` names its fields the tool's
    signature types ``date``, ``datetime`` or ``duration`` (a tool answers JSON, so
    they hold ISO text until read)."""

    code: str
    times: Mapping[str, str] = field(default_factory=dict)


Binding = Var | FactRef | ToolRef
