"""The ``ray`` executor: replica actors on a Ray cluster run the compute phase.

At ``start`` the driver (the process running the job) ships, once per job:

* a replica of the live context (:meth:`FactStore.replicate`: the arena, the live
  sets and the indexes, no provenance), put once in Ray's object store;
* the agents: each compiled agent as its generated Python source plus the names that
  source refers to (the compiler's runtime helpers and constants; the functions of
  plugins, pickled by reference), compiled again on the actor — the compiler is
  deterministic, so the actor runs the very code the driver would; an agent that is
  not generated code (a hand-written ``AgentSpec``) is pickled as it is;
* the tool functions the agents call (pickled by reference when importable, else by
  value).

It starts ``workers`` replica actors (default: one per CPU of the cluster), spread over
the nodes. Each cycle it puts the merge's
:data:`~converge_rules.engine.effects.Delta` in the object store once; every actor
applies it to its replica with the store's own code (so ids agree) and runs its share
of the activations (round-robin, in merge order), and the driver gathers the effects.
The context itself never travels again.

Tool calls run on the actor whose agent makes them, so they spread over the cluster
with the agents. The job-wide memo and ``max_tool_calls`` stay exact: every call first
asks one ledger actor, which answers a memoised call at once, makes an identical call
made elsewhere wait for the first one's answer, and counts (or refuses) a new call
before it is made; the answer is handed back to the ledger. So the number of real
calls and every recorded answer are those of ``serial``, as with ``threads`` and
``processes``. After each cycle the driver copies the ledger's count into the job's
:class:`~converge_rules.engine.tools.ToolBox` (``budget.tool_calls``, the
``max_tool_calls`` stop). The ledger starts from the tool box: a resumed job's recorded
answers (counted at their first call, as the tool box counts them) and, restored from a
checkpoint, its memo and count — so a resumed job on Ray asks no tool again for an
answer it paid for, as on the other executors.

``agent_timeout`` is measured on the actor and an overrunning effect discarded after
the fact, as ``serial`` and ``processes`` do.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import logging
import math
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import FunctionType
from typing import Any, cast

import ray
from ray import cloudpickle
from ray.exceptions import GetTimeoutError, RayError

from converge_rules.engine.effects import Activation, AgentEffect, Delta
from converge_rules.engine.executors import (
    cut_at_deadline,
    run_agent,
    timed_out,
)
from converge_rules.engine.factstore import FactStore
from converge_rules.engine.tools import ToolBox, ToolBudgetExhausted, ToolFn, canonical_args
from converge_rules.errors import ConvergeError, ExecutorError, ToolError
from converge_rules.program import AgentFn, AgentSpec, View

ENV_ADDRESS = "CONVERGE_RAY_ADDRESS"
"""The cluster every job joins when no ``address`` option is given (``auto`` or
``HOST:PORT``); unset: a local Ray is started for the job."""

OPTIONS = {
    "address": "auto (the cluster this machine belongs to) or HOST:PORT of a head node",
    "local-cpus": "CPUs of the local Ray started for the job (default: all)",
}

READY_TIMEOUT = 120.0
"""Seconds the replica actors have to start (a busy cluster, a node lacking the
packages): past it the job fails with a message, never hangs."""

CONNECT_TIMEOUT = 5.0
"""Seconds to reach ``HOST:PORT`` before asking Ray to join it (Ray itself retries an
unreachable address for minutes)."""

INLINE_DELTA = 1_000
"""A delta of at most this many changes (some 100 kB pickled) is sent inside each
actor's call; a larger one is put in the object store once."""

MAX_ACTORS_PER_CPU = 4
"""Each actor holds a whole replica: more than this many per CPU only costs memory."""

_GENERATED = "converge_rules.compiler.generated"  # the __name__ generated agents run in


# ------------------------------------------------------------------ shipping agents


@dataclass(frozen=True, slots=True)
class ShippedAgent:
    """An agent as it travels to the actors. For generated code: the spec without its
    function, the source, the names the source refers to and the function's name and
    pseudo file name; otherwise (``namespace`` None) the spec as it is."""

    spec: AgentSpec
    namespace: dict[str, Any] | None = None
    function: str = ""
    qualname: str = ""
    filename: str = ""


def ship_agent(spec: AgentSpec) -> ShippedAgent:
    """What is sent to the actors for ``spec`` (see :class:`ShippedAgent`)."""
    fn = spec.fn
    glob = getattr(fn, "__globals__", None)
    if not (isinstance(fn, FunctionType) and glob is not None and spec.source
            and glob.get("__name__") == _GENERATED):
        return ShippedAgent(spec)
    # the names the compiler bound (runtime helpers, constants, plugin functions);
    # what the source itself defines is defined again by compiling it on the actor
    namespace = {
        k: v for k, v in glob.items()
        if k != "__builtins__" and not (isinstance(v, FunctionType) and v.__globals__ is glob)
    }
    return ShippedAgent(replace(spec, fn=cast(AgentFn, None)), namespace, fn.__name__,
                        fn.__qualname__, fn.__code__.co_filename)


def land_agent(shipped: ShippedAgent) -> AgentSpec:
    """The runnable agent on an actor: generated source compiled again, as the
    compiler's loader does (same code, same namespace, same file name)."""
    if shipped.namespace is None:
        return shipped.spec
    code = compile(shipped.spec.source, shipped.filename, "exec")
    glob = dict(shipped.namespace)
    glob["__builtins__"] = builtins
    exec(code, glob)
    fn = glob[shipped.function]
    fn.__qualname__ = shipped.qualname
    return replace(shipped.spec, fn=fn)


class _NotShipped:
    """Stands for a tool no agent declares and that cannot be pickled."""

    def __init__(self, name: str, why: str) -> None:
        self.name, self.why = name, why

    def __call__(self, args: dict[str, Any]) -> dict[str, Any]:
        raise ToolError(f"tool {self.name!r} was not shipped to the Ray workers: {self.why}")


def shippable_tools(functions: Mapping[str, ToolFn],
                    used: set[str]) -> dict[str, ToolFn | _NotShipped]:
    """The tools to send to the actors. A tool an agent declares that cannot be pickled
    is a :class:`ConvergeError` naming it; any other such tool is replaced by a stand-in
    (keeping every name, so an unknown tool's error lists the same tools as serial)."""
    shipped: dict[str, ToolFn | _NotShipped] = {}
    for name, fn in functions.items():
        try:
            cloudpickle.dumps(fn)  # type: ignore[no-untyped-call]
        except Exception as exc:  # cloudpickle raises many kinds
            why = f"{type(exc).__name__}: {exc}"
            if name in used:
                raise ConvergeError(
                    f"the ray executor cannot ship tool {name!r} to its workers ({why}); "
                    "a tool must be picklable: a module-level function (of a package "
                    "installed on every node) or an object holding only picklable state"
                ) from None
            shipped[name] = _NotShipped(name, why)
        else:
            shipped[name] = fn
    return shipped


# ------------------------------------------------------------------------ actors


Tag = tuple[int, int]
"""(cycle, merge position): which activation a tool call belongs to."""


@ray.remote
class _Ledger:
    """The job-wide tool memo and ``max_tool_calls`` (one async actor, so one event
    loop: no locks). Keys are ToolBox's: tool name, NUL, canonical JSON arguments.

    With ``track`` (the job has a deadline or ``agent_timeout``) it also keeps each
    activation's calls, so that an agent cut at its deadline on an actor that is then
    killed is recorded with the calls it made, as ``AgentRuntime.close`` records them."""

    def __init__(self, max_calls: int | None, track: bool,
                 memo: dict[str, tuple[Any, Any]] | None = None,
                 recorded: dict[str, tuple[Any, Any]] | None = None,
                 used: int = 0) -> None:
        self._max = max_calls
        # the job's tool box as it is when the executor starts: what it memoised (a
        # job restored from a checkpoint: the answers of its committed cycles) and
        # the answers a resumed job recorded, paid for already — never asked again
        self._memo: dict[str, tuple[Any, Any]] = dict(memo or {})
        self._recorded: dict[str, tuple[Any, Any]] = dict(recorded or {})
        self._inflight: dict[str, Any] = {}
        self._owner: dict[str, Tag] = {}
        self._used = used
        self._exhausted = False
        self._track = track
        self._calls: dict[Tag, list[tuple[Any, ...]]] = {}
        self._pending: dict[Tag, tuple[str, dict[str, Any], str]] = {}

    async def reserve(self, key: str, tool: str, args: dict[str, Any],
                      tag: Tag) -> tuple[str, Any]:
        """``("done", outcome)`` for a memoised call (waiting for an identical call in
        flight), ``("refused", reason)`` when the budget is spent, else ``("go",
        None)``: the caller makes the call (counted now) and must :meth:`finish` it."""
        import asyncio

        while True:
            done = self._memo.get(key)
            if done is not None:
                self._record(tag, (tool, args, *done))
                return "done", done
            event = self._inflight.get(key)
            if event is None:
                break
            if self._track:
                self._pending[tag] = (tool, args, key)
            await event.wait()
        if self._max is not None and self._used >= self._max:
            self._exhausted = True
            # ToolBox's words: the trace must not tell the executors apart
            reason = f"max_tool_calls ({self._max}) is spent; call to {tool!r} refused"
            self._record(tag, (tool, args, None, reason))
            return "refused", reason
        self._used += 1
        answer = self._recorded.pop(key, None)
        if answer is not None:  # counted as the call it was, answered from the record
            self._memo[key] = answer
            self._record(tag, (tool, args, *answer))
            return "done", answer
        self._inflight[key] = asyncio.Event()
        if self._track:
            self._owner[key] = tag
            self._pending[tag] = (tool, args, key)
        return "go", None

    async def finish(self, key: str, tool: str, args: dict[str, Any], tag: Tag,
                     outcome: tuple[Any, Any]) -> None:
        self._memo[key] = outcome
        self._owner.pop(key, None)
        self._record(tag, (tool, args, *outcome))
        event = self._inflight.pop(key, None)
        if event is not None:
            event.set()

    def _record(self, tag: Tag, record: tuple[Any, ...]) -> None:
        if self._track:
            self._pending.pop(tag, None)
            self._calls.setdefault(tag, []).append(record)

    async def abandon(self, tag: Tag) -> tuple[tuple[Any, ...], ...]:
        """The calls to record for an activation cut at its deadline (the one still
        running recorded as abandoned, the budget having counted it). A call it left in
        flight is released: an identical call waiting for it is made again."""
        from converge_rules.engine.tools import ABANDONED

        calls = list(self._calls.pop(tag, ()))
        pending = self._pending.pop(tag, None)
        if pending is not None:
            tool, args, _ = pending
            calls.append((tool, args, None, ABANDONED))
        for key in [k for k, owner in self._owner.items() if owner == tag]:
            del self._owner[key]
            event = self._inflight.pop(key, None)
            if event is not None:
                event.set()
        return tuple(calls)

    async def spent(self) -> tuple[int, bool]:
        """The calls counted so far and whether a call was refused; forgets the calls
        recorded per activation (the cycle is over)."""
        self._calls.clear()
        self._pending.clear()
        return self._used, self._exhausted


class ClusterTools(ToolBox):
    """An actor's tool box: calls run here, the memo and the budget are the ledger's.
    ``tag`` is the activation running now (set by the actor before each run)."""

    def __init__(self, functions: Mapping[str, Any], ledger: Any) -> None:
        super().__init__(functions, None)
        self._ledger = ledger
        self.tag: Tag = (0, 0)

    def call(self, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        key = tool + "\x00" + canonical_args(args)
        tag = self.tag
        verdict, payload = ray.get(self._ledger.reserve.remote(key, tool, args, tag))
        if verdict == "done":
            result, error = payload
            return result, error
        if verdict == "refused":
            raise ToolBudgetExhausted(payload)
        outcome: tuple[dict[str, Any] | None, str | None] = (None, "internal error")
        try:
            outcome = self._invoke(tool, args)
        finally:
            ray.get(self._ledger.finish.remote(key, tool, args, tag, outcome))
        return outcome


@ray.remote
class _Replica:
    """One replica of the context and the job's agents."""

    def __init__(self, replica: FactStore, agents: list[ShippedAgent],
                 tools: dict[str, Any], ledger: Any, agent_timeout: float | None) -> None:
        # as in the driver: the collector never traverses the long-lived arena; young
        # generations are swept once a cycle
        gc.disable()
        self._store = replica
        self._view = replica.as_view()
        self._agents = [land_agent(a) for a in agents]
        self._tools = ClusterTools(tools, ledger)
        self._timeout = agent_timeout

    def ready(self) -> tuple[str, Any]:
        return "effects", []

    def run(self, cycle: int, delta: Delta, activations: list[Activation]) -> tuple[str, Any]:
        """Apply the cycle's delta, then run these activations, in order."""
        effects = []
        try:
            self._store.apply(delta)
            for a in activations:
                self._tools.tag = (cycle, a.position)
                effects.append(run_agent(self._agents[a.position], a, self._view,
                                         self._tools, self._timeout))
        except MemoryError:
            return "memory", ("a replica actor of the ray executor ran out of memory "
                              "(MemoryError)")
        finally:
            gc.collect(1)
        return "effects", effects


# ---------------------------------------------------------------------- executor


def parse_options(options: Mapping[str, str]) -> tuple[str | None, int | None]:
    """``(address, local_cpus)`` from the ``--executor-option`` pairs; an unknown key or
    a bad value is a :class:`ConvergeError` saying what is accepted."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in OPTIONS.items())
        raise ConvergeError(f"the ray executor has no option {unknown[0]!r}; its options "
                            f"(--executor-option KEY=VALUE) are {known}")
    address = options.get("address")
    if address is not None:  # an empty one too: `address=$HEAD` with HEAD unset
        check_address(address)
    cpus: int | None = None
    if "local-cpus" in options:
        text = options["local-cpus"]
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise ConvergeError(f"--executor-option local-cpus={text}: give a whole number "
                                "of CPUs, at least 1")
        if address is not None:
            raise ConvergeError("--executor-option local-cpus sizes a local Ray started "
                                "for the job; with address= the cluster decides")
        cpus = int(text)
    return address, cpus


def check_address(address: str) -> None:
    """``auto`` or ``HOST:PORT``; anything else is a :class:`ConvergeError`."""
    if address == "auto":
        return
    host, sep, port = address.rpartition(":")
    if (not sep or not host or not (port.isascii() and port.isdigit())
            or not 0 < int(port) < 65536):
        raise ConvergeError(f"ray address {address!r}: give auto (the cluster this machine "
                            "belongs to, started with `ray start`) or HOST:PORT of the "
                            "head node (e.g. 10.0.0.5:6379)")


class RayExecutor:
    """Runs the compute phase on ``workers`` replica actors (see the module docstring).

    ``address``: None starts a local Ray for the job on 127.0.0.1 (``local_cpus`` CPUs,
    default all) and stops it at ``close``; ``auto`` or ``HOST:PORT`` joins that
    cluster (and leaves it at ``close``). When Ray is already initialised in this
    process (a notebook, a test session), the executor uses that connection and leaves
    it open."""

    wants_delta = True

    def __init__(self, workers: int | None = None, *, address: str | None = None,
                 local_cpus: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ConvergeError(f"the ray executor takes at least 1 worker, not {workers}")
        if address is not None:
            check_address(address)
        self._workers = workers
        self._address = address
        self._local_cpus = local_cpus
        self._owns_ray = False
        self._actors: list[Any] = []
        self._ledger: Any = None
        self._tools: ToolBox | None = None
        self._store: FactStore | None = None
        self._calls_tools = False
        self._share = 1.0
        self._shipped: tuple[Any, Any] = (None, None)
        self._timeout: float | None = None
        self._deadline: float | None = None

    @classmethod
    def from_options(cls, workers: int | None, options: Mapping[str, str]) -> RayExecutor:
        """The executor ``converge run --executor ray --executor-option K=V`` builds;
        without ``address`` the environment's ``CONVERGE_RAY_ADDRESS``, if set."""
        address, cpus = parse_options(options)
        if address is None and cpus is None:
            address = os.environ.get(ENV_ADDRESS) or None
            if address is not None:
                check_address(address)
        return cls(workers, address=address, local_cpus=cpus)

    # ------------------------------------------------------------ the protocol

    def start(self, view: View, agents: Sequence[AgentSpec], *, tools: ToolBox,
              agent_timeout: float | None, deadline: float | None = None) -> None:
        """Connect (or start a local Ray), ship the job and start the replica actors.
        ``deadline`` is the job's, a ``time.monotonic()`` value of this process."""
        if not isinstance(view, FactStore):
            raise ConvergeError("the ray executor runs on the engine's fact store")
        self._connect()
        try:
            self._start(view, agents, tools, agent_timeout, deadline)
        except BaseException:
            # the engine closes only an executor that started: stop what did start (the
            # local Ray started for the job, the actors placed so far)
            self.close()
            raise

    def _start(self, view: FactStore, agents: Sequence[AgentSpec], tools: ToolBox,
               agent_timeout: float | None, deadline: float | None) -> None:
        cpus = float(ray.cluster_resources().get("CPU", 0.0))  # type: ignore[no-untyped-call]
        if cpus <= 0:
            raise ConvergeError("the Ray cluster has no CPUs to run replica actors on")
        workers = self._workers or max(1, int(cpus))
        if workers > MAX_ACTORS_PER_CPU * cpus:
            raise ConvergeError(
                f"the ray executor starts one replica actor per --workers: {workers} is more "
                f"than {MAX_ACTORS_PER_CPU} per CPU of the cluster ({cpus:g} CPUs); each "
                "holds a whole replica of the context — leave --workers out for one per CPU")
        # a share of a CPU each, rounded down so that all of them fit at once (an actor
        # that cannot be placed would wait forever)
        self._share = min(1.0, math.floor(cpus / workers * 1e4) / 1e4)
        used = {t for a in agents for t in a.tools}
        self._store, self._tools = view, tools
        self._calls_tools = bool(used)
        self._timeout, self._deadline = agent_timeout, deadline
        timed = agent_timeout is not None or deadline is not None
        try:
            self._shipped = (ray.put(shippable_tools(tools.functions, used)),
                             ray.put([ship_agent(a) for a in agents]))
            replica = ray.put(view.replicate())
        except ConvergeError:
            raise
        except Exception as exc:  # pickling: a plugin function that cannot travel
            raise ConvergeError(f"the ray executor cannot ship the job to its workers: "
                                f"{type(exc).__name__}: {exc}") from None
        memo, recorded = tools.answers()
        self._ledger = _Ledger.options(num_cpus=0).remote(  # type: ignore[attr-defined]
            tools.max_calls, timed, memo, recorded, tools.used)
        self._actors = [self._new_actor(replica) for _ in range(workers)]
        try:
            ray.get([a.ready.remote() for a in self._actors], timeout=READY_TIMEOUT)
        except GetTimeoutError:
            raise ConvergeError(
                f"the Ray cluster did not start {workers} replica actors within "
                f"{READY_TIMEOUT:g}s; is it busy, or short of memory?") from None
        except RayError as exc:
            raise ConvergeError(
                f"the ray executor's replica actors could not start: {_reason(exc)}; every "
                "node needs the same Python, converge-rules, converge-ray and the plugins "
                "the ruleset uses (see docs/ray.md)") from None

    def run_cycle(self, cycle: int, delta: Delta,
                  activations: Sequence[Activation]) -> list[AgentEffect]:
        actors, tools = self._actors, self._tools
        assert actors and tools is not None, "start() first"
        shares: list[list[Activation]] = [[] for _ in actors]
        for i, act in enumerate(activations):
            shares[i % len(shares)].append(act)
        # a large delta goes once into the object store, fetched by every actor; a small
        # one travels inside each call (a put costs more than it saves: a round trip)
        delta_ref = ray.put(delta) if len(delta) > INLINE_DELTA else delta
        try:
            if self._timeout is None and self._deadline is None:
                effects = self._gather(cycle, delta_ref, shares)
            else:
                effects = _TimedCycle(self, cycle, delta_ref, shares).run()
        except RayError as exc:
            raise ExecutorError(f"the ray executor lost cycle {cycle}: {_reason(exc)}; the "
                                "job cannot go on without that replica") from None
        if self._calls_tools:
            used, exhausted = ray.get(self._ledger.spent.remote())
            tools.used = used
            tools.exhausted = tools.exhausted or exhausted
        return effects

    def _gather(self, cycle: int, delta_ref: Any,
                shares: list[list[Activation]]) -> list[AgentEffect]:
        """One call per actor: its delta and its whole share (no deadline to keep)."""
        # every replica needs every delta, even with no activation this cycle
        refs = [actor.run.remote(cycle, delta_ref, share)
                for actor, share in zip(self._actors, shares, strict=True)]
        effects: list[AgentEffect] = []
        for answer in ray.get(refs):
            effects.extend(_effects(answer))
        return effects

    def _new_actor(self, replica: Any) -> Any:
        tools_ref, agents_ref = self._shipped
        return _Replica.options(  # type: ignore[attr-defined]
            num_cpus=self._share, scheduling_strategy="SPREAD"
        ).remote(replica, agents_ref, tools_ref, self._ledger, self._timeout)

    def replace_actor(self, index: int) -> Any:
        """Kill actor ``index`` (stuck in an agent past its deadline) and start another
        in its place, on a replica of the context as it is now (this cycle's delta
        included); returns it. Its ``ready`` is the caller's to wait for."""
        with contextlib.suppress(Exception):
            ray.kill(self._actors[index])
        assert self._store is not None
        actor = self._new_actor(ray.put(self._store.replicate()))
        self._actors[index] = actor
        return actor

    def close(self) -> None:
        try:
            for actor in self._actors:
                with contextlib.suppress(Exception):  # an actor that already died
                    ray.kill(actor)
            if self._ledger is not None:
                with contextlib.suppress(Exception):
                    ray.kill(self._ledger)
        finally:
            self._actors, self._ledger = [], None
            if self._owns_ray:
                self._owns_ray = False
                ray.shutdown()

    # ---------------------------------------------------------------- helpers

    def _connect(self) -> None:
        """Join the cluster this executor was given, or start a local Ray."""
        if ray.is_initialized():
            return  # the caller's connection: theirs to close
        quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False,
                                 "include_dashboard": False}
        address = self._address
        # ray.init makes SIGTERM a SystemExit (sys.exit(15)) in the middle of a cycle:
        # the job's own handler (`converge run`: stop after the cycle) is put back
        main = threading.current_thread() is threading.main_thread()
        sigterm = signal.getsignal(signal.SIGTERM) if main else None
        try:
            if address is None:
                ray.init(address="local", num_cpus=self._local_cpus,
                         _node_ip_address="127.0.0.1", **quiet)
            else:
                if address != "auto":
                    _reachable(address)
                    _answers_as_ray(address)
                ray.init(address=address, **quiet)
        except ConvergeError:
            raise
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError…
            where = "start a local Ray" if address is None else f"join the Ray cluster at {address}"
            hint = ("" if address is None else "; is a head node running there (`ray start "
                    "--head`)? or leave the address out to start a local Ray for the job")
            raise ConvergeError(f"the ray executor could not {where}: "
                                f"{type(exc).__name__}: {exc}{hint}") from None
        finally:
            if sigterm is not None and signal.getsignal(signal.SIGTERM) is not sigterm:
                signal.signal(signal.SIGTERM, sigterm)
        self._owns_ray = True


def _effects(answer: tuple[str, Any]) -> list[AgentEffect]:
    kind, payload = answer
    if kind == "memory":
        raise MemoryError(payload)
    return list(payload)


@dataclass(slots=True)
class _Item:
    position: int | None  # None: a call that runs no agent (the delta alone, ready)
    ref: Any


class _TimedCycle:
    """A cycle with deadlines: one call per activation, queued in order on its actor
    (an actor runs its calls one after another), so the driver knows which agent each
    actor runs and since when (since the call before it answered). An agent still
    running ``agent_timeout`` after it started is cut: its effect is
    ``timed_out`` with the calls the ledger saw it make, and its actor is killed and
    replaced (a fresh replica), its queue moved to the new one. At the job's deadline
    every activation not finished is cut and the cycle returns at once."""

    def __init__(self, executor: RayExecutor, cycle: int, delta_ref: Any,
                 shares: list[list[Activation]]) -> None:
        self.executor, self.cycle = executor, cycle
        self.queues: list[list[_Item]] = []
        self.pending: list[list[Activation]] = []
        now = time.monotonic()
        self.since = [now] * len(shares)
        for actor, share in zip(executor._actors, shares, strict=True):
            # the delta rides with the first activation (alone when there is none); an
            # agent's clock starts when the call before its own answers, so the first
            # one's includes applying the delta
            items = [_Item(a.position, actor.run.remote(cycle, delta_ref if j == 0 else (), [a]))
                     for j, a in enumerate(share)]
            self.queues.append(items or [_Item(None, actor.run.remote(cycle, delta_ref, []))])
            self.pending.append(list(share))
        self.effects: dict[int, AgentEffect] = {}

    def run(self) -> list[AgentEffect]:
        timeout, deadline = self.executor._timeout, self.executor._deadline
        wait: float | None = 0.0
        while any(self.queues):
            heads = [q[0].ref for q in self.queues if q]
            ready, _ = ray.wait(heads, num_returns=1, timeout=wait)
            if ready:  # and whatever else answered meanwhile, before judging any clock
                ready, _ = ray.wait(heads, num_returns=len(heads), timeout=0)
            for ref in ready:
                self._answered(ref)
            if not any(self.queues):
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                self._cut_all()
                break
            if timeout is not None:
                for i, queue in enumerate(self.queues):
                    if queue and queue[0].position is not None and (
                            now - self.since[i] >= timeout):
                        self._time_out(i, timeout)
            wake = [deadline] if deadline is not None else []
            if timeout is not None:
                wake += [self.since[i] + timeout for i, q in enumerate(self.queues)
                         if q and q[0].position is not None]
            wait = None if not wake else max(0.0, min(wake) - time.monotonic())
        return list(self.effects.values())

    def _answered(self, ref: Any) -> None:
        for i, queue in enumerate(self.queues):
            if queue and queue[0].ref == ref:
                queue.pop(0)
                for effect in _effects(ray.get(ref)):
                    self.effects[effect.position] = effect
                    self.pending[i] = [a for a in self.pending[i]
                                       if a.position != effect.position]
                self.since[i] = time.monotonic()  # the next call starts now
                return

    def _time_out(self, i: int, limit: float) -> None:
        position = self.queues[i][0].position
        assert position is not None
        calls = ray.get(self.executor._ledger.abandon.remote((self.cycle, position)))
        self.effects[position] = timed_out(position, limit, calls)
        rest = [a for a in self.pending[i] if a.position != position]
        self.pending[i] = rest
        actor = self.executor.replace_actor(i)
        # the new replica is current: the rest of the queue needs no delta; its first
        # agent's clock starts when the actor is up
        self.queues[i] = [_Item(None, actor.ready.remote())] + [
            _Item(a.position, actor.run.remote(self.cycle, (), [a])) for a in rest]

    def _cut_all(self) -> None:
        for i, queue in enumerate(self.queues):
            for act in self.pending[i]:
                calls = ray.get(self.executor._ledger.abandon.remote((self.cycle, act.position)))
                self.effects[act.position] = cut_at_deadline(act.position, calls)
            queue.clear()
            self.pending[i] = []


def _reachable(address: str) -> None:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise ConvergeError(f"the ray executor could not reach the Ray head node at {address} "
                            f"({exc.strerror or exc}); is `ray start --head` running there, "
                            "and is the port open? Leave the address out to start a local "
                            "Ray for the job") from None


def _answers_as_ray(address: str) -> None:
    """A :class:`ConvergeError` unless a Ray GCS answers at ``address`` within
    :data:`CONNECT_TIMEOUT`: ``ray.init`` retries for minutes when whatever listens
    there is not Ray (a wrong port: the dashboard's, another server)."""
    try:
        import grpc
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:  # a Ray without these modules: ray.init decides alone
        return
    try:
        with grpc.insecure_channel(address) as channel:
            gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(), timeout=CONNECT_TIMEOUT)
    except grpc.RpcError as exc:
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        # any other answer (UNAUTHENTICATED: a cluster with tokens) is a GCS speaking
        if code not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE,
                        grpc.StatusCode.UNIMPLEMENTED):
            return
        why = (f"nothing answered within {CONNECT_TIMEOUT:g}s"
               if code == grpc.StatusCode.DEADLINE_EXCEEDED
               else "it does not serve Ray's GCS")
        raise ConvergeError(f"the ray executor could not join the Ray cluster at {address}: "
                            f"something listens there, but it is not a Ray head node's GCS "
                            f"({why}); give the GCS port `ray start --head` printed (6379 "
                            "by default), not the dashboard's") from None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*")


def _reason(exc: BaseException) -> str:
    """A Ray error in one line, without the remote traceback: the error that caused it
    (an actor's exception, a module missing on a node), else the first line."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    return errors[-1] if errors else f"{type(exc).__name__}: {lines[0] if lines else ''}"
