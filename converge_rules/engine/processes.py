"""The ``processes`` executor: long-lived worker processes, each with a replica.

For CPU-bound agents, which threads cannot run in parallel. At ``start`` the workers
are forked (POSIX ``fork``: they inherit the compiled agents and a replica of the
context without pickling either); each cycle, every worker receives the merge's
:data:`~converge_rules.engine.effects.Delta` (applied to its replica with the store's
own code, so ids agree) and the activations it asks for, batch by batch (a cycle after
a cheap one is split up front), and returns their effects.
Tool calls are answered by the parent's :class:`~converge_rules.engine.tools.ToolBox`
over the pipe, so memo and ``max_tool_calls`` stay job-wide.

Deadlines cut. With ``agent_timeout`` or ``job_timeout`` set, a worker reports each
effect as it is made and the parent answers tool calls on daemon threads, so it keeps
watching the clock: a worker whose agent overruns ``agent_timeout`` is killed at that
deadline (the agent's effect is :func:`~converge_rules.engine.executors.timed_out`,
with the calls it made) and replaced by a fresh fork holding a replica rebuilt from the
engine's store, which runs the rest of the dead worker's share; at the job's deadline
every busy worker is killed and the unfinished agents are
:func:`~converge_rules.engine.executors.cut_at_deadline`. Workers die with the parent:
each closes the parent's ends of every pipe it inherited (so it reads end-of-file when
the parent is gone) and, on Linux, asks the kernel for ``SIGKILL`` when the parent dies.

The engine's own process runs a share too, when it can: in a job without deadlines
whose agents call no tools, ``workers`` counts it, so ``workers - 1`` processes are
forked (none for one worker), and the engine's process runs the activations the forked
workers do not take, against the store itself (no replica, no pickling of its share's
effects), holding two batches at a time like a worker. In a cycle whose work is asked
for, those run on a thread of the engine's process while its main thread keeps
answering the workers; a cheap cycle's share runs in the main thread between handing
out the workers' shares and collecting them. With deadlines the engine's process only
watches the clock (an agent it ran could not be cut), and with tool calls it only
answers them (its workers' calls would wait for its own agents): ``workers`` workers
are forked, as before.

Fork after threads is unsafe: the engine starts this executor before any thread pool
of its own; do not combine it with threads you started yourself. (A replacement is
forked while tool calls may run on threads; the child touches none of their state.
The engine's process runs its share on a thread only in jobs without deadlines, which
never fork a replacement, and that thread ends with its cycle.)
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from converge_rules.engine.effects import Activation, AgentEffect, Delta, ToolRecord
from converge_rules.engine.executors import cut_at_deadline, run_agent, timed_out
from converge_rules.engine.factstore import FactStore
from converge_rules.engine.tools import ABANDONED, ToolBox, ToolBudgetExhausted
from converge_rules.errors import ConvergeError, ExecutorError, without_addresses
from converge_rules.program import AgentSpec, View

Inherited = tuple[FactStore, Sequence[AgentSpec], float | None, bool, tuple[Connection, ...],
                  int, bool]
"""What a forked worker inherits: (replica, agents, agent_timeout, timed, the parent's
pipe ends to close, the parent's pid, whether the job's timings are on). Handed to the
worker as the Process's argument: with the fork start method it is inherited as it is,
never pickled, and no module-level variable is shared by jobs running in threads."""

MAX_WORKERS_PER_CORE = 4
"""The processes executor forks at most this many workers per core (found: 400 forks
on 2 cores were accepted)."""

_CLOSE_GRACE = 1.0
"""Seconds ``close`` lets idle workers exit before it kills the rest."""

_PR_SET_PDEATHSIG = 1

_ASK_AFTER = 0.02
"""Seconds a cycle must take for the next one's work to be handed out as workers ask
(a few round trips of a fraction of a millisecond each); a cheaper cycle's next is
split up front. The job's first cycle is always asked for."""

_AHEAD_BYTES = 8_192
"""The largest batch message sent to a worker before it asks (about: see
:func:`_message_bytes`). Two such in a pipe of 64 KiB never fill it."""


def _message_bytes(activations: Any) -> int:
    """An upper bound, about, of the pickled size of ``activations``: ids of facts
    gone (``Activation.gone``) are what can make it big."""
    size = 0
    for a in activations:
        size += 64
        if a.gone is not None:
            size += sum(9 * len(ids) + 8 for ids in a.gone)
    return size


class _RemoteTools(ToolBox):
    """A worker's tool box: every call is answered by the parent's."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(None, None)
        self._conn = conn
        self.current = 0  # the index, in this worker's share, of the agent running
        # more work the parent sent while a call waited for its answer, in order
        self.more: deque[tuple[Any, ...]] = deque()

    def call(self, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        self._conn.send(("call", tool, args, self.current))
        while True:
            message = self._conn.recv()
            if message[0] != "more":
                break
            self.more.append(message)
        kind, result, error = message
        if kind == "refused":
            raise ToolBudgetExhausted(error)
        return result, error

    def next_work(self) -> tuple[Any, ...]:
        """The parent's next ``("more", batches, last)``, the one kept aside first."""
        return self.more.popleft() if self.more else self._conn.recv()


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this worker when the parent dies (elsewhere the closed pipe
    ends do it, at the worker's next read)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(
                _PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0
            )
    if os.getppid() != parent_pid:  # it died before the request was made
        os._exit(0)


def _worker(conn: Connection, inherited: Inherited) -> None:
    replica, agents, timeout, timed, parent_ends, parent_pid, timing = inherited
    # Ctrl-C reaches the whole process group: the parent handles it and closes us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    for end in parent_ends:  # else no worker sees end-of-file when the parent dies
        end.close()
    # what was inherited is never garbage here: the young collections below must not
    # walk it (nor write to its pages, which copy-on-write would then copy)
    gc.freeze()
    tools = _RemoteTools(conn)
    view = replica.as_view()
    try:
        while True:
            message = conn.recv()
            if message[0] == "stop":
                conn.send(("bye", time.process_time()))  # what this worker cost
                return
            _, delta, first, last = message
            batches: deque[list[Activation]] = deque(first)
            took: list[tuple[int, float]] = []  # (share index, wall seconds) when timing
            k = 0  # the share index of the next agent: the order the parent sent them
            effects: list[AgentEffect] = []
            try:
                replica.apply(delta)
                if timed:
                    conn.send(("begin",))  # the first agent's clock starts now
                while True:
                    while batches:
                        effects = []
                        for a in batches.popleft():
                            tools.current = k
                            began = time.perf_counter() if timing else 0.0
                            effect = run_agent(agents[a.position], a, view, tools, timeout)
                            if timing:
                                took.append((k, time.perf_counter() - began))
                            k += 1
                            if timed:  # the parent keeps what was made if it must kill us
                                conn.send(("effect", effect))
                            else:
                                effects.append(effect)
                        if batches or not last:  # the parent sends the next, or word of none
                            conn.send(("effects", effects))
                            effects = []
                    if last:
                        break
                    _, more, last = tools.next_work()
                    batches.extend(more)
            except MemoryError:  # the parent stops the job: budget `memory`
                conn.send(("memory", "a worker process of the processes executor ran out "
                           "of memory (MemoryError)"))
                return
            except (EOFError, OSError):
                raise
            except Exception as exc:  # the replica is out of step: the job cannot go on
                conn.send(("failed", f"{type(exc).__name__}: {exc}"))
                return
            if timing:
                conn.send(("timings", took))
            conn.send(("done", effects))  # the last batch's effects, if not sent yet
            gc.collect(1)  # as in the parent: young generations once a cycle, never the replica
    except (EOFError, OSError):  # the parent is gone: so are we, quietly
        return


def _died(proc: Any) -> str:
    """What a worker that died under the engine's feet says: how it died, and what to do
    (it is no bug of the executor's: something outside killed it, often the kernel's
    out-of-memory killer)."""
    proc.join(1.0)  # its exit status, once the kernel has it
    code = proc.exitcode
    if code is None:
        how = "its connection closed"
    elif code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exited with status {code}"
    hint = ("; SIGKILL is often the out-of-memory killer: give the job more memory or "
            "fewer --workers" if code == -signal.SIGKILL else "")
    return (f"a worker process of the processes executor died while it ran agents (pid "
            f"{proc.pid}, {how}){hint}; the job stops without a result (with --store it "
            "is resumable: `converge run --resume`)")


class _Worker:
    """The parent's record of one worker and of its share of the current cycle."""

    __slots__ = ("begun", "calls", "conn", "dead", "done", "last", "lock", "out", "pending",
                 "proc", "share")

    def __init__(self, proc: Any, conn: Connection) -> None:
        self.proc = proc
        self.conn = conn
        self.lock = threading.Lock()
        self.dead = False
        self.assign([], time.monotonic())

    def assign(self, share: list[Activation], now: float) -> None:
        self.share = share  # what it was sent this cycle, in the order it runs them
        self.done = -1  # effects received; -1 until the worker said "begin"
        self.begun = now
        self.last = False  # told that no more work comes this cycle
        self.out = 0  # batches sent and not yet done
        self.calls: dict[int, list[ToolRecord]] = {}
        self.pending: dict[int, tuple[str, dict[str, Any]]] = {}

    def calls_of(self, k: int) -> tuple[ToolRecord, ...]:
        """The calls the agent ``k`` made, the one it waits for recorded as abandoned."""
        with self.lock:
            self.dead = True  # late answers go nowhere
            calls = list(self.calls.get(k, ()))
            if k in self.pending:
                tool, args = self.pending[k]
                calls.append((tool, args, None, ABANDONED))
            return tuple(calls)

    def kill(self) -> None:
        self.dead = True
        with contextlib.suppress(OSError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.join(timeout=5)
        self.conn.close()


class ProcessExecutor:
    """Runs agents in ``workers`` forked processes (default: the CPU count)."""

    wants_delta = True

    def __init__(self, workers: int | None = None, *, ask_after: float = _ASK_AFTER) -> None:
        """``ask_after``: how long a cycle must take (seconds) for workers to ask for
        the next one's work instead of getting it split up front (0: always ask)."""
        cores = os.cpu_count() or 1
        if workers is not None and not 1 <= workers <= MAX_WORKERS_PER_CORE * cores:
            raise ConvergeError(
                f"the processes executor runs one worker process per --workers: {workers} is "
                f"outside 1..{MAX_WORKERS_PER_CORE * cores} ({MAX_WORKERS_PER_CORE} per "
                f"core on this machine's {cores}); more CPU-bound workers than cores only "
                f"add memory and switching — leave --workers out to use one per core")
        self._workers = max(1, workers or cores)
        self._slots: list[_Worker] = []
        self._tools: ToolBox | None = None
        self._store: FactStore | None = None
        self._agents: Sequence[AgentSpec] = ()
        self._timeout: float | None = None
        self._deadline: float | None = None
        self._queue: deque[Activation] = deque()  # this cycle's activations not yet sent
        self._ask = True  # workers ask for work (the last cycle was not cheap)
        self._ask_after = ask_after
        self._local = False  # the engine's process runs a share (see the module docstring)
        self._lock = threading.Lock()  # the queue, when a thread of this process takes too
        self.worker_cpu: list[float] = []
        """The CPU seconds each forked worker used (user and system), known once the
        job closed the executor: for benchmarks, which weigh the workers' share of the
        work against a serial run. Workers killed at a deadline are not in it."""
        self.local_cpu = 0.0
        """The CPU seconds the engine's process spent running its own share of the
        agents (0 when it ran none): part of its process's CPU time, for benchmarks."""

    @property
    def _timed(self) -> bool:
        return self._timeout is not None or self._deadline is not None

    def start(
        self, view: View, agents: Sequence[AgentSpec], *, tools: ToolBox,
        agent_timeout: float | None, deadline: float | None = None,
    ) -> None:
        if "fork" not in multiprocessing.get_all_start_methods():
            raise ConvergeError("the processes executor needs the POSIX fork start method; "
                                "use --executor threads or serial on this platform")
        if not isinstance(view, FactStore):
            raise ConvergeError("the processes executor runs on the engine's fact store")
        self._tools, self._store, self._agents = tools, view, agents
        self._timeout, self._deadline = agent_timeout, deadline
        self.worker_cpu, self.local_cpu = [], 0.0
        self._ask = True
        self._local = not self._timed and not any(a.tools for a in agents)
        forks = self._workers - 1 if self._local else self._workers
        self._slots = []
        if forks:
            replica = view.replicate()
            for _ in range(forks):  # one by one: each closes its elders' pipe ends
                self._slots.append(self._fork(replica))

    def _fork(self, replica: FactStore) -> _Worker:
        """A new worker holding ``replica`` (inherited through fork, not pickled)."""
        context = multiprocessing.get_context("fork")
        parent, child = context.Pipe()
        ends = (*(s.conn for s in self._slots if not s.dead), parent)
        inherited: Inherited = (replica, self._agents, self._timeout, self._timed, ends,
                                os.getpid(), self._tools is not None
                                and self._tools.timings is not None)
        proc = context.Process(target=_worker, args=(child, inherited), daemon=True)
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def _replace(self, i: int) -> _Worker:
        """Replace the dead worker ``i`` by a fork with a replica rebuilt from the
        engine's store (the context of this cycle: no delta to apply)."""
        assert self._store is not None
        self._slots[i] = self._fork(self._store.replicate())
        return self._slots[i]

    def _answer(self, w: _Worker, k: int, tool: str, args: dict[str, Any]) -> None:
        """Answer a worker's tool call (on a daemon thread when the job is timed)."""
        tools = self._tools
        assert tools is not None
        timings = tools.timings
        try:
            if timings is None:
                result, error = tools.call(tool, args)
            else:  # timed here, where the call is answered
                cycle, began = timings.cycle, time.perf_counter()
                (result, error), source = tools.sourced_call(tool, args)
                timings.tool_call(cycle, self._agents[w.share[k].position].name, tool,
                                  args, time.perf_counter() - began, source)
            reply: tuple[Any, ...] = ("answer", result, error)
        except ToolBudgetExhausted as exc:
            result, error = None, str(exc)
            reply = ("refused", None, error)
        except MemoryError:
            if not self._timed:
                raise  # in the engine's thread: the job stops, budget `memory`
            result, error = None, "ran out of memory (MemoryError)"
            reply = ("answer", None, error)
        except (Exception, SystemExit) as exc:  # a worker must never wait for an answer
            result, error = None, without_addresses(f"{type(exc).__name__}: {exc}")
            reply = ("answer", None, error)
        with w.lock:
            if w.dead:
                return  # killed meanwhile: the answer reaches neither it nor the trace
            w.pending.pop(k, None)
            w.calls.setdefault(k, []).append((tool, args, result, error))
            with contextlib.suppress(OSError):
                w.conn.send(reply)

    def _handle(self, w: _Worker, effects: list[AgentEffect], busy: set[int], i: int) -> None:
        """Take one message from worker ``i``."""
        try:
            message = w.conn.recv()
        except (EOFError, OSError):
            raise ExecutorError(_died(w.proc)) from None
        kind = message[0]
        if kind == "call":
            _, tool, args, k = message
            if not self._timed:
                self._answer(w, k, tool, args)
                return
            with w.lock:
                w.pending[k] = (tool, args)
            threading.Thread(target=self._answer, args=(w, k, tool, args), daemon=True,
                             name="converge-tool-call").start()
        elif kind == "begin":
            w.done, w.begun = 0, time.monotonic()
        elif kind == "effect":
            effects.append(message[1])
            w.done += 1
            w.begun = time.monotonic()
        elif kind == "effects":  # a batch done: more work, or word that there is none
            effects.extend(message[1])
            w.out -= 1
            self._top_up(w)
        elif kind == "done":
            effects.extend(message[1])
            busy.discard(i)
        elif kind == "timings":  # the worker's agent runs: recorded in this cycle
            timings = self._tools.timings if self._tools is not None else None
            if timings is not None:
                for k, seconds in message[1]:
                    timings.agent_run(timings.cycle, self._agents[w.share[k].position].name,
                                      seconds)
        elif kind == "memory":
            raise MemoryError(message[1])
        else:
            raise ConvergeError(f"a worker process failed: {message[1]}")

    def _take(self) -> list[Activation]:
        """The next batch for a worker that asks (guided self-scheduling): a share of
        what is left, ``1 / (4 * workers)`` of it, at least one activation. Big batches
        while much is left keep the messages few; small ones at the end let the worker
        that is ahead take the last agents, so the workers finish together."""
        queue = self._queue
        n = self._batch_size()
        return [queue.popleft() for _ in range(n)]

    def _batch_size(self) -> int:
        # a quarter of a fair share: a worker holds two batches, and the second one
        # must not be stuck behind an expensive agent in the first for long
        queue = self._queue
        sharers = len(self._slots) + self._local
        return min(len(queue), max(1, -(-len(queue) // (4 * sharers))))

    def _top_up(self, w: _Worker) -> None:
        """Keep ``w`` two batches ahead (so it never waits for the parent while work
        is left), or tell it that none is left. A batch goes ahead of need only when
        its message is small (:data:`_AHEAD_BYTES`): the worker reads it only once it
        runs dry, and a big one could fill the pipe while the worker writes its
        effects into the other direction, each waiting for the other."""
        queue = self._queue
        while not w.last and w.out < 2:
            with self._lock:  # the engine's process may be taking work on a thread
                if w.out and queue:
                    n = self._batch_size()
                    if _message_bytes(queue[i] for i in range(n)) > _AHEAD_BYTES:
                        return  # sent when this batch is done and the worker waits
                batch = self._take()
                w.last = not queue
            if batch and w.done == len(w.share):  # an idle worker's next agent starts now
                w.begun = time.monotonic()
            w.share.extend(batch)
            w.out += 1 if batch else 0
            with w.lock:  # tool answers go out on threads, through the same pipe
                w.conn.send(("more", [batch] if batch else [], w.last))

    def _dispatch(self, w: _Worker, delta: Delta, first: list[Activation]) -> None:
        """Start ``w``'s cycle: ``delta`` to apply, then ``first`` (if any) and, while
        work is queued, a batch of it, so that it never waits for the parent between
        two batches."""
        batches = [first] if first else []
        if self._queue:
            batches.append(self._take())
        w.share = [a for b in batches for a in b]
        w.last = not self._queue
        w.out = len(batches)
        w.conn.send(("cycle", delta, batches, w.last))

    def run_cycle(
        self, cycle: int, delta: Delta, activations: Sequence[Activation]
    ) -> list[AgentEffect]:
        assert self._tools is not None and (self._slots or self._local), "start() first"
        # Work is handed out as the workers ask for it, not split up front: agents of
        # unequal cost, or a worker slowed by other work on the machine, no longer
        # leave one worker idle while the other runs its fixed share. Which worker
        # runs an agent never changes the result (effects are merged by position).
        # A cycle of cheap agents is split up front, as it used to be (one message each
        # way per worker): asking costs a round trip per batch, more than such agents.
        began = now = time.monotonic()
        sharers = len(self._slots) + self._local
        mine: Sequence[Activation] = ()  # the engine's process's share of a cheap cycle
        if self._ask:
            self._queue = queue = deque(activations)
            firsts = [self._take() if queue else [] for _ in self._slots]
        else:
            self._queue = queue = deque()
            firsts = [list(activations[i::sharers]) for i in range(len(self._slots))]
            mine = activations[len(self._slots)::sharers] if self._local else ()
        for i, first in enumerate(firsts):
            w = self._slots[i]
            fresh = w.dead
            if fresh:  # killed at the job's deadline: its replica is gone
                w = self._replace(i)
            w.assign([], now)
            # every replica needs every delta; a fresh one is already current
            self._dispatch(w, [] if fresh else delta, first)
        effects: list[AgentEffect] = []
        busy = set(range(len(self._slots)))
        if not self._local:
            return self._collect(effects, busy, began)
        if queue and busy:  # a thread runs this process's share while this one answers
            share = _Share(self)
            try:
                self._collect(effects, busy, began)
            except BaseException:
                share.halt()  # it stops after the agent it runs; nobody waits for it
                raise
            effects.extend(share.join())
            return effects
        effects.extend(self._run_here(mine))  # a cheap cycle's share, or every agent
        return self._collect(effects, busy, began)

    def _run_here(self, activations: Sequence[Activation]) -> list[AgentEffect]:
        """Run ``activations`` and then what is left in the queue, in this process,
        against the store itself (a job without deadlines, whose agents call no tools)."""
        assert self._store is not None and self._tools is not None
        view, agents, tools = self._store.as_view(), self._agents, self._tools
        began = time.thread_time()
        try:
            effects = [run_agent(agents[a.position], a, view, tools, None)
                       for a in activations]
            while self._queue:
                with self._lock:
                    batch = self._take()
                effects.extend(run_agent(agents[a.position], a, view, tools, None)
                               for a in batch)
            return effects
        finally:
            self.local_cpu += time.thread_time() - began

    def _collect(self, effects: list[AgentEffect], busy: set[int],
                 began: float) -> list[AgentEffect]:
        """Take the workers' messages until the ``busy`` ones are done (answer their
        calls, top them up, watch their deadlines) and return ``effects`` with theirs."""
        queue = self._queue
        timeout, deadline = self._timeout, self._deadline
        while busy:
            wake = deadline
            if timeout is not None:
                for i in busy:
                    w = self._slots[i]
                    if 0 <= w.done < len(w.share):
                        end = w.begun + timeout
                        wake = end if wake is None else min(wake, end)
            by_conn = {self._slots[i].conn: i for i in busy}
            ready = wait(list(by_conn), None if wake is None
                         else max(wake - time.monotonic(), 0.0))
            for conn in ready:
                i = by_conn[conn]  # type: ignore[index]
                self._handle(self._slots[i], effects, busy, i)
            if wake is None or time.monotonic() < wake:
                continue
            # a deadline passed: first take what each busy worker has already sent
            for i in sorted(busy):
                w = self._slots[i]
                while i in busy and w.conn.poll(0):
                    self._handle(w, effects, busy, i)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                for i in sorted(busy):
                    w = self._slots[i]
                    k = max(w.done, 0)
                    calls = w.calls_of(k)
                    w.kill()
                    effects.extend(cut_at_deadline(a.position) for a in w.share[k + 1:])
                    if k < len(w.share):
                        effects.append(cut_at_deadline(w.share[k].position, calls))
                effects.extend(cut_at_deadline(a.position) for a in queue)  # never sent
                queue.clear()
                return effects
            if timeout is None:
                continue
            for i in sorted(busy):
                w = self._slots[i]
                if not (0 <= w.done < len(w.share)) or now - w.begun < timeout:
                    continue
                k = w.done
                effects.append(timed_out(w.share[k].position, timeout, w.calls_of(k)))
                w.kill()
                rest = w.share[k + 1:]
                spare = self._replace(i)
                spare.assign([], time.monotonic())
                self._dispatch(spare, [], rest)
        self._ask = time.monotonic() - began >= self._ask_after
        return effects

    def take_share(self) -> list[Activation]:
        """The next batch for the engine's process, from its thread (empty: none left)."""
        with self._lock:
            return self._take() if self._queue else []

    def close(self) -> None:
        """Stop the workers: idle ones exit at once, the rest are killed after
        :data:`_CLOSE_GRACE` seconds (an interrupted cycle's agents are never waited for)."""
        live = [w for w in self._slots if not w.dead]
        for w in live:
            with contextlib.suppress(OSError):  # a worker that already died
                w.conn.send(("stop",))
        ends = time.monotonic() + _CLOSE_GRACE
        for w in live:
            with contextlib.suppress(EOFError, OSError):
                while w.conn.poll(max(ends - time.monotonic(), 0.0)):
                    message = w.conn.recv()  # (an interrupted cycle's messages first)
                    if message[0] == "bye":
                        self.worker_cpu.append(message[1])
                        break
            w.proc.join(timeout=max(ends - time.monotonic(), 0.0))
            if w.proc.is_alive():
                w.kill()
            else:
                w.conn.close()
        self._slots = []
        self._store = None


class _Share:
    """The engine's process's share of a cycle whose work is asked for, run on a
    thread while the main thread answers the workers: it takes batches from the queue
    as a worker does (two held at a time, so that the last ones are split as evenly),
    runs them against the store itself, and ends when the queue is empty."""

    def __init__(self, executor: ProcessExecutor) -> None:
        self._executor = executor
        self._effects: list[AgentEffect] = []
        self._failed: list[BaseException] = []
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="converge-processes-share")
        self._thread.start()

    def _run(self) -> None:
        ex = self._executor
        assert ex._store is not None and ex._tools is not None
        view, agents, tools = ex._store.as_view(), ex._agents, ex._tools
        began = time.thread_time()
        held: deque[list[Activation]] = deque()
        try:
            while not self._halt.is_set():
                while len(held) < 2 and (batch := ex.take_share()):
                    held.append(batch)
                if not held:
                    return
                for a in held.popleft():
                    if self._halt.is_set():
                        return
                    self._effects.append(run_agent(agents[a.position], a, view, tools, None))
        except BaseException as exc:  # handed to the engine's thread by join
            self._failed.append(exc)
        finally:
            ex.local_cpu += time.thread_time() - began

    def halt(self) -> None:
        """Stop taking work (the cycle is left by an exception)."""
        self._halt.set()

    def join(self) -> list[AgentEffect]:
        """The share's effects, once its thread ended."""
        self._thread.join()
        if self._failed:
            raise self._failed[0]
        return self._effects
