"""Two jobs on the processes executor, started from two threads of one process at the
same time, each get their own workers and their own answer (found: a module-level
variable handed the replica to forked workers, and concurrent jobs broke each other
with ConnectionResetError and AssertionError in the workers)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

import converge_rules
from converge_rules.engine.executors import fork_available

RULESET = """ruleset closure
fact Edge { src: int, dst: int }
fact Path { src: int, dst: int }
agent base { when Edge(src, dst) emit Path(src: src, dst: dst) }
agent step { when Path(src, dst: mid) and Edge(src: mid, dst) emit Path(src: src, dst: dst) }
"""


@pytest.mark.skipif(not fork_available(), reason="the processes executor needs fork")
def test_two_process_jobs_at_once_in_threads() -> None:
    ruleset = converge_rules.loads(RULESET, plugins=False)

    def job(n: int) -> int:
        edges = [("Edge", {"src": i, "dst": i + 1}) for i in range(n)]
        result = converge_rules.run(ruleset, edges, executor="processes", workers=2)
        assert result.status == "converged"
        return len(result.facts("Path"))

    sizes = [12, 17] * 4
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(job, sizes))
    assert counts == [n * (n + 1) // 2 for n in sizes]
