"""The engine: runs a compiled :class:`~converge_rules.program.Program` to
convergence over a fact store, deterministically, whatever the executor."""

from __future__ import annotations

from converge_rules.engine.effects import Activation, AgentEffect
from converge_rules.engine.executors import Executor, SerialExecutor, ThreadExecutor
from converge_rules.engine.factstore import FactStore
from converge_rules.engine.inputs import InputFacts, read_all, read_facts, validate_pairs
from converge_rules.engine.policies import Contender, Resolver
from converge_rules.engine.result import RunResult
from converge_rules.engine.runner import CycleProgress, run
from converge_rules.engine.tools import AgentRuntime, ToolBox
from converge_rules.engine.trace import Trace

__all__ = [
    "Activation",
    "AgentEffect",
    "AgentRuntime",
    "Contender",
    "CycleProgress",
    "Executor",
    "FactStore",
    "InputFacts",
    "Resolver",
    "RunResult",
    "SerialExecutor",
    "ThreadExecutor",
    "ToolBox",
    "Trace",
    "read_all",
    "read_facts",
    "run",
    "validate_pairs",
]
