"""What the trace properties share (tests/properties/test_trace_lines_properties.py,
test_trace_rows_properties.py): the hypothesis profile, programs compiled from
generated or fixed rulesets, and a generated job run to its result."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import run
from converge_rules.engine.result import RunResult
from converge_rules.errors import InputError
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Program
from tests.properties import strategies as S

PROFILE = settings(deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.data_too_large])

HUGE = 7e307
"""A float factor that makes arithmetic on generated floats overflow to infinity."""

LEAN = """\
ruleset lean
root "lean" {
  max_cycles = 10000
}
fact Edge { a: int, b: int }
fact Path { a: int, b: int }
fact Best { key a: int, b: int }
agent base { when Edge(a, b) emit Path(a: a, b: b) }
agent step { when Path(a, b) and Edge(a: b, b: c) emit Path(a: a, b: c) }
agent best { when Path(a, b) emit Best(a: a, b: b) }
policy Best { resolve by highest b }
"""
"""The columnar closure, with a keyed type whose conflicts the trace records."""


def program_of(text: str) -> Program:
    """The compiled program of ``text``, which must check without errors."""
    checked = check_file("generated.cvg", source=text)
    errors = [f"{d.span}: {d.message}" for d in checked.diagnostics if d.is_error]
    assert not errors, "\n".join(errors) + "\n" + text
    return compile_ruleset(checked)


def scaled(value: Any, factor: float) -> Any:
    """``value`` with its floats (in lists too) multiplied by ``factor``."""
    if isinstance(value, float):
        return value * factor
    if isinstance(value, tuple | list):
        return [scaled(v, factor) for v in value]
    return value


def generated_run(data: st.DataObject) -> RunResult | None:
    """The result of a job drawn from ``data``: a well-typed ruleset and its facts,
    floats sometimes near the largest; None when the input is refused (not the
    trace properties' concern)."""
    ruleset = data.draw(S.typed_rulesets(), label="ruleset")
    note(ruleset.text)
    program = program_of(ruleset.text)
    facts = data.draw(S.typed_facts(ruleset), label="facts")
    factor = data.draw(st.sampled_from([HUGE, 1.0]), label="float factor")
    facts = [(t, {k: scaled(v, factor) for k, v in f.items()}) for t, f in facts]
    try:
        return run(program, facts)
    except InputError as exc:
        event(f"refused: {type(exc).__name__}")
        return None
