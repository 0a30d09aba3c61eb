"""The job's time from the command line (issue 10 item 9): ``converge run --now``,
``converge replay`` at the recorded time, ``converge test`` with ``given now``, and
``explain --why-not`` reading dates back from a trace; bad times are usage errors,
never tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main

RULES = """\
ruleset claims
fact Claim { key id: str, due: date, amount: float }
fact Late  { key id: str, overdue: duration, note: str }

agent late {
  when Claim(id, due, amount)
  where today() - due > 30d
  emit Late(id: id, overdue: today() - due,
            note: fixed(amount, 2) + " due " + str(due))
}
"""

TESTS = """
test "late after thirty days" {
  given now datetime("2026-12-06T09:00:00Z")
  given Claim(id: "c1", due: date("2026-10-15"), amount: 12.5)
  expect Late(id: "c1", overdue: 52d, note: "12.50 due 2026-10-15")
}

test "table of times" {
  cases {
    {at: datetime("2026-11-15T00:00:00Z"), days: 31}
    {at: datetime("2026-12-06T23:59:59Z"), days: 52}
  }
  given now at
  given Claim(id: "c1", due: date("2026-10-15"), amount: 1.0)
  expect Late(id: "c1", overdue: days * 1d)
}
"""


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "claims.cvg"
    rules.write_text(RULES, encoding="utf-8")
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Claim": {"id": "c1", "due": "2026-10-15", "amount": 12.5}}\n'
                     '{"Claim": {"id": "c2", "due": "2026-12-01", "amount": 3.0}}\n',
                     encoding="utf-8")
    return rules, facts


def test_run_at_a_given_time(files: tuple[Path, Path]) -> None:
    rules, facts = files
    result = invoke("run", rules, "-f", facts, "--now", "2026-12-06T10:00:00+01:00",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    late = json.loads(result.stdout)["facts"]["Late"]
    assert late == [{"id": "c1", "overdue": "P52D", "note": "12.50 due 2026-10-15"}]


@pytest.mark.parametrize("bad", ["2026-12-06T09:00:00", "tomorrow", "2026-12-32T00:00:00Z"])
def test_a_bad_now_is_a_usage_error(files: tuple[Path, Path], bad: str) -> None:
    rules, facts = files
    result = invoke("run", rules, "-f", facts, "--now", bad)
    assert result.exit_code == 2
    assert "Invalid value for '--now'" in result.output
    assert "Traceback" not in result.output


def test_replay_runs_at_the_recorded_time(files: tuple[Path, Path], tmp_path: Path) -> None:
    # Recorded with the clock (no --now): the replay, run later, must not read the clock.
    rules, facts = files
    trace = tmp_path / "run.jsonl"
    assert invoke("run", rules, "-f", facts, "--trace", trace).exit_code == 0
    first = json.loads(trace.read_text(encoding="utf-8").splitlines()[0])
    assert first["event"] == "job_time"
    lines = trace.read_text(encoding="utf-8").splitlines()
    result = invoke("replay", rules, trace)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("identical:")
    lines[0] = json.dumps({"event": "job_time", "now": "2026-11-01T00:00:00Z"},
                          separators=(",", ":"))
    moved = tmp_path / "moved.jsonl"
    moved.write_text("\n".join(lines) + "\n", encoding="utf-8")
    differs = invoke("replay", rules, moved)
    assert differs.exit_code == 1  # at another time, other answers: the traces differ
    assert "differs at line" in differs.stdout


def test_a_bad_recorded_time_is_named(files: tuple[Path, Path], tmp_path: Path) -> None:
    rules, facts = files
    trace = tmp_path / "run.jsonl"
    assert invoke("run", rules, "-f", facts, "--trace", trace,
                  "--now", "2026-12-06T09:00:00Z").exit_code == 0
    lines = trace.read_text(encoding="utf-8").splitlines()
    lines[0] = '{"event":"job_time","now":"yesterday"}'
    trace.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke("replay", rules, trace)
    assert result.exit_code == 2
    assert "is not a datetime" in result.output and "Traceback" not in result.output


def test_tests_set_the_time_and_a_test_without_it_does_not_read_the_clock(
        tmp_path: Path) -> None:
    rules = tmp_path / "claims.cvg"
    rules.write_text(RULES + TESTS + """
test "no time given" {
  given Claim(id: "c1", due: date("2000-01-01"), amount: 1.0)
  expect Late(id: "c1")
}
""", encoding="utf-8")
    result = invoke("test", rules)
    assert result.exit_code == 1, result.output
    assert "3 passed, 1 failed" in result.output
    assert "now() has no value" in result.output
    assert 'given now datetime("…")' in result.output


def test_why_not_reads_dates_and_the_time_from_the_trace(files: tuple[Path, Path],
                                                          tmp_path: Path) -> None:
    rules, facts = files
    trace = tmp_path / "run.jsonl"
    assert invoke("run", rules, "-f", facts, "--trace", trace,
                  "--now", "2026-11-01T09:00:00Z").exit_code == 0
    result = invoke("explain", "--trace", trace, "-r", rules, "--why-not",
                    'Late(id: "c1")')
    assert result.exit_code == 0, result.output
    # at the recorded time c1 (due 2026-10-15) is 17 days late, not thirty: the guard
    # is evaluated on dates read back from the trace, at the trace's time
    assert "`where today() - due > 30d` was false" in result.output
    assert 'due = date("2026-10-15")' in result.output
    assert "Error" not in result.output


def test_explain_json_writes_dates_as_iso_text(files: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    rules, facts = files
    trace = tmp_path / "run.jsonl"
    assert invoke("run", rules, "-f", facts, "--trace", trace,
                  "--now", "2026-12-06T09:00:00Z").exit_code == 0
    result = invoke("explain", "--trace", trace, "-r", rules, 'Late(id: "c1")',
                    "--format", "json")
    assert result.exit_code == 0, result.output
    (fact,) = json.loads(result.stdout)["facts"]
    assert fact["fields"]["overdue"] == "P52D"
    assert fact["derivations"][0]["bindings"]["due"] == "2026-10-15"


def test_a_cases_file_gives_times_as_iso_text(tmp_path: Path) -> None:
    rules = tmp_path / "c.cvg"
    rules.write_text("""\
ruleset c
fact Claim { key id: str, due: date, grace: duration }
fact Late { key id: str, overdue: duration }
agent late {
  when Claim(id, due, grace)
  where today() - due > grace
  emit Late(id: id, overdue: today() - due)
}
test "from a file" {
  cases "rows.csv"
  given now at
  given Claim(id: "c", due: due, grace: -grace + 2d)
  expect Late(id: "c", overdue: overdue)
}
""", encoding="utf-8")
    rows = tmp_path / "rows.csv"
    rows.write_text("at,due,grace,overdue\n"
                    "2026-12-06T09:00:00Z,2026-10-15,P1D,P52D\n"
                    "2026-12-06T09:00:00+10:00,2026-10-15,PT0S,P51D\n", encoding="utf-8")
    result = invoke("test", rules)
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.output
    rows.write_text("at,due,grace,overdue\n2026-12-06T09:00:00Z,2026-10-15,5,P52D\n",
                    encoding="utf-8")
    result = invoke("test", rules)
    assert result.exit_code == 1
    assert "column `grace` is 5 (an int)" in result.output and "needs duration" in result.output


@pytest.mark.parametrize(("row", "told"), [
    # a time of another kind was taken for the one the test uses: a duration where a
    # date goes failed as 'Claim.due must be date, got "datetime.timedelta(days=30)"'
    ("2026-12-06T09:00:00Z,P30D,P1D,P52D,2026-10-01",
     "column `due` is 'P30D' (a str), but the test uses `due` as field `Claim.due`, which "
     'needs date: "P30D" is not a date'),
    ("2026-12-06T09:00:00Z,2026-10-15T00:00:00Z,P1D,P52D,2026-10-01",
     "column `due` is '2026-10-15T00:00:00Z' (a str), but the test uses `due` as field "
     "`Claim.due`, which needs date"),
    ("2026-12-06,2026-10-15,P1D,P52D,2026-10-01",
     "column `at` is '2026-12-06' (a str), but the test uses `at` as the time of `given "
     'now`, which needs datetime: "2026-12-06" is not a datetime'),
    ("2026-12-06T09:00:00Z,2026-10-15,P1D,2026-10-01,2026-10-01",
     "column `overdue` is '2026-10-01' (a str)"),
    # and text that is no time at all says why
    ("2026-12-06T09:00:00,2026-10-15,P1D,P52D,2026-10-01",
     "column `at` is '2026-12-06T09:00:00' (a str), but the test uses `at` as the time "
     'of `given now`, which needs datetime: "2026-12-06T09:00:00" has no time zone'),
    ("2026-12-06T09:00:00Z,2026-10-15,P1D,P52D,2026-02-30",
     "column `filed` is '2026-02-30' (a str), but the test uses `filed` as an operand of "
     "`-`, which needs date, datetime or duration"),
])
def test_a_cases_column_must_hold_the_time_kind_the_test_uses(tmp_path: Path, row: str,
                                                             told: str) -> None:
    rules = tmp_path / "c.cvg"
    rules.write_text("""\
ruleset c
fact Claim { key id: str, due: date, grace: duration }
fact Late { key id: str, overdue: duration }
agent late {
  when Claim(id, due, grace)
  where today() - due > grace
  emit Late(id: id, overdue: today() - due)
}
test "from a file" {
  cases "rows.csv"
  given now at
  given Claim(id: "c", due: due, grace: grace + (due - filed))
  expect Late(id: "c", overdue: overdue)
}
""", encoding="utf-8")
    rows = tmp_path / "rows.csv"
    rows.write_text("at,due,grace,overdue,filed\n2026-12-06T09:00:00Z,2026-10-15,P1D,P52D,"
                    "2026-10-01\n" + row + "\n", encoding="utf-8")
    result = invoke("test", rules)
    assert result.exit_code == 1
    assert "1 passed, 1 failed" in result.output     # two dates subtract (row 1)
    assert "case 2: " + told in result.output, result.output


def test_a_test_s_values_are_computed_at_its_time(tmp_path: Path) -> None:
    rules = tmp_path / "claims.cvg"
    rules.write_text(RULES + """
test "given relative to the test's time" {
  given now datetime("2026-12-06T09:00:00Z")
  given Claim(id: "c1", due: today() - 31d, amount: 1.0)
  expect Late(id: "c1", overdue: 31d, note: "1.00 due " + str(today() - 31d))
}
""", encoding="utf-8")
    result = invoke("test", rules)
    assert result.exit_code == 0, result.output
