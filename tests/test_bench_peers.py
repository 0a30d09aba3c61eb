"""bench/peers/: converge_rules and its peers (clingo, CLIPS) give the same answers on
the peer benchmarks, and the script that times them runs. Timings are not checked.

The peers come with the ``test`` extra (``pip install '.[test]'``). These tests never
install anything (``run.py --no-install``), so they need no network; without the
peers installed they skip, saying so.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
from array import array
from pathlib import Path
from types import ModuleType

import pytest

import converge_rules

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "bench" / "peers"
DATA = ROOT / "bench" / "data"

_missing = [name for name, module in (("clingo", "clingo"), ("clipspy", "clips"))
            if importlib.util.find_spec(module) is None]
needs_peers = pytest.mark.skipif(
    bool(_missing), reason=f"{' and '.join(_missing)} not installed (the test extra "
    "installs them: pip install '.[test]'); this test never installs, so needs no network")


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"peers_{name}", PEERS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


run = _module("run")
worker = _module("worker")


@needs_peers
def test_quick_run_checks_every_answer_and_reports_ratios(tmp_path: Path) -> None:
    out = tmp_path / "peers.json"
    done = subprocess.run([sys.executable, str(PEERS / "run.py"), "--quick", "--no-install",
                           "--json", str(out)], capture_output=True, text=True, check=False,
                          cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    rows = {row["workload"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"closure chain 60", "closure random 150/300", "waltz 12",
                         "manners 16"}
    assert all(row["agree"] is True for row in rows.values())
    assert rows["closure chain 60"]["answers"] == "same 1,770 paths"
    # waltz12: 984 lines, each an edge both ways, labelled alike by rulesets/waltz and
    # waltz.clp (the drawing has no concave edge)
    assert rows["waltz 12"]["answers"] == "same labels on 1,968 edges (312 +, 1,656 B)"
    assert rows["manners 16"]["answers"] == \
        "converge seating valid; CLIPS seating valid"
    for name, peer in (("closure chain 60", "clingo"), ("closure random 150/300", "clingo"),
                       ("waltz 12", "clips"), ("manners 16", "clips")):
        assert rows[name]["peer"] == peer
        assert all(v > 0 for v in rows[name]["ratio"].values())


WRONG_WALTZ = """ruleset waltz "Every edge a boundary: not what CLIPS finds"

enum Mark { unknown, plus, minus, boundary }
fact Line { p1: int, p2: int }
fact Edge { p1: int, p2: int, label: Mark }

agent boundary {
  when Line(p1, p2)
  emit Edge(p1: p1, p2: p2, label: boundary)
  emit Edge(p1: p2, p2: p1, label: boundary)
}
"""

WRONG_MANNERS = """ruleset manners "Everyone in seat 1: not a seating"

fact Guest { name: str, sex: str, hobby: str }
fact LastSeat { seat: int }
fact Seating { id: int, seat2: int }
fact Path { id: int, name: str, seat: int }

agent last {
  when LastSeat(seat)
  emit Seating(id: 1, seat2: seat)
}

agent first {
  when Guest(name)
  emit Path(id: 1, name: name, seat: 1)
}
"""


@needs_peers
def test_other_converge_rulesets_can_be_run_and_wrong_answers_are_caught(
        tmp_path: Path) -> None:
    # $CONVERGE_PEERS_RULESETS swaps in other versions of the rulesets; these two give
    # wrong answers, which the checks must catch.
    (tmp_path / "waltz.cvg").write_text(WRONG_WALTZ)
    (tmp_path / "manners.cvg").write_text(WRONG_MANNERS)
    out = tmp_path / "peers.json"
    done = subprocess.run([sys.executable, str(PEERS / "run.py"), "--quick", "--no-install",
                           "--only", "waltz", "manners", "--rounds", "0", "--json", str(out)],
                          capture_output=True, text=True, check=False, cwd=ROOT,
                          env={**os.environ, "CONVERGE_PEERS_RULESETS": str(tmp_path)})
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {row["workload"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows["waltz 12"]["agree"] is False
    assert rows["waltz 12"]["answers"].startswith("312 edges labelled differently")
    assert rows["manners 16"]["agree"] is False
    assert "converge seating invalid: seats" in rows["manners 16"]["answers"]
    assert "CLIPS seating valid" in rows["manners 16"]["answers"]
    assert all("ratio" not in row for row in rows.values())  # --rounds 0: answers only
    assert "FAILED" in done.stdout


@needs_peers
@pytest.mark.parametrize("strategy", ["DEPTH", "BREADTH", "LEX", "RANDOM"])
def test_clips_waltz_labels_do_not_depend_on_the_firing_order(strategy: str) -> None:
    # The labels are what a converge Waltz is checked against: they must be a function
    # of the drawing, not of CLIPS's conflict resolution.
    import clips

    def labels(strategy: str) -> list[list[object]]:
        env = clips.Environment()
        env.load(str(PEERS / "waltz.clp"))
        env.strategy = getattr(clips.Strategy, strategy)
        env.reset()
        env.load_facts(str(DATA / "waltz" / "waltz12.fct"))
        env.run()
        answer: list[list[object]] = worker.clips_answer("waltz", env)
        return answer

    reference = labels("DEPTH")
    assert len(reference) == 2 * 984 and {label for *_, label in reference} == {"+", "B"}
    assert labels(strategy) == reference


@needs_peers
def test_the_converge_waltz_labels_every_edge_as_the_clips_waltz_does() -> None:
    # rulesets/waltz/waltz.cvg and waltz.clp are one algorithm, the classic OPS5 / CLIPS
    # Waltz: every edge, each direction, must get the same label.
    import clips

    fct = DATA / "waltz" / "waltz12.fct"
    ruleset = converge_rules.load(ROOT / "rulesets" / "waltz" / "waltz.cvg", plugins=False)
    facts = run.converge_facts(ruleset, run.read_fct(fct))
    result = converge_rules.run(ruleset, [(t, f) for row in facts for t, f in row.items()])
    env = clips.Environment()
    env.load(str(PEERS / "waltz.clp"))
    env.reset()
    env.load_facts(str(fct))
    env.run()
    ours, theirs = worker.converge_answer("waltz", result), worker.clips_answer("waltz", env)
    assert len(theirs) == 2 * 984
    assert ours == theirs


def _junction_soup(seed: int) -> list[tuple[int, int]]:
    """The lines of 300 junctions of three lines each, far apart, points x * 100 + y:
    half with two lines within a few thousandths of a radian of one straight line (on
    either side of the classic Waltz's 0.001 tee tolerance), half at random."""
    rng = random.Random(seed)
    lines: list[tuple[int, int]] = []
    for i in range(300):
        bx, by = 2000 * (i % 15) + 3000, 40 + i // 15

        def point(dx: int, dy: int, bx: int = bx, by: int = by) -> int:
            return (bx + dx) * 100 + by + dy

        if i % 2:
            dx, dy = rng.randint(300, 1500), rng.choice([-1, 0, 1])
            ends = [point(dx, dy), point(-dx, -dy + rng.choice([-1, 0, 1])),
                    point(rng.randint(-900, 900), rng.choice([-30, -2, 2, 30]))]
        else:
            ends = [point(rng.randint(-900, 900), rng.randint(-35, 35)) for _ in range(3)]
        if len(set(ends)) == 3 and point(0, 0) not in ends:
            lines += [(point(0, 0), end) for end in ends]
    return lines


def _shape(kind: str, p1: object, p2: object, p3: object) -> tuple[object, ...]:
    """A junction as compared: its type, its p2 (an arrow's shaft, a tee's stem, the
    fork line the classic picks) and the set of its lines' far ends."""
    ends = frozenset(p for p in (p1, p2, p3) if p not in (-1, "nil"))
    return ("L", ends) if kind in ("L", "ell") else (kind, p2, ends)


@needs_peers
def test_the_converge_waltz_makes_the_junctions_the_clips_waltz_makes() -> None:
    # The classic classifies junctions by sums of angles (atan), with a tee tolerance of
    # 0.001; the ruleset with cross and dot products. Both must agree on every junction,
    # nearly straight ones included. (Tees only when exactly straight, and the shaft of
    # a fork chosen as for an arrow, made 50 of these 300 junctions arrows or forks
    # where CLIPS makes tees, and 54 forks with another p2.)
    import clips

    lines = _junction_soup(1)
    ruleset = converge_rules.load(ROOT / "rulesets" / "waltz" / "waltz.cvg", plugins=False)
    result = converge_rules.run(ruleset, [("Stage", {"value": "duplicate"})] + [
        ("Line", {"p1": a, "p2": b}) for a, b in lines])
    ours = {j["base_point"]: _shape(j["type"], j["p1"], j["p2"], j["p3"])
            for j in result.facts("Junction")}
    env = clips.Environment()
    env.load(str(PEERS / "waltz.clp"))
    env.reset()
    env.assert_string("(stage (value duplicate))")
    for a, b in lines:
        env.assert_string(f"(line (p1 {a}) (p2 {b}))")
    env.run()
    theirs = {f["base_point"]: _shape(str(f["type"]), f["p1"], f["p2"], f["p3"])
              for f in env.facts() if f.template.name == "junction"}
    assert {shape[0] for shape in theirs.values()} >= {"tee", "fork", "arrow"}
    assert len(theirs) >= 290
    assert ours == theirs


FACTS = [("guest", {"name": "a", "sex": "m", "hobby": "h1"}),
         ("guest", {"name": "b", "sex": "f", "hobby": "h1"}),
         ("guest", {"name": "b", "sex": "f", "hobby": "h2"}),
         ("guest", {"name": "c", "sex": "m", "hobby": "h2"}),
         ("guest", {"name": "d", "sex": "m", "hobby": "h1"}),
         ("last_seat", {"seat": "3"})]


def test_a_valid_seating_passes_the_manners_check() -> None:
    assert run.valid_seating(FACTS[:4] + FACTS[5:], [[1, "a"], [2, "b"], [3, "c"]]) is None


@pytest.mark.parametrize(("seating", "problem"), [
    ([[1, "a"], [2, "b"]], "not 1 to 3"),
    ([[1, "a"], [2, "b"], [2, "c"]], "not 1 to 3"),
    ([[1, "a"], [2, "b"], [3, "a"]], "every guest"),
    ([[1, "a"], [2, "c"], [3, "b"]], "same sex"),
    ([[1, "c"], [2, "b"], [3, "a"]], None),
])
def test_the_manners_check_names_what_is_wrong(seating: list[list[object]],
                                               problem: str | None) -> None:
    facts = FACTS[:4] + FACTS[5:]
    found = run.valid_seating(facts, seating)
    assert (found is None) if problem is None else (problem in str(found))


def test_neighbours_without_a_common_hobby_fail_the_manners_check() -> None:
    facts = [("guest", {"name": "a", "sex": "m", "hobby": "h1"}),
             ("guest", {"name": "b", "sex": "f", "hobby": "h2"}),
             ("last_seat", {"seat": "2"})]
    assert "share no hobby" in str(run.valid_seating(facts, [[1, "a"], [2, "b"]]))


def test_different_path_sets_fail_the_closure_check(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.write_bytes(array("q", [1, 2, 3]).tobytes())
    theirs.write_bytes(array("q", [1, 2, 4]).tobytes())
    agree, says = run.same_paths(ours, theirs)
    assert not agree and "1 only in clingo, 1 only in converge" in says
    assert run.same_paths(ours, ours) == (True, "same 3 paths")


def test_different_waltz_labels_fail_the_check(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.write_text(json.dumps([[1, 2, "+"], [2, 3, "B"]]))
    theirs.write_text(json.dumps([[1, 2, "-"], [2, 3, "B"]]))
    agree, says = run.same_labels(ours, theirs)
    assert not agree and "1-2: + vs -" in says


def test_fct_facts_become_typed_converge_facts_of_the_declared_types(tmp_path: Path) -> None:
    fct = tmp_path / "m.fct"
    fct.write_text("(guest (name 7) (sex f) (hobby h1))\n(last_seat (seat 16))\n"
                   "(context (state start))\n")
    ruleset = converge_rules.loads(
        'ruleset m "test"\n\nfact Guest { name: str, sex: str, hobby: str }\n'
        "fact LastSeat { seat: int }\n")
    facts = run.converge_facts(ruleset, run.read_fct(fct))
    # A numeric name stays a str (the field's type); Context is not declared: left out.
    assert facts == [{"Guest": {"name": "7", "sex": "f", "hobby": "h1"}},
                     {"LastSeat": {"seat": 16}}]
    result = converge_rules.run(ruleset, [(t, f) for row in facts for t, f in row.items()])
    assert result.status == "converged"


def test_a_line_that_is_not_a_template_fact_is_reported(tmp_path: Path) -> None:
    fct = tmp_path / "bad.fct"
    fct.write_text("(guest (name a))\n(guest name a)\n")
    with pytest.raises(ValueError, match=r"bad.fct:2: not a one-line template fact"):
        run.read_fct(fct)


@needs_peers
def test_clingo_hands_over_a_long_chain_closure_in_seconds(tmp_path: Path) -> None:
    # Regression: the check's path codes were src * 2**20 + dst, which clingo's number
    # hashing (by the low bits) put all in a few buckets: chain 500 took over a minute
    # to ground for the check, chain 800 seven. Now a second or two.
    edges = [(i, i + 1) for i in range(499)]
    (tmp_path / "edges.lp").write_text("".join(f"edge({a},{b}).\n" for a, b in edges))
    answer = tmp_path / "answer"
    done = subprocess.run([sys.executable, str(PEERS / "worker.py"), "clingo", "closure",
                           str(tmp_path), "--answer", str(answer)], capture_output=True,
                          text=True, check=False, timeout=30)
    assert done.returncode == 0, done.stderr
    codes = array("q", answer.read_bytes())
    assert len(codes) == 500 * 499 // 2
    assert codes[0] == 0 * worker.NODE_LIMIT + 1 and codes[-1] == 498 * worker.NODE_LIMIT + 499
