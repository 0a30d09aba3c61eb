"""Approval gates on a type with a ``combine sum`` policy: the parts of a key arrive over
cycles and over a session's runs, a gate holds the totals above a limit, and decisions
(approve, reject, or none yet) are drawn at each pause.

The semantics (docs/language.md, approval gates): a value held on a key is the key's
pending total, its value plus every part that came since; a later part is combined with
that total (never with the key's value a second time), approving it puts the total in,
rejecting it leaves the key as it was, without those parts. So approving everything
gives the run without the gate — the sum of the parts —, whatever the order of the
decisions; rejecting gives the sum without the rejected parts. A model of that (the
key's value, and the parts pending on it) is checked after every run.

The parts are 1,000 times distinct powers of two: no sum of several is a part, so no
candidate ever equals the key's value or another candidate (equal values are one
proposal, and would be summed once), and the float sums are exact."""

from __future__ import annotations

from functools import cache
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import converge_rules
from converge_rules import Decision, Session, api

TEXT = """\
ruleset parts
fact Part    { key id: int, claim: int, amount: float, at: int }
fact Tick    { key n: int }
fact Payment { key claim: int, amount: float }
agent tick {
  when Tick(n) where n < 3
  emit Tick(n: n + 1)
}
agent pay {
  when Part(claim, amount, at) and Tick(n: at)
  emit Payment(claim: claim, amount: amount)
}
policy Payment { combine sum amount }
"""

LIMITS = [1_500.0, 5_000.0, 20_000.0, 100_000.0]
AT = "2026-12-06T10:00:00Z"
PROFILE = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow])


@cache
def ruleset(limit: float | None) -> converge_rules.Ruleset:
    gate = "" if limit is None else f"approve Payment when amount > {limit}\n"
    return converge_rules.loads(TEXT + gate, plugins=False)


# a part: (claim, power of two, step it arrives at in the first run; -1: a Payment
# given as input, combined with the key's value at once, never gated)
Part = tuple[int, int, int]


@st.composite
def batches(draw: st.DrawFn) -> list[list[Part]]:
    """Parts in 2 or 3 batches (a session's runs; one may be empty), each part a
    distinct power."""
    powers = draw(st.lists(st.integers(0, 9), min_size=1, max_size=9, unique=True))
    parts = [(draw(st.integers(0, 1)), p, draw(st.integers(-1, 3))) for p in powers]
    cuts = sorted(draw(st.lists(st.integers(0, len(parts)), min_size=1, max_size=2)))
    bounds = [0, *cuts, len(parts)]
    return [parts[a:b] for a, b in pairwise(bounds)]


def amount(power: int) -> float:
    return 1_000.0 * 2 ** power


def facts(batch: list[Part], start: int, first: bool) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = [("Tick", {"n": 0})] if first else []
    out += [("Part", {"id": start + i, "claim": c, "amount": amount(p), "at": at})
            if at >= 0 else ("Payment", {"claim": c, "amount": amount(p)})
            for i, (c, p, at) in enumerate(batch)]
    return out


class Model:
    """What the key of each claim holds (None: nothing yet) and the sum of the parts
    pending on it (None: nothing held)."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.value: dict[int, float | None] = {0: None, 1: None}
        self.held: dict[int, float | None] = {0: None, 1: None}

    def arrive(self, batch: list[Part], first: bool) -> None:
        # input Payments first: they enter, combined with the key's value (a total held
        # on it counts that value: its parts go on the new one, still held); then the
        # first run's parts step by step (a Tick each cycle), a later run's all in one
        # cycle (every Tick is there already)
        for c, p, at in batch:
            if at < 0:
                self.value[c] = (self.value[c] or 0.0) + amount(p)
        batch = [part for part in batch if part[2] >= 0]
        steps = sorted({at for _, _, at in batch}) if first else [None]
        for step in steps:
            for claim in (0, 1):
                s = sum(amount(p) for c, p, at in batch
                        if c == claim and (step is None or at == step))
                if not s:
                    continue
                held = self.held[claim]
                if held is not None:
                    self.held[claim] = held + s
                elif (self.value[claim] or 0.0) + s > self.limit:
                    self.held[claim] = s
                else:
                    self.value[claim] = (self.value[claim] or 0.0) + s

    def decide(self, claim: int, approve: bool) -> None:
        held = self.held[claim]
        assert held is not None
        if approve:
            self.value[claim] = (self.value[claim] or 0.0) + held
        self.held[claim] = None

    def check(self, result: Any) -> None:
        got = {f["claim"]: f["amount"] for f in result.facts("Payment")}
        assert got == {c: v for c, v in self.value.items() if v is not None}
        pending = {p["fields"]["claim"]: p["fields"]["amount"] for p in result.pending}
        # (one value held per key: the key's pending total)
        assert len(pending) == len(result.pending)
        assert pending == {c: (self.value[c] or 0.0) + h for c, h in self.held.items()
                           if h is not None}
        assert result.status == ("awaiting_approval" if pending else "converged"), \
            result.detail


@PROFILE
@given(parts=batches(), limit=st.sampled_from(LIMITS), data=st.data())
def test_decisions_in_any_order_give_the_sum_of_the_parts_not_rejected(
        parts: list[list[Part]], limit: float, data: st.DataObject) -> None:
    model = Model(limit)
    start = 0
    with Session(ruleset(limit), []) as session:
        for i, batch in enumerate(parts):
            session.add(facts(batch, start, i == 0))
            start += len(batch)
            model.arrive(batch, i == 0)
            result = session.run()
            model.check(result)
            # decide some of what is held (or none), then run on the decisions alone
            chosen = [(p, data.draw(st.sampled_from(["approve", "reject", "none", "none"])))
                      for p in result.pending]
            if all(c == "none" for _, c in chosen):
                continue
            for p, c in chosen:
                if c == "approve":
                    session.approve(p["id"], by="p", at=AT)
                elif c == "reject":
                    session.reject(p["id"], by="p", at=AT)
                if c != "none":
                    model.decide(p["fields"]["claim"], c == "approve")
            result = session.run()
            model.check(result)
        # at the end everything still held is approved: the sum of the parts not rejected
        while result.pending:
            for p in result.pending:
                session.approve(p["id"], by="p", at=AT)
                model.decide(p["fields"]["claim"], True)
            result = session.run()
            model.check(result)


@PROFILE
@given(parts=batches(), limit=st.sampled_from(LIMITS))
def test_approving_every_held_value_gives_the_run_without_the_gate(
        parts: list[list[Part]], limit: float) -> None:
    everything = [p for batch in parts for p in batch]
    given_all = facts(everything, 0, True)
    ungated = api.run(ruleset(None), given_all)
    assert ungated.status == "converged", ungated.detail
    sums = {c: sum(amount(p) for cc, p, _ in everything if cc == c) for c in (0, 1)}
    assert {f["claim"]: f["amount"] for f in ungated.facts("Payment")} == {
        c: s for c, s in sums.items() if s}

    def approve_all(pending: dict[str, Any]) -> Decision:
        return Decision(pending["id"], True, by="p", at=AT)

    gated = api.run(ruleset(limit), given_all, decisions=approve_all)
    assert gated.status == "converged", gated.detail
    assert gated.facts("Payment") == ungated.facts("Payment")
    # and all rejected: only what entered below the limit before a total was held
    model = Model(limit)
    model.arrive(everything, True)
    for claim in (0, 1):
        if model.held[claim] is not None:
            model.decide(claim, False)
    rejected = api.run(ruleset(limit), given_all, decisions=lambda p: Decision(
        p["id"], False, by="p", at=AT))
    model.check(rejected)
