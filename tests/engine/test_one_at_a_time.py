"""Agents that act one step at a time (issue 10, item 12), as a rule author meets them:
an agent that must see its own last firing (seat one guest per step, never twice) is
refused as an ordinary agent and works declared `one at a time`; updating a state fact
no longer takes with it what was decided while it held the old value once those facts
are `lasting`; and the result is the same under every executor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules.cli import main
from converge_rules.engine.executors import fork_available
from converge_rules.errors import CheckError

HEAD = """ruleset seating
enum Sex { m, f }
fact Guest  { key name: str, rank: int, sex: Sex }
fact Seated { key name: str, seat: int }
fact Next   { key of: str = "next", seat: int }
policy Next { resolve by latest }
"""

SEAT = HEAD + """
agent seat one at a time by highest rank, then lowest name {
  when Next(of: "next", seat) and Guest(name, rank) and not Seated(name)
  emit lasting Seated(name: name, seat: seat)
  emit lasting Next(seat: seat + 1)
}
"""

GUESTS = [("Guest", {"name": n, "rank": r, "sex": s})
          for n, r, s in [("ann", 1, "f"), ("bob", 3, "m"), ("cy", 2, "m"), ("di", 3, "f")]]


def load(text: str) -> converge_rules.Ruleset:
    return converge_rules.loads(text, plugins=False)


def errors(text: str) -> list[Any]:
    with pytest.raises(CheckError) as info:
        load(text)
    return [d for d in info.value.diagnostics if d.is_error]


def seats(result: converge_rules.RunResult) -> list[str]:
    return [s["name"] for s in sorted(result.facts("Seated"), key=lambda s: s["seat"])]


def test_one_match_fires_per_cycle_in_the_declared_order_and_sees_the_last_firing() -> None:
    result = converge_rules.run(load(SEAT), [*GUESTS, ("Next", {"seat": 1})])
    assert result.status == "converged", result.detail
    # highest rank first, ties by lowest name; every guest once, seats 1..4 in turn
    assert seats(result) == ["bob", "di", "cy", "ann"]
    assert result.facts("Next") == [{"of": "next", "seat": 5}]
    assert result.cycles == 5  # four firings, then one run that finds nothing to do


def test_the_same_rule_as_an_ordinary_agent_is_refused_and_told_about_the_mode() -> None:
    ordinary = SEAT.replace(" one at a time by highest rank, then lowest name", "")
    found = errors(ordinary)
    assert [d.code for d in found] == ["CVG302"]
    assert "one at a time" in (found[0].help or "")


def test_negating_what_a_higher_tier_produces_stays_refused() -> None:
    text = SEAT + """
agent late tier 2 {
  when Guest(name, rank) where rank > 100
  emit Seated(name: name, seat: 0)
}
"""
    found = errors(text)
    assert [d.code for d in found] == ["CVG302"]
    assert "higher tier" in (found[0].help or "")


def test_an_order_that_can_tie_is_refused_with_how_to_make_it_total() -> None:
    text = SEAT.replace("by highest rank, then lowest name", "by highest rank")
    found = errors(text)
    assert [d.code for d in found] == ["CVG303"]
    assert "Guest's `name`" in found[0].message
    assert "then lowest name" in (found[0].help or "")
    assert "then earliest" in (found[0].help or "")
    # ending with earliest (or latest) decides every tie
    load(text.replace("by highest rank", "by highest rank, then earliest"))


def test_an_unbound_key_in_a_pattern_is_named_in_the_help() -> None:
    text = SEAT.replace('Next(of: "next", seat)', "Next(seat)")
    found = errors(text)
    assert [d.code for d in found] == ["CVG303"]
    assert "Next's `of`" in found[0].message
    assert "bind `of`" in (found[0].help or "")


@pytest.mark.parametrize(("change", "says"), [
    (("by highest rank,", "by highest rnk,"), "did you mean `rank`"),
    (("then lowest name {", "then latest, then lowest name {"), "nothing may come after"),
    (("  emit lasting Seated", "  call lookup(name: name) as x\n  emit lasting Seated"),
     "calls a tool"),
])
def test_misuse_of_the_mode_is_explained(change: tuple[str, str], says: str) -> None:
    text = SEAT.replace(*change).replace("ruleset seating", "ruleset seating\nuses tool lookup")
    found = errors(text)
    assert "CVG304" in [d.code for d in found]
    assert any(says in d.message + (d.help or "") for d in found)


def test_an_enum_orders_by_its_declared_members() -> None:
    text = SEAT.replace("by highest rank, then lowest name", "by highest sex, then lowest name")
    text = text.replace("Guest(name, rank)", "Guest(name, sex)")
    result = converge_rules.run(load(text), [*GUESTS, ("Next", {"seat": 1})])
    # f is declared after m, so highest sex seats the women first
    assert seats(result) == ["ann", "di", "bob", "cy"]


STATE = """ruleset machine
enum Phase { open, closed }
fact Door     { key of: str = "door", phase: Phase }
fact Log      { phase: Phase }
fact Derived  { phase: Phase }
fact Close    { at: int }
policy Door { resolve by latest }

agent log {
  when Door(phase)
  emit lasting Log(phase: phase)
  emit Derived(phase: phase)
}

agent close {
  when Close(at) and Door(phase: open)
  emit Door(phase: closed)
}
"""


def test_a_lasting_fact_stays_when_the_state_it_was_decided_in_changes() -> None:
    result = converge_rules.run(load(STATE), [("Door", {"phase": "open"}), ("Close", {"at": 1})])
    assert result.status == "converged", result.detail
    # the log keeps both states; the ordinary fact went with the state it rested on
    assert result.facts("Log") == [{"phase": "closed"}, {"phase": "open"}]
    assert result.facts("Derived") == [{"phase": "closed"}]


def test_without_lasting_the_update_retracts_what_was_decided_before() -> None:
    text = STATE.replace("emit lasting Log", "emit Log")
    result = converge_rules.run(load(text), [("Door", {"phase": "open"}), ("Close", {"at": 1})])
    assert result.facts("Log") == [{"phase": "closed"}]


def test_traces_and_explain_show_a_lasting_fact(tmp_path: Path) -> None:
    trace = tmp_path / "run.jsonl"
    ruleset = tmp_path / "machine.cvg"
    ruleset.write_text(STATE)
    facts = [("Door", {"phase": "open"}), ("Close", {"at": 1})]
    converge_rules.run(load(STATE), facts, trace=trace)
    added = [json.loads(line) for line in trace.read_text().splitlines()]
    logs = [e for e in added if e.get("event") == "fact_added" and e["type"] == "Log"]
    assert [e.get("lasting") for e in logs] == [True, True]
    derived = [e for e in added if e.get("event") == "fact_added" and e["type"] == "Derived"]
    assert all("lasting" not in e for e in derived)  # other events read as before
    out = CliRunner().invoke(main, ["explain", "--trace", str(trace), "-r", str(ruleset),
                                    "Log(phase: open)"])
    assert out.exit_code == 0, out.output
    assert "(lasting: stays when the facts below go)" in out.output
    assert "no longer in the context" in out.output  # the Door it was matched from
    data = CliRunner().invoke(main, ["explain", "--trace", str(trace), "--format", "json",
                                     "Log(phase: open)"])
    assert '"lasting": true' in data.output
    replay = CliRunner().invoke(main, ["replay", str(ruleset), str(trace)])
    assert replay.exit_code == 0, replay.output


def test_a_firing_that_would_change_nothing_is_not_repeated() -> None:
    text = """ruleset idle
fact Flag { name: str }
agent raise_flag one at a time by lowest name {
  when Flag(name)
  emit Flag(name: name)
}
"""
    result = converge_rules.run(load(text), [("Flag", {"name": "a"}), ("Flag", {"name": "b"})])
    assert result.status == "converged"
    assert result.cycles == 1


def test_a_lasting_output_is_merged_even_when_its_support_went_earlier_in_the_merge() -> None:
    text = """ruleset same_merge
fact State { key of: str = "s", n: int }
fact Seen  { n: int }
policy State { resolve by latest }
agent step {
  when State(n) where n < 3
  emit State(n: n + 1)
}
agent note {
  when State(n)
  emit lasting Seen(n: n)
}
"""
    result = converge_rules.run(load(text), [("State", {"n": 0})])
    # `step` replaces the state before `note`'s output, resting on it, is merged
    assert result.facts("Seen") == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]


def test_the_formatter_writes_the_new_syntax_back() -> None:
    from converge_rules.language.format.formatter import format_source

    text = format_source(SEAT)
    assert "agent seat one at a time by highest rank, then lowest name {" in text
    assert "  emit lasting Seated(name: name, seat: seat)" in text
    assert format_source(text) == text


EXECUTORS = ["threads", *(["processes"] if fork_available() else [])]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_every_executor_gives_the_same_job(executor: str) -> None:
    ruleset = load(SEAT)
    facts = [*GUESTS, ("Next", {"seat": 1})]
    serial = converge_rules.run(ruleset, facts)
    other = converge_rules.run(ruleset, facts, executor=executor, workers=2)
    assert other.to_json() == serial.to_json()
    assert other.trace.to_jsonl() == serial.trace.to_jsonl()


def test_a_new_fact_where_it_aggregates_wakes_a_one_at_a_time_agent() -> None:
    text = """ruleset wake
fact Item { n: int }
fact Made { n: int }
fact Flag { key of: str = "flag", done: bool }
policy Flag { resolve by latest }
agent make {
  when Item(n)
  emit Made(n: n)
}
agent check one at a time by earliest {
  when Flag(done: false) where count(Made()) == 2
  emit lasting Flag(done: true)
}
"""
    facts = [("Item", {"n": 1}), ("Item", {"n": 2}), ("Flag", {"done": False})]
    result = converge_rules.run(load(text), facts)
    # Made grows in cycle 1, while check sees none; nothing it reads changes after
    assert result.facts("Flag") == [{"of": "flag", "done": True}]


@pytest.mark.parametrize(("slip", "says"), [
    ("emit lasting Seated(name: name, seat: seat)", None),
    ("emit Seated(name: name, seat: seat) lasting", "emit lasting Fact("),
])
def test_a_misplaced_lasting_is_told_where_it_goes(slip: str, says: str | None) -> None:
    from converge_rules.language.syntax.parser import parse

    found = parse(SEAT.replace("emit lasting Seated(name: name, seat: seat)", slip)).diagnostics
    if says is None:
        assert not found
    else:
        assert [d.code for d in found] == ["CVG001"]
        assert says in (found[0].help or "")


def test_an_order_without_a_direction_is_told_how_to_write_one() -> None:
    from converge_rules.language.syntax.parser import parse

    found = parse(SEAT.replace("by highest rank, then lowest name", "by rank")).diagnostics
    assert [d.code for d in found] == ["CVG001"]
    assert "`lowest X` or `highest X`" in (found[0].help or "")


def test_an_evaluation_in_a_one_at_a_time_agent_is_refused() -> None:
    text = SEAT.replace("Guest(name, rank)", "g: Guest(name, rank)").replace(
        "  emit lasting Next(seat: seat + 1)\n",
        "  emit lasting Next(seat: seat + 1)\n  evaluate g score 0.5\n")
    found = errors(text)
    assert [d.code for d in found] == ["CVG304"]
    assert "evaluates a fact" in found[0].message


REFUSED = """ruleset refused
fact Item { key id: int }
fact Best { key of: str = "best", v: int }
fact Seen { key id: int }
policy Best { resolve by highest v }
agent pick one at a time by lowest id {
  when Item(id)
  emit Best(v: id)
  emit lasting Seen(id: id)
}
"""
ITEMS = [*(("Item", {"id": i}) for i in (1, 2, 3)), ("Best", {"v": 2})]


@pytest.mark.parametrize("executor", ["serial", *EXECUTORS])
def test_a_firing_whose_facts_lose_their_conflicts_is_not_fired_again(executor: str) -> None:
    # the first match's Best lost to the incumbent; the agent fired that same match
    # again (its Best was still not in the context), changed nothing, and the tier
    # ended `converged` with items 2 and 3 never fired: Best stayed 2 beside item 3
    result = converge_rules.run(load(REFUSED), ITEMS, executor=executor, workers=2)
    assert result.status == "converged", result.detail
    assert result.facts("Best") == [{"of": "best", "v": 3}]
    assert result.facts("Seen") == [{"id": 1}, {"id": 2}, {"id": 3}]
    fired = [json.loads(line) for line in result.trace.lines()]
    starts = [e for e in fired if e["event"] == "cycle_start"]
    assert len(starts) == 4  # one match per cycle, each once, then nothing to fire


def test_a_match_is_fired_once_even_when_all_its_outputs_lose() -> None:
    text = REFUSED.replace("  emit lasting Seen(id: id)\n", "")
    result = converge_rules.run(load(text), ITEMS)
    assert result.facts("Best") == [{"of": "best", "v": 3}]
    # items 1, 2 (no longer the incumbent once 3 won) and 3, once each; then nothing
    merged = [json.loads(line) for line in result.trace.lines()]
    firings = [e["cycle"] for e in merged if e["event"] == "effect_merged" and e["outputs"]]
    assert firings == [1, 2, 3]
    assert result.cycles == 4


WILDCARD = """ruleset wildcard
fact A   { key id: int }
fact B   { key id: int, y: int }
fact Out { key a: int, y: int }
agent p one at a time by lowest k {
  when A(id: k) and B(id: _, y) and not Out(a: k)
  emit lasting Out(a: k, y: y)
}
"""


def test_a_wildcard_does_not_decide_a_key() -> None:
    # `B(id: _)` was taken for a constant: the order was 'total', and which B the match
    # used (so Out's y) depended on the order the input facts came in
    found = errors(WILDCARD)
    assert [d.code for d in found] == ["CVG303"]
    assert "B's `id`" in found[0].message
    assert "bind `id`" in (found[0].help or "")
    fixed = load(WILDCARD.replace("lowest k {", "lowest k, then lowest j {").replace(
        "B(id: _, y)", "B(id: j, y)"))
    facts = [("A", {"id": 1}), ("B", {"id": 1, "y": 10}), ("B", {"id": 2, "y": 20})]
    for given in (facts, facts[::-1]):
        assert converge_rules.run(fixed, given).facts("Out") == [{"a": 1, "y": 10}]


def test_a_field_of_an_undecided_fact_does_not_decide_a_key() -> None:
    # `B(x: a.x)` counted as decided whatever `a` was: the order was called total, and
    # which A and B fired depended on the order the input facts came in
    text = """ruleset binder
fact C   { key k: int }
fact A   { key id: int, x: int }
fact B   { key x: int, j: int }
fact Out { key k: int, id: int }
agent p one at a time by lowest k {
  when C(k) and a: A(id: j) and B(x: a.x, j) and not Out(k: k)
  emit lasting Out(k: k, id: j)
}
"""
    found = errors(text)
    assert [d.code for d in found] == ["CVG303"]
    fixed = load(text.replace("by lowest k {", "by lowest k, then lowest j {"))
    facts = [("C", {"k": 1}), ("A", {"id": 1, "x": 5}), ("A", {"id": 2, "x": 6}),
             ("B", {"x": 5, "j": 1}), ("B", {"x": 6, "j": 2})]
    for given in (facts, facts[::-1]):
        assert converge_rules.run(fixed, given).facts("Out") == [{"k": 1, "id": 1}]
