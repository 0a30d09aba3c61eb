"""The built-in executors, registered through ``converge_register_executors`` like any
plugin's: ``serial`` (one agent after another), ``threads`` (a long-lived pool for
agents that wait on tools) and, where the fork start method exists, ``processes``
(forked workers holding replicas of the context, for CPU-bound agents)."""

from __future__ import annotations

from converge_rules.engine.executors import (
    SerialExecutor,
    ThreadExecutor,
    fork_available,
    processes_executor,
)
from converge_rules.plugins.hookspecs import Register, hookimpl


@hookimpl
def converge_register_executors(register: Register) -> None:
    register("serial", SerialExecutor, "one agent after another, in merge order")
    register("threads", ThreadExecutor, "a thread pool, for agents that wait on tools")
    if fork_available():
        register("processes", processes_executor,
                 "forked workers holding context replicas, for CPU-bound agents")
