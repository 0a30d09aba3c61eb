"""What phase 1 hands phase 2: one :class:`AgentEffect` per activated agent, and the
:data:`Delta` of store changes an executor's replicas apply between cycles.

All plain, picklable values: process and cluster executors send them across process
boundaries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields
from typing import Any, TypeAlias, overload

from converge_rules.program import Output
from converge_rules.records import record

#: one recorded tool call: (tool, args, result or None, error or None)
ToolRecord: TypeAlias = tuple[str, dict[str, Any], dict[str, Any] | None, str | None]

# Delta operations, in the order the merge made them:
#   (D_ADD, fid, type_id, values, cycle)   a fact entered the context
#   (D_REMOVE, fid)                         replaced, retracted or pruned
#   (D_CLOSE, fid)                          an intent was closed
#   (D_FIRED, agent, support)               a ``one at a time`` agent fired the match
#                                           of these facts (its name, their ids)
D_ADD = 0
D_REMOVE = 1
D_CLOSE = 2
D_FIRED = 3
Delta: TypeAlias = list[tuple[Any, ...]]


@record
class Activation:
    """One agent to run this cycle. ``position`` is its merge position (the index of
    the agent in ``Program.agents``, which is sorted by tier then declaration order);
    ``since`` the watermark its matches must use a fact at or above. ``gone`` (for an
    agent with ``AgentSpec.unblocks`` only) holds, per type of ``unblocks``, the ids
    below ``since`` that left the context since its last run: the agent also derives
    the matches those removals enable. None for an ordinary run."""

    position: int
    since: int
    gone: tuple[tuple[int, ...], ...] | None = None


@record
class AgentEffect:
    """The outcome of one agent run. ``error`` is set (and ``outputs`` empty) when the
    effect is discarded: the agent raised, timed out, or a tool call failed.
    ``budget`` names the budget the run exceeded (``max_facts`` for too many outputs,
    ``max_string_length``, ``max_list_length``, or ``memory`` for a ``MemoryError``):
    the engine then stops the job with status ``budget_exceeded``, ``error`` saying
    why."""

    position: int
    #: a tuple of output tuples, or the same outputs as :class:`Columns`
    outputs: Sequence[Output]
    error: str | None = None
    tool_calls: tuple[ToolRecord, ...] = ()
    tool_budget_exhausted: bool = False
    budget: str | None = None


_new = object.__new__
_SET_ACTIVATION = tuple(vars(Activation)[name].__set__ for name in ("position", "since", "gone"))
# activation() sets every slot: a field added to Activation must be set there too
assert [f.name for f in fields(Activation)] == ["position", "since", "gone"]


def activation(position: int, since: int) -> Activation:
    """``Activation(position, since)``, set slot by slot: the same object at a third of
    the frozen dataclass's ``__init__`` cost (once per agent run)."""
    act = _new(Activation)
    s_position, s_since, s_gone = _SET_ACTIVATION
    s_position(act, position)
    s_since(act, since)
    s_gone(act, None)
    return act


_SET = tuple(vars(AgentEffect)[name].__set__ for name in (
    "position", "outputs", "error", "tool_calls", "tool_budget_exhausted", "budget"))


def made_effect(position: int, outputs: Sequence[Output],
                tool_calls: tuple[ToolRecord, ...]) -> AgentEffect:
    """``AgentEffect(position, outputs, None, tool_calls)``, the outcome of every
    successful agent run, set slot by slot: the same object at half the cost of the
    frozen dataclass's ``__init__`` (which goes through ``object.__setattr__``)."""
    effect = _new(AgentEffect)
    s_position, s_outputs, s_error, s_calls, s_exhausted, s_budget = _SET
    s_position(effect, position)
    s_outputs(effect, outputs)
    s_error(effect, None)
    s_calls(effect, tool_calls)
    s_exhausted(effect, False)
    s_budget(effect, None)
    return effect


class Activations(Sequence[Activation]):
    """A cycle's activations as columns, in position order: ``positions``, ``sinces``
    and ``gones`` (:attr:`Activation.gone`, mostly None) side by side. The runner
    builds and reads these; an executor that reads :class:`Activation` objects gets
    them as from a list (built once, on first use), the same objects as before. The
    serial executor reads the columns (:class:`RunOutputs`): a cycle of many cheap
    agents builds no object per run."""

    __slots__ = ("_objects", "gones", "positions", "sinces")

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.sinces: list[int] = []
        self.gones: list[tuple[tuple[int, ...], ...] | None] = []
        self._objects: list[Activation] | None = None

    def objects(self) -> list[Activation]:
        """The activations as :class:`Activation` objects (built once)."""
        built = self._objects
        if built is None:
            built = self._objects = [
                activation(p, s) if g is None else Activation(p, s, g)
                for p, s, g in zip(self.positions, self.sinces, self.gones, strict=True)]
        return built

    def __len__(self) -> int:
        return len(self.positions)

    @overload
    def __getitem__(self, i: int) -> Activation: ...

    @overload
    def __getitem__(self, i: slice) -> list[Activation]: ...

    def __getitem__(self, i: int | slice) -> Activation | list[Activation]:
        return self.objects()[i]

    def __iter__(self) -> Iterator[Activation]:
        return iter(self.objects())

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (self.objects(),))  # (a replica's worker reads a list)


class RunOutputs(Sequence[AgentEffect]):
    """The serial executor's answer for a cycle whose every run ended as most do:
    outputs merged as they are, no error, no tool call, no budget. ``outputs[i]`` are
    the outputs of the run at ``positions[i]`` (the cycle's :class:`Activations`'
    positions). The engine merges the columns; read as a sequence (a subclass of the
    serial executor that looks at what ``run_cycle`` answered), it is the
    :class:`AgentEffect` objects they stand for, built on first use."""

    __slots__ = ("_effects", "outputs", "positions")

    def __init__(self, positions: list[int], outputs: list[Sequence[Output]]) -> None:
        self.positions = positions
        self.outputs = outputs
        self._effects: list[AgentEffect] | None = None

    def effects(self) -> list[AgentEffect]:
        """One :class:`AgentEffect` per run, as the runs would have given them (built
        once)."""
        built = self._effects
        if built is None:
            built = self._effects = [made_effect(p, o, ()) for p, o in
                                     zip(self.positions, self.outputs, strict=True)]
        return built

    def __len__(self) -> int:
        return len(self.positions)

    @overload
    def __getitem__(self, i: int) -> AgentEffect: ...

    @overload
    def __getitem__(self, i: slice) -> list[AgentEffect]: ...

    def __getitem__(self, i: int | slice) -> AgentEffect | list[AgentEffect]:
        return self.effects()[i]

    def __iter__(self) -> Iterator[AgentEffect]:
        return iter(self.effects())

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (self.effects(),))
