"""The ``processes`` executor: long-lived worker processes, each with a replica.

For CPU-bound agents, which threads cannot run in parallel. At ``start`` the workers
are forked (POSIX ``fork``: they inherit the compiled agents and a replica of the
context without pickling either); each cycle, every worker receives the merge's
:data:`~converge_rules.engine.effects.Delta` (applied to its replica with the store's
own code, so ids agree) and its share of the activations, and returns their effects.
Tool calls are answered by the parent's :class:`~converge_rules.engine.tools.ToolBox`
over the pipe, so memo and ``max_tool_calls`` stay job-wide. ``agent_timeout`` is
measured in the worker and an overrunning effect discarded after the fact.

Fork after threads is unsafe: the engine starts this executor before any thread pool
of its own; do not combine it with threads you started yourself.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from converge_rules.engine.effects import Activation, AgentEffect, Delta
from converge_rules.engine.executors import run_agent
from converge_rules.engine.factstore import FactStore
from converge_rules.engine.tools import ToolBox, ToolBudgetExhausted
from converge_rules.errors import ConvergeError
from converge_rules.program import AgentSpec, View

Inherited = tuple[FactStore, Sequence[AgentSpec], float | None]
"""What a forked worker inherits: (replica, agents, agent_timeout). Handed to the
worker as the Process's argument: with the fork start method it is inherited as it is,
never pickled, and no module-level variable is shared by jobs running in threads."""

MAX_WORKERS_PER_CORE = 4
"""The processes executor forks at most this many workers per core (found: 400 forks
on 2 cores were accepted)."""


class _RemoteTools(ToolBox):
    """A worker's tool box: every call is answered by the parent's."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(None, None)
        self._conn = conn

    def call(self, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        self._conn.send(("call", tool, args))
        kind, result, error = self._conn.recv()
        if kind == "refused":
            raise ToolBudgetExhausted(error)
        return result, error


def _worker(conn: Connection, inherited: Inherited) -> None:
    replica, agents, timeout = inherited
    tools = _RemoteTools(conn)
    view = replica.as_view()
    while True:
        message = conn.recv()
        if message[0] == "stop":
            return
        _, delta, activations = message
        try:
            replica.apply(delta)
            effects = [run_agent(agents[a.position], a, view, tools, timeout)
                       for a in activations]
        except MemoryError:  # the parent stops the job: budget `memory`
            conn.send(("memory", "a worker process of the processes executor ran out of "
                       "memory (MemoryError)"))
            return
        except Exception as exc:  # the replica is out of step: the job cannot go on
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
            return
        conn.send(("effects", effects))
        gc.collect(1)  # as in the parent: young generations once a cycle, never the replica


class ProcessExecutor:
    """Runs agents in ``workers`` forked processes (default: the CPU count)."""

    wants_delta = True

    def __init__(self, workers: int | None = None) -> None:
        cores = os.cpu_count() or 1
        if workers is not None and not 1 <= workers <= MAX_WORKERS_PER_CORE * cores:
            raise ConvergeError(
                f"the processes executor forks one worker per --workers: {workers} is "
                f"outside 1..{MAX_WORKERS_PER_CORE * cores} ({MAX_WORKERS_PER_CORE} per "
                f"core on this machine's {cores}); more CPU-bound workers than cores only "
                f"add memory and switching — leave --workers out to use one per core")
        self._workers = max(1, workers or cores)
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._tools: ToolBox | None = None

    def start(
        self, view: View, agents: Sequence[AgentSpec], *, tools: ToolBox,
        agent_timeout: float | None,
    ) -> None:
        if "fork" not in multiprocessing.get_all_start_methods():
            raise ConvergeError("the processes executor needs the POSIX fork start method; "
                                "use --executor threads or serial on this platform")
        if not isinstance(view, FactStore):
            raise ConvergeError("the processes executor runs on the engine's fact store")
        context = multiprocessing.get_context("fork")
        self._tools = tools
        inherited: Inherited = (view.replicate(), agents, agent_timeout)
        for _ in range(self._workers):
            parent, child = context.Pipe()
            proc = context.Process(target=_worker, args=(child, inherited), daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)

    def run_cycle(
        self, cycle: int, delta: Delta, activations: Sequence[Activation]
    ) -> list[AgentEffect]:
        tools = self._tools
        assert tools is not None and self._conns, "start() first"
        shares: list[list[Activation]] = [[] for _ in self._conns]
        for i, act in enumerate(activations):
            shares[i % len(shares)].append(act)
        for conn, share in zip(self._conns, shares, strict=True):
            conn.send(("cycle", delta, share))  # every replica needs every delta
        effects: list[AgentEffect] = []
        pending = set(range(len(self._conns)))
        while pending:
            for ready in wait([self._conns[i] for i in sorted(pending)]):
                conn = self._conns[self._conns.index(ready)]  # type: ignore[arg-type]
                try:
                    message = conn.recv()
                except EOFError:
                    raise ConvergeError("a worker process of the processes executor "
                                        "died") from None
                kind = message[0]
                if kind == "call":
                    try:
                        result, error = tools.call(message[1], message[2])
                        conn.send(("answer", result, error))
                    except ToolBudgetExhausted as exc:
                        conn.send(("refused", None, str(exc)))
                elif kind == "effects":
                    effects.extend(message[1])
                    pending.discard(self._conns.index(conn))
                elif kind == "memory":
                    raise MemoryError(message[1])
                else:
                    raise ConvergeError(f"a worker process failed: {message[1]}")
        return effects

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):  # a worker that already died
                conn.send(("stop",))
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []
