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
``max_tool_calls`` stop).

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
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import FunctionType
from typing import Any, cast

import ray
from ray import cloudpickle
from ray.exceptions import GetTimeoutError, RayError

from converge_rules.engine.effects import Activation, AgentEffect, Delta
from converge_rules.engine.executors import run_agent
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


@ray.remote
class _Ledger:
    """The job-wide tool memo and ``max_tool_calls`` (one async actor, so one event
    loop: no locks). Keys are ToolBox's: tool name, NUL, canonical JSON arguments."""

    def __init__(self, max_calls: int | None) -> None:
        self._max = max_calls
        self._memo: dict[str, tuple[Any, Any]] = {}
        self._inflight: dict[str, Any] = {}
        self._used = 0
        self._exhausted = False

    async def reserve(self, key: str, tool: str) -> tuple[str, Any]:
        """``("done", outcome)`` for a memoised call (waiting for an identical call in
        flight), ``("refused", reason)`` when the budget is spent, else ``("go",
        None)``: the caller makes the call (counted now) and must :meth:`finish` it."""
        import asyncio

        while True:
            done = self._memo.get(key)
            if done is not None:
                return "done", done
            event = self._inflight.get(key)
            if event is None:
                break
            await event.wait()
        if self._max is not None and self._used >= self._max:
            self._exhausted = True
            # ToolBox's words: the trace must not tell the executors apart
            return "refused", f"max_tool_calls ({self._max}) is spent; call to {tool!r} refused"
        self._used += 1
        self._inflight[key] = asyncio.Event()
        return "go", None

    async def finish(self, key: str, outcome: tuple[Any, Any]) -> None:
        self._memo[key] = outcome
        event = self._inflight.pop(key, None)
        if event is not None:
            event.set()

    async def spent(self) -> tuple[int, bool]:
        return self._used, self._exhausted


class ClusterTools(ToolBox):
    """An actor's tool box: calls run here, the memo and the budget are the ledger's."""

    def __init__(self, functions: Mapping[str, Any], ledger: Any) -> None:
        super().__init__(functions, None)
        self._ledger = ledger

    def call(self, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        key = tool + "\x00" + canonical_args(args)
        verdict, payload = ray.get(self._ledger.reserve.remote(key, tool))
        if verdict == "done":
            result, error = payload
            return result, error
        if verdict == "refused":
            raise ToolBudgetExhausted(payload)
        outcome: tuple[dict[str, Any] | None, str | None] = (None, "internal error")
        try:
            outcome = self._invoke(tool, args)
        finally:
            ray.get(self._ledger.finish.remote(key, outcome))
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

    def ready(self) -> int:
        return os.getpid()

    def run(self, delta: Delta, activations: list[Activation]) -> tuple[str, Any]:
        """Apply the cycle's delta, then run this actor's share of the activations."""
        try:
            self._store.apply(delta)
            effects = [run_agent(self._agents[a.position], a, self._view, self._tools,
                                 self._timeout) for a in activations]
        except MemoryError:
            return "memory", ("a replica actor of the ray executor ran out of memory "
                              "(MemoryError)")
        finally:
            gc.collect(1)
        return "effects", effects

    def stop(self) -> None:
        self._tools.close()


# ---------------------------------------------------------------------- executor


def parse_options(options: Mapping[str, str]) -> tuple[str | None, int | None]:
    """``(address, local_cpus)`` from the ``--executor-option`` pairs; an unknown key or
    a bad value is a :class:`ConvergeError` saying what is accepted."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in OPTIONS.items())
        raise ConvergeError(f"the ray executor has no option {unknown[0]!r}; its options "
                            f"(--executor-option KEY=VALUE) are {known}")
    address = options.get("address") or None
    if address is not None:
        check_address(address)
    cpus: int | None = None
    if "local-cpus" in options:
        text = options["local-cpus"]
        if not text.isdigit() or int(text) < 1:
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
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
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
        self._calls_tools = False

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
              agent_timeout: float | None) -> None:
        if not isinstance(view, FactStore):
            raise ConvergeError("the ray executor runs on the engine's fact store")
        self._connect()
        cpus = float(ray.cluster_resources().get("CPU", 0.0))
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
        share = min(1.0, math.floor(cpus / workers * 1e4) / 1e4)
        used = {t for a in agents for t in a.tools}
        self._tools = tools
        self._calls_tools = bool(used)
        try:
            shipped_tools = ray.put(shippable_tools(tools.functions, used))
            shipped_agents = ray.put([ship_agent(a) for a in agents])
            replica = ray.put(view.replicate())
        except ConvergeError:
            raise
        except Exception as exc:  # pickling: a plugin function that cannot travel
            raise ConvergeError(f"the ray executor cannot ship the job to its workers: "
                                f"{type(exc).__name__}: {exc}") from None
        self._ledger = _Ledger.options(num_cpus=0).remote(tools.max_calls)
        self._actors = [
            _Replica.options(
                num_cpus=share, scheduling_strategy="SPREAD"
            ).remote(replica, shipped_agents, shipped_tools, self._ledger, agent_timeout)
            for _ in range(workers)
        ]
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
        delta_ref = ray.put(delta)  # once in the object store, fetched by every actor
        # every replica needs every delta, even with no activation this cycle
        refs = [actor.run.remote(delta_ref, share)
                for actor, share in zip(actors, shares, strict=True)]
        try:
            answers = ray.get(refs)
        except RayError as exc:
            raise ExecutorError(f"the ray executor lost cycle {cycle}: {_reason(exc)}; the "
                                "job cannot go on without that replica") from None
        effects: list[AgentEffect] = []
        for kind, payload in answers:
            if kind == "memory":
                raise MemoryError(payload)
            effects.extend(payload)
        if self._calls_tools:
            used, exhausted = ray.get(self._ledger.spent.remote())
            tools.used = used
            tools.exhausted = tools.exhausted or exhausted
        return effects

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
        try:
            if address is None:
                ray.init(address="local", num_cpus=self._local_cpus,
                         _node_ip_address="127.0.0.1", **quiet)
            else:
                if address != "auto":
                    _reachable(address)
                ray.init(address=address, **quiet)
        except ConvergeError:
            raise
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError…
            where = "start a local Ray" if address is None else f"join the Ray cluster at {address}"
            hint = ("" if address is None else "; is a head node running there (`ray start "
                    "--head`)? or leave the address out to start a local Ray for the job")
            raise ConvergeError(f"the ray executor could not {where}: "
                                f"{type(exc).__name__}: {exc}{hint}") from None
        self._owns_ray = True


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
