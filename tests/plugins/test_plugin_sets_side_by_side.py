"""Registries are values: two jobs loaded with different plugin sets run at the same
time in one process, each with its own resolver, function and executor, and neither
sees the other's (nothing is installed into a table the engine reads)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import converge_rules
from converge_rules.engine.executors import SerialExecutor
from converge_rules.plugins import load_registries

RULESET = """ruleset r
fact Bid { key vendor: str, amount: float }
fact Award { key lot: str, vendor: str, label: str }
agent award {
  when Bid(vendor, amount)
  emit Award(lot: "L1", vendor: vendor, label: label(vendor))
}
policy Award { resolve by using pick }
"""
BIDS = [("Bid", {"vendor": v, "amount": a}) for v, a in
        [("acme", 9.0), ("bolt", 7.0), ("cogs", 8.0)]]

PLUGIN = """
from converge_rules.engine.executors import SerialExecutor
from converge_rules.plugins.api import Function, hookimpl

CHOICE = {choice!r}

def pick(type_spec, contenders):
    vendor = type_spec.field_names.index("vendor")
    return [i for i, c in enumerate(contenders) if c.values[vendor] == CHOICE]

class Slow(SerialExecutor):
    def run_cycle(self, cycle, delta, activations):
        import time
        time.sleep(0.002)  # give the other job's thread a chance to interleave
        return super().run_cycle(cycle, delta, activations)

@hookimpl
def converge_register_resolvers(register):
    register("pick", pick)

@hookimpl
def converge_register_functions(register):
    register(Function("label", lambda v: {label!r} + v, ("str",), "str"))

@hookimpl
def converge_register_executors(register):
    register("{executor}", lambda workers: Slow())
"""


def test_two_plugin_sets_run_side_by_side_in_threads(
    write_module: Callable[[str, str], str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("CONVERGE_DISABLE_PLUGINS",
                       "converge-http,converge-llm,converge-example,converge-ray")
    write_module("set_a", PLUGIN.format(choice="acme", label="A:", executor="slow-a"))
    write_module("set_b", PLUGIN.format(choice="cogs", label="B:", executor="slow-b"))
    a = converge_rules.loads(RULESET, plugins=load_registries(["set_a"]))
    b = converge_rules.loads(RULESET, plugins=load_registries(["set_b"]))
    assert "slow-b" not in a.registries.executors  # type: ignore[union-attr]
    start = threading.Barrier(8)

    def job(which: str) -> list[dict[str, Any]]:
        ruleset, executor = (a, "slow-a") if which == "a" else (b, "slow-b")
        start.wait()
        return converge_rules.run(ruleset, BIDS, executor=executor).facts("Award")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(job, ["a", "b"] * 4))
    assert results == [[{"lot": "L1", "vendor": "acme", "label": "A:acme"}],
                       [{"lot": "L1", "vendor": "cogs", "label": "B:cogs"}]] * 4


def test_an_executor_of_one_plugin_set_is_unknown_to_another(
    write_module: Callable[[str, str], str], monkeypatch: Any
) -> None:
    import pytest

    monkeypatch.setenv("CONVERGE_DISABLE_PLUGINS",
                       "converge-http,converge-llm,converge-example,converge-ray")
    write_module("set_a", PLUGIN.format(choice="acme", label="A:", executor="slow-a"))
    write_module("set_b", PLUGIN.format(choice="cogs", label="B:", executor="slow-b"))
    b = converge_rules.loads(RULESET, plugins=load_registries(["set_b"]))
    load_registries(["set_a"])  # loading another set changes nothing for b
    with pytest.raises(converge_rules.ConvergeError, match="unknown executor 'slow-a'"):
        converge_rules.run(b, BIDS, executor="slow-a")
    assert converge_rules.run(b, BIDS, executor=SerialExecutor()).facts("Award")[0][
        "vendor"] == "cogs"
