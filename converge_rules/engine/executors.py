"""Executors run phase 1 of a cycle: every activated agent against one snapshot.

The protocol (:class:`Executor`) is shaped for replicas and for deadlines. ``start``
hands over the view, the agents, the job's tool box and the two time budgets once;
``run_cycle`` receives the :data:`~converge_rules.engine.effects.Delta` of changes the
merge made since the previous cycle (in-process executors share the live store and
ignore it; process and cluster executors apply it to their replicas with the engine's
own store code) and returns one :class:`AgentEffect` per activation, tagged with its
merge position. The engine sorts effects by position, so an executor may return them
in any order. ``close`` releases workers, never waiting for an abandoned agent.

Deadlines cut: ``run_cycle`` returns by the earliest deadline, whatever is running. An
agent over ``agent_timeout`` gets :func:`timed_out`; when the job's ``deadline`` passes,
every activation without an effect gets :func:`cut_at_deadline` and the engine ends
the job (``budget_exceeded``, ``job_timeout``) with the facts merged so far. An
abandoned agent can no longer reach the context or the trace.

Built in: ``serial``, ``threads`` (daemon threads sized for tool-bound agents, see
:class:`AgentThreads`) and, where the ``fork`` start method exists (POSIX),
``processes`` (:func:`processes_executor`: replicas in forked workers, for CPU-bound
agents). The engine takes an executor *instance*; the built-in plugin registers these
factories (:mod:`converge_rules.plugins.builtin.executors`) and plugins register more,
so ``Registries.executor(name, workers)`` builds any of them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Protocol, cast

from converge_rules.engine.effects import (
    Activation,
    Activations,
    AgentEffect,
    Delta,
    RunOutputs,
    ToolRecord,
    made_effect,
)
from converge_rules.engine.tools import (
    AgentAbandoned,
    AgentRuntime,
    ToolBox,
    ToolBudgetExhausted,
)
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

if TYPE_CHECKING:
    import queue  # imported by the thread pool: a serial job never needs it

DEFAULT_THREAD_WORKERS = 64
MAX_THREAD_WORKERS = 1024
"""Beyond this many threads a pool costs more in stacks and switching than it saves."""


class Executor(Protocol):
    """Runs the compute phase of each cycle. See the module docstring and
    ``docs/plugins.md`` (Executors).

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
        deadline: float | None,
    ) -> None:
        """Once per job, before the first cycle. ``view`` is the context after the
        input facts were merged (a :class:`~converge_rules.engine.factstore.FactStore`);
        ``agents`` are indexed by merge position; ``tools`` answers every tool call of
        the job (memo and ``max_tool_calls`` are job-wide). ``agent_timeout`` (seconds)
        bounds one agent run; ``deadline`` is the job's end from ``job_timeout``, a
        ``time.monotonic()`` value of the engine's process. None: no limit."""

    def run_cycle(
        self, cycle: int, delta: Delta, activations: Sequence[Activation]
    ) -> list[AgentEffect]:
        """One effect per activation, by the earliest deadline: agents over
        ``agent_timeout`` get :func:`timed_out`, those unfinished at the job's deadline
        :func:`cut_at_deadline`."""

    def close(self) -> None:
        """End of the job (also after an error or an interrupt): release workers
        without waiting for abandoned agents."""


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
    ``budget`` (the job must stop). Timings never reach the effect: when the job is
    timed (``tools.timings``), the run's wall time and its calls' go to the collector.
    ``runtime`` (a fresh one on ``tools`` by default) lets an executor that abandons
    the agent record its calls."""
    timings = tools.timings
    if timings is None:
        return _run_agent(agent, activation, view, tools, agent_timeout, runtime)
    if runtime is None:
        runtime = AgentRuntime(tools)
    cycle = timings.cycle
    began = time.perf_counter()
    try:
        return _run_agent(agent, activation, view, tools, agent_timeout, runtime)
    finally:  # an abandoned agent's run too (AgentAbandoned passes through)
        record_run(timings, cycle, agent.name, time.perf_counter() - began, runtime)


def record_run(timings: Any, cycle: int, agent: str, seconds: float,
               runtime: AgentRuntime) -> None:
    """Hand ``timings`` one agent run and the calls its ``runtime`` timed."""
    if not runtime.timed:  # the common run without tool calls: nothing to join
        timings.agent_run(cycle, agent, seconds)
        return
    calls = runtime.calls
    timings.agent_run(cycle, agent, seconds,
                      [(calls[i][0], calls[i][1], took, source)
                       for i, took, source in runtime.timed if i < len(calls)])


def _run_agent(
    agent: AgentSpec,
    activation: Activation,
    view: View,
    tools: ToolBox,
    agent_timeout: float | None,
    runtime: AgentRuntime | None = None,
) -> AgentEffect:
    if runtime is None:
        runtime = AgentRuntime(tools)
    started = time.monotonic() if agent_timeout is not None else 0.0
    try:
        if activation.gone is None:
            outputs = agent.fn(view, activation.since, runtime)
        else:
            unblocking = cast(UnblockingAgentFn, agent.fn)
            outputs = unblocking(view, activation.since, runtime, activation.gone)
    except (Exception, SystemExit) as exc:  # an agent that raises contributes nothing
        return _failed(activation.position, exc, runtime)
    if agent_timeout is not None and time.monotonic() - started > agent_timeout:
        return AgentEffect(
            activation.position, (), timeout_reason(agent_timeout), tuple(runtime.calls)
        )
    return _made(activation.position, outputs, runtime)


def _failed(position: int, exc: BaseException, runtime: AgentRuntime) -> AgentEffect:
    """The effect of a run that raised ``exc`` (an ``Exception`` or ``SystemExit``):
    discarded, with the calls it made; a tool budget spent, a job budget exceeded or
    a ``MemoryError`` say so (the last two stop the job)."""
    if isinstance(exc, ToolBudgetExhausted):
        return AgentEffect(position, (), f"tool budget: {exc}", tuple(runtime.calls), True)
    if isinstance(exc, ToolError):
        return AgentEffect(position, (), without_addresses(f"ToolError: {exc}"),
                           tuple(runtime.calls))
    if isinstance(exc, BudgetExceeded):  # too many outputs, a value too large
        return AgentEffect(position, (), without_addresses(str(exc)),
                           tuple(runtime.calls), budget=exc.budget)
    if isinstance(exc, MemoryError):
        # never a success: the job stops (what the run built is garbage by now)
        return AgentEffect(position, (), "ran out of memory (MemoryError)",
                           tuple(runtime.calls), budget="memory")
    # the reason goes into the trace: an object's repr must not make it differ
    return AgentEffect(position, (), without_addresses(f"{type(exc).__name__}: {exc}"),
                       tuple(runtime.calls))


def _made(position: int, outputs: Any, runtime: AgentRuntime) -> AgentEffect:
    """The effect of a run that returned ``outputs``: merged as they are when they keep
    the compiler's contract (:func:`malformed`), else discarded, saying why."""
    result: Sequence[Any]
    if type(outputs) is Columns:
        result = outputs  # columnar outputs stay columns (program.Columns)
    else:
        try:
            result = tuple(outputs)
        except TypeError:
            result = (None,)  # not a sequence of outputs at all
    problem = None
    if len(result) == 1 and type(result) is tuple:
        # one output, the usual run's: malformed()'s check inlined
        out = result[0]
        if type(out) is not tuple or len(out) != 5 or out[0] not in _KINDS:
            problem = malformed(result)
    else:
        problem = malformed(result)
    if problem is not None:
        return AgentEffect(position, (), problem, tuple(runtime.calls))
    return made_effect(position, result, tuple(runtime.calls) if runtime.calls else ())


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


def timed_out(position: int, limit: float,
              calls: tuple[ToolRecord, ...] = ()) -> AgentEffect:
    """The effect of an agent cut at its ``agent_timeout``: discarded, its calls kept."""
    return AgentEffect(position, (), timeout_reason(limit), calls)


#: why the effect of an agent cut at the job's deadline is discarded
DEADLINE_REASON = "job_timeout ran out: cut at the job's deadline"


def cut_at_deadline(position: int, calls: tuple[ToolRecord, ...] = ()) -> AgentEffect:
    """The effect of an agent still running (or not yet started) when the job's deadline
    passed: discarded, with ``budget="job_timeout"``, so the engine ends the job with
    status ``budget_exceeded`` and the facts merged so far."""
    return AgentEffect(position, (), DEADLINE_REASON, calls, budget="job_timeout")


def _interrupt(thread_id: int) -> None:
    """Raise :class:`AgentAbandoned` in the thread ``thread_id`` at its next bytecode,
    so an abandoned agent that computes (a join that would run for minutes) stops
    instead of spinning on. Only a thread seen executing bytecode is hit: until its
    target takes it, a pending asynchronous exception keeps every thread of the process
    on CPython's slow path, and a profiled or traced thread (coverage, a debugger) then
    stalls — for an hour behind an agent blocked in ``time.sleep(3600)``. An agent
    blocked in C code is left alone; it stops at its next tool call, or ends."""
    if _running_python(thread_id):
        import ctypes

        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread_id), ctypes.py_object(AgentAbandoned)
        )


def _interrupt_then_release(thread_id: int, held: threading.Lock) -> None:
    """:func:`_interrupt` on a daemon thread of its own, which then releases ``held``
    (the lock that keeps ``thread_id`` inside its agent code while it is watched): the
    watch takes up to :func:`_running_python`'s pauses for an agent blocked in C code,
    and a cycle that cuts many such agents at once must not wait for each in turn (40
    held one 8 s past its deadline). Where no thread can be started: here and now."""
    def watch() -> None:
        try:
            _interrupt(thread_id)
        finally:
            held.release()

    try:
        threading.Thread(target=watch, daemon=True, name="converge-abandon").start()
    except RuntimeError:  # can't start new thread
        watch()


def _running_python(thread_id: int, pause: float = 0.02, pauses: int = 10) -> bool:
    """Whether the thread is computing (its CPU time grows), rather than waiting in C
    code (a sleep, a socket read). Where per-thread CPU clocks do not exist: False.
    Watched for up to ``pauses`` pauses, until it has computed for a tenth of one: on
    a loaded machine a computing thread may go unscheduled for a pause or more (found
    at load 20: an abandoned agent taken for a waiting one spun on); a waiting thread
    never computes, and costs the whole watch (only agents blocked outside a tool call
    are ever watched that long)."""
    try:
        clock = time.pthread_getcpuclockid(thread_id)
        before = time.clock_gettime(clock)
        for _ in range(pauses):
            time.sleep(pause)
            if time.clock_gettime(clock) - before > pause / 10:
                return True
        return False
    except (AttributeError, OSError):  # no such clock here, or the thread has ended
        return False


RunOne = Callable[[Activation, AgentRuntime], AgentEffect]


class _Batch:
    """One cycle's work for :class:`AgentThreads`."""

    __slots__ = ("acts", "cancelled", "owner", "run_one", "runtimes", "started")

    def __init__(self, acts: Sequence[Activation], run_one: RunOne, tools: ToolBox) -> None:
        self.acts = acts
        self.run_one = run_one
        self.runtimes = [AgentRuntime(tools) for _ in acts]
        self.started: list[float | None] = [None] * len(acts)
        self.owner: list[_AgentThread | None] = [None] * len(acts)
        self.cancelled = False


class _AgentThread:
    """One daemon worker thread. ``gate`` is held by the thread whenever it is *not*
    running agent code, so whoever holds it knows the thread is inside an agent (or
    done with it): only then may :func:`_interrupt` hit it, never while it takes a task
    or hands back a result (which would lose them, or leave a lock held)."""

    __slots__ = ("gate", "item", "retired", "thread")

    def __init__(self) -> None:
        self.gate = threading.Lock()
        self.gate.acquire()
        self.item: tuple[_Batch, int] | None = None
        self.retired = False
        self.thread: threading.Thread | None = None


_Task = tuple[_Batch, int]
_Done = tuple[_Batch, int, AgentEffect]


class AgentThreads:
    """Daemon threads that run a cycle's activations, taken in order by at most
    ``workers`` threads at a time, and never wait past a deadline.

    :meth:`run` returns when every activation has an effect, at the latest when the
    job's ``deadline`` passes (a ``time.monotonic()`` value). An agent running longer
    than ``agent_timeout`` gets :func:`timed_out`, one unfinished at the deadline
    :func:`cut_at_deadline`; its runtime is closed (its calls are recorded, later ones
    refused), its thread retired (it never takes another task, and is stopped with
    :class:`~converge_rules.engine.tools.AgentAbandoned` when it runs Python code
    outside a tool call) and replaced, so queued agents still start. Threads are
    daemons: an abandoned one never keeps the process from exiting."""

    def __init__(self, workers: int, name: str) -> None:
        import queue

        self._workers = workers
        self._name = name
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[_Done] = queue.SimpleQueue()
        self._live: list[_AgentThread] = []

    def _spawn(self, count: int) -> None:
        """Start threads until ``count`` are live (not retired)."""
        self._live = [w for w in self._live if not w.retired]
        while len(self._live) < count:
            w = _AgentThread()
            w.thread = threading.Thread(target=self._serve, args=(w,), daemon=True,
                                        name=f"{self._name}-{len(self._live)}")
            w.thread.start()
            self._live.append(w)

    def _serve(self, w: _AgentThread) -> None:
        tasks, results = self._tasks, self._results
        try:
            while True:
                task = tasks.get()
                if task is None:
                    return
                batch, i = task
                if batch.cancelled:
                    continue
                w.item = task
                batch.owner[i] = w
                batch.started[i] = time.monotonic()
                act, runtime = batch.acts[i], batch.runtimes[i]
                w.gate.release()
                try:
                    effect = batch.run_one(act, runtime)
                except AgentAbandoned:
                    return
                except BaseException as exc:  # never leave the cycle waiting for it
                    effect = AgentEffect(act.position, (), without_addresses(
                        f"{type(exc).__name__}: {exc}"), runtime.close())
                w.gate.acquire()
                w.item = None
                if w.retired:
                    return
                results.put((batch, i, effect))
        except AgentAbandoned:  # hit just after its agent returned: it is retired anyway
            return

    def _abandon(self, batch: _Batch, i: int) -> None:
        """Retire the thread running activation ``i`` (its runtime is closed already)
        and stop it if it is in the agent's own code."""
        w = batch.owner[i]
        if w is None or not w.gate.acquire(blocking=False):
            return  # not started, or its thread is past the agent: it finished
        if w.item is None or w.item[0] is not batch or w.item[1] != i:
            w.gate.release()
            return  # it finished ``i`` and took another task
        w.retired = True
        thread = w.thread
        if thread is not None and thread.ident is not None and not (
            batch.runtimes[i].calling
        ):
            # (in a tool call it stops when the call returns); the gate is released
            # once the watch is over, without the cycle waiting for it
            _interrupt_then_release(thread.ident, w.gate)
        else:
            w.gate.release()

    def run(
        self, activations: Sequence[Activation], run_one: RunOne, tools: ToolBox, *,
        agent_timeout: float | None, deadline: float | None,
    ) -> list[AgentEffect]:
        """One effect per activation, in their order (see the class docstring).
        ``run_one(activation, runtime)`` runs one agent with that runtime."""
        from queue import Empty

        n = len(activations)
        if not n:
            return []
        batch = _Batch(activations, run_one, tools)
        effects: list[AgentEffect | None] = [None] * n
        left = n
        self._spawn(min(self._workers, n))
        for i in range(n):
            self._tasks.put((batch, i))
        results = self._results
        lo = 0  # every activation before ``lo`` has its effect
        while left:
            wake = deadline
            if agent_timeout is not None:
                # an agent not yet taken starts after now: its deadline is later than this
                now = time.monotonic()
                wake = now + agent_timeout if wake is None else min(wake, now + agent_timeout)
                taken = n - self._tasks.qsize()
                for i in range(lo, min(taken, n)):
                    if effects[i] is None:
                        began = batch.started[i]
                        end = (now if began is None else began) + agent_timeout
                        wake = end if wake is None else min(wake, end)
            try:
                done = results.get(timeout=None if wake is None
                                   else max(wake - time.monotonic(), 0.0))
                while True:
                    b, i, effect = done
                    if b is batch and effects[i] is None:
                        effects[i] = effect
                        left -= 1
                    done = results.get_nowait()
            except Empty:
                pass
            while lo < n and effects[lo] is not None:
                lo += 1
            if not left:
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                batch.cancelled = True
                for i in range(lo, n):
                    if effects[i] is None:
                        effects[i] = cut_at_deadline(activations[i].position,
                                                     batch.runtimes[i].close())
                        self._abandon(batch, i)
                self._drain()
                break
            if agent_timeout is None:
                continue
            retired = False
            for i in range(lo, n):
                began = batch.started[i]
                if effects[i] is None and began is not None and now - began >= agent_timeout:
                    effects[i] = timed_out(activations[i].position, agent_timeout,
                                           batch.runtimes[i].close())
                    left -= 1
                    self._abandon(batch, i)
                    retired = True
            if retired:
                self._spawn(min(self._workers, n))  # queued agents must still start
        return cast(list[AgentEffect], effects)

    def _drain(self) -> None:
        from queue import Empty

        with contextlib.suppress(Empty):
            while True:
                self._tasks.get_nowait()

    def close(self) -> None:
        """Let the idle threads end; never waits for an abandoned one."""
        self._drain()
        for _ in self._live:
            self._tasks.put(None)
        self._live = []


class SerialExecutor:
    """Runs agents one after another, in merge order. Without time budgets they run in
    the calling thread. With ``agent_timeout`` or ``job_timeout`` they run, still one at
    a time, on a worker thread the cycle can abandon (:class:`AgentThreads` with one
    worker): an agent is cut at its deadline, the next one starts on a fresh thread,
    and the cycle never waits past the job's deadline. Results and traces are the same
    either way for runs where no deadline passes."""

    wants_delta = False

    def __init__(self, workers: int | None = None) -> None:
        self._view: View | None = None
        self._agents: Sequence[AgentSpec] = ()
        self._tools: ToolBox | None = None
        self._timeout: float | None = None
        self._deadline: float | None = None
        self._threads: AgentThreads | None = None

    def start(
        self, view: View, agents: Sequence[AgentSpec], *, tools: ToolBox,
        agent_timeout: float | None, deadline: float | None = None,
    ) -> None:
        self._view, self._agents, self._tools = view, agents, tools
        self._timeout, self._deadline = agent_timeout, deadline
        if agent_timeout is not None or deadline is not None:
            self._threads = AgentThreads(1, "converge-serial")

    def run_cycle(
        self, cycle: int, delta: Delta, activations: Sequence[Activation]
    ) -> list[AgentEffect]:
        view, tools, timeout = self._view, self._tools, self._timeout
        assert view is not None and tools is not None, "start() first"
        agents = self._agents
        if self._threads is not None:
            return self._threads.run(
                activations,
                lambda a, rt: run_agent(agents[a.position], a, view, tools, timeout, rt),
                tools, agent_timeout=timeout, deadline=self._deadline,
            )
        if tools.timings is None:
            if type(activations) is Activations and activations.gones.count(None) == len(
                    activations):
                return _run_columns(agents, activations, view, tools)  # type: ignore[return-value]
            return _run_serially(agents, activations, view, tools)
        # One runtime for the runs that call no tool (most agents): a run that called
        # one keeps it in its effect's records, and the next run gets a fresh one.
        runtime = AgentRuntime(tools)
        effects: list[AgentEffect] = []
        for a in activations:
            effects.append(run_agent(agents[a.position], a, view, tools, timeout, runtime))
            if runtime.calls:
                runtime = AgentRuntime(tools)
        return effects

    def close(self) -> None:
        self._view = None
        if self._threads is not None:
            self._threads.close()
            self._threads = None


def _run_serially(agents: Sequence[AgentSpec], activations: Sequence[Activation],
                  view: View, tools: ToolBox) -> list[AgentEffect]:
    """``run_agent`` of each activation in turn, without time budgets or timings: the
    same effects, from one loop (a cycle of many cheap agents spent a third of each
    run in the calls around the agent). An ordinary run that returns one well-formed
    output is handled here; anything else (a handed-over removal, an exception, other
    outputs) goes through :func:`_run_agent` or its checks, unchanged."""
    # One runtime for the runs that call no tool (most agents): a run that called
    # one keeps it in its effect's records, and the next run gets a fresh one.
    runtime = AgentRuntime(tools)
    effects: list[AgentEffect] = []
    add = effects.append
    kinds = _KINDS
    for act in activations:
        position = act.position
        agent = agents[position]
        if act.gone is not None:
            add(_run_agent(agent, act, view, tools, None, runtime))
        else:
            try:
                outputs = agent.fn(view, act.since, runtime)
            except (Exception, SystemExit) as exc:
                add(_failed(position, exc, runtime))
            else:
                if (type(outputs) is list and len(outputs) == 1 and type(out := outputs[0])
                        is tuple and len(out) == 5 and out[0] in kinds):
                    # the usual run: one output (what _run_agent checks, inlined)
                    add(made_effect(position, (out,),
                                    tuple(runtime.calls) if runtime.calls else ()))
                else:
                    add(_made(position, outputs, runtime))
        if runtime.calls:
            runtime = AgentRuntime(tools)
    return effects


def _run_columns(agents: Sequence[AgentSpec], acts: Activations, view: View,
                 tools: ToolBox) -> RunOutputs | list[AgentEffect]:
    """:func:`_run_serially` of a cycle's ordinary runs (none is handed facts gone),
    answered as columns (:class:`RunOutputs`) while every run ends as most do — its
    outputs merged as they are, no error, no tool call: no :class:`AgentEffect` per
    run. From the first run that does not, the effects, as :func:`_run_serially`
    gives them."""
    runtime = AgentRuntime(tools)
    positions = acts.positions
    outputs: list[Sequence[Any]] = []
    add = outputs.append
    kinds = _KINDS
    for position, since in zip(positions, acts.sinces, strict=True):
        try:
            result = agents[position].fn(view, since, runtime)
        except (Exception, SystemExit) as exc:
            effect = _failed(position, exc, runtime)
        else:
            if not runtime.calls:
                if type(result) is list:
                    if not result:
                        add(())
                        continue
                    if (len(result) == 1 and type(out := result[0]) is tuple
                            and len(out) == 5 and out[0] in kinds):
                        # the usual run: one output (what _run_agent checks, inlined)
                        add((out,))
                        continue
                elif type(result) is Columns and result.malformed() is None:
                    # columns that keep the contract (what _made checks, with no
                    # effect built only to be taken apart)
                    add(result)
                    continue
            effect = _made(position, result, runtime)
            if (effect.error is None and not effect.tool_calls
                    and not effect.tool_budget_exhausted and effect.budget is None):
                add(effect.outputs)
                continue
        # an effect of its own from here on: the runs so far as effects, this one,
        # then the rest as _run_serially runs them
        i = len(outputs)  # (one per run so far)
        effects = RunOutputs(positions[:i], outputs).effects()
        effects.append(effect)
        effects.extend(_run_serially(agents, acts[i + 1:], view, tools))
        return effects
    return RunOutputs(positions, outputs)


class ThreadExecutor:
    """Runs agents on ``workers`` threads (:class:`AgentThreads`): for agents that wait
    on tools (LLMs, HTTP). An agent still running ``agent_timeout`` seconds after it
    started is cut: its effect records the tool calls it made, the one still running
    included (:data:`~converge_rules.engine.tools.ABANDONED`), its late result is
    ignored, its runtime refuses any later call (so it spends no more of
    ``max_tool_calls``), and a fresh thread takes its place, so agents queued behind it
    start. Which calls it made before it was cut depends on timing, so such a trace may
    differ from a ``serial`` one."""

    wants_delta = False

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and not 1 <= workers <= MAX_THREAD_WORKERS:
            raise ConvergeError(
                f"the threads executor takes 1..{MAX_THREAD_WORKERS} --workers, not "
                f"{workers}; for thousands of calls in flight use async tools")
        self._workers = workers or DEFAULT_THREAD_WORKERS
        self._threads: AgentThreads | None = None
        self._view: View | None = None
        self._agents: Sequence[AgentSpec] = ()
        self._tools: ToolBox | None = None
        self._timeout: float | None = None
        self._deadline: float | None = None

    def start(
        self, view: View, agents: Sequence[AgentSpec], *, tools: ToolBox,
        agent_timeout: float | None, deadline: float | None = None,
    ) -> None:
        self._view, self._agents, self._tools = view, agents, tools
        self._timeout, self._deadline = agent_timeout, deadline
        self._threads = AgentThreads(self._workers, "converge-agent")

    def run_cycle(
        self, cycle: int, delta: Delta, activations: Sequence[Activation]
    ) -> list[AgentEffect]:
        threads, view, tools = self._threads, self._view, self._tools
        assert threads is not None and view is not None and tools is not None, "start() first"
        agents, timeout = self._agents, self._timeout
        return threads.run(
            activations,
            lambda a, rt: run_agent(agents[a.position], a, view, tools, timeout, rt),
            tools, agent_timeout=timeout, deadline=self._deadline,
        )

    def close(self) -> None:
        if self._threads is not None:
            self._threads.close()
            self._threads = None


def processes_executor(workers: int | None = None) -> Executor:
    """The ``processes`` executor (:mod:`~converge_rules.engine.processes`): replicas in
    forked workers, for CPU-bound agents. Registered as ``processes`` where the fork
    start method exists (POSIX)."""
    from converge_rules.engine.processes import ProcessExecutor

    return ProcessExecutor(workers)


def fork_available() -> bool:
    """True where the ``fork`` start method exists (POSIX): ``processes`` needs it."""
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()
