"""The classic production-system benchmarks, written with one-at-a-time agents and
lasting facts (rulesets/manners), run from `.cvg` on the benchmarks' own data (CLIPS
fact files, read by bench/classics/clips_facts.py): the answers must be valid."""

from __future__ import annotations

import importlib.util
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

import converge_rules
from converge_rules.engine.effects import Activation, AgentEffect, Delta
from converge_rules.engine.executors import SerialExecutor

ROOT = Path(__file__).resolve().parents[2]


def _module(name: str) -> ModuleType:
    path = ROOT / "bench" / "classics" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"classics_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


clips = _module("clips_facts")
answers = _module("answers")


@pytest.fixture(scope="module")
def manners() -> converge_rules.Ruleset:
    return converge_rules.load(ROOT / "rulesets" / "manners" / "manners.cvg", plugins=False)


def _facts(result: converge_rules.RunResult) -> dict[str, list[dict[str, object]]]:
    return {name: result.facts(name) for name in ("Seating", "Path")}


@pytest.mark.parametrize("guests", [8, 16, 32])
def test_miss_manners_seats_every_guest_validly(
    manners: converge_rules.Ruleset, guests: int
) -> None:
    facts = clips.read_file(ROOT / "bench" / "data" / f"manners{guests}.fct", manners.program)
    result = converge_rules.run(manners, facts)
    assert result.status == "converged", result.detail
    assert answers.manners_problems(facts, _facts(result)) == []
    assert result.facts("Context") == [{"of": "context", "state": "print_results"}]


def test_the_validity_check_catches_a_wrong_seating(manners: converge_rules.Ruleset) -> None:
    facts = clips.read_file(ROOT / "bench" / "data" / "manners8.fct", manners.program)
    seated = _facts(converge_rules.run(manners, facts))
    last = max(p["seat"] for p in seated["Path"])
    final = next(s["id"] for s in seated["Seating"] if s["seat2"] == last)
    path = [p for p in seated["Path"] if p["id"] == final]
    one, two = sorted(path, key=lambda p: p["seat"])[:2]
    swapped = [p for p in path if p not in (one, two)] + [
        {**one, "name": two["name"]}, {**two, "name": one["name"]}, {**two, "name": "n9"}]
    problems = answers.manners_problems(facts, {**seated, "Path": swapped})
    assert problems  # seat 2 taken twice, a guest who does not exist


def test_a_trace_of_manners_replays_to_the_same_answer(
    manners: converge_rules.Ruleset, tmp_path: Path
) -> None:
    facts = clips.read_file(ROOT / "bench" / "data" / "manners8.fct", manners.program)
    serial = converge_rules.run(manners, facts, trace=tmp_path / "t.jsonl")
    threads = converge_rules.run(manners, facts, executor="threads", workers=4,
                                 trace=tmp_path / "threads.jsonl")
    assert threads.to_json() == serial.to_json()
    assert threads.trace.to_jsonl() == serial.trace.to_jsonl()
    assert '"lasting":true' in (tmp_path / "t.jsonl").read_text()


def test_the_fact_reader_reads_clips_syntax() -> None:
    facts = clips.read_clips_facts("; a comment\n(last_seat (seat 8))\n(guest (name 1) (sex m))")
    assert facts == [("LastSeat", {"seat": 8}), ("Guest", {"name": 1, "sex": "m"})]
    with pytest.raises(ValueError, match="more than one value"):
        clips.read_clips_facts("(guest (name a b))")


WaltzRun = tuple[list[tuple[str, dict[str, object]]], converge_rules.RunResult]


@pytest.fixture(scope="module")
def waltz() -> WaltzRun:
    ruleset = converge_rules.load(ROOT / "rulesets" / "waltz" / "waltz.cvg", plugins=False)
    facts = clips.read_file(ROOT / "bench" / "data" / "waltz12.fct", ruleset.program)
    return facts, converge_rules.run(ruleset, facts)


def test_waltz_labels_every_junction_of_the_drawing_consistently(waltz: WaltzRun) -> None:
    facts, result = waltz
    assert result.status == "converged", result.detail
    found = {name: result.facts(name) for name in ("Edge", "Junction")}
    assert len(found["Edge"]) == 2 * sum(1 for name, _ in facts if name == "Line")
    assert {j["type"] for j in found["Junction"]} == {"ell", "tee", "fork", "arrow"}
    assert answers.waltz_problems(facts, found) == []
    assert result.facts("Stage") == [{"of": "stage", "value": "done"}]


def test_the_waltz_check_catches_an_illegal_labelling(waltz: WaltzRun) -> None:
    facts, result = waltz
    edges = result.facts("Edge")
    arrow = next(j for j in result.facts("Junction") if j["type"] == "arrow")
    # the arrow's shaft relabelled on both sides: consistent, but not a legal arrow
    shaft = {(arrow["base_point"], arrow["p2"]), (arrow["p2"], arrow["base_point"])}
    wrong = [{**e, "label": "minus"} if (e["p1"], e["p2"]) in shaft else e for e in edges]
    problems = answers.waltz_problems(facts, {"Edge": wrong,
                                              "Junction": result.facts("Junction")})
    assert any(p.startswith(f"arrow junction at {arrow['base_point']}") for p in problems)


@pytest.mark.parametrize("change", ["type", "shaft"])
def test_the_waltz_check_reads_junctions_from_the_drawing_not_the_ruleset(
    waltz: WaltzRun, change: str
) -> None:
    # the labels are checked against each junction's type and shaft: those must be the
    # drawing's, or a ruleset that misread the geometry would check its own mistake
    facts, result = waltz
    junctions = result.facts("Junction")
    arrow = next(j for j in junctions if j["type"] == "arrow")
    wrong = ({**arrow, "type": "fork"} if change == "type"
             else {**arrow, "p1": arrow["p2"], "p2": arrow["p1"]})
    found = {"Edge": result.facts("Edge"),
             "Junction": [wrong if j is arrow else j for j in junctions]}
    problems = answers.waltz_problems(facts, found)
    said = {"type": f"junction at {arrow['base_point']} is made a fork; its lines make "
                    "an arrow",
            "shaft": f"arrow junction at {arrow['base_point']} has its shaft to "
                     f"{arrow['p1']}; the drawing's is to {arrow['p2']}"}[change]
    assert said in problems


class _Shuffled(SerialExecutor):
    """Runs a cycle's agents in a random order and answers their effects shuffled, as
    a parallel executor's completion order might."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.rng = random.Random(seed)

    def run_cycle(self, cycle: int, delta: Delta,
                  activations: Sequence[Activation]) -> list[AgentEffect]:
        acts = list(activations)
        self.rng.shuffle(acts)
        effects = super().run_cycle(cycle, delta, acts)
        self.rng.shuffle(effects)
        return effects


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", ["manners16", "waltz12"])
def test_any_completion_order_gives_the_same_job(name: str, seed: int) -> None:
    ruleset = converge_rules.load(ROOT / "rulesets" / name.rstrip("0123456789") /
                                  f"{name.rstrip('0123456789')}.cvg", plugins=False)
    facts = clips.read_file(ROOT / "bench" / "data" / f"{name}.fct", ruleset.program)
    serial = converge_rules.run(ruleset, facts)
    shuffled = converge_rules.run(ruleset, facts, executor=_Shuffled(seed))
    assert shuffled.trace.to_jsonl() == serial.trace.to_jsonl()
