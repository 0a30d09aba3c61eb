"""An aggregate that names nothing of the match (``where n == max(J(), n)``) has one
value for the whole of an agent's run: it is computed at most once per run, not once
per match that reaches it, and the matches found are those computed per match."""

from __future__ import annotations

from typing import Any

from compiler_support import ListView, compile_text, emitted, run

SOURCE = """ruleset t
fact J { key id: int, kind: str, size: int }
fact Mark { key id: int }
fact Limit { key id: int, size: int }
fact Out { key id: int }
agent biggest tier 2 {
  when J(id, size) and Mark(id) where size == max(Limit(), size)
  emit Out(id: id)
}
agent biggest_of_kind tier 2 {
  when J(id, kind, size) where size == max(J(kind: kind), size)
  emit Out(id: id)
}
agent above_mean tier 2 {
  when J(id, kind: "a", size) and not Mark(id: count(J()))
  where size * count(J(kind: "a")) > sum(J(kind: "a"), size)
  emit Out(id: id)
}
"""
PROGRAM = compile_text(SOURCE)


class CountingLive(dict[int, None]):
    """A live set that counts how often it is walked (an aggregate over its type)."""

    walks = 0

    def __iter__(self) -> Any:
        CountingLive.walks += 1
        return super().__iter__()


def _view(sizes: list[tuple[str, int]], marks: list[int]) -> ListView:
    view = ListView(PROGRAM)
    for i, (kind, size) in enumerate(sizes):
        view.add("J", i, kind, size)
        view.add("Limit", i, size)
    for i in marks:
        view.add("Mark", i)
    tid = PROGRAM.type_ids["Limit"]
    view.live[tid] = CountingLive(view.live[tid])
    return view


def _ids(agent: str, view: ListView, since: int = 0) -> list[int]:
    return sorted(values[0] for _, values in emitted(PROGRAM, run(PROGRAM, agent, view, since)))


SIZES = [("a", 3), ("b", 9), ("a", 9), ("b", 1), ("a", 5), ("b", 9)]


def test_an_aggregate_naming_nothing_of_the_match_is_computed_once_per_run() -> None:
    view = _view(SIZES, marks=list(range(len(SIZES))))
    CountingLive.walks = 0
    assert _ids("biggest", view) == [1, 2, 5]       # every J reaches the aggregate
    assert CountingLive.walks == 1
    CountingLive.walks = 0
    assert _ids("biggest", view) == [1, 2, 5]       # a new run computes it again
    assert CountingLive.walks == 1


def test_an_aggregate_over_a_name_of_the_match_still_follows_the_match() -> None:
    view = _view(SIZES, marks=[])
    assert _ids("biggest_of_kind", view) == [1, 2, 5]
    view.add("J", 6, "a", 12)
    assert _ids("biggest_of_kind", view) == [1, 5, 6]


def test_memoized_aggregates_in_sums_counts_and_negations_keep_their_values() -> None:
    view = _view(SIZES, marks=[])
    # kind a: sizes 3, 9, 5 (sum 17, count 3): 9 alone is above the mean; no Mark
    assert _ids("above_mean", view) == [2]
    view.add("J", 6, "a", 7)                        # sum 24, count 4: 9 and 7
    assert _ids("above_mean", view) == [2, 6]
    view.add("Mark", len(SIZES) + 1)                # Mark(id: count(J())) now blocks
    assert _ids("above_mean", view) == []
