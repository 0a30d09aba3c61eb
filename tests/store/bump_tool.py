"""A test plugin (``converge --plugin bump_tool``): the tool ``bump(id, n) -> {next}``
answers ``n + 1`` and appends ``id n pid`` to the file ``$BUMP_CALLS`` for every real
call, so a test can count what each process paid for. ``$BUMP_SLEEP`` seconds of sleep
per call make a job slow enough to signal mid-run (only calls of ``n`` from
``$BUMP_SLEEP_FROM`` on sleep, when it is set)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from pydantic import BaseModel

from converge_rules.plugins.api import Tool, hookimpl


class BumpArgs(BaseModel):
    id: str
    n: int


class Bumped(BaseModel):
    next: int


def bump(args: BumpArgs) -> Bumped:
    calls = os.environ.get("BUMP_CALLS")
    if calls:
        with open(calls, "a", encoding="utf-8") as f:
            f.write(f"{args.id} {args.n} {os.getpid()}\n")
    if args.n >= int(os.environ.get("BUMP_SLEEP_FROM", "0")):
        time.sleep(float(os.environ.get("BUMP_SLEEP", "0")))
    return Bumped(next=args.n + 1)


@hookimpl
def converge_register_tools(register: Callable[[Tool], None]) -> None:
    register(Tool("bump", bump, BumpArgs, Bumped, "n + 1, counted in $BUMP_CALLS"))
