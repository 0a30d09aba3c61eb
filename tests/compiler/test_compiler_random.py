"""Every random ruleset that checks also compiles, and its generated agents run on
random facts without a fault of the generated code itself (an unbound or unknown name,
a field position out of range, a call of something that is not there)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from compiler_support import ListView, RecordingRuntime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Program, ValueType

_PATH = Path(__file__).resolve().parents[1] / "properties" / "strategies.py"
_SPEC = importlib.util.spec_from_file_location("converge_test_strategies", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
strategies = sys.modules.setdefault(_SPEC.name, importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(strategies)

# Faults of generated code. Errors of the rule's own expressions (division by zero, a
# tool result without the field read) are the rule's business and may happen here.
CODE_FAULTS = (NameError, SyntaxError, IndexError, AttributeError, AssertionError)


def _value(vt: ValueType, draw: Any) -> Any:
    if vt.optional and draw(st.booleans()):
        return None
    if vt.base == "str":
        return draw(st.sampled_from(["a", "b", "1"]))
    if vt.base == "int":
        return draw(st.integers(-2, 3))
    if vt.base == "float":
        return draw(st.sampled_from([0.0, 1.5, -2.0]))
    if vt.base == "bool":
        return draw(st.booleans())
    if vt.base == "enum":
        return draw(st.sampled_from(vt.members)) if vt.members else "x"
    assert vt.element is not None
    return tuple(_value(vt.element, draw) for _ in range(draw(st.integers(0, 2))))


def _fill(program: Program, draw: Any) -> ListView:
    view = ListView(program)
    for _ in range(draw(st.integers(0, 12))):
        if not program.types:
            break
        spec = draw(st.sampled_from(program.types))
        view.add(spec.name, *(_value(f.type, draw) for f in spec.fields))
    return view


def test_checked_random_rulesets_compile_and_run() -> None:
    compiled: list[str] = []  # about one random ruleset in five checks

    @settings(max_examples=50, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(text=strategies.ruleset_texts(), data=st.data())
    def compiles_and_runs(text: str, data: st.DataObject) -> None:
        checked = check_file("random.cvg", source=text)
        if checked.ok:
            _compile_and_run(compile_ruleset(checked, functions={}), data)
            compiled.append(text)

    compiles_and_runs()
    assert compiled, "no random ruleset checked: the property was never tried"


def _compile_and_run(program: Program, data: st.DataObject) -> None:
    view = _fill(program, data.draw)
    runtime = RecordingRuntime(lambda tool, args: {})
    for agent in program.agents:
        for since in (0, len(view.values) // 2):
            try:
                agent.fn(view, since, runtime)
            except CODE_FAULTS:
                raise
            except Exception:  # the rule's own expression failed
                continue
    for req in program.requires:
        try:
            req.fn(view)
        except CODE_FAULTS:
            raise
        except Exception:  # the goal's own expression failed
            continue
