"""Executors run phase 1 of a cycle: every activated agent against one snapshot.

The protocol is shaped for replicas. ``start`` hands over the view and the agents once;
``run_cycle`` receives the :data:`~converge_rules.engine.effects.Delta` of changes the
merge made since the previous cycle (in-process executors share the live store and
ignore it; process and cluster executors apply it to their replicas with the engine's
own store code) and returns one :class:`AgentEffect` per activation, tagged with its
merge position. The engine sorts effects by position, so an executor may return them
in any order. ``close`` releases workers.

Built in: ``serial``, ``threads`` (a long-lived pool sized for tool-bound agents) and,
where the ``fork`` start method exists (POSIX), ``processes`` (:func:`processes_executor`:
replicas in forked workers, for CPU-bound agents).
The engine takes an executor *instance*; the built-in plugin registers these factories
(:mod:`converge_rules.plugins.builtin.executors`) and plugins register more, so
``Registries.executor(name, workers)`` builds any of them.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from operator import itemgetter
from typing import Any, Protocol, cast

from converge_rules.engine.effects import Activation, AgentEffect, Delta, made_effect
from converge_rules.engine.tools import AgentRuntime, ToolBox, ToolBudgetExhausted
from converge_rules.errors import BudgetExceeded, ConvergeError, ToolError, without_addresses
from converge_rules.program import (
    EMIT,
    EVALUATE,
    INTEND,
    AgentSpec,
    Columns,
    UnblockingAgentFn,
    View,
)

DEFAULT_THREAD_WORKERS = 64
MAX_THREAD_WORKERS = 1024
"""Beyond this many threads a pool costs more in stacks and switching than it saves."""


class Executor(Protocol):
    """Runs the compute phase of each cycle. See the module docstring.

    An executor may set ``wants_delta = False`` (as the in-process ones do) to spare
    the merge from recording the delta it would ignore; an executor without the
    attribute receives it."""

    def start(
        self,
        view: View,
        agents: Sequence[AgentSpec],
        *,
        tools: ToolBox,
        agent_timeout: float | None,
    ) -> None: ...

    def run_cycle(
        self, cycle: int, delta: Delta, activations: Sequence[Activation]
    ) -> list[AgentEffect]: ...

    def close(self) -> None: ...


ExecutorFactory = Callable[[int | None], Executor]


def timeout_reason(limit: float) -> str:
    return f"agent_timeout exceeded (limit {limit:g}s)"


def run_agent(
    agent: AgentSpec,
    activation: Activation,
    view: View,
    tools: ToolBox,
    agent_timeout: float | None,
    runtime: AgentRuntime | None = None,
) -> AgentEffect:
    """Run one agent transactionally: any exception, failed tool call or overrun
    gives an effect with ``error`` set and no outputs; a
    :class:`~converge_rules.errors.BudgetExceeded` or ``MemoryError`` also sets
    ``budget`` (the job must stop). Timings never reach the effect.
    ``runtime`` (a fresh one on ``tools`` by default) lets an executor that abandons
    the agent record its calls."""
    if runtime is None:
        runtime = AgentRuntime(tools)
    started = time.monotonic() if agent_timeout is not None else 0.0
    try:
        if activation.gone is None:
            outputs = agent.fn(view, activation.since, runtime)
        else:
            unblocking = cast(UnblockingAgentFn, agent.fn)
            outputs = unblocking(view, activation.since, runtime, activation.gone)
    except ToolBudgetExhausted as exc:
        return AgentEffect(
            activation.position, (), f"tool budget: {exc}", tuple(runtime.calls), True
        )
    except ToolError as exc:
        return AgentEffect(activation.position, (), without_addresses(f"ToolError: {exc}"),
                           tuple(runtime.calls))
    except BudgetExceeded as exc:  # too many outputs, a value too large: the job stops
        return AgentEffect(activation.position, (), without_addresses(str(exc)),
                           tuple(runtime.calls), budget=exc.budget)
    except MemoryError:
        # never a success: the job stops (what the run built is garbage by now)
        return AgentEffect(activation.position, (), "ran out of memory (MemoryError)",
                           tuple(runtime.calls), budget="memory")
    except (Exception, SystemExit) as exc:  # an agent that raises contributes nothing
        # the reason goes into the trace: an object's repr must not make it differ
        return AgentEffect(activation.position, (),
                           without_addresses(f"{type(exc).__name__}: {exc}"),
                           tuple(runtime.calls))
    if agent_timeout is not None and time.monotonic() - started > agent_timeout:
        return AgentEffect(
            activation.position, (), timeout_reason(agent_timeout), tuple(runtime.calls)
        )
    result: Sequence[Any]
    if type(outputs) is Columns:
        result = outputs  # columnar outputs stay columns (program.Columns)
    else:
        try:
            result = tuple(outputs)
        except TypeError:
            result = (None,)  # not a sequence of outputs at all
    problem = malformed(result)
    if problem is not None:
        return AgentEffect(activation.position, (), problem, tuple(runtime.calls))
    return made_effect(activation.position, result, tuple(runtime.calls))


_KIND = itemgetter(0)
_KINDS = (EMIT, INTEND, EVALUATE)


def malformed(outputs: Sequence[Any]) -> str | None:
    """Why a list of outputs breaks the compiler's contract (5-tuples whose first item
    is EMIT, INTEND or EVALUATE, or :class:`~converge_rules.program.Columns` whose
    columns agree), or None. Checked at C speed, so that a faulty hand-written or
    plugin agent is discarded like one that raises, never half-merged."""
    if type(outputs) is Columns:
        return outputs.malformed()
    if not outputs:
        return None
    if len(outputs) <= 4:
        # the common few outputs of one run: checked one by one, cheaper than two sets
        for out in outputs:
            if type(out) is not tuple or len(out) != 5 or out[0] not in _KINDS:
                break
        else:
            return None
    try:
        shaped = set(map(len, outputs)) == {5}
    except TypeError:
        shaped = False
    if not shaped:
        return "malformed output: each output must be a 5-tuple (see compiler/program.py)"
    if not set(map(_KIND, outputs)) <= {EMIT, INTEND, EVALUATE}:
        return "malformed output: the first item must be EMIT, INTEND or EVALUATE"
    return None


class SerialExecutor:
    """Runs agents one after another in the calling thread. ``agent_timeout`` is
    measured and an overrunning agent's effect is discarded after the fact."""

    wants_delta = False

    def __init__(self, workers: int | None = None) -> None:
        self._view: View | None = None
        self._agents: Sequence[AgentSpec] = ()
        self._tools: ToolBox | None = None
        self._timeout: float | None = None

    def start(
        self, view: View, agents: Sequence[AgentSpec], *, tools: ToolBox,
        agent_timeout: float | None,
    ) -> None:
        self._view, self._agents, self._tools = view, agents, tools
        self._timeout = agent_timeout

    def run_cycle(
        self, cycle: int, delta: Delta, activations: Sequence[Activation]
    ) -> list[AgentEffect]:
        assert self._view is not None and self._tools is not None, "start() first"
        return [
            run_agent(self._agents[a.position], a, self._view, self._tools, self._timeout)
            for a in activations
        ]

    def close(self) -> None:
        self._view = None


class ThreadExecutor:
    """Runs agents on a long-lived thread pool: for agents that wait on tools (LLMs,
    HTTP). An agent still running ``agent_timeout`` seconds after it started is
    abandoned (its thread cannot be killed; its late result is ignored): its effect
    records the tool calls it made, the one still running included, and its runtime
    refuses any later call, so an abandoned agent spends no more of ``max_tool_calls``.
    Which calls it made before it was abandoned depends on timing, so such a trace
    may differ from a ``serial`` one (which lets the agent finish, then discards it)."""

    wants_delta = False

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and not 1 <= workers <= MAX_THREAD_WORKERS:
            raise ConvergeError(
                f"the threads executor takes 1..{MAX_THREAD_WORKERS} --workers, not "
                f"{workers}; for thousands of calls in flight use async tools")
        self._workers = workers or DEFAULT_THREAD_WORKERS
        self._pool: ThreadPoolExecutor | None = None
        self._view: View | None = None
        self._agents: Sequence[AgentSpec] = ()
        self._tools: ToolBox | None = None
        self._timeout: float | None = None

    def start(
        self, view: View, agents: Sequence[AgentSpec], *, tools: ToolBox,
        agent_timeout: float | None,
    ) -> None:
        self._view, self._agents, self._tools = view, agents, tools
        self._timeout = agent_timeout
        self._pool = ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix="converge-agent"
        )

    def run_cycle(
        self, cycle: int, delta: Delta, activations: Sequence[Activation]
    ) -> list[AgentEffect]:
        pool, view, tools = self._pool, self._view, self._tools
        assert pool is not None and view is not None and tools is not None, "start() first"
        timeout = self._timeout
        started: list[float | None] = [None] * len(activations)
        runtimes = [AgentRuntime(tools) for _ in activations]

        def task(i: int, act: Activation) -> AgentEffect:
            started[i] = time.monotonic()
            return run_agent(
                self._agents[act.position], act, view, tools, timeout, runtimes[i]
            )

        futures: list[Future[AgentEffect]] = [
            pool.submit(task, i, act) for i, act in enumerate(activations)
        ]
        effects: list[AgentEffect] = []
        for i, future in enumerate(futures):
            if timeout is None:
                effects.append(future.result())
                continue
            while True:
                begun = started[i]
                wait = timeout if begun is None else begun + timeout - time.monotonic()
                try:
                    effects.append(future.result(timeout=max(wait, 0.0) + 0.001))
                    break
                except FutureTimeout:
                    begun = started[i]
                    if begun is not None and time.monotonic() - begun >= timeout:
                        future.cancel()
                        effects.append(AgentEffect(
                            activations[i].position, (), timeout_reason(timeout),
                            runtimes[i].close(),
                        ))
                        break
        return effects

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def processes_executor(workers: int | None = None) -> Executor:
    """The ``processes`` executor (:mod:`~converge_rules.engine.processes`): replicas in
    forked workers, for CPU-bound agents. Registered as ``processes`` where the fork
    start method exists (POSIX)."""
    from converge_rules.engine.processes import ProcessExecutor

    return ProcessExecutor(workers)


def fork_available() -> bool:
    """True where the ``fork`` start method exists (POSIX): ``processes`` needs it."""
    return "fork" in multiprocessing.get_all_start_methods()
