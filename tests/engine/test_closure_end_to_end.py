"""The closure ruleset (joins with lazily built indexes) finds exactly the transitive
closure, for random graphs, whatever the executor."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import converge_rules

RULESET = converge_rules.loads('''ruleset closure "closure"

fact Edge { src: int, dst: int }
fact Path { src: int, dst: int }

agent base {
  when Edge(src: a, dst: b)
  emit Path(src: a, dst: b)
}

agent step {
  when Edge(src: a, dst: b) and Path(src: b, dst: c)
  emit Path(src: a, dst: c)
}
''', plugins=False)


def fixpoint(edges: set[tuple[int, int]]) -> set[tuple[int, int]]:
    paths = set(edges)
    while True:
        more = {(a, c) for a, b in edges for b2, c in paths if b == b2} - paths
        if not more:
            return paths
        paths |= more


@settings(max_examples=40, deadline=None)
@given(st.sets(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=25),
       st.sampled_from(["serial", "threads"]))
def test_closure_matches_a_plain_fixpoint(edges: set[tuple[int, int]], executor: str) -> None:
    result = converge_rules.run(RULESET, [("Edge", {"src": a, "dst": b}) for a, b in edges],
                                executor=executor, workers=3)
    assert result.status == "converged"
    assert {(p["src"], p["dst"]) for p in result.facts("Path")} == fixpoint(edges)

