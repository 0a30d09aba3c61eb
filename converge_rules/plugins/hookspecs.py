"""The hooks a converge_rules plugin may implement.

A plugin is any module or object with functions decorated by :data:`hookimpl` whose
names match the specifications below. It is found through the entry-point group
``converge_rules`` (``pip install`` is all a user does), through ``--plugin MODULE`` on
the command line, or is one of the built-ins in :mod:`converge_rules.plugins.builtin`.

Two kinds of hook:

* **Registration hooks** (``converge_register_*``) are called once when
  :func:`converge_rules.plugins.collect` builds the registries, at load, check and
  compile time. Each receives a ``register`` callback rather than returning a list (as
  in ``llm``), so one hook can register any number of things. Whatever is registered
  is sorted by name, so nothing depends on installation order; a name registered by
  two plugins is a :class:`~converge_rules.errors.PluginError` naming both. A hook
  that raises is a ``PluginError`` naming the plugin, and nothing it registered is
  kept.
* **Observer hooks** (``converge_on_*``) see a finished job:
  :meth:`converge_rules.plugins.Observers.observe` replays its trace to them, in trace
  order (cycles, effects, conflicts), then passes the result. They return nothing,
  must not change what they receive, and are never called from the engine's hot loop,
  so they see the same events whatever the executor.

None of these hooks is ``firstresult`` or ``historic``: every implementation is
called, in pluggy's order, and registration hooks are called again for each
:func:`~converge_rules.plugins.collect`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pluggy import HookimplMarker, HookspecMarker

from converge_rules.plugins import observers

PROJECT = "converge_rules"
"""The pluggy project name and the entry-point group plugins declare."""

hookspec = HookspecMarker(PROJECT)
hookimpl = HookimplMarker(PROJECT)
"""Decorate a plugin's hook functions with this:
``@hookimpl def converge_register_tools(register): ...``."""

Register = Callable[..., None]


# ------------------------------------------------------------------ registration


@hookspec
def converge_register_tools(register: Register) -> None:
    """Register tools that agents may ``call`` (LLM clients, HTTP APIs, databases).

    Receives ``register(tool)``, where ``tool`` is a :class:`converge_rules.plugins.api.Tool`:
    a name, a sync or async function taking the validated ``args`` model instance and
    returning a dict (or an instance of the ``result`` model), the pydantic ``args`` and
    ``result`` models, and a description. ``converge check`` type-checks calls against
    the models offline (``Tool.signature()``); at run time every call's arguments and
    result are validated against them and a mismatch is a ``ToolError``, which discards
    the calling agent's effect.

    Returns nothing. Called once per :func:`~converge_rules.plugins.collect`; not
    ``firstresult``, not ``historic``.
    """


@hookspec
def converge_register_functions(register: Register) -> None:
    """Register pure functions usable in rule expressions (``slug(name)``).

    Receives ``register(function)``, where ``function`` is a
    :class:`converge_rules.plugins.registries.Function`: a name, a pure Python callable, the
    argument types and the result type as language type names (``str int float bool
    list[T] T?``, plus ``number`` and ``any``). The checker uses
    ``Function.signature()``; the compiled rules call ``fn`` directly. A function must
    be pure and deterministic: the same arguments always give the same result.

    Returns nothing. Not ``firstresult``, not ``historic``.
    """


@hookspec
def converge_register_resolvers(register: Register) -> None:
    """Register conflict resolvers for ``policy FACT { resolve by using NAME }``.

    Receives ``register(name, resolver, description="")``. A resolver follows the
    :class:`converge_rules.plugins.api.Resolver` protocol: given the conflicting type and
    its contenders on one key it returns the indexes it prefers, deterministically. The
    compiler binds it into every ``using NAME`` criterion of a ruleset loaded with
    these registries. The criteria that take no argument (``latest``, ``majority``,
    ``highest_confidence``…) are registered the same way by the built-in plugin.

    Returns nothing. Not ``firstresult``, not ``historic``.
    """


@hookspec
def converge_register_pruners(register: Register) -> None:
    """Register pruning rules applied after each merge.

    Receives ``register(name, pruner, description="")``. A pruner is a
    :class:`converge_rules.plugins.registries.Pruner`: called as ``pruner(fact_type, fields,
    age)`` with the fact type's name, the fact's fields as a mapping and its age in
    cycles, it returns True to drop the fact from the live context (it stays in the
    trace and the knowledge store). An optional ``applies_to(fact_type, field_names)``
    attribute limits it to some types; an optional ``parameters`` mapping (name → type
    as in the language) with a ``bind(arguments)`` method returning the pruner to apply
    lets a ruleset pass arguments. Pruners must be pure. They are opt-in: a ruleset
    names one for a type (``prune T using NAME(arg: value)``), or a run chooses it
    for every type (``converge run --pruner NAME``, ``converge_rules.load(path,
    pruners=[NAME])``); the compiler adds them to the program as ``prune`` rules.

    Returns nothing. Not ``firstresult``, not ``historic``.
    """


@hookspec
def converge_register_executors(register: Register) -> None:
    """Register executors for the compute phase of a cycle (threads, processes, Ray…).

    Receives ``register(name, executor_factory, description="")``. The factory is
    called with the number of workers (or None) and returns an executor following
    :class:`converge_rules.plugins.api.Executor`: ``start(view, agents, *, tools,
    agent_timeout)``, ``run_cycle(cycle, delta, activations) -> effects`` and
    ``close()``. ``converge run --executor NAME`` (``Registries.executor``) builds one
    per job; the engine closes it.

    Returns nothing. Not ``firstresult``, not ``historic``.
    """


@hookspec
def converge_register_stores(register: Register) -> None:
    """Register backends for traces, checkpoints and knowledge (e.g. PostgreSQL).

    Receives ``register(name, store_factory, description="")``. The factory takes a
    location (a path or URL) and returns a backend implementing the protocols of
    ``converge_rules.store.base`` it supports (``TraceSink`` now; ``CheckpointStore``,
    ``KnowledgeStore`` later). ``converge run --trace LOCATION --trace-store NAME``
    (``Registries.trace_sink``) writes a job's trace through it. A factory with a true
    ``job_store`` attribute opens a ``JobStore`` instead (a database of jobs, like the
    built-in ``sqlite``): ``converge run --store URL`` picks it by the URL's scheme
    (``Registries.job_store``).

    Returns nothing. Not ``firstresult``, not ``historic``.
    """


@hookspec
def converge_register_checks(register: Register) -> None:
    """Register extra lint rules for ``converge check``.

    Receives ``register(name, check, description="")``. A check is a
    :class:`converge_rules.plugins.registries.Check`: called with the
    :class:`~converge_rules.language.checks.checked.CheckedRuleset`, it returns an iterable of
    :class:`~converge_rules.language.diagnostics.core.Diagnostic` (codes in the CVG8xx
    range or the plugin's own prefix). Checks must not raise for any ruleset.

    Returns nothing. Not ``firstresult``, not ``historic``.
    """


# ------------------------------------------------------------------- knowledge


@hookspec
def converge_summarize(fact_type: str, facts: list[dict[str, Any]], cycle: int) -> Any:
    """Fold facts that ``prune … into knowledge`` moved out of the live context into
    summary facts, kept in the job's knowledge store beside them.

    Receives, once per cycle and fact type that had facts moved in that cycle (types
    in name order), the type's name, the moved facts' fields (JSON values, oldest
    first) and the cycle. Returns summary facts, each ``{"type": NAME, "fields":
    {…}}`` with JSON fields (NAME need not be a declared type; agents read summaries
    with ``call knowledge_find(type: NAME, …)``), or None/``[]`` for none. Must be a
    pure function of its arguments, so a job's knowledge is the same on every run and
    executor. Not ``firstresult``: every plugin's summaries are kept, in plugin order.
    """


# --------------------------------------------------------------------- observers


@hookspec
def converge_on_cycle(event: Any) -> None:
    """Observe a finished cycle (after its merge and pruning).

    Receives the trace's ``cycle_end`` event (``converge_rules.engine.trace.CycleEnd``:
    ``cycle``, ``tier``, facts ``added`` and ``removed``, ``live`` facts). Called once
    per cycle, in order. Must not change the event. Returns nothing; not
    ``firstresult``, not ``historic``.
    """


@hookspec
def converge_on_effect(event: Any) -> None:
    """Observe one agent's effect: merged, or discarded with the reason.

    Receives the trace's ``effect_merged`` event (``cycle``, ``agent``, ``outputs``)
    or ``effect_discarded`` event (``cycle``, ``agent``, ``reason``: an exception, a
    failed tool call, a timeout). Called in merge order. Returns nothing; not
    ``firstresult``, not ``historic``.
    """


@hookspec
def converge_on_conflict(event: Any) -> None:
    """Observe a conflict on a keyed fact and how its policy resolved it.

    Receives the trace's ``conflict`` event (``cycle``, ``type``, ``key``, the
    ``winner`` fields or None when the policy rejected, the ``losers``, the
    ``reason``). Returns nothing; not ``firstresult``, not ``historic``.
    """


@hookspec
def converge_on_result(result: Any) -> None:
    """Observe the end of a job.

    Receives the ``RunResult`` (``status``, ``facts(type)``, ``conflicts``, ``unmet``,
    ``budget``, ``trace``). Called once per job, after the other observer hooks, for
    every status. Returns nothing; not ``firstresult``, not ``historic``.
    """


REGISTRATION_HOOKS: tuple[str, ...] = (
    "converge_register_tools",
    "converge_register_functions",
    "converge_register_resolvers",
    "converge_register_pruners",
    "converge_register_executors",
    "converge_register_stores",
    "converge_register_checks",
)
"""The registration hooks, in the order :func:`converge_rules.plugins.collect` calls them."""

OBSERVER_HOOKS = observers.OBSERVER_HOOKS
"""The observer hooks."""

KNOWLEDGE_HOOKS: tuple[str, ...] = ("converge_summarize",)
"""The hooks a job calls while it runs (:class:`~converge_rules.plugins.summarize.Summarizers`)."""
