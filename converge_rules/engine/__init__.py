"""The engine: runs a compiled :class:`~converge_rules.program.Program` to
convergence over a fact store, deterministically, whatever the executor.

The names below are imported from their modules on first use, so importing one engine
module (``engine.policies`` for the built-in resolvers, say) does not load them all."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from converge_rules.engine.asyncio_executor import AsyncioExecutor
    from converge_rules.engine.effects import Activation, AgentEffect
    from converge_rules.engine.executors import Executor, SerialExecutor, ThreadExecutor
    from converge_rules.engine.factstore import FactStore
    from converge_rules.engine.gates import Decision
    from converge_rules.engine.inputs import InputFacts, read_all, read_facts, validate_pairs
    from converge_rules.engine.policies import Contender, Resolver
    from converge_rules.engine.result import RunResult
    from converge_rules.engine.runner import CycleProgress, run
    from converge_rules.engine.session import Session
    from converge_rules.engine.tools import AgentRuntime, ToolBox
    from converge_rules.engine.trace import Trace

_EXPORTS: dict[str, str] = {
    "Activation": "effects",
    "AgentEffect": "effects",
    "AgentRuntime": "tools",
    "AsyncioExecutor": "asyncio_executor",
    "Contender": "policies",
    "CycleProgress": "runner",
    "Decision": "gates",
    "Executor": "executors",
    "FactStore": "factstore",
    "InputFacts": "inputs",
    "Resolver": "policies",
    "RunResult": "result",
    "SerialExecutor": "executors",
    "Session": "session",
    "ThreadExecutor": "executors",
    "ToolBox": "tools",
    "Trace": "trace",
    "read_all": "inputs",
    "read_facts": "inputs",
    "run": "runner",
    "validate_pairs": "inputs",
}

__all__ = [
    "Activation",
    "AgentEffect",
    "AgentRuntime",
    "AsyncioExecutor",
    "Contender",
    "CycleProgress",
    "Decision",
    "Executor",
    "FactStore",
    "InputFacts",
    "Resolver",
    "RunResult",
    "SerialExecutor",
    "Session",
    "ThreadExecutor",
    "ToolBox",
    "Trace",
    "read_all",
    "read_facts",
    "run",
    "validate_pairs",
]


def __getattr__(name: str) -> Any:
    """The public name ``name``, imported from its engine module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
