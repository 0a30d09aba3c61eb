"""Storage behind one interface: traces now; checkpoints and knowledge later.

A backend (JSON Lines here, SQLite and plugins later) implements the protocols it
supports. A :class:`TraceSink` receives a job's trace as already-serialised,
deterministic JSON lines in order; a :class:`CheckpointStore` saves and loads opaque
snapshots of a job by name and cycle; a :class:`KnowledgeStore` keeps facts that left
the live context (pruned facts) so later jobs can consult them.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, Protocol


class TraceSink(Protocol):
    """Where trace lines go. Used as a context manager: leaving the block normally
    commits the trace (``close``); leaving it with an exception should drop what was
    written, so a failed or interrupted job never replaces a complete earlier trace
    with a truncated one."""

    def write_lines(self, lines: Iterable[str]) -> None:
        """Append JSON documents, one per line (no trailing newline in ``lines``)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> TraceSink: ...

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class CheckpointStore(Protocol):
    """Saves and restores job state between cycles (not implemented by any backend yet)."""

    def save(self, job: str, cycle: int, state: bytes) -> None: ...

    def load(self, job: str) -> tuple[int, bytes] | None: ...


class KnowledgeStore(Protocol):
    """Keeps facts that left the live context, by type (not implemented yet)."""

    def put(self, type_name: str, fields: dict[str, Any], cycle: int) -> None: ...

    def query(self, type_name: str) -> Iterable[dict[str, Any]]: ...
