"""The registries: what the loaded plugins registered, as one value.

:func:`converge_rules.plugins.collect` builds a :class:`Registries` from a plugin
manager; it then travels explicitly — the checker gets signatures from it, the
compiler binds its functions, resolvers and pruners into the program, a run gets an
executor instance and a trace sink built from it, and a loaded ruleset keeps the
registries it was checked against. No module keeps a table that plugins write into, so
two jobs with different plugins run side by side in one process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from converge_rules.errors import ConvergeError, PluginError, ToolError
from converge_rules.language.checks.checked import (
    FunctionSignature,
    PrunerSignature,
    ToolSignature,
)
from converge_rules.plugins.api import (
    Check,
    Entry,
    Function,
    Pruner,
    Tool,
    ToolResult,
)
from converge_rules.records import record

if TYPE_CHECKING:
    from pydantic import BaseModel

    from converge_rules.engine.executors import Executor
    from converge_rules.program import Program
    from converge_rules.store.base import JobStore, TraceSink


@record
class ValidatedTool:
    """A tool as the engine calls it: ``call(args_dict)`` → result dict, or an
    awaitable of it for an async tool. Arguments and results are validated; any failure
    (including an exception inside the tool) is a ``ToolError`` naming the tool.
    Picklable when the tool's function and models are (module-level)."""

    tool: Tool

    @property
    def is_async(self) -> bool:
        return self.tool.is_async

    def __call__(self, args: Mapping[str, Any]) -> ToolResult | Awaitable[ToolResult]:
        model = self.tool.validate_args(args)
        if self.tool.is_async:
            return self._call_async(model)
        try:
            raw = self.tool.function(model)
        except (ToolError, MemoryError):
            raise  # a MemoryError stops the job (budget `memory`)
        except (Exception, SystemExit) as exc:
            raise ToolError(f"tool {self.tool.name!r} failed: {_describe(exc)}") from exc
        return self.tool.validate_result(raw)

    async def _call_async(self, model: BaseModel) -> ToolResult:
        try:
            raw = await self.tool.function(model)
        except (ToolError, MemoryError):
            raise
        except (Exception, SystemExit) as exc:
            raise ToolError(f"tool {self.tool.name!r} failed: {_describe(exc)}") from exc
        return self.tool.validate_result(raw)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__




@record
class Registries:
    """Everything the loaded plugins registered (built-ins included), each mapping
    sorted by name. Immutable: build another with :func:`~converge_rules.plugins.collect`
    for another plugin set."""

    tools: Mapping[str, Tool] = field(default_factory=dict)
    functions: Mapping[str, Function] = field(default_factory=dict)
    resolvers: Mapping[str, Entry[Any]] = field(default_factory=dict)
    pruners: Mapping[str, Entry[Pruner]] = field(default_factory=dict)
    executors: Mapping[str, Entry[Any]] = field(default_factory=dict)
    stores: Mapping[str, Entry[Any]] = field(default_factory=dict)
    checks: Mapping[str, Entry[Check]] = field(default_factory=dict)
    #: the observer hooks of the plugin manager these came from
    #: (:class:`~converge_rules.plugins.observers.Observers`), so a run notifies them
    #: without building and scanning a second manager; None when built by hand
    observers: Any = field(default=None, compare=False, repr=False)
    #: the ``converge_summarize`` hooks of that plugin manager
    #: (:class:`~converge_rules.plugins.summarize.Summarizers`); None when built by hand
    summarizers: Any = field(default=None, compare=False, repr=False)

    # ------------------------------------------------------------ checker

    def tool_signatures(self) -> dict[str, ToolSignature | None]:
        """Tool name → signature, for ``check(..., tools=...)``. An open tool's
        signature carries the :data:`~converge_rules.plugins.api.OPEN` entry, which the
        checker reads as "any other argument or result field": the declared ones are
        still type-checked."""
        return {name: tool.signature() for name, tool in self.tools.items()}

    def function_signatures(self) -> dict[str, FunctionSignature]:
        """Function name → signature, for ``check(..., functions=...)``."""
        return {name: function.signature() for name, function in self.functions.items()}

    def pruner_signatures(self) -> dict[str, PrunerSignature]:
        """Pruner name → its declared ``parameters``, for ``check(..., pruners=...)``."""
        return {
            name: PrunerSignature(name, dict(getattr(entry.obj, "parameters", None) or {}),
                                  entry.plugin)
            for name, entry in self.pruners.items()
        }

    def checker_kwargs(self) -> dict[str, Any]:
        """What the plugins provide, as ``check``/``check_file`` keyword arguments: tool
        and function signatures, resolver names and pruner parameters."""
        return {
            "tools": self.tool_signatures(),
            "functions": self.function_signatures(),
            "resolvers": sorted(self.resolvers),
            "pruners": self.pruner_signatures(),
        }

    def run_checks(self, checked: Any) -> list[Any]:
        """The diagnostics every registered check finds in a checked ruleset, checks in
        name order, each check's findings in the order it gave them. A check that
        raises, or returns something that is not a ``Diagnostic``, is a ``PluginError``
        naming its plugin."""
        from converge_rules.language.diagnostics import Diagnostic

        found: list[Any] = []
        for name, entry in self.checks.items():
            try:
                diagnostics = list(entry.obj(checked))
            except (Exception, SystemExit) as exc:
                raise PluginError(entry.plugin, f"check {name!r} raised "
                                                f"{type(exc).__name__}: {exc}") from None
            for item in diagnostics:
                if not isinstance(item, Diagnostic):
                    raise PluginError(entry.plugin, f"check {name!r} returned "
                                                    f"{type(item).__name__}, not a Diagnostic")
            found.extend(diagnostics)
        return found

    # ----------------------------------------------------------- compiler

    def function_callables(self) -> dict[str, Callable[..., Any]]:
        """Function name → Python callable, for the compiled rules."""
        return {name: function.fn for name, function in self.functions.items()}

    def compiler_kwargs(self, pruners: Iterable[str] = ()) -> dict[str, Any]:
        """What the compiler binds into a program, as ``compile_ruleset`` keyword
        arguments: function implementations, every resolver, and the registered
        pruners named in ``pruners`` (pruners are opt-in per ruleset load). An unknown
        pruner name is a ``ConvergeError`` naming the registered ones."""
        chosen: dict[str, Pruner] = {}
        for name in pruners:
            entry = self.pruners.get(name)
            if entry is None:
                known = ", ".join(self.pruners) or "none"
                raise ConvergeError(f"no plugin registers a pruner named {name!r} "
                                    f"(pruners: {known}); see `converge plugins`")
            chosen[name] = entry.obj
        return {
            "functions": self.function_callables(),
            "resolvers": self.objects("resolvers"),
            "pruners": chosen,
            "registered_pruners": self.objects("pruners"),
        }

    # ------------------------------------------------------------- engine

    def tools_for_engine(self, allowed: Iterable[str] | None = None) -> dict[str, ValidatedTool]:
        """Like :func:`tools_for_engine`, leaving out allowed tools no plugin provides
        (a call to one of those fails at run time; tests mock them)."""
        present = None if allowed is None else [n for n in allowed if n in self.tools]
        return tools_for_engine(self, present)

    def executor(self, name: str, workers: int | None = None,
                 options: Mapping[str, str] | None = None) -> Executor:
        """A new executor instance from the factory registered as ``name``, sized by
        ``workers``. ``options`` (``--executor-option KEY=VALUE``) are passed as the
        factory's second argument, only when given: a factory that takes no second
        argument takes no options, and saying some is a ``ConvergeError``. An unknown
        name is a ``ConvergeError`` naming the known ones; a factory that raises or
        returns something that is not an executor is a ``PluginError`` naming its
        plugin."""
        entry = self.executors.get(name)
        if entry is None:
            known = ", ".join(self.executors) or "none"
            raise ConvergeError(f"unknown executor {name!r}; known executors: {known}")
        if options and not _takes_options(entry.obj):
            raise ConvergeError(f"the executor {name!r} takes no options (--executor-option "
                                f"{next(iter(options))}=…); leave them out")
        try:
            executor = entry.obj(workers, dict(options)) if options else entry.obj(workers)
        except ConvergeError:
            raise
        except (Exception, SystemExit) as exc:
            raise PluginError(entry.plugin, f"executor {name!r} could not be created: "
                                            f"{type(exc).__name__}: {exc}") from None
        if not all(callable(getattr(executor, m, None)) for m in ("start", "run_cycle", "close")):
            raise PluginError(entry.plugin, f"executor {name!r}: the factory returned "
                                            f"{type(executor).__name__}, which lacks start, "
                                            "run_cycle or close")
        result: Executor = executor
        return result

    def trace_sink(self, name: str, location: str | Path) -> TraceSink:
        """A trace sink from the store registered as ``name``, opened on ``location``
        (a path or URL). An unknown name is a ``ConvergeError`` naming the known ones;
        a factory that raises something other than ``OSError`` is a ``PluginError``."""
        entry = self.stores.get(name)
        if entry is None:
            known = ", ".join(self.stores) or "none"
            raise ConvergeError(f"unknown store {name!r}; known stores: {known}")
        if getattr(entry.obj, "job_store", False):
            raise ConvergeError(f"store {name!r} keeps jobs, not a trace file: give it as "
                                f"`converge run --store {name}:///{location}` (and "
                                "`converge trace export` writes the JSON Lines)")
        try:
            sink = entry.obj(location)
        except (ConvergeError, OSError):
            raise
        except (Exception, SystemExit) as exc:
            raise PluginError(entry.plugin, f"store {name!r} could not open {location}: "
                                            f"{type(exc).__name__}: {exc}") from None
        if not callable(getattr(sink, "write_lines", None)):
            raise PluginError(entry.plugin, f"store {name!r}: the factory returned "
                                            f"{type(sink).__name__}, which has no write_lines")
        result: TraceSink = sink
        return result

    def job_store(self, location: str | PathLike[str]) -> JobStore:
        """The job store at ``location``, opened: a URL's scheme names the registered
        store (``sqlite:///run.db``; ``postgresql://…`` from a plugin), a plain path is a
        SQLite file. Errors as for :meth:`trace_sink`; a store that cannot be used
        (not a store, a newer schema, locked) is a ``StoreError`` from the backend."""
        text = str(location)
        scheme, sep, _rest = text.partition("://")
        name = scheme if sep and scheme.isidentifier() else "sqlite"
        entry = self.stores.get(name)
        if entry is None or not getattr(entry.obj, "job_store", False):
            known = ", ".join(n for n, e in self.stores.items()
                              if getattr(e.obj, "job_store", False)) or "none"
            raise ConvergeError(f"no job store for {text!r}: {name!r} is not a registered "
                                f"job store (known: {known}); give a file path, "
                                "sqlite:///PATH, or install the plugin of that URL scheme")
        try:
            store = entry.obj(text)
        except (ConvergeError, OSError):
            raise
        except (Exception, SystemExit) as exc:
            raise PluginError(entry.plugin, f"store {name!r} could not open {text}: "
                                            f"{type(exc).__name__}: {exc}") from None
        if not callable(getattr(store, "new_job", None)):
            raise PluginError(entry.plugin, f"store {name!r}: the factory returned "
                                            f"{type(store).__name__}, which has no new_job")
        result: JobStore = store
        return result

    def objects(self, kind: str) -> dict[str, Any]:
        """Name → registered object for ``resolvers``, ``pruners``, ``executors``,
        ``stores`` or ``checks``."""
        entries: Mapping[str, Entry[Any]] = getattr(self, kind)
        return {name: entry.obj for name, entry in entries.items()}


def tools_for_engine(
    registries: Registries, allowed: Iterable[str] | None = None
) -> dict[str, ValidatedTool]:
    """The engine's ``tools`` mapping: tool name → validated callable, for the tools
    in ``allowed`` (a ruleset's ``uses tool`` names; all registered tools when None).

    Memoising identical calls is the engine's job, not this mapping's. Raises
    ``ToolError`` naming every allowed tool no installed plugin provides, and
    ``PluginError`` when a tool's function or models, given as references, do not
    import or contradict its declared types (:meth:`Tool.load`)."""
    names = sorted(registries.tools) if allowed is None else sorted(set(allowed))
    missing = [n for n in names if n not in registries.tools]
    if missing:
        known = ", ".join(sorted(registries.tools)) or "none"
        raise ToolError(
            f"no installed plugin provides tool(s) {', '.join(missing)} (installed: {known}); "
            "install the plugin that provides it (see `converge plugins`), or mock it in "
            "a test with `mock tool NAME(...) returns {...}`"
        )
    for name in names:  # import lazy tools now, not within the first call's timeout
        registries.tools[name].load()
    return {name: ValidatedTool(registries.tools[name]) for name in names}


def program_with_pruners(program: Program, pruners: Mapping[str, Pruner]) -> Program:
    """``program`` with each pruner added as a ``prune`` rule on every fact type it
    applies to (intent types excluded), after the ruleset's own rules, in name order.
    Prefer ``converge_rules.load(path, pruners=[NAME, ...])``, which binds registered
    pruners at compile time."""
    from dataclasses import replace

    from converge_rules.compiler.compile import plugin_prunes

    added = plugin_prunes(program.types, pruners)
    return replace(program, prunes=(*program.prunes, *added)) if added else program


def _takes_options(factory: Callable[..., Any]) -> bool:
    """Whether an executor factory accepts a second positional argument (options)."""
    import inspect  # (~5 ms: the built-in executors are not asked)

    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # a builtin or C callable: no way to know
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)
