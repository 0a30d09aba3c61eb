"""Dates, datetimes and durations at run time, and the job's time (issue 10 item 9):
inputs and outputs in ISO 8601, agents that read ``now()``/``today()`` see the time the
job was given (never the clock), the trace records it, and compiled code computes what
the test interpreter computes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import converge_rules
from converge_rules import InputError
from converge_rules.analysis.interpret import Fact, interpreter_for
from converge_rules.engine.trace import EffectDiscarded, jsonable
from converge_rules.language.builtins import (
    TimeError,
    cvg_fixed,
    cvg_str,
    iso_text,
    parse_duration,
)
from converge_rules.language.syntax.parser import parse
from converge_rules.plugins.api import Tool
from converge_rules.plugins.registries import Registries

RULES = """\
ruleset claims
fact Claim { key id: str, due: date, opened: datetime, grace: duration = 30d }
fact Late  { key id: str, overdue: duration, since: date, note: str }
fact Seen  { key id: str, at: datetime, age: duration }

agent late {
  when Claim(id, due, grace)
  where today() - due > grace
  emit Late(id: id, overdue: today() - due, since: due + grace,
            note: "late by " + str((today() - due).days) + " days")
}

agent seen {
  when Claim(id, opened)
  emit Seen(id: id, at: now(), age: now() - opened)
}
"""

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ruleset() -> converge_rules.Ruleset:
    return converge_rules.loads(RULES, plugins=False)


def claim(**fields: Any) -> tuple[str, dict[str, Any]]:
    values = {"id": "c1", "due": "2026-10-15", "opened": "2026-10-01T12:00:00+02:00"}
    values.update(fields)
    return ("Claim", values)


def test_agents_see_the_job_s_time_and_results_are_iso_text(
        ruleset: converge_rules.Ruleset) -> None:
    result = converge_rules.run(ruleset, [claim()], now=NOW)
    assert result.status == "converged"
    assert result.facts("Late") == [{"id": "c1", "overdue": "P52D", "since": "2026-11-14",
                                     "note": "late by 52 days"}]
    # another offset is converted to UTC on input
    assert result.facts("Claim")[0]["opened"] == "2026-10-01T10:00:00Z"
    assert result.facts("Seen") == [{"id": "c1", "at": "2026-12-06T09:00:00Z",
                                     "age": "P65DT23H"}]
    assert json.loads(result.to_json())["facts"]["Late"][0]["overdue"] == "P52D"


def test_the_same_time_gives_the_same_trace_and_another_time_another_answer(
        ruleset: converge_rules.Ruleset) -> None:
    first = converge_rules.run(ruleset, [claim()], now=NOW)
    again = converge_rules.run(ruleset, [claim()], now=NOW.astimezone(timezone(
        timedelta(hours=-5))))  # the same instant, written in another zone
    assert first.trace.to_jsonl() == again.trace.to_jsonl()
    earlier = converge_rules.run(ruleset, [claim()], now=datetime(2026, 11, 1, tzinfo=UTC))
    assert earlier.facts("Late") == []


def test_the_trace_records_the_time_first_only_when_the_program_reads_it(
        ruleset: converge_rules.Ruleset) -> None:
    lines = list(converge_rules.run(ruleset, [claim()], now=NOW).trace.bare_lines())
    assert json.loads(lines[0]) == {"event": "job_time", "now": "2026-12-06T09:00:00Z"}
    timeless = converge_rules.loads(
        "ruleset t\nfact A { key id: str, at: date }\nfact B { key id: str, at: date }\n"
        "agent copy {\n  when A(id, at)\n  emit B(id: id, at: at + 1d)\n}\n", plugins=False)
    result = converge_rules.run(timeless, [("A", {"id": "a", "at": "2026-12-31"})], now=NOW)
    assert result.facts("B") == [{"id": "a", "at": "2027-01-01"}]
    assert "job_time" not in result.trace.to_jsonl()


def test_by_default_the_job_s_time_is_the_clock_at_start_read_once(
        ruleset: converge_rules.Ruleset) -> None:
    before = datetime.now(UTC)
    result = converge_rules.run(ruleset, [claim(id="a"), claim(id="b")])
    after = datetime.now(UTC)
    seen = {f["at"] for f in result.facts("Seen")}
    assert len(seen) == 1  # every agent of the job saw one time
    (at,) = seen
    assert before <= datetime.fromisoformat(at) <= after


def test_a_job_without_a_time_fails_the_agents_that_read_it(
        ruleset: converge_rules.Ruleset) -> None:
    result = converge_rules.run(ruleset, [claim()], now=None)
    assert result.facts("Late") == [] and result.facts("Seen") == []
    reasons = [e.reason for e in result.trace.events_of(EffectDiscarded)]
    assert reasons and all("now() has no value" in r for r in reasons)


def test_a_naive_time_is_refused(ruleset: converge_rules.Ruleset) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        converge_rules.run(ruleset, [claim()], now=datetime(2026, 12, 6, 9, 0))


@pytest.mark.parametrize(("fields", "words"), [
    ({"due": "2026-02-30"}, "day is out of range for month"),
    ({"due": "15/10/2026"}, "YYYY-MM-DD"),
    ({"opened": "2026-10-01T12:00:00"}, "has no time zone"),
    ({"opened": 1_700_000_000}, "ISO 8601 text"),
    ({"grace": "P1M"}, "is not a duration"),
    ({"grace": 30}, "ISO 8601 text"),
    # digits of other scripts: "P\u0663D" (Arabic-Indic 3) was read as 3 days
    ({"grace": "P\u0663D"}, "is not a duration"),
    ({"grace": "PT1.\u0665S"}, "is not a duration"),
    # over 4,300 digits: the help told the user to call sys.set_int_max_str_digits()
    ({"grace": "P" + "9" * 5000 + "D"}, "is too long a duration"),
])
def test_bad_time_inputs_are_refused_with_the_field_named(
        ruleset: converge_rules.Ruleset, fields: dict[str, Any], words: str) -> None:
    with pytest.raises(InputError) as caught:
        converge_rules.run(ruleset, [claim(**fields)], now=NOW)
    text = str(caught.value) + " " + (caught.value.help or "")
    assert f"Claim.{next(iter(fields))}" in text and words in text


def test_inputs_in_every_format(ruleset: converge_rules.Ruleset, tmp_path: Path) -> None:
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"Claim": {"id": "j", "due": "2026-10-15", "opened": '
                     '"2026-10-01T10:00:00Z", "grace": "PT48H"}}\n', encoding="utf-8")
    csv = tmp_path / "claims.csv"
    csv.write_text("id,due,opened,grace\nc,2026-10-15,2026-10-01T10:00:00Z,\n",
                   encoding="utf-8")
    inputs = converge_rules.read_facts(ruleset, jsonl, f"Claim={csv}")
    result = converge_rules.run(ruleset, inputs, now=NOW)
    claims = {f["id"]: f for f in result.facts("Claim")}
    assert claims["j"]["grace"] == "P2D" and claims["c"]["grace"] == "P30D"
    assert {f["id"] for f in result.facts("Late")} == {"j", "c"}
    # the Python API may give the values themselves
    api = ("Claim", {"id": "p", "due": date(2026, 10, 15),
                     "opened": datetime(2026, 10, 1, 10, tzinfo=UTC), "grace": timedelta(days=2)})
    assert converge_rules.run(ruleset, [api], now=NOW).facts("Late")[0]["overdue"] == "P52D"


def test_tools_get_and_give_iso_text_and_a_replay_calls_them_the_same_way() -> None:
    calls: list[dict[str, Any]] = []

    def schedule(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(dict(args))
        return {"at": args["day"] + "T09:00:00Z", "gap": "P2D"}

    rules = converge_rules.loads(
        "ruleset t\nuses tool schedule\nfact Claim { key id: str, due: date }\n"
        "fact Slot { key id: str, at: datetime, gap: duration }\n"
        "agent plan {\n  when Claim(id, due)\n  call schedule(day: due, by: 2d) as s\n"
        "  emit Slot(id: id, at: s.at, gap: s.gap)\n}\n", plugins=False)
    result = converge_rules.run(rules, [("Claim", {"id": "c", "due": "2026-12-06"})],
                                tools={"schedule": schedule}, now=NOW)
    assert calls == [{"day": "2026-12-06", "by": "P2D"}]
    assert result.facts("Slot") == [{"id": "c", "at": "2026-12-06T09:00:00Z", "gap": "P2D"}]


# ------------------------------------------- the compiled code and the interpreter

EXPRESSIONS = [
    ("duration", "today() - due"),
    ("duration", "now() - opened"),
    ("date", "due + 3w"),
    ("date", "due - 400d"),
    ("datetime", "opened + 90m - 1s"),
    ("duration", "grace * 3"),
    ("duration", "grace * 0.1"),
    ("duration", "grace / 7"),
    ("float", "(now() - opened) / 1d"),
    ("duration", "-(grace) + 250ms"),
    ("int", "due.year * 10000 + due.month * 100 + due.day"),
    ("int", "opened.weekday + opened.hour + opened.minute + opened.second"),
    ("date", "opened.date"),
    ("int", "(due - today()).days"),
    ("int", "(opened - now()).hours"),
    ("int", "grace.minutes"),
    ("float", "grace.seconds"),
    ("bool", "due < today() and opened <= now() and grace > 1d and due != today()"),
    ("str", 'str(due) + " " + str(opened) + " " + str(grace) + " " + str(-(grace))'),
    ("str", "fixed(grace.seconds, 3) + str(grace / 1h) + str(due.day)"),
    ("str", "str(due - 1d == date(\"2026-10-14\"))"),
]


@pytest.mark.parametrize(("kind", "expr"), EXPRESSIONS)
def test_compiled_code_and_the_interpreter_agree(kind: str, expr: str) -> None:
    text = ("ruleset x\nfact Claim { key id: str, due: date, opened: datetime, "
            f"grace: duration }}\nfact Out {{ key id: str, v: {kind} }}\n"
            "agent a {\n  when Claim(id, due, opened, grace)\n"
            f"  emit Out(id: id, v: {expr})\n}}\n")
    rules = converge_rules.loads(text, plugins=False)
    fields = {"id": "c", "due": "2026-10-15", "opened": "2026-10-01T10:30:15.25Z",
              "grace": "P1DT2H3M4.5S"}
    result = converge_rules.run(rules, [("Claim", fields)], now=NOW)
    (out,) = result.facts("Out")
    module = parse(text, "x.cvg").module
    assert module is not None
    value_expr = next(a.value for item in module.items if hasattr(item, "outputs")
                      for o in item.outputs for a in o.args if a.name.name == "v")
    interp = interpreter_for(rules.checked, {"Claim": [Fact("Claim", fields)]}, now=NOW)
    (fact,) = interp.facts["Claim"]
    env = dict(fact.values)
    expected = interp.eval(value_expr, env)
    assert out["v"] == jsonable(expected)


def test_a_date_moves_by_whole_days_only() -> None:
    # (a constant such as `d + 36h` is a checker error: see tests/language)
    rules = converge_rules.loads(
        "ruleset x\nfact A { key id: str, d: date, w: duration }\n"
        "fact B { key id: str, d: date }\n"
        "agent a {\n  when A(id, d, w)\n  emit B(id: id, d: d + w)\n}\n", plugins=False)
    result = converge_rules.run(rules, [("A", {"id": "a", "d": "2026-12-06", "w": "PT36H"})],
                                now=NOW)
    assert result.facts("B") == []
    (discarded,) = result.trace.events_of(EffectDiscarded)
    assert "a date moves by whole days, not by P1DT12H" in discarded.reason


def test_a_date_beyond_year_9999_fails_the_agent_not_the_job() -> None:
    rules = converge_rules.loads(
        "ruleset x\nfact A { key id: str, d: date }\nfact B { key id: str, d: date }\n"
        "agent a {\n  when A(id, d)\n  emit B(id: id, d: d + 1w)\n}\n", plugins=False)
    result = converge_rules.run(rules, [("A", {"id": "a", "d": "9999-12-30"})], now=NOW)
    assert result.status == "converged" and result.facts("B") == []


@pytest.mark.parametrize(("expr", "reason"), [
    ("d + 1w", "9999-12-30 + P7D is outside the dates a value can hold (years 1 to 9999)"),
    ("w * 1e300", "P999D * 1e+300 is too long a duration (at most 999,999,999 days)"),
    ("w * 1_000_000_000", "P999D * 1000000000 is too long a duration (at most "
                          "999,999,999 days)"),
])
def test_a_time_overflow_says_which_limit(expr: str, reason: str) -> None:
    # a duration too long was said to be 'outside the dates a value can hold'
    kind = "date" if expr.startswith("d") else "duration"
    rules = converge_rules.loads(
        "ruleset x\nfact A { key id: str, d: date, w: duration }\n"
        f"fact B {{ key id: str, v: {kind} }}\n"
        f"agent a {{\n  when A(id, d, w)\n  emit B(id: id, v: {expr})\n}}\n", plugins=False)
    result = converge_rules.run(rules, [("A", {"id": "a", "d": "9999-12-30", "w": "P999D"})],
                                now=None)
    (discarded,) = result.trace.events_of(EffectDiscarded)
    assert reason in discarded.reason


# ---------------------------------------------------------------- text of values

@pytest.mark.parametrize(("value", "text"), [
    (7, "7"), (-2.5, "-2.5"), (0.1 + 0.2, "0.30000000000000004"), (1e20, "1e+20"),
    (True, "true"), ("gold", "gold"), (None, "none"),
    (date(2026, 12, 6), "2026-12-06"),
    (datetime(2026, 12, 6, 10, tzinfo=UTC), "2026-12-06T10:00:00Z"),
    (timedelta(days=1, hours=2, minutes=3, seconds=4.5), "P1DT2H3M4.5S"),
    (timedelta(0), "PT0S"), (-timedelta(hours=36), "-P1DT12H"),
])
def test_str(value: Any, text: str) -> None:
    assert cvg_str(value) == text


def test_iso_duration_text_reads_back() -> None:
    for td in (timedelta(weeks=3), timedelta(microseconds=1), -timedelta(days=400, seconds=1)):
        assert parse_duration(iso_text(td)) == td
    with pytest.raises(TimeError):
        parse_duration("P")


@pytest.mark.parametrize(("value", "digits", "text"), [
    (2.675, 2, "2.68"), (1.005, 2, "1.01"), (-0.125, 2, "-0.13"), (-0.001, 2, "0.00"),
    (7, 0, "7"), (1234.5, 1, "1234.5"), (1e20, 2, "100000000000000000000.00"),
    (0.5, 0, "1"),
    # beyond 28 digits (decimal's default precision) it failed with InvalidOperation
    (1e27, 2, "1" + "0" * 27 + ".00"), (-1.5e300, 1, "-15" + "0" * 299 + ".0"),
    (9.999, 2, "10.00"), (2**63 - 1, 20, "9223372036854775807." + "0" * 20),
])
def test_fixed(value: float, digits: int, text: str) -> None:
    assert cvg_fixed(value, digits) == text


def test_an_agent_writes_a_large_amount_with_fixed() -> None:
    rules = converge_rules.loads(
        "ruleset x\nfact A { key id: str, amount: float }\nfact B { key id: str, s: str }\n"
        "agent a {\n  when A(id, amount)\n  emit B(id: id, s: fixed(amount, 2))\n}\n",
        plugins=False)
    result = converge_rules.run(rules, [("A", {"id": "a", "amount": 1.25e30})], now=None)
    assert result.facts("B") == [{"id": "a", "s": "125" + "0" * 28 + ".00"}]


def test_fixed_out_of_range_at_run_time() -> None:
    with pytest.raises(ValueError, match="0 to 20 digits"):
        cvg_fixed(1.0, 21)


def test_min_max_and_policies_order_dates() -> None:
    rules = converge_rules.loads(
        "ruleset agg\nfact Payment { key id: str, claim: str, on: date, took: duration }\n"
        "fact Last { key claim: str, on: date, longest: duration }\n"
        "fact Pick { key claim: str, on: date, by: str }\n"
        "agent last {\n  when Payment(claim)\n  emit Last(claim: claim, "
        "on: max(Payment(claim), on), longest: max(Payment(claim), took))\n}\n"
        "agent pick {\n  when Payment(claim, on, id)\n"
        "  emit Pick(claim: claim, on: on, by: id)\n}\n"
        "policy Pick { resolve by lowest on }\n", plugins=False)
    result = converge_rules.run(rules, [
        ("Payment", {"id": "p1", "claim": "c", "on": "2026-03-01", "took": "PT2H"}),
        ("Payment", {"id": "p2", "claim": "c", "on": "2026-01-05", "took": "PT90M"}),
    ], now=None)
    assert result.facts("Last") == [{"claim": "c", "on": "2026-03-01", "longest": "PT2H"}]
    assert result.facts("Pick") == [{"claim": "c", "on": "2026-01-05", "by": "p2"}]


def test_the_processes_executor_sees_the_job_s_time(ruleset: converge_rules.Ruleset) -> None:
    # forked workers hold a replica of the store: the time must travel with it
    result = converge_rules.run(ruleset, [claim(id=f"c{i}") for i in range(4)],
                                executor="processes", workers=2, now=NOW)
    assert {f["at"] for f in result.facts("Seen")} == {"2026-12-06T09:00:00Z"}


class _Day(BaseModel):
    day: date
    by: timedelta


class _Slot(BaseModel):
    at: datetime
    gap: timedelta


def test_a_plugin_tool_declares_time_types_and_the_checker_knows_them() -> None:
    def schedule(args: _Day) -> _Slot:
        at = datetime.combine(args.day + args.by, datetime.min.time(), tzinfo=UTC)
        return _Slot(at=at, gap=args.by * 2)

    tool = Tool("schedule", schedule, _Day, _Slot)
    assert tool.signature().args == {"day": "date", "by": "duration"}
    text = ("ruleset t\nuses tool schedule\nfact Claim { key id: str, due: date }\n"
            "fact Slot { key id: str, at: datetime, gap: duration }\n"
            "agent plan {\n  when Claim(id, due)\n  call schedule(day: due, by: 2d) as s\n"
            "  emit Slot(id: id, at: s.at, gap: s.gap)\n}\n")
    rules = converge_rules.loads(text, plugins=Registries(tools={"schedule": tool}))
    result = converge_rules.run(rules, [("Claim", {"id": "c", "due": "2026-12-24"})], now=NOW)
    assert result.facts("Slot") == [{"id": "c", "at": "2026-12-26T00:00:00Z", "gap": "P4D"}]
    wrong = text.replace("at: s.at", "at: s.gap")
    with pytest.raises(converge_rules.CheckError, match="expects datetime, found duration"):
        converge_rules.loads(wrong, plugins=Registries(tools={"schedule": tool}))


def test_an_agent_computes_with_the_times_a_tool_answers_as_text() -> None:
    # a tool answers JSON: its `date` fields are ISO text until the agent uses them
    def schedule(args: dict[str, Any]) -> dict[str, Any]:
        return {"at": "2026-12-08T09:30:00Z", "gap": "P2D", "day": "2026-12-08"}

    tool = Tool("schedule", schedule, _Day, _Slot)
    text = ("ruleset t\nuses tool schedule\nfact Claim { key id: str, due: date }\n"
            "fact Plan { key id: str, hour: int, until: datetime, day: int, later: bool,\n"
            "            soon: bool }\n"
            "agent plan {\n  when Claim(id, due)\n  call schedule(day: due, by: 2d) as s\n"
            "  emit Plan(id: id, hour: s.at.hour, until: s.at + s.gap, day: s.at.day,\n"
            "            later: s.at.date > due, soon: s.at > now() and s.gap >= 1d)\n}\n")
    rules = converge_rules.loads(text, plugins=Registries(tools={"schedule": tool}))
    result = converge_rules.run(rules, [("Claim", {"id": "c", "due": "2026-12-06"})],
                                tools={"schedule": schedule}, now=NOW)
    assert result.facts("Plan") == [{"id": "c", "hour": 9, "until": "2026-12-10T09:30:00Z",
                                     "day": 8, "later": True, "soon": True}]


def test_a_tool_answering_no_time_where_its_signature_says_one_fails_the_agent() -> None:
    def schedule(args: dict[str, Any]) -> dict[str, Any]:
        return {"at": "next tuesday", "gap": "P2D"}

    tool = Tool("schedule", schedule, _Day, _Slot)
    text = ("ruleset t\nuses tool schedule\nfact Claim { key id: str, due: date }\n"
            "fact Slot { key id: str, at: datetime }\n"
            "agent plan {\n  when Claim(id, due)\n  call schedule(day: due, by: 2d) as s\n"
            "  emit Slot(id: id, at: s.at)\n}\n")
    rules = converge_rules.loads(text, plugins=Registries(tools={"schedule": tool}))
    result = converge_rules.run(rules, [("Claim", {"id": "c", "due": "2026-12-06"})],
                                tools={"schedule": schedule}, now=NOW)
    assert result.facts("Slot") == []
    (discarded,) = result.trace.events_of(EffectDiscarded)
    assert '"next tuesday" is not a datetime' in discarded.reason
