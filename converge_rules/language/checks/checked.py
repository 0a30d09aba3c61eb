"""What the checker hands the compiler: a whole ruleset (entry file plus imports) with
its symbol tables resolved, and every diagnostic found on the way.

Only a ruleset with no error-severity diagnostic may be compiled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import TYPE_CHECKING

from converge_rules.records import record

if TYPE_CHECKING:  # annotations only: the signatures below are imported without the
    # syntax tree's classes (the plugin layer and a program-cache hit never build one)
    # nor the diagnostics' (a hit reports none)
    from converge_rules.language.diagnostics.core import Diagnostic
    from converge_rules.language.syntax.nodes import (
        Agent,
        EnumDecl,
        FactDecl,
        Gate,
        Invariant,
        Module,
        Policy,
        Prune,
        Root,
        Test,
    )


@record
class ToolSignature:
    """What the checker knows of a tool: argument names and types (type names as in
    the language: ``str``, ``float``, ``list[str]``…) and result fields. ``None`` for a
    declared tool no installed plugin describes: calls to it are not type-checked."""

    name: str
    args: dict[str, str]
    result: dict[str, str]
    plugin: str = ""


@record
class PrunerSignature:
    """What the checker knows of a plugin pruner: its named parameters, name → type
    as in the language (``int``, ``str``…; ``T?``: may be left out). A pruner without
    parameters takes no arguments: ``prune T using NAME``."""

    name: str
    params: Mapping[str, str] = field(default_factory=dict)
    plugin: str = ""


@record
class FunctionSignature:
    """A pure function usable in expressions: argument types and the result type.
    ``variadic`` means the last argument type repeats."""

    name: str
    args: tuple[str, ...]
    result: str
    variadic: bool = False
    plugin: str = ""


@record
class CheckedRuleset:
    """A ruleset after ``check``.

    ``modules`` is every file in load order, imports before their importers (so
    ``modules[-1]`` is the entry file). The tables gather items from all modules;
    ``agents`` is in declaration order across that load order, which is the merge
    order the engine uses.
    """

    name: str
    title: str | None
    modules: tuple[Module, ...]
    facts: dict[str, FactDecl]          # fact and intent types by name
    enums: dict[str, EnumDecl]
    agents: tuple[Agent, ...]
    policies: dict[str, Policy]         # by fact type name
    prunes: tuple[Prune, ...]
    root: Root | None
    tests: tuple[Test, ...]
    tools: dict[str, ToolSignature | None]   # tools named in ``uses tool``
    functions: dict[str, FunctionSignature]  # built-in and plugin functions
    diagnostics: tuple[Diagnostic, ...] = field(default=())
    #: ``invariant`` items in load order (their names are unique)
    invariants: tuple[Invariant, ...] = field(default=())
    #: ``approve`` gates in load order (one per type)
    gates: tuple[Gate, ...] = field(default=())
    #: the text of each file as it was checked, by the path its spans use (the entry
    #: text may have come from ``source=``), so renderers quote lines without reading
    #: files again
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """True when no diagnostic is an error (warnings allowed)."""
        return not any(d.is_error for d in self.diagnostics)
