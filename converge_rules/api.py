"""The public API: the one place (with the CLI) that stitches the pipeline together.

    import converge_rules
    ruleset = converge_rules.load("rulesets/pricing/pricing.cvg")
    result = converge_rules.run(ruleset, [("Cost", {"sku": "A1", "amount": 10.0})])
    result.status, result.facts("Price")

Shaped like the ``json`` module: ``load`` takes a path, ``loads`` takes text. A
:class:`Ruleset` is checked and compiled once and can be run any number of times.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from converge_rules.errors import CheckError, ConvergeError, ToolError
from converge_rules.program import CLOCK, Clock

if TYPE_CHECKING:
    from converge_rules.engine.executors import Executor
    from converge_rules.engine.inputs import InputFacts
    from converge_rules.engine.result import RunResult
    from converge_rules.engine.runner import CycleProgress
    from converge_rules.language.checks.checked import CheckedRuleset
    from converge_rules.language.diagnostics.core import Diagnostic
    from converge_rules.plugins.registries import Registries
    from converge_rules.program import Program
    from converge_rules.store.base import JobStore, TraceSink

ToolCallable = Callable[[dict[str, Any]], Any]
"""A tool as the engine calls it: arguments dict → result dict (or an awaitable)."""


@dataclass(frozen=True, slots=True)
class Ruleset:
    """A loaded ruleset: checked and compiled, ready to run any number of times.

    ``checked`` keeps the syntax tree and every warning; ``program`` is what the engine
    runs, with the plugins' functions, resolvers and chosen pruners bound in;
    ``tools`` maps each tool the ruleset ``uses`` to the validated callable a plugin
    provides (a tool no plugin provides is absent: ``run`` refuses to start unless
    ``run(..., tools=...)`` supplies it); ``registries`` are the plugins it was
    checked and compiled against, which ``run`` takes its executors and stores from;
    ``files`` are the resolved paths of every file the ruleset names (the entry file,
    its imports and its tests' ``cases`` files).
    """

    path: str
    checked: CheckedRuleset
    program: Program
    tools: Mapping[str, ToolCallable] = field(default_factory=dict)
    registries: Registries | None = field(default=None, compare=False, repr=False)
    files: tuple[Path, ...] = field(default=(), compare=False, repr=False)

    @property
    def name(self) -> str:
        """The ruleset's name (its first line, ``ruleset NAME``)."""
        return self.program.name

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The checker's diagnostics that are not errors (warnings and notes)."""
        return tuple(d for d in self.checked.diagnostics if not d.is_error)

    @property
    def fact_types(self) -> tuple[str, ...]:
        """The declared fact types (intents excluded), in declaration order."""
        return tuple(t.name for t in self.program.types if not t.intent)


def load(
    path: str | os.PathLike[str],
    *,
    plugins: bool | Registries = True,
    pruners: Iterable[str] = (),
    allow_paths: Iterable[str | os.PathLike[str]] = (),
) -> Ruleset:
    """Parse, check and compile the ruleset at ``path`` (and the files it imports).

    Raises :class:`~converge_rules.errors.CheckError` holding every error diagnostic
    (syntax errors included) when the ruleset has errors. With ``plugins=True`` the
    installed plugins' tools, functions, resolvers, executors and stores are known to
    the checker, the compiler and ``run`` (a plugin that fails to load raises
    :class:`~converge_rules.errors.PluginError`); ``plugins=False`` uses the built-ins
    only; a :class:`~converge_rules.plugins.Registries` (from
    ``converge_rules.plugins.load_registries``) uses exactly what it holds.
    ``pruners`` names registered plugin pruners to apply after each merge.

    Imports and the tests' ``cases`` files are read only from below the folder of
    ``path`` and from the folders in ``allow_paths`` (a path outside them is an error
    diagnostic, CVG605), and only when they are regular files within the size limits
    (10 MiB a ruleset file, 100 MiB a ``cases`` file).
    """
    return _build(Path(path), None, str(path), plugins, _names(pruners), tuple(allow_paths))


def loads(
    text: str,
    *,
    path: str = "<string>",
    plugins: bool | Registries = True,
    pruners: Iterable[str] = (),
    allow_paths: Iterable[str | os.PathLike[str]] = (),
) -> Ruleset:
    """Like :func:`load`, for ruleset text; ``path`` is the name diagnostics use.
    ``import`` lines resolve relative to the directory of ``path``, and are confined
    to it and to ``allow_paths``."""
    if not isinstance(text, str):
        hint = " (decode bytes first: data.decode('utf-8'))" if isinstance(
            text, bytes | bytearray) else ""
        raise TypeError(f"loads() takes the ruleset text as str, got "
                        f"{type(text).__name__}{hint}; load() takes a path")
    return _build(Path(path), text, path, plugins, _names(pruners), tuple(allow_paths))


def run(
    ruleset: Ruleset,
    facts: InputFacts | Iterable[tuple[str, Mapping[str, Any]]] = (),
    *,
    executor: str | Executor | None = None,
    workers: int | None = None,
    tools: Mapping[str, ToolCallable] | None = None,
    trace: str | os.PathLike[str] | TraceSink | None = None,
    trace_store: str | None = None,
    store: str | os.PathLike[str] | JobStore | None = None,
    progress: Callable[[CycleProgress], None] | None = None,
    stop: Callable[[], bool] | None = None,
    now: datetime | Clock | None = CLOCK,
) -> RunResult:
    """Run ``ruleset`` on input ``facts`` to convergence, or to the status that ends it.

    ``facts`` are ``(type name, fields)`` pairs, or the :class:`InputFacts` that
    :func:`read_facts` returns. Always returns a :class:`RunResult` with exactly one
    status; budgets, conflicts and unmet goals are statuses, not exceptions. Bad input
    facts raise :class:`~converge_rules.errors.InputError` before anything runs.

    ``executor`` names an executor registered in the ruleset's registries
    (``serial``, ``threads``, ``processes``, or one a plugin adds), which ``workers``
    sizes, or is an executor instance; None runs the agents one after another (the
    engine's own serial executor). ``tools`` adds or replaces tools by name (mocks in
    tests); ``trace`` is where the trace goes, written by the registered store
    ``trace_store`` (None: a JSON Lines file), or a trace sink; ``store`` keeps the job
    in a job store instead — a location (``run.db``, ``sqlite:///run.db``, a plugin's
    URL), opened and closed here, or an open :class:`~converge_rules.store.JobStore` —
    each cycle's trace committed as the cycle ends; ``progress`` is called after every cycle
    with a :class:`~converge_rules.engine.CycleProgress`; ``stop`` is asked before every
    cycle, and True ends the job with status ``interrupted`` and its partial results
    (``converge run`` answers Ctrl-C and SIGTERM so). ``now`` is the job's time that
    ``now()``/``today()`` read (an aware datetime; by default the clock when the job
    starts; None: no time, and ``now()`` fails the agent calling it). An unknown
    executor or store is a :class:`~converge_rules.errors.ConvergeError` naming the
    known ones.
    """
    from converge_rules.engine import run as engine_run

    if not isinstance(ruleset, Ruleset):
        raise TypeError(f"run() takes a Ruleset (from converge_rules.load or loads), got "
                        f"{type(ruleset).__name__} {ruleset!r:.60}")
    _check_run_arguments(executor, workers, trace, trace_store, stop)
    if store is not None and not (isinstance(store, str | os.PathLike)
                                  or callable(getattr(store, "new_job", None))):
        raise TypeError(f"store takes a location (run.db, sqlite:///run.db) or an open "
                        f"job store, got {type(store).__name__}")
    if trace_store is not None and trace is not None and not isinstance(
            trace, str | os.PathLike):
        raise ValueError("trace_store says how to write the trace to a location; a trace "
                         "sink given as trace= writes it itself")
    if store is not None and trace is not None:
        raise ValueError("give trace= or store=, not both: a store keeps the trace (export "
                         "it with `converge trace export`)")
    merged: dict[str, ToolCallable] = dict(ruleset.tools)
    if tools:
        merged.update(tools)
    registries = ruleset.registries or _registries(False)
    sink: TraceSink | Path | None = None
    if isinstance(trace, str | os.PathLike):
        sink = Path(trace) if trace_store is None else registries.trace_sink(trace_store,
                                                                             Path(trace))
    elif trace is not None:
        sink = trace
    exe = registries.executor(executor, workers) if isinstance(executor, str) else executor
    require_tools(ruleset, merged)  # after the usage errors; executors start in the run
    # the plugins' converge_summarize, when some plugin implements it
    summarize = registries.summarizers or None
    if store is None:
        return engine_run(ruleset.program, facts, executor=exe, tools=merged, trace=sink,
                          progress=progress, stop=stop, now=now, summarize=summarize)
    if isinstance(store, str | os.PathLike):
        with registries.job_store(store) as opened:
            return engine_run(ruleset.program, facts, executor=exe, tools=merged,
                              trace=opened.new_job(ruleset.name), progress=progress,
                              stop=stop, now=now, summarize=summarize)
    return engine_run(ruleset.program, facts, executor=exe, tools=merged,
                      trace=store.new_job(ruleset.name), progress=progress, stop=stop,
                      now=now, summarize=summarize)


def require_tools(ruleset: Ruleset, tools: Mapping[str, ToolCallable]) -> None:
    """Refuse to run ``ruleset`` when an agent calls a tool that ``tools`` lacks: a
    :class:`~converge_rules.errors.ToolError` naming each such tool, the agents that
    call it and, when an installed plugin registers it (plugins were not loaded), that
    plugin. Without it the job would run and its agents' calls fail one by one: a job
    that "converges" without a check it was written to make."""
    missing: dict[str, list[str]] = {}
    for agent in ruleset.program.agents:
        for name in agent.tools:
            if name not in tools:
                missing.setdefault(name, []).append(f"`{agent.name}` ({agent.span})")
    if not missing:
        return
    providers = _installed_providers(missing)
    lines = []
    for name, agents in sorted(missing.items()):
        plugin = providers.get(name)
        lines.append(f"no loaded plugin provides tool {name!r}, which agent"
                     f"{'s' if len(agents) > 1 else ''} {', '.join(agents)} "
                     f"call{'' if len(agents) > 1 else 's'}")
        lines.append(f"  hint: the installed plugin {plugin!r} provides it; load the plugins "
                     "(drop --no-plugins; load(..., plugins=True))" if plugin else
                     "  hint: install the plugin that provides it (see `converge plugins`)")
    raise ToolError("refusing to run: " + "\n".join(lines) + "\n  (a test mocks a tool with "
                    "`mock tool NAME(...) returns {...}`; run() takes tools=)")


def _installed_providers(names: Iterable[str]) -> dict[str, str]:
    """Tool name → the installed plugin that registers it, for those of ``names`` an
    installed plugin registers; best effort (a plugin that fails to load names
    nothing)."""
    from converge_rules.plugins import load_registries

    try:
        installed = load_registries()
    except ConvergeError:
        return {}
    return {name: installed.tools[name].plugin for name in names
            if name in installed.tools and installed.tools[name].plugin}


def read_facts(ruleset: Ruleset, *sources: str | os.PathLike[str]) -> InputFacts:
    """Read and validate input facts from files, in order: JSON Lines (one
    ``{"Type": {fields}}`` per line), a JSON array of such objects, or ``Type=file.csv``.
    The first bad fact raises :class:`~converge_rules.errors.InputError` naming the
    file, the line, the type and the field."""
    from converge_rules.engine import read_all

    return read_all(ruleset.program, [str(s) for s in sources])


def executors(*, plugins: bool | Registries = True) -> list[str]:
    """The names of the executors ``run`` accepts (built-in and, with ``plugins``,
    from the installed plugins), sorted."""
    return sorted(_registries(plugins).executors)


def _build(
    file: Path, source: str | None, name: str, plugins: bool | Registries,
    pruners: tuple[str, ...], allow_paths: tuple[str | os.PathLike[str], ...],
) -> Ruleset:
    from converge_rules.compiler.compile import compile_ruleset
    from converge_rules.language.checks.checker import check
    from converge_rules.language.loader import load_file

    registries = _registries(plugins)
    loaded = load_file(file, source=source, allow_paths=allow_paths)
    checked = check(loaded, **registries.checker_kwargs())
    if not checked.ok:
        raise CheckError([d for d in checked.diagnostics if d.is_error])
    program = compile_ruleset(checked, **registries.compiler_kwargs(pruners))
    tools: dict[str, ToolCallable] = dict(registries.tools_for_engine(program.tools))
    return Ruleset(name, checked, program, tools, registries, loaded.files)


def _names(pruners: Iterable[str]) -> tuple[str, ...]:
    if isinstance(pruners, str):
        raise TypeError(f"pruners takes a list of names, got the string {pruners!r}; "
                        f"write pruners=[{pruners!r}]")
    return tuple(pruners)


def _check_run_arguments(executor: object, workers: object,
                         trace: str | os.PathLike[str] | TraceSink | None, trace_store: object,
                         stop: object) -> None:
    """Every argument of :func:`run` that is wrong is refused before anything runs,
    with what was expected — not found out by a traceback halfway through the job."""
    if not (executor is None or isinstance(executor, str) or all(
            callable(getattr(executor, m, None)) for m in ("start", "run_cycle", "close"))):
        raise TypeError(f"executor takes a registered executor's name or an executor "
                        f"(with start, run_cycle and close), got {type(executor).__name__}")
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise TypeError(f"workers takes a whole number, got {type(workers).__name__} "
                            f"{workers!r:.40}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if not isinstance(executor, str):
            raise ValueError("workers sizes a named executor (executor='threads', ...); an "
                             "executor instance or the default serial one takes none")
    if stop is not None and not callable(stop):
        raise TypeError(f"stop takes a function answering True to stop the job (such as "
                        f"threading.Event().is_set), got {type(stop).__name__}")
    if trace_store is not None and trace is None:
        raise ValueError(f"trace_store={trace_store!r} says how to write a trace; give "
                         "trace= the location to write it to")
    if isinstance(trace, str | os.PathLike) and trace_store in (None, "jsonl"):
        where = Path(trace)
        if where.is_dir():
            raise ConvergeError(f"cannot write the trace to {trace}: it is a directory; "
                                "give a file name")
        if not where.parent.is_dir():
            raise ConvergeError(f"cannot write the trace to {trace}: directory "
                                f"{str(where.parent)!r} does not exist")


def _registries(plugins: bool | Registries) -> Registries:
    from converge_rules.plugins.manager import load_registries
    from converge_rules.plugins.registries import Registries

    if plugins is True:
        return load_registries()
    if plugins is False:
        return load_registries(entry_points=False)
    if not isinstance(plugins, Registries):
        raise TypeError(f"plugins takes True (the installed plugins), False (the built-ins "
                        f"only) or a Registries (converge_rules.plugins.load_registries), "
                        f"got {type(plugins).__name__} {plugins!r:.40}")
    return plugins
