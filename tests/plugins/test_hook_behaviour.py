"""Every hook, proven by behaviour: a plugin module that implements only that hook is
loaded with ``converge --plugin MODULE``, and a real ruleset run (or check) shows the
effect of what it registered — a tool's answer in a fact, a resolver's winner, a
pruned fact, a trace written by a plugin store, an observer's notes.

The meta-test at the bottom asks for one scenario per hookspec: a new hook fails it
until it has a behaviour test here, whatever tests elsewhere mention its name."""

from __future__ import annotations

import gzip
import inspect
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main
from converge_rules.plugins import hookspecs

INSTALLED = "converge-http,converge-llm,converge-example,converge-ray"


@pytest.fixture
def converge(
    plugin_dir: Path, write_module: Callable[[str, str], str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """``converge(plugin_source, *args)`` runs ``converge --plugin p ARGS`` in
    ``plugin_dir`` with the plugin module ``p`` written from ``plugin_source`` and the
    installed plugins disabled, so only the hook under test is at work."""
    monkeypatch.chdir(plugin_dir)
    monkeypatch.setenv("CONVERGE_DISABLE_PLUGINS", INSTALLED)
    counter = iter(range(1000))

    def run(source: str, *args: str) -> Result:
        name = write_module(f"hook_plugin_{next(counter)}", source)
        return CliRunner().invoke(main, ["--plugin", name, *args])

    return run


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return path.name


def facts_of(result: Result, type_name: str) -> list[dict[str, object]]:
    assert result.exit_code in (0, 1), result.output
    facts: list[dict[str, object]] = json.loads(result.stdout)["facts"].get(type_name, [])
    return facts


HEADER = "from converge_rules.plugins.api import Function, Tool, hookimpl\n"


# ---------------------------------------------------------------- registration


def tools_scenario(converge: Callable[..., Result], here: Path) -> None:
    plugin = HEADER + """
from pydantic import BaseModel

class Text(BaseModel):
    text: str

def shout(args):
    return {"text": args.text.upper() + "!"}

@hookimpl
def converge_register_tools(register):
    register(Tool("shout", shout, Text, Text, "shouts"))
"""
    ruleset = write(here / "r.cvg", """ruleset r
uses tool shout
fact Word { key w: str }
fact Loud { key w: str, text: str }
agent loud {
  when Word(w)
  call shout(text: w) as answer
  emit Loud(w: w, text: answer.text)
}
""")
    facts = write(here / "in.jsonl", '{"Word": {"w": "hey"}}\n')
    result = converge(plugin, "run", ruleset, "-f", facts, "--format", "json")
    assert facts_of(result, "Loud") == [{"w": "hey", "text": "HEY!"}]


def functions_scenario(converge: Callable[..., Result], here: Path) -> None:
    plugin = HEADER + """
@hookimpl
def converge_register_functions(register):
    register(Function("slug", lambda s: s.lower().replace(" ", "-"), ("str",), "str"))
"""
    ruleset = write(here / "r.cvg", """ruleset r
fact Title { key t: str }
fact Slug { key t: str, slug: str }
agent slugs {
  when Title(t)
  emit Slug(t: t, slug: slug(t))
}
""")
    facts = write(here / "in.jsonl", '{"Title": {"t": "Hello World"}}\n')
    result = converge(plugin, "run", ruleset, "-f", facts, "--format", "json")
    assert facts_of(result, "Slug") == [{"t": "Hello World", "slug": "hello-world"}]


BIDS = """ruleset r
fact Bid { key vendor: str, amount: float }
fact Award { key lot: str, vendor: str, amount: float }
agent award {
  when Bid(vendor, amount)
  emit Award(lot: "L1", vendor: vendor, amount: amount)
}
policy Award { resolve by POLICY }
"""
BID_FACTS = ('{"Bid": {"vendor": "acme", "amount": 9.0}}\n'
             '{"Bid": {"vendor": "bolt", "amount": 7.0}}\n')


def resolvers_scenario(converge: Callable[..., Result], here: Path) -> None:
    plugin = HEADER + """
def second_cheapest(type_spec, contenders):
    amount = type_spec.field_names.index("amount")
    ranked = sorted(range(len(contenders)), key=lambda i: contenders[i].values[amount])
    return [ranked[1]]

@hookimpl
def converge_register_resolvers(register):
    register("second_cheapest", second_cheapest)
"""
    ruleset = write(here / "r.cvg", BIDS.replace("POLICY", "using second_cheapest"))
    facts = write(here / "in.jsonl", BID_FACTS)
    result = converge(plugin, "run", ruleset, "-f", facts, "--format", "json")
    assert facts_of(result, "Award") == [{"lot": "L1", "vendor": "acme", "amount": 9.0}]


def pruners_scenario(converge: Callable[..., Result], here: Path) -> None:
    plugin = HEADER + """
class DropDone:
    def applies_to(self, fact_type, field_names):
        return "done" in field_names

    def __call__(self, fact_type, fields, age):
        return fields["done"]

@hookimpl
def converge_register_pruners(register):
    register("drop_done", DropDone())
"""
    # Pruning runs after each cycle's merge: the agent makes a cycle happen.
    ruleset = write(here / "r.cvg", """ruleset r
fact Task { key id: str, done: bool }
fact Seen { key id: str }
agent see { when Task(id) emit Seen(id: id) }
""")
    facts = write(here / "in.jsonl",
                  '{"Task": {"id": "a", "done": true}}\n{"Task": {"id": "b", "done": false}}\n')
    kept = converge(plugin, "run", ruleset, "-f", facts, "--format", "json")
    assert len(facts_of(kept, "Task")) == 2  # pruners are opt-in
    pruned = converge(plugin, "run", ruleset, "-f", facts, "--format", "json",
                      "--pruner", "drop_done")
    assert facts_of(pruned, "Task") == [{"id": "b", "done": False}]


def executors_scenario(converge: Callable[..., Result], here: Path) -> None:
    plugin = HEADER + """
from pathlib import Path

from converge_rules.engine.executors import SerialExecutor

class Logged(SerialExecutor):
    def run_cycle(self, cycle, delta, activations):
        with Path("cycles.log").open("a") as log:
            log.write(f"{cycle} {len(activations)}\\n")
        return super().run_cycle(cycle, delta, activations)

@hookimpl
def converge_register_executors(register):
    register("logged", lambda workers: Logged(), "serial, logging each cycle")
"""
    ruleset = write(here / "r.cvg", BIDS.replace("POLICY", "lowest amount"))
    facts = write(here / "in.jsonl", BID_FACTS)
    result = converge(plugin, "run", ruleset, "-f", facts, "--format", "json",
                      "--executor", "logged")
    assert facts_of(result, "Award") == [{"lot": "L1", "vendor": "bolt", "amount": 7.0}]
    assert (here / "cycles.log").read_text().splitlines()[0] == "1 1"


def stores_scenario(converge: Callable[..., Result], here: Path) -> None:
    plugin = HEADER + """
import gzip

class GzipTrace:
    def __init__(self, location):
        self._file = gzip.open(location, "wt", encoding="utf-8")

    def write_lines(self, lines):
        for line in lines:
            self._file.write(line + "\\n")

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

@hookimpl
def converge_register_stores(register):
    register("gzip", GzipTrace, "the JSON Lines trace, gzipped")
"""
    ruleset = write(here / "r.cvg", BIDS.replace("POLICY", "lowest amount"))
    facts = write(here / "in.jsonl", BID_FACTS)
    zipped_run = converge(plugin, "run", ruleset, "-f", facts, "--trace", "t.gz",
                          "--trace-store", "gzip")
    assert zipped_run.exit_code == 0, zipped_run.output
    plain = converge(plugin, "run", ruleset, "-f", facts, "--trace", "t.jsonl")
    assert plain.exit_code == 0, plain.output
    with gzip.open(here / "t.gz", "rt", encoding="utf-8") as zipped:
        assert zipped.read() == (here / "t.jsonl").read_text(encoding="utf-8")


def checks_scenario(converge: Callable[..., Result], here: Path) -> None:
    plugin = HEADER + """
from converge_rules.plugins.api import Diagnostic, Severity

def needs_tests(checked):
    if checked.tests:
        return []
    return [Diagnostic("ACME001", Severity.WARNING, f"ruleset {checked.name} has no tests",
                       None, "add a test block")]

@hookimpl
def converge_register_checks(register):
    register("needs-tests", needs_tests)
"""
    ruleset = write(here / "r.cvg", "ruleset r\nfact A { x: int }\n")
    result = converge(plugin, "check", ruleset, "--format", "json")
    codes = [d["code"] for d in json.loads(result.stdout)["diagnostics"]]
    assert codes == ["ACME001"], result.output
    assert converge(plugin, "check", ruleset, "--strict").exit_code == 1


# -------------------------------------------------------------------- knowledge


def summarize_scenario(converge: Callable[..., Result], here: Path) -> None:
    plugin = HEADER + """
@hookimpl
def converge_summarize(fact_type, facts, cycle):
    return [{"type": fact_type + "Count", "fields": {"cycle": cycle, "n": len(facts)}}]
"""
    ruleset = write(here / "r.cvg", """ruleset r
uses tool knowledge_find
fact Step { key n: int }
fact Old  { key n: int }
fact Seen { key n: int, moved: int }
agent step {
  when Step(n) where n < 4
  emit lasting Step(n: n + 1)
  emit lasting Old(n: n)
}
agent look {
  when Step(n) where n == 4
  call knowledge_find(type: "OldCount", cycle: 3) as c
  emit Seen(n: n, moved: c.n)
}
prune Old when age >= 1 into knowledge
""")
    facts = write(here / "in.jsonl", '{"Step": {"n": 0}}\n')
    result = converge(plugin, "run", ruleset, "-f", facts, "--format", "json")
    assert facts_of(result, "Seen") == [{"n": 4, "moved": 1}]
    without = CliRunner().invoke(main, ["run", ruleset, "-f", facts, "--format", "json"])
    assert facts_of(without, "Seen") == []  # no summary: the lookup fails the agent


# -------------------------------------------------------------------- observers

OBSERVER = HEADER + """
import json
from pathlib import Path

def note(kind, value):
    with Path("observed.jsonl").open("a") as out:
        out.write(json.dumps([kind, value]) + "\\n")

@hookimpl
def HOOK(ARG):
    note("HOOK", SUMMARY)
"""


def observed(converge: Callable[..., Result], here: Path, hook: str, arg: str, summary: str
             ) -> list[list[object]]:
    plugin = OBSERVER.replace("HOOK", hook).replace("ARG", arg).replace("SUMMARY", summary)
    ruleset = write(here / "r.cvg", BIDS.replace("POLICY", "lowest amount"))
    facts = write(here / "in.jsonl", BID_FACTS)
    result = converge(plugin, "run", ruleset, "-f", facts)
    assert result.exit_code == 0, result.output
    lines = (here / "observed.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def on_cycle_scenario(converge: Callable[..., Result], here: Path) -> None:
    seen = observed(converge, here, "converge_on_cycle", "event", "[event.cycle, event.live]")
    assert seen == [["converge_on_cycle", [1, 3]]]  # two bids and the award


def on_effect_scenario(converge: Callable[..., Result], here: Path) -> None:
    seen = observed(converge, here, "converge_on_effect", "event", "[event.event, event.agent]")
    assert seen == [["converge_on_effect", ["effect_merged", "award"]]]


def on_conflict_scenario(converge: Callable[..., Result], here: Path) -> None:
    seen = observed(converge, here, "converge_on_conflict", "event",
                    "[event.winner, event.reason]")
    assert seen == [["converge_on_conflict", [
        {"lot": "L1", "vendor": "bolt", "amount": 7.0}, "resolve by lowest amount"]]]


def on_result_scenario(converge: Callable[..., Result], here: Path) -> None:
    seen = observed(converge, here, "converge_on_result", "result",
                    "[result.status, result.facts('Award')]")
    assert seen == [["converge_on_result", ["converged", [
        {"lot": "L1", "vendor": "bolt", "amount": 7.0}]]]]


SCENARIOS: dict[str, Callable[[Callable[..., Result], Path], None]] = {
    "converge_register_tools": tools_scenario,
    "converge_register_functions": functions_scenario,
    "converge_register_resolvers": resolvers_scenario,
    "converge_register_pruners": pruners_scenario,
    "converge_register_executors": executors_scenario,
    "converge_register_stores": stores_scenario,
    "converge_register_checks": checks_scenario,
    "converge_summarize": summarize_scenario,
    "converge_on_cycle": on_cycle_scenario,
    "converge_on_effect": on_effect_scenario,
    "converge_on_conflict": on_conflict_scenario,
    "converge_on_result": on_result_scenario,
}


def hookspec_names() -> list[str]:
    return sorted(name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
                  if name.startswith("converge_"))


@pytest.mark.parametrize("hook", hookspec_names())
def test_what_each_hook_registers_changes_a_real_run(
    hook: str, converge: Callable[..., Result], plugin_dir: Path
) -> None:
    scenario = SCENARIOS.get(hook)
    assert scenario is not None, (
        f"hook {hook} has no behaviour scenario: add one to SCENARIOS that loads a plugin "
        "implementing only this hook and shows its effect on a real run or check")
    scenario(converge, plugin_dir)


def test_the_hook_lists_name_every_hookspec() -> None:
    assert hookspec_names() == sorted(hookspecs.REGISTRATION_HOOKS + hookspecs.OBSERVER_HOOKS
                                      + hookspecs.KNOWLEDGE_HOOKS)
