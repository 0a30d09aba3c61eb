"""Memory is bounded by the budgets: an agent run builds at most ``max_facts`` outputs,
a computed ``str``/``list`` value is bounded by ``max_string_length`` /
``max_list_length``, and a ``MemoryError`` anywhere ends the job ``budget_exceeded``
(budget ``memory``), never ``converged``.

The findings of the adversarial pass are reproduced as found, in a child process whose
address space is limited to 1 GiB (and with a timeout), so the test machine is safe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_programs import Builder, each, f

import converge_rules
from converge_rules.engine import run
from converge_rules.engine.executors import fork_available, processes_executor
from converge_rules.errors import CheckError
from converge_rules.program import EMIT, Budgets

# ------------------------------------------------- the findings, in a 1 GiB child

CHILD = """\
import json, resource, sys
limit = 1 << 30
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import converge_rules
ruleset = converge_rules.load(sys.argv[1])
facts = json.loads(sys.argv[2])
# a tool that asks for 2 GiB: a real MemoryError, without using the memory
tools = {"big": lambda args: {"text": "x" * (2 << 30)}}
result = converge_rules.run(ruleset, [(t, v) for t, v in facts], tools=tools)
print(json.dumps({"status": result.status, "detail": result.detail,
                  "exceeded": [n for n, b in result.budget.items() if b["exceeded"]]}))
"""

JOIN = """\
ruleset join

root "every pair" {
  max_facts = 10_000
}

fact A { x: int }
fact B { y: int }
fact P { x: int, y: int }

agent pair {
  when A(x) and B(y)
  emit P(x: x, y: y)
}
"""

DOUBLING = """\
ruleset grow

ROOT
fact S { s: str }

agent double {
  when S(s)
  emit S(s: s + s)
}
"""


def in_small_child(tmp_path: Path, ruleset: str, facts: list[Any]) -> dict[str, Any]:
    """Run ``ruleset`` on ``facts`` in a child limited to 1 GiB of address space; the
    child must end normally and print its result."""
    pytest.importorskip("resource")
    path = tmp_path / "r.cvg"
    path.write_text(ruleset, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), json.dumps(facts)],
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_a_3000_by_3000_join_stops_at_max_facts_outputs(tmp_path: Path) -> None:
    # found: 9M matches (2.3 GB) built in one agent run despite max_facts = 10000
    facts = [["A", {"x": i}] for i in range(3000)] + [["B", {"y": i}] for i in range(3000)]
    doc = in_small_child(tmp_path, JOIN, facts)
    assert doc["status"] == "budget_exceeded", doc
    assert doc["exceeded"] == ["max_facts"]
    assert "'pair'" in doc["detail"] and "outputs" in doc["detail"]


def test_a_string_doubling_every_cycle_stops_at_max_string_length(tmp_path: Path) -> None:
    # found: a 512 MB string, then a MemoryError, and the job ended `converged`
    doc = in_small_child(tmp_path, DOUBLING.replace("ROOT", ""), [["S", {"s": "ab"}]])
    assert doc["status"] == "budget_exceeded", doc
    assert doc["exceeded"] == ["max_string_length"]
    assert doc["detail"] == ("agent 'double' gave S.s a string of 1,048,576 characters "
                             "(max_string_length is 1,000,000)")


BIG_TOOL = """\
ruleset big
uses tool big

fact Q { c: str }
fact R { text: str }

agent ask {
  when Q(c)
  call big(c: c) as r
  emit R(text: r.text)
}
"""


def test_running_out_of_memory_is_never_a_success(tmp_path: Path) -> None:
    # found with the doubling string: a MemoryError discarded the effect and the job
    # ended `converged`; here a tool runs out of memory
    doc = in_small_child(tmp_path, BIG_TOOL, [["Q", {"c": "x"}]])
    assert doc["status"] == "budget_exceeded", doc
    assert doc["exceeded"] == ["memory"]
    assert doc["detail"] == "agent 'ask' ran out of memory (MemoryError)"


# ------------------------------------------------------------- outputs of one run


def duplicates_program(copies: int, **budgets: Any) -> Any:
    """One hand-written agent emitting the same fact ``copies`` times per new N (an
    agent that does not count its own outputs, as generated code does)."""
    b = Builder()
    n = b.fact("N", f("v", "int"))
    out = b.fact("Out", f("v", "int"))
    b.agent("dup", each(n, lambda v: [(EMIT, out, (v[0],))] * copies), reads=[n],
            emits=[out])
    return b.build(**budgets)


def test_duplicates_count_against_max_facts_outputs_of_one_run() -> None:
    result = run(duplicates_program(11, max_facts=10), [("N", {"v": 1})])
    assert result.status == "budget_exceeded"
    assert result.detail == ("agent 'dup' built 11 outputs in one run (max_facts is 10; "
                             "duplicates count)")
    assert result.budget["max_facts"]["exceeded"]
    assert result.facts("N") == [{"v": 1}]  # partial results
    ok = run(duplicates_program(10, max_facts=10), [("N", {"v": 1})])
    assert ok.status == "converged" and ok.facts("Out") == [{"v": 1}]


def test_a_three_way_join_stops_before_building_every_match() -> None:
    rs = converge_rules.loads(
        'ruleset j\nroot "r" {\n  max_facts = 1_000\n}\nfact A { x: int }\n'
        "fact T { x: int, y: int, z: int }\n"
        "agent triple {\n  when A(x) and A(x: y) and A(x: z)\n  emit T(x: x, y: y, z: z)\n}\n",
        plugins=False)
    result = converge_rules.run(rs, [("A", {"x": i}) for i in range(100)])
    assert result.status == "budget_exceeded"
    assert result.detail.startswith("agent 'triple' built more than 1,000 outputs")
    assert result.facts("T") == []


def test_a_join_over_max_facts_in_its_last_inner_loop_stops_all_the_same() -> None:
    # no test can raise: only the loop around the innermost counts outputs, and the
    # pass at its end. 32 P facts from x = 0 give 32 * 32 = 1,024 matches, over the
    # limit in the last inner loop; the other 99 A facts have no P: no loop around the
    # innermost runs again, and the run stops at the end of the pass
    rs = converge_rules.loads(
        'ruleset j\nroot "r" {\n  max_facts = 1_000\n}\nfact A { x: int }\n'
        "fact P { a: int, b: int }\nfact T { x: int, y: int, z: int }\n"
        "agent pairs {\n  when A(x) and P(a: x, b: y) and P(a: x, b: z) where y != z or y == z\n"
        "  emit T(x: x, y: y, z: z)\n}\n",
        plugins=False)
    facts = [("A", {"x": i}) for i in range(100)] + [("P", {"a": 0, "b": i}) for i in range(32)]
    result = converge_rules.run(rs, facts)
    assert result.status == "budget_exceeded"
    assert result.detail.startswith("agent 'pairs' built more than 1,000 outputs")
    assert result.facts("T") == []


# ------------------------------------------------------------------- value sizes


def load(text: str) -> converge_rules.Ruleset:
    return converge_rules.loads(text, plugins=False)


GROW = """\
ruleset grow
root "r" {
  max_string_length = 10
  max_list_length = 4
}
fact S { s: str }
fact Long { s: str }
fact L { xs: list[str] }
fact N { n: int }
AGENT
"""


@pytest.mark.parametrize(("agent", "facts", "detail"), [
    ("agent a {\n  when S(s)\n  emit S(s: s + s)\n}",
     [("S", {"s": "abc"})],
     "agent 'a' gave S.s a string of 12 characters (max_string_length is 10)"),
    ("agent a {\n  when L(xs)\n  emit L(xs: xs + xs)\n}",
     [("L", {"xs": ["x"]})],
     "agent 'a' gave L.xs a list of 8 items (max_list_length is 4)"),
    ("agent a {\n  when S(s)\n  emit L(xs: [s, s + s])\n}",
     [("S", {"s": "abcdef"})],
     "agent 'a' gave L.xs[1] a string of 12 characters (max_string_length is 10)"),
    ("agent a {\n  when S(s)\n  emit Long(s: upper(s) + s)\n}",
     [("S", {"s": "abcdef"})],
     "agent 'a' gave Long.s a string of 12 characters (max_string_length is 10)"),
])
def test_a_computed_value_over_its_budget_stops_the_job(
    agent: str, facts: list[Any], detail: str
) -> None:
    result = converge_rules.run(load(GROW.replace("AGENT", agent)), facts)
    assert result.status == "budget_exceeded"
    assert result.detail == detail
    budget = detail.split("(")[1].split(" ")[0]
    assert [n for n, b in result.budget.items() if b["exceeded"]] == [budget]


def test_values_copied_from_facts_are_not_measured_again() -> None:
    # inputs are not measured; a copy neither grows nor costs a check
    agent = ("agent a {\n  when S(s) and L(xs)\n  emit Long(s: s)\n  emit L(xs: [s])\n"
             "  emit L(xs: if s == \"\" then xs else [s, s])\n}")
    facts = [("S", {"s": "a" * 50}), ("L", {"xs": ["x"] * 9})]
    result = converge_rules.run(load(GROW.replace("AGENT", agent)), facts)
    assert result.status == "converged", result.detail
    assert result.facts("Long") == [{"s": "a" * 50}]


def test_a_tool_result_over_max_string_length_stops_the_job() -> None:
    rs = load('ruleset t\nuses tool big\nroot "r" {\n  max_string_length = 10\n}\n'
              "fact Q { c: str }\nfact R { text: str }\n"
              "agent ask {\n  when Q(c)\n  call big(c: c) as r\n  emit R(text: r.text)\n}\n")
    result = converge_rules.run(rs, [("Q", {"c": "x"})],
                                tools={"big": lambda args: {"text": "y" * 11}})
    assert result.status == "budget_exceeded"
    assert result.detail == ("agent 'ask' gave R.text a string of 11 characters "
                             "(max_string_length is 10)")


@pytest.mark.skipif(not fork_available(), reason="the processes executor needs fork")
def test_a_value_budget_stops_the_job_under_the_processes_executor() -> None:
    result = converge_rules.run(load(GROW.replace(
        "AGENT", "agent a {\n  when S(s)\n  emit S(s: s + s)\n}")), [("S", {"s": "abc"})],
        executor=processes_executor(2))
    assert result.status == "budget_exceeded"
    assert result.detail.startswith("agent 'a' gave S.s a string of 12 characters")


def test_value_budgets_are_set_in_the_root_and_checked() -> None:
    assert load("ruleset r\nfact S { s: str }\n").program.budgets == Budgets()
    assert Budgets().max_string_length == 1_000_000
    assert Budgets().max_list_length == 100_000
    rs = load(GROW.replace("AGENT", ""))
    assert (rs.program.budgets.max_string_length, rs.program.budgets.max_list_length) == (10, 4)
    with pytest.raises(CheckError) as info:
        load('ruleset r\nroot "r" {\n  max_string_length = 0\n  max_list_length = 1s\n}\n')
    assert [d.code for d in info.value.diagnostics] == ["CVG503", "CVG503"]


# ---------------------------------------------------------------- MemoryError


def oom(*_: Any) -> Any:
    raise MemoryError


def test_a_memory_error_in_an_agent_stops_the_job_and_the_trace_says_so() -> None:
    b = Builder()
    n = b.fact("N", f("v", "int"))
    out = b.fact("Out", f("v", "int"))
    b.agent("fine", each(n, lambda v: [(EMIT, out, (v[0],))]), reads=[n], emits=[out])
    b.agent("greedy", oom, tier=2, reads=[out], emits=[out])
    result = run(b.build(), [("N", {"v": 1})])
    assert result.status == "budget_exceeded"
    assert result.detail == "agent 'greedy' ran out of memory (MemoryError)"
    assert result.budget["memory"] == {"limit": None, "used": None, "exceeded": True}
    assert result.facts("Out") == [{"v": 1}]  # partial results
    events = [json.loads(line) for line in result.trace.bare_lines()]
    assert {"event": "budget", "name": "memory", "limit": None, "used": None} in events
    assert events[-1]["status"] == "budget_exceeded"


def test_a_memory_error_in_the_merge_stops_the_job() -> None:
    b = Builder()
    n = b.fact("N", f("v", "int"))
    out = b.fact("Out", f("v", "int"))
    b.agent("fine", each(n, lambda v: [(EMIT, out, (v[0],))]), reads=[n], emits=[out])
    b.prune(n, oom)
    result = run(b.build(), [("N", {"v": 1})])
    assert result.status == "budget_exceeded"
    assert "out of memory" in result.detail
    assert result.budget["memory"]["exceeded"]
    assert result.facts("N") == [{"v": 1}]


def test_a_memory_error_in_a_tool_stops_the_job() -> None:
    rs = load('ruleset t\nuses tool big\nfact Q { c: str }\nfact R { text: str }\n'
              "agent ask {\n  when Q(c)\n  call big(c: c) as r\n  emit R(text: r.text)\n}\n")
    result = converge_rules.run(rs, [("Q", {"c": "x"})], tools={"big": oom})
    assert result.status == "budget_exceeded"
    assert result.detail == "agent 'ask' ran out of memory (MemoryError)"
