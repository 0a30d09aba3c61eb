"""Validity of the classic benchmarks' answers, read from a converge result's facts
(``RunResult.facts()``-like mappings: type name → list of field dicts). Shared by the
test suite and ``bench_classics.py``; each returns the problems found (empty: valid)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

Facts = Mapping[str, Sequence[Mapping[str, Any]]]


def manners_problems(inputs: Sequence[tuple[str, Mapping[str, Any]]], facts: Facts) -> list[str]:
    """Miss Manners: the seating that reaches the last seat puts every guest on one
    seat, once; neighbours are of opposite sex and share a hobby."""
    sex: dict[str, str] = {}
    hobbies: dict[str, set[str]] = defaultdict(set)
    last = 0
    for name, f in inputs:
        if name == "Guest":
            sex[str(f["name"])] = str(f["sex"])
            hobbies[str(f["name"])].add(str(f["hobby"]))
        elif name == "LastSeat":
            last = int(f["seat"])
    done = [s for s in facts.get("Seating", ()) if s["seat2"] == last]
    if len(done) != 1:
        return [f"{len(done)} seatings reach the last seat ({last}), want 1"]
    path = [p for p in facts.get("Path", ()) if p["id"] == done[0]["id"]]
    by_seat = {p["seat"]: p["name"] for p in path}
    problems: list[str] = []
    if sorted(by_seat) != list(range(1, last + 1)) or len(path) != last:
        problems.append(f"seats {sorted(p['seat'] for p in path)}, want 1..{last} once each")
    if sorted(by_seat.values()) != sorted(sex) or len(set(by_seat.values())) != len(path):
        problems.append("not every guest is seated exactly once")
    for seat in range(1, last):
        a, b = by_seat.get(seat), by_seat.get(seat + 1)
        if a not in sex or b not in sex:
            continue  # a seat missing or a stranger: reported above
        if sex[a] == sex[b]:
            problems.append(f"seats {seat} and {seat + 1} ({a}, {b}) are of one sex")
        if not hobbies[a] & hobbies[b]:
            problems.append(f"seats {seat} and {seat + 1} ({a}, {b}) share no hobby")
    return problems


# Legal labellings of each junction type (Huffman-Clowes, with the boundary label `B`
# undirected as the benchmark writes it): an arrow and a tee in (barb, shaft, barb)
# order, an L and a fork in any order.
_ARROW = {("boundary", "plus", "boundary"), ("plus", "minus", "plus"),
          ("minus", "plus", "minus")}
_ELL = {("boundary", "boundary"), ("boundary", "plus"), ("boundary", "minus")}
_FORK = {("plus", "plus", "plus"), ("minus", "minus", "minus"),
         ("boundary", "boundary", "minus")}


def waltz_problems(inputs: Sequence[tuple[str, Mapping[str, Any]]], facts: Facts) -> list[str]:
    """Waltz: every edge is labelled and plotted, an edge and its reverse carry one
    label, every junction is made, of the type and with the shaft that the drawing's
    geometry gives (computed here from the input lines, as the benchmark's
    ``make-3_junction`` does, not taken from the ruleset), and its edges' labels are
    a legal labelling of its type."""
    label = {(e["p1"], e["p2"]): e["label"] for e in facts.get("Edge", ())}
    problems = [f"edge {a}-{b} is not labelled" for (a, b), x in label.items()
                if x == "unknown"]
    problems += [f"edge {a}-{b} is not plotted" for e in facts.get("Edge", ())
                 if not e["plotted"] for a, b in [(e["p1"], e["p2"])]]
    problems += [f"edge {a}-{b} is {x} one way, {label.get((b, a))} the other"
                 for (a, b), x in label.items() if label.get((b, a)) != x]
    bases = {a for a, _ in label}
    junctions = {j["base_point"]: j for j in facts.get("Junction", ())}
    problems += [f"no junction at {b}" for b in sorted(bases - set(junctions))]
    problems += _geometry_problems(inputs, junctions)
    for base, j in sorted(junctions.items()):
        ends = [j["p1"], j["p2"]] + ([j["p3"]] if j["type"] != "ell" else [])
        got = tuple(label.get((base, p), "missing") for p in ends)
        kind = j["type"]
        legal = (got in _ARROW if kind == "arrow"
                 else got[0] == got[2] == "boundary" if kind == "tee"
                 else tuple(sorted(got)) in _ELL if kind == "ell"
                 else tuple(sorted(got)) in _FORK)
        if not legal:
            problems.append(f"{kind} junction at {base} labelled {got}")
    return problems


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _angle(base: int, p: int) -> float:
    """The direction from point ``base`` to point ``p`` (a point is x * 100 + y)."""
    return math.atan2(p % 100 - base % 100, p // 100 - base // 100)


def _between(base: int, a: int, b: int) -> float:
    """The angle between the lines from ``base`` to ``a`` and to ``b``, 0 to pi."""
    d = abs(_angle(base, a) - _angle(base, b))
    return 2 * math.pi - d if d > math.pi else d


def _geometry_problems(inputs: Sequence[tuple[str, Mapping[str, Any]]],
                       junctions: Mapping[Any, Mapping[str, Any]]) -> list[str]:
    """Each junction's type and lines against the drawing: two lines make an ell; of
    three, the shaft is the line whose angles to the other two sum least, and the sum
    is pi for a tee, less for an arrow and more for a fork (the benchmark's
    ``make-3_junction``)."""
    ends: dict[int, set[int]] = defaultdict(set)
    for name, f in inputs:
        if name == "Line":
            ends[int(f["p1"])].add(int(f["p2"]))
            ends[int(f["p2"])].add(int(f["p1"]))
    problems: list[str] = []
    for base, others in sorted(ends.items()):
        j = junctions.get(base)
        if j is None:
            continue  # reported as missing
        if len(others) == 2:
            want, shaft = "ell", None
            got_lines = {j["p1"], j["p2"]}
        else:
            sums = sorted((sum(_between(base, p, q) for q in others if q != p), p)
                          for p in others)
            total, shaft = sums[0]
            want = ("tee" if abs(total - math.pi) < 0.001
                    else "fork" if total > math.pi else "arrow")
            got_lines = {j["p1"], j["p2"], j["p3"]}
        if j["type"] != want:
            problems.append(f"junction at {base} is made {_a(j['type'])}; its lines "
                            f"make {_a(want)}")
        elif got_lines != others:
            problems.append(f"junction at {base} has lines to {sorted(got_lines)}; the "
                            f"drawing has {sorted(others)}")
        elif shaft is not None and want != "fork" and j["p2"] != shaft:
            problems.append(f"{want} junction at {base} has its shaft to {j['p2']}; the "
                            f"drawing's is to {shaft}")
    return problems
