"""Validity of the classic benchmarks' answers, read from a converge result's facts
(``RunResult.facts()``-like mappings: type name → list of field dicts). Shared by the
test suite and ``bench_classics.py``; each returns the problems found (empty: valid)."""

from __future__ import annotations

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


def waltz_problems(facts: Facts) -> list[str]:
    """Waltz: every edge is labelled and plotted, an edge and its reverse carry one
    label, every junction is made and its edges' labels are a legal labelling of its
    type."""
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
