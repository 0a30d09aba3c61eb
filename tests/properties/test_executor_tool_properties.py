"""Executors with tool calls: a ruleset whose agents call tools (answers after random
latencies, some failing) amid conflicts, retraction and negated facts pruned away gives
the same result JSON and trace bytes under ``serial``, ``threads`` and ``asyncio``,
whatever order the calls complete in."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import run, validate_pairs
from converge_rules.engine.asyncio_executor import AsyncioExecutor
from converge_rules.engine.executors import ThreadExecutor
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Program

RULESET = """\
ruleset calls
uses tool look
uses tool label
fact Item  { id: int, kind: str }
fact Block { id: int, until: int }
fact Score { key id: int, value: int }
fact Note  { id: int, text: str }
fact Seen  { id: int }
policy Score {
  resolve by highest value
  on tie first
}
prune Block when age >= until
agent score tier 1 {
  when Item(id, kind) and not Block(id)
  call look(id: id, kind: kind) as r
  emit Score(id: id, value: r.value)
}
agent guess tier 1 {
  when Item(id)
  emit Score(id: id, value: id % 4)
}
agent note tier 1 {
  when Score(id, value) where value >= 2
  call label(id: id, value: value) as r
  emit Note(id: id, text: r.text)
}
agent seen tier 2 {
  when Note(id)
  call look(id: id, kind: "seen") as r
  emit Seen(id: id)
}
"""


def program() -> Program:
    checked = check_file("calls.cvg", source=RULESET)
    errors = [f"{d.span}: {d.message}" for d in checked.diagnostics if d.is_error]
    assert not errors, errors
    return compile_ruleset(checked)


def tools(latency: dict[tuple[Any, ...], float]) -> dict[str, Any]:
    """``look`` async, ``label`` sync; both sleep as ``latency`` says and fail for
    some arguments, so completion order is random and some effects are discarded."""

    async def look(args: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(latency.get(("look", args["id"], args["kind"]), 0.0))
        if args["id"] % 7 == 6:
            raise RuntimeError(f"no answer for {args['id']}")
        return {"value": (args["id"] * 3 + len(args["kind"])) % 6}

    def label(args: dict[str, Any]) -> dict[str, Any]:
        time.sleep(latency.get(("label", args["id"], args["value"]), 0.0))
        if args["value"] == 5:
            return {"text": float("nan")}  # not JSON: the call fails
        return {"text": f"#{args['id']}:{args['value']}"}

    return {"look": look, "label": label}


ITEMS = st.lists(st.tuples(st.integers(0, 20), st.sampled_from(["a", "bb", "ccc"])),
                 min_size=1, max_size=12)
BLOCKS = st.lists(st.tuples(st.integers(0, 20), st.integers(1, 3)), max_size=5)


@settings(max_examples=12, deadline=None)
@given(ITEMS, BLOCKS, st.randoms(use_true_random=False), st.integers(1, 8))
def test_tool_calls_give_the_same_job_under_every_in_process_executor(
    items: list[tuple[int, str]], blocks: list[tuple[int, int]], rng: random.Random,
    concurrency: int,
) -> None:
    prog = program()
    pairs: list[tuple[str, dict[str, Any]]] = [
        ("Item", {"id": i, "kind": k}) for i, k in items]
    pairs += [("Block", {"id": i, "until": u}) for i, u in blocks]
    facts = validate_pairs(prog, pairs)
    kinds = ["a", "bb", "ccc", "seen"]
    latency: dict[tuple[Any, ...], float] = {
        ("look", i, k): rng.random() * 0.01 for i in range(21) for k in kinds}
    latency.update({("label", i, v): rng.random() * 0.01 for i in range(21) for v in range(6)})
    serial = run(prog, facts, tools=tools(latency), now=None)
    for executor in (ThreadExecutor(concurrency), AsyncioExecutor(concurrency)):
        other = run(prog, facts, tools=tools(latency), now=None, executor=executor)
        assert other.to_json() == serial.to_json(), type(executor).__name__
        assert other.trace.to_jsonl() == serial.trace.to_jsonl(), type(executor).__name__
