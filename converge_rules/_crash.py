"""Crash points for the crash-safety tests: ``CONVERGE_CRASH_AT=POINT:CYCLE`` makes the
process kill itself with SIGKILL at ``POINT`` of cycle ``CYCLE`` — ``cycle`` (the
agents have run, tools answered, nothing merged), ``merge`` (merged, not committed) or
``commit`` (inside the store's transaction, before ``COMMIT``). Read once per job;
unset, it costs one ``is None`` test per point.
"""

from __future__ import annotations

import os

POINTS = ("cycle", "merge", "commit")


def armed() -> tuple[str, int] | None:
    """The crash point the environment asks for, or None (also for a malformed value:
    a test hook never stops a real job)."""
    text = os.environ.get("CONVERGE_CRASH_AT")
    if not text:
        return None
    point, _, cycle = text.partition(":")
    if point not in POINTS or not cycle.isdigit():
        return None
    return point, int(cycle)


def crash(at: tuple[str, int] | None, point: str, cycle: int) -> None:
    """SIGKILL this process when ``at`` is ``(point, cycle)``."""
    if at is not None and at == (point, cycle):
        import signal  # (imported by a crash test only)

        os.kill(os.getpid(), signal.SIGKILL)
