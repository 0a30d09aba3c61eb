"""A loop whose whole body emits one constant (``when Reading(kind: "k0", value) emit
Seen(kind: "k0")``, ``converge bench``'s routing) is generated as two list extensions
(``codegen._whole_constant_loops``): an optimisation of the generated code only, the
same outputs, support, facts and trace as the loop."""

from __future__ import annotations

from typing import Any

import pytest

from converge_rules.compiler import codegen
from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import run
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Program

CONSTANTS = """ruleset consts "Loops that emit a constant"
root "r" { max_cycles = 12 }

fact A { n: int, tag: str }
fact Seen { what: str }

agent tagged { when A(tag: "x", n) emit Seen(what: "x") }
agent any { when A(n, tag) emit Seen(what: "any") }
agent big { when A(n, tag) where n > 2 emit Seen(what: "big") }
agent pair { when A(n, tag: "x") and A(n, tag: "y") emit Seen(what: "pair") }
agent more { when A(n, tag) where n < 6 emit A(n: n + 1, tag: tag) }
"""


def _program() -> Program:
    checked = check_file("consts.cvg", source=CONSTANTS)
    assert not [d for d in checked.diagnostics if d.is_error]
    return compile_ruleset(checked)


def _outcome(program: Program, facts: list[tuple[str, dict[str, Any]]]) -> tuple[Any, ...]:
    result = run(program, facts)
    return (result.status, result.cycles, result.facts("A"), result.facts("Seen"),
            result.trace.to_jsonl())


def test_only_loops_that_emit_a_constant_alone_are_extended_whole() -> None:
    source = {a.name: a.source for a in _program().agents}
    assert "support += _delta(" in source["tagged"]          # routed by its constant
    assert "support += new(" in source["any"]                # every new A
    assert "out += [('any',)] * (len(support) - before)" in source["any"]
    for name in ("big", "pair", "more"):  # a guard, two patterns, a computed value
        assert "support +=" not in source[name], name


@pytest.mark.parametrize("tags", [["x"], ["x", "y", "z"], ["y", "x", "x"], []])
def test_constant_loops_extended_whole_give_the_loops_result_and_trace(
        monkeypatch: pytest.MonkeyPatch, tags: list[str]) -> None:
    """Over several cycles (``more`` adds A facts each cycle: runs from a watermark,
    buckets that grow), with duplicates of earlier outputs and facts of other tags."""
    facts = [("A", {"n": i % 3, "tag": t}) for i, t in enumerate(tags)]
    whole = _outcome(_program(), facts)
    with monkeypatch.context() as m:
        m.setattr(codegen, "_whole_constant_loops", lambda lines: lines)
        looped = _program()
        assert all("support +=" not in a.source for a in looped.agents)
        assert _outcome(looped, facts) == whole
    assert whole[0] == "converged"
