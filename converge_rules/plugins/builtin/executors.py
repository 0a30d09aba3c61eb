"""The built-in executors, registered through ``converge_register_executors`` like any
plugin's: ``serial`` (one agent after another), ``threads`` (a long-lived pool for
agents that wait on tools), ``asyncio`` (agents as tasks on the job's event loop, for
thousands of tool calls in flight) and, where the fork start method exists,
``processes`` (forked workers holding replicas of the context, for CPU-bound agents).

The factories import the engine when a job builds its executor, not when the plugin
registers them: ``converge check`` loads every plugin and never runs a job."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from converge_rules.plugins.builtin import hook

if TYPE_CHECKING:
    from converge_rules.engine.executors import Executor
    from converge_rules.plugins.hookspecs import Register


def serial(workers: int | None = None) -> Executor:
    """One agent after another, in merge order (``workers`` is ignored)."""
    from converge_rules.engine.executors import SerialExecutor

    return SerialExecutor(workers)


def threads(workers: int | None = None) -> Executor:
    """A long-lived thread pool (64 workers by default), for agents that wait on tools."""
    from converge_rules.engine.executors import ThreadExecutor

    return ThreadExecutor(workers)


def asyncio(workers: int | None = None) -> Executor:
    """Agents as tasks on the job's event loop, each awaiting its tool calls; at most
    ``workers`` (its max_concurrency, 1024 by default) in flight at once."""
    from converge_rules.engine.asyncio_executor import AsyncioExecutor

    return AsyncioExecutor(workers)


def processes(workers: int | None = None) -> Executor:
    """Forked workers holding replicas of the context (one per core by default)."""
    from converge_rules.engine.executors import processes_executor

    return processes_executor(workers)


@hook
def converge_register_executors(register: Register) -> None:
    register("serial", serial, "one agent after another, in merge order")
    register("threads", threads, "a thread pool, for agents that wait on tools")
    register("asyncio", asyncio, "agents as tasks on one event loop, for thousands of "
             "tool calls in flight (--workers: max_concurrency, default 1024)")
    if hasattr(os, "fork"):  # what the fork start method needs (POSIX)
        register("processes", processes,
                 "forked workers holding context replicas, for CPU-bound agents")
