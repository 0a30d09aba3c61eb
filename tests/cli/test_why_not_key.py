"""``--why-not`` and the test runner's "why not" answer for the fact asked about: the
key and field values of the pattern pick the matches that would produce it (issue 10,
item 3: ``--why-not 'Pay(id: "b")'`` answered ``matches, but emits Pay(id: "a")``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main

PAY = """\
ruleset pay

fact Invoice { key id: str, amount: float }
fact Hold { id: str }
fact Pay { key id: str }

agent pay {
  when Invoice(id, amount) and not Hold(id) where amount < 100.0
  emit Pay(id: id)
}
"""

INPUTS = """\
{"Invoice": {"id": "a", "amount": 50.0}}
{"Invoice": {"id": "b", "amount": 500.0}}
{"Invoice": {"id": "c", "amount": 20.0}}
{"Invoice": {"id": "d", "amount": 30.0}}
{"Hold": {"id": "c"}}
"""


@pytest.fixture(autouse=True)
def _files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("in.jsonl").write_text(INPUTS, encoding="utf-8")


def _why_not(ruleset: str, pattern: str) -> Result:
    Path("pay.cvg").write_text(ruleset, encoding="utf-8")
    return CliRunner().invoke(main, ["explain", "-r", "pay.cvg", "--facts", "in.jsonl",
                                     "--why-not", pattern])


def test_why_not_names_the_guard_that_failed_for_the_key_asked_about() -> None:
    result = _why_not(PAY, 'Pay(id: "b")')
    assert result.exit_code == 0, result.output
    assert "`where amount < 100.0` was false: amount = 500.0" in result.output
    assert 'Pay(id: "a")' not in result.output and "matches, but" not in result.output


def test_why_not_names_the_negation_that_blocked_the_key_asked_about() -> None:
    result = _why_not(PAY, 'Pay(id: "c")')
    assert result.exit_code == 0, result.output
    assert '`not Hold(id)` failed: Hold(id: "c") exists' in result.output


def test_why_not_for_a_key_no_input_has() -> None:
    result = _why_not(PAY, 'Pay(id: "x")')
    assert result.exit_code == 0, result.output
    assert 'no fact matches `Invoice(id: "x", amount)`, which `Pay(id: "x")` needs' \
        in result.output


def test_why_not_reads_a_computed_field_through_the_guard() -> None:
    # The emitted id is not a plain variable: the match is found by what it would emit.
    computed = PAY.replace("emit Pay(id: id)", 'emit Pay(id: upper(id))')
    result = _why_not(computed, 'Pay(id: "B")')
    assert result.exit_code == 0, result.output
    assert "`where amount < 100.0` was false: amount = 500.0" in result.output


def test_a_fact_that_is_there_is_still_found() -> None:
    result = _why_not(PAY, 'Pay(id: "d")')
    assert result.exit_code == 1, result.output
    assert 'Pay(id: "d") is in the final context' in result.output


def test_the_test_runner_says_why_not_for_the_key_expected() -> None:
    Path("pay.cvg").write_text(PAY + """
test "b is paid" {
  given Invoice(id: "a", amount: 50.0)
  given Invoice(id: "b", amount: 500.0)
  expect Pay(id: "b")
}
""", encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "pay.cvg"])
    assert result.exit_code == 1, result.output
    why = result.output.split("why not:", 1)[1]
    assert "`where amount < 100.0` was false: amount = 500.0" in why
    assert "emits Pay" not in why


def test_another_emit_of_the_type_does_not_hide_the_failed_condition() -> None:
    # The second emit never gives id "b"; the first would have, but for its guard.
    two = PAY.replace("emit Pay(id: id)", 'emit Pay(id: id)\n  emit Pay(id: "audit")')
    result = _why_not(two, 'Pay(id: "b")')
    assert result.exit_code == 0, result.output
    assert "`where amount < 100.0` was false: amount = 500.0" in result.output
    assert "emits" not in result.output


def test_of_several_emits_the_one_that_gives_the_key_asked_about_is_quoted() -> None:
    # Met as: asked about Pay(id: "audit", amount: 1.0), why-not quoted the first emit
    # (Pay(id: "a", …)) instead of the one that gives id "audit" with amount 0.0.
    two = PAY.replace("fact Pay { key id: str }", "fact Pay { key id: str, amount: float }")
    two = two.replace("emit Pay(id: id)",
                      'emit Pay(id: id, amount: amount)\n  emit Pay(id: "audit", amount: 0.0)')
    result = _why_not(two, 'Pay(id: "audit", amount: 1.0)')
    assert result.exit_code == 0, result.output
    assert 'emits Pay(id: "audit", amount: 0.0), which is not' in result.output
    assert 'Pay(id: "a"' not in result.output


def test_of_several_matches_the_closest_to_the_fact_asked_about_is_quoted() -> None:
    # Both fields are computed, so every match that passes the guard is a candidate:
    # the one whose fact agrees with the asked id is quoted, not the first.
    computed = PAY.replace("fact Pay { key id: str }",
                           "fact Pay { key id: str, amount: float }")
    computed = computed.replace("emit Pay(id: id)",
                                'emit Pay(id: "p-" + id, amount: amount * 2.0)')
    result = _why_not(computed, 'Pay(id: "p-d", amount: 1.0)')
    assert result.exit_code == 0, result.output
    assert 'emits Pay(id: "p-d", amount: 60.0), which is not' in result.output


RATES = """\
ruleset rates
uses tool fx_rate

fact Want { key currency: str }
fact Rate { key currency: str, usd: float }
intent NeedRate { currency: str }

agent ask {
  when Want(currency)
  intend NeedRate(currency: currency)
}

agent fetch {
  when intent NeedRate(currency)
  call fx_rate(currency: currency) as rate
  emit Rate(currency: currency, usd: rate.usd)
}

test "euro rate" {
  given Want(currency: "EUR")
  mock tool fx_rate(currency: "EUR") returns {usd: 1.1}
  expect Rate(currency: "EUR", usd: 1.2)
}
"""


def test_why_not_judges_an_agent_on_the_intent_it_answered_and_closed() -> None:
    # Met as: "agent fetch: no fact matches `intent NeedRate(currency)`": the agent had
    # answered the intent, which closed it, and why-not looked only at the final context.
    Path("rates.cvg").write_text(RATES, encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "rates.cvg"])
    assert result.exit_code == 1, result.output
    why = result.output.split("why not:", 1)[1]
    assert 'emits Rate(currency: "EUR", usd: 1.1)' in why
    assert "fx_rate" in why and "no fact matches" not in why


def test_a_type_with_no_fact_at_all_is_named_with_the_key_asked_about() -> None:
    # Met as: "no fact matches `Approval(id)`" when asked about Pay(id: "b"): the asked
    # key was left out when no Approval existed at all, as it was not when some did.
    approved = PAY.replace("fact Pay { key id: str }",
                           "fact Pay { key id: str }\nfact Approval { key id: str }")
    approved += "\nagent approved {\n  when Approval(id)\n  emit Pay(id: id)\n}\n"
    result = _why_not(approved, 'Pay(id: "b")')
    assert result.exit_code == 0, result.output
    assert 'no fact matches `Approval(id: "b")`, which `Pay(id: "b")` needs' \
        in result.output


SHARE = """\
ruleset share

fact Bill { key id: str, total: float, people: int }
fact Share { key id: str, each: float }

agent split {
  when Bill(id, total, people)
  emit Share(id: id, each: total / people)
}

test "a bill for nobody" {
  given Bill(id: "b1", total: 30.0, people: 0)
  expect Share(id: "b1", each: 30.0)
}
"""


def test_the_test_runner_says_an_agent_that_failed_emitted_nothing() -> None:
    # Met as: "matches, but emits Share(id: "b1", each: none), which is not …": the
    # division by zero that discarded the agent's effect was shown as a none value.
    Path("share.cvg").write_text(SHARE, encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "share.cvg"])
    assert result.exit_code == 1, result.output
    why = result.output.split("why not:", 1)[1]
    assert "matches, but emits nothing: its effect was discarded in cycle 1: " \
        "ZeroDivisionError" in why
    assert "share.cvg:8:28" in why and "people = 0" in why
    assert "none" not in why


def test_why_not_says_an_agent_that_failed_emitted_nothing() -> None:
    Path("share.cvg").write_text(SHARE, encoding="utf-8")
    Path("bills.jsonl").write_text('{"Bill": {"id": "b1", "total": 30.0, "people": 0}}\n',
                                   encoding="utf-8")
    result = CliRunner().invoke(main, ["explain", "-r", "share.cvg", "--facts",
                                       "bills.jsonl", "--why-not", 'Share(id: "b1")'])
    assert result.exit_code == 0, result.output
    assert "matches, but emits nothing: its effect was discarded in cycle 1: " \
        "ZeroDivisionError" in result.output
    assert "none" not in result.output


GATED = """\
ruleset gated

fact Claim { key id: str, amount: float }
fact Payment { key id: str, amount: float }

agent pay {
  when Claim(id, amount)
  emit Payment(id: id, amount: amount)
}

approve Payment when amount > 100.0

test "held" {
  given Claim(id: "c1", amount: 500.0)
  expect Payment(id: "c1")
}

test "rejected" {
  given Claim(id: "c1", amount: 500.0)
  reject Payment(id: "c1")
  expect Payment(id: "c1")
}
"""


def test_why_not_names_the_approval_gate_that_holds_or_rejected_the_fact() -> None:
    # Met as: "matches and would emit Payment(id: "c1", …); it may have lost a conflict
    # or been retracted (see above)": nothing above said the gate held it.
    Path("gated.cvg").write_text(GATED, encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "gated.cvg"])
    assert result.exit_code == 1, result.output
    held, rejected = result.output.split("why not:")[1:]
    assert 'Payment(id: "c1", amount: 500.0) is held by the approval gate on Payment, ' \
        "pending p-" in held
    assert 'Payment(id: "c1", amount: 500.0) was rejected at the approval gate on ' \
        "Payment (p-" in rejected
    Path("claims.jsonl").write_text('{"Claim": {"id": "c1", "amount": 500.0}}\n',
                                    encoding="utf-8")
    explained = CliRunner().invoke(main, ["explain", "-r", "gated.cvg", "--facts",
                                          "claims.jsonl", "--why-not", 'Payment(id: "c1")'])
    assert "is held by the approval gate on Payment, pending p-" in explained.output
