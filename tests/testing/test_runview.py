"""A run seen through its trace agrees with the engine's own result: the final
context rebuilt from trace events is exactly the live facts of the result, for every
test of every example ruleset (replacements, retractions and prunes included), and a
trace read back from JSON Lines gives the same view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converge_rules.analysis.runview import read_trace, view_from_events, view_from_result
from converge_rules.engine import run
from converge_rules.errors import InputError
from converge_rules.plugins import load_registries
from converge_rules.testing.mocks import MockTools
from converge_rules.testing.runner import given_facts, load_suite, mock_answers

ROOT = Path(__file__).parents[2]
RULESETS = sorted((ROOT / "rulesets").rglob("*.cvg"))
COUNTER = """\
ruleset counter
fact Count { key id: str, n: int }
fact Seen { id: str, n: int }
fact Temp { n: int }
agent step {
  when Count(id, n) where n < 5
  emit Count(id: id, n: n + 1)
}
agent seen {
  when Count(id, n)
  emit Seen(id: id, n: n)
}
policy Count { resolve by latest }
prune Temp when age > 1
test "counts" {
  given Count(id: "a", n: 0)
  given Temp(n: 1)
  expect Count(id: "a", n: 5)
  expect no Temp()
}
"""


def _sorted(rows: list[dict[str, object]]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


def _cases() -> list[tuple[Path, str]]:
    out = []
    for path in RULESETS:
        text = path.read_text(encoding="utf-8")
        if 'test "' in text:
            out.append((path, path.name))
    return out


def _check_agreement(path: Path, tmp_path: Path) -> int:
    # the installed plugins: a shipped ruleset may use converge-example's resolver
    suite = load_suite(path, load_registries())
    assert suite.runnable, [d.message for d in suite.diagnostics]
    assert suite.checked is not None
    from converge_rules.analysis.interpret import interpreter_for

    interp = interpreter_for(suite.checked)
    for case in suite.cases:
        mocks = MockTools(mock_answers(case.test, interp, case.bindings),
                          tuple(suite.checked.tools))
        trace = tmp_path / "trace.jsonl"
        result = run(suite.program, given_facts(case.test, interp, case.bindings),
                     tools=mocks.table(), trace=trace)
        view = view_from_result(result)
        for spec in suite.program.types:
            rebuilt = [dict(f.values) for f in view.live(spec.name)]
            assert _sorted(rebuilt) == _sorted(result.facts(spec.name)), (case.id, spec.name)
        assert view.status == result.status
        from_file = read_trace(trace)
        assert from_file.status == view.status
        assert {k: dict(f.values) for k, f in from_file.facts.items()} == \
            {k: dict(f.values) for k, f in view.facts.items()}
        assert from_file.removed == view.removed
    return len(suite.cases)


@pytest.mark.parametrize("path", [p for p, _ in _cases()], ids=[n for _, n in _cases()])
def test_trace_view_agrees_with_the_result(path: Path, tmp_path: Path) -> None:
    assert _check_agreement(path, tmp_path) > 0


def test_the_shipped_rulesets_have_tests() -> None:
    assert len(_cases()) >= 5, _cases()


def test_replacement_and_prune(tmp_path: Path) -> None:
    path = tmp_path / "counter.cvg"
    path.write_text(COUNTER, encoding="utf-8")
    assert _check_agreement(path, tmp_path) == 1
    suite = load_suite(path)
    assert suite.checked is not None
    result = run(suite.program, [("Count", {"id": "a", "n": 0}), ("Temp", {"n": 1})])
    view = view_from_result(result)
    assert [f.values["n"] for f in view.live("Count")] == [5]
    assert any("replaced by" in why for why in view.removed.values())
    assert view.pruned_types["Temp"] == 1
    assert view.live("Temp") == []


def test_unknown_events_are_ignored_and_status_read() -> None:
    view = view_from_events([{"event": "something_new", "x": 1},
                             {"event": "status", "status": "converged", "detail": "ok"}])
    assert view.status == "converged" and view.status_detail == "ok"


def test_bad_trace_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"event": "status", "status": "converged", "detail": ""}\n[1]\n',
                    encoding="utf-8")
    with pytest.raises(InputError, match=r"t.jsonl:2: not a trace event"):
        read_trace(path)
    with pytest.raises(InputError, match="cannot read trace"):
        read_trace(tmp_path / "missing.jsonl")
