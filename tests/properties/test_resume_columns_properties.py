"""A job of int facts (a growing closure: checkpoints of format 4, columns), keyed
updates looked up by their whole key (the key table), lasting facts and pruning,
stopped after any cycle with any group size, resumes from its checkpoints on any
executor to the whole run's result and trace, byte for byte — on random sizes, values
(the ends of the 64-bit range, negatives), policies and facts."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import converge_rules
from converge_rules import api
from tests.store.test_checkpoints import JOB_TIME, same_result, stopper, stored_trace

SOURCE = """\
ruleset grows
root "grows" {
  max_cycles = 400
}
fact E { a: int, b: int }
fact P { a: int, b: int }
fact K { key id: int, key j: int, n: int }
fact S { id: int, n: int }
fact L { id: int, n: int }
agent base { when E(a, b) emit P(a: a, b: b) }
agent step { when P(a, b) and E(a: b, b: c) emit P(a: a, b: c) }
agent bump { when K(id, j, n) where n < LIMIT emit K(id: id, j: j, n: n + 1) }
agent look { when P(a, b) and k: K(id: a, j: 0) emit S(id: b, n: k.n) }
agent last { when K(id, j, n) where n % 3 == 0 emit lasting L(id: id, n: n) }
policy K { resolve by POLICY }
PRUNE
"""

VALUES = st.sampled_from([0, 1, -1, 2, 3, 7, 40_000, -40_000, 2**31, 2**63 - 1, -2**63])

_PROGRAMS: dict[str, Any] = {}


@settings(deadline=None, derandomize=True, database=None, max_examples=20,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_a_job_of_int_facts_resumes_from_its_checkpoints_to_the_whole_run(
    data: st.DataObject,
) -> None:
    text = (SOURCE.replace("LIMIT", str(data.draw(st.integers(1, 60), label="limit")))
            .replace("POLICY", data.draw(st.sampled_from(["latest", "highest n"])))
            .replace("PRUNE", data.draw(st.sampled_from(["", "prune L when age >= 2"]))))
    note(text)
    ruleset = _PROGRAMS.get(text)
    if ruleset is None:
        ruleset = _PROGRAMS[text] = converge_rules.loads(text, plugins=False)
    # a chain long enough for 64 new paths in a row (columns), and random edges
    chain = data.draw(st.integers(0, 90), label="chain")
    facts: list[tuple[str, dict[str, Any]]] = [
        ("E", {"a": i * 3 - 50, "b": i * 3 - 47}) for i in range(chain)]
    facts += [("E", {"a": a, "b": b})
              for a, b in data.draw(st.lists(st.tuples(VALUES, VALUES), max_size=8))]
    facts += [("K", {"id": i, "j": j, "n": n}) for i, j, n in data.draw(
        st.lists(st.tuples(VALUES, st.integers(0, 1), st.integers(-5, 5)), max_size=8))]
    note(json.dumps(facts))
    whole = api.run(ruleset, facts, now=JOB_TIME)
    if whole.cycles < 2:
        return
    stop = data.draw(st.integers(1, whole.cycles - 1), label="stop")
    group = data.draw(st.sampled_from([1, 3, 7, 100]), label="group")
    executor = data.draw(st.sampled_from(["serial", "threads", "processes"]),
                         label="executor")
    with tempfile.TemporaryDirectory() as tmp:
        location = f"sqlite:///{Path(tmp) / 'run.db'}?group={group}"
        first = api.run(ruleset, facts, now=JOB_TIME, store=location, stop=stopper(stop))
        assert first.status == "interrupted"
        resumed = api.resume(location, ruleset=ruleset, executor=executor)
        assert resumed.resumed_from == stop
        same_result(resumed, whole)
        assert stored_trace(location) == whole.trace.to_jsonl()
