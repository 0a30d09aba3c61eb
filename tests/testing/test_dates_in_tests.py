"""Dates in a test's `given` facts and `mock` arguments and answers: found when the
check that a test's values are ones a fact can hold (finite numbers, valid text) met
the date types, and failed every test that gave a date ("of type date, not a JSON
value")."""

from __future__ import annotations

from pathlib import Path

import pytest

from converge_rules.testing.runner import run_tests

RULESET = """ruleset dt
uses tool lookup
fact Bill { key id: str, due: date }
fact Late { key id: str, days: int }
fact Note { key id: str, when: date }
agent late {
  when Bill(id, due)
  where today() - due > 30d
  emit Late(id: id, days: (today() - due).days)
}
agent note {
  when Bill(id, due)
  call lookup(id: id, due: due) as r
  emit Note(id: id, when: r.when)
}
test "late bill" {
  given now datetime("2026-12-06T09:00:00Z")
  given Bill(id: "a", due: date("2026-10-01"))
  mock tool lookup(id: "a", due: date("2026-10-01")) returns {when: date("2026-11-01")}
  expect Late(id: "a", days: 66)
  expect Note(id: "a", when: date("2026-11-01"))
}
"""


def test_a_test_gives_and_mocks_dates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    monkeypatch.chdir(tmp_path)
    Path("dt.cvg").write_text(RULESET, encoding="utf-8")
    report, _ = run_tests([Path("dt.cvg")], plugins=False)
    outcomes = [(o.name, o.status, [f.message for f in o.failures]) for o in report.outcomes]
    assert outcomes == [("late bill", "passed", [])]
