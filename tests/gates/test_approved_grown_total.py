"""A ``combine`` total that grew over several cycles while its gate held it, approved,
is the ungated run's (docs/approvals.md: approving every total gives the ungated
result): the same facts, resting on the same derivations, before and after a part is
retracted. Unheld, a total that replaces the key's value rests on the candidates of the
cycle that made it (earlier cycles' parts supported the value it replaced); approved,
on the same ones, as the held fact keeps its last cycle's derivations and the
parts combined in that cycle (``also``)."""

from __future__ import annotations

from typing import Any

import pytest

from converge_rules.api import loads
from converge_rules.engine.result import RunResult
from converge_rules.engine.session import Session
from tests.gates.test_pending_dropped import LATE_PART

GATE = "approve Payment when amount > 10_000.0\n"
UNGATED = LATE_PART.replace(GATE, "")
PAY = """\
ruleset pay
fact Part    { key id: str, claim: str, amount: float }
fact Payment { key claim: str, amount: float }
agent base { when Part(claim, amount) emit Payment(claim: claim, amount: amount) }
policy Payment { combine sum amount }
"""


def fact(t: str, i: str, amount: float) -> tuple[str, dict[str, Any]]:
    return t, {"id": i, "claim": "c1", "amount": amount}


def seen(result: RunResult) -> dict[str, Any]:
    """The facts by type, and each Payment's derivations (agent, support) with support
    ids read as the facts they name (ids differ: the ungated run's replaced totals took
    ids; so do cycles: an approved fact enters in its decision's cycle)."""
    named: dict[int, tuple[str, dict[str, Any]]] = {}
    facts: dict[str, Any] = {}
    for t in result.program.types:
        facts[t.name] = result.facts(t.name)
        named.update(zip(result.fact_ids(t.name), ((t.name, f) for f in facts[t.name]),
                         strict=True))
    facts["derivations"] = [
        [(d["agent"], [named[s] for s in d["support"]])
         for d in result.provenance(i)] for i in result.fact_ids("Payment")]
    return facts


def run(text: str, steps: list[tuple[str, Any]], approve: bool) -> list[dict[str, Any]]:
    out = []
    session = Session(loads(text))
    for kind, arg in steps:
        session.add(arg) if kind == "add" else session.retract(arg)
        result = session.run()
        while approve and session.pending:
            for held in session.pending:
                session.approve(held["id"], by="ann")
            result = session.run()
        assert result.status == "converged"
        out.append(seen(result))
    return out


GROWN = [("add", [fact("Part", "p1", 5_000.0), fact("Extra", "e1", 8_000.0),
                  fact("Late", "l1", 9_000.0)])]


@pytest.mark.parametrize(("text", "steps"), [
    (LATE_PART, [*GROWN, ("retract", ("Extra", {"id": "e1"}))]),
    (LATE_PART, [*GROWN, ("retract", ("Late", {"id": "l1"}))]),
    (PAY + GATE, [("add", [fact("Part", "p1", 6_000.0), fact("Part", "p2", 7_000.0)]),
                  ("add", [fact("Part", "p3", 500.0), fact("Part", "p4", 100.0)]),
                  ("retract", ("Part", {"id": "p3"}))]),
    (PAY + GATE, [("add", [fact("Part", "p1", 5_000.0)]),
                  ("add", [fact("Part", "p2", 8_100.0)]),
                  ("add", [fact("Part", "p3", 200.0)]),
                  ("retract", ("Part", {"id": "p2"}))]),
])
def test_a_grown_total_approved_is_the_ungated_runs(
    text: str, steps: list[tuple[str, Any]]
) -> None:
    gated = run(text, steps, approve=True)
    assert gated == run(text.replace(GATE, ""), steps, approve=False)
    assert gated[0]["derivations"]  # (the totals rest on something)
