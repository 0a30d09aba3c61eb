"""Test support for the compiler: compile ruleset text, and a list-backed ``View``
double that implements the protocol generated code reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Output, Program


def compile_text(text: str, *, functions: Mapping[str, Callable[..., Any]] | None = None,
                 resolvers: Mapping[str, Any] | None = None,
                 path: str = "test.cvg") -> Program:
    """Check and compile ``text``; a ruleset with check errors fails the test loudly."""
    checked = check_file(path, source=text)
    errors = [d for d in checked.diagnostics if d.is_error]
    assert not errors, "\n".join(f"{d.span}: {d.code} {d.message}" for d in errors)
    return compile_ruleset(checked, functions=functions, resolvers=resolvers)


class ListView:
    """The View protocol over plain lists and dicts, with the program's indexes kept
    up to date on every add and remove."""

    def __init__(self, program: Program, now: Any = None) -> None:
        self.program = program
        self.now = now  # the job's time, what now() and today() read
        self.values: list[tuple[Any, ...]] = []
        self.types: list[int] = []
        self.cycles: list[int] = []
        self.live: list[dict[int, None]] = [{} for _ in program.types]
        # as the engine keeps them: a key one fact holds maps to a 1-tuple, a key more
        # facts hold to a dict used as an ordered set
        self.indexes: list[dict[Any, Any]] = [{} for _ in program.indexes]
        # the matches each one-at-a-time agent fired (none: nothing ran before)
        self.fired: dict[str, set[tuple[int, ...]]] = {}

    def _key(self, ix: int, values: tuple[Any, ...]) -> Any:
        positions = self.program.indexes[ix].positions
        if len(positions) == 1:
            return values[positions[0]]
        return tuple(values[p] for p in positions)

    def add(self, type_name: str, *values: Any, cycle: int = 0) -> int:
        tid = self.program.type_ids[type_name]
        fid = len(self.values)
        self.values.append(tuple(values))
        self.types.append(tid)
        self.cycles.append(cycle)
        self.live[tid][fid] = None
        for spec in self.program.indexes:
            if spec.type_id == tid:
                key = self._key(spec.id, tuple(values))
                index = self.indexes[spec.id]
                bucket = index.get(key)
                if bucket is None:
                    index[key] = (fid,)
                elif isinstance(bucket, tuple):
                    index[key] = dict.fromkeys((*bucket, fid))
                else:
                    bucket[fid] = None
        return fid

    def remove(self, fid: int) -> None:
        tid = self.types[fid]
        del self.live[tid][fid]
        for spec in self.program.indexes:
            if spec.type_id == tid:
                key = self._key(spec.id, self.values[fid])
                index = self.indexes[spec.id]
                bucket = index[key]
                if isinstance(bucket, tuple):
                    del index[key]
                    continue
                del bucket[fid]
                if len(bucket) == 1:
                    index[key] = tuple(bucket)

    def new(self, type_id: int, since: int) -> Iterable[int]:
        return [f for f in self.live[type_id] if f >= since]

    def key_table(self, type_id: int) -> dict[Any, int]:
        # (built when asked: a view holds one live fact per key, as the engine's does)
        positions = self.program.types[type_id].key_positions
        table: dict[Any, int] = {}
        for fid in self.live[type_id]:
            vals = self.values[fid]
            key = vals[positions[0]] if len(positions) == 1 else tuple(
                vals[p] for p in positions)
            assert key not in table, f"two live facts hold the key {key!r}"
            table[key] = fid
        return table

    def cycle_of(self, fact_id: int) -> int:
        return self.cycles[fact_id]


class RecordingRuntime:
    """A runtime whose tools answer from a function and record every call."""

    def __init__(self, answer: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
                 ) -> None:
        self.answer = answer or (lambda tool, args: {})
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((tool, args))
        return self.answer(tool, args)


def run(program: Program, agent: str, view: ListView, since: int = 0,
        runtime: RecordingRuntime | None = None) -> list[Output]:
    """The outputs of one agent run."""
    spec = next(a for a in program.agents if a.name == agent)
    return spec.fn(view, since, runtime or RecordingRuntime())


def emitted(program: Program, outputs: list[Output]) -> list[tuple[str, tuple[Any, ...]]]:
    """``(type name, values)`` of each emit/intend output, in order."""
    return [(program.types[o[1]].name, o[2]) for o in outputs if o[0] in (0, 1)]
