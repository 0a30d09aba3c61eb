"""``converge replay`` of a session's trace is the trace, byte for byte, for any parts
of a ``combine sum`` type arriving over a session's runs — as the type itself (an
input, combined with the key's value at once) or through an agent (held by the gate
above a limit, or entering) — with any decisions (approve, reject, none) taken between
the runs. The replay merges each run's facts as given (a combined total is never given
again: it would be combined with its own parts) and applies each decision at the pause
it was taken at. The sessions are those of test_gates_combine_properties."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from converge_rules import Session
from converge_rules.cli import main
from tests.properties.test_gates_combine_properties import (
    AT,
    PROFILE,
    TEXT,
    Part,
    batches,
    facts,
    ruleset,
)

LIMITS = [None, 1_500.0, 5_000.0, 20_000.0]


def replayed(limit: float | None, trace: list[str]) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "parts.cvg"
        gate = "" if limit is None else f"approve Payment when amount > {limit}\n"
        rules.write_text(TEXT + gate, encoding="utf-8")
        recorded = Path(tmp) / "trace.jsonl"
        recorded.write_text("".join(line + "\n" for line in trace), encoding="utf-8")
        return CliRunner().invoke(main, ["replay", str(rules), str(recorded)])


@PROFILE
@given(parts=batches(), limit=st.sampled_from(LIMITS), data=st.data())
def test_a_sessions_trace_replays_identically(parts: list[list[Part]], limit: float | None,
                                              data: st.DataObject) -> None:
    start = 0
    with Session(ruleset(limit), []) as session:
        for i, batch in enumerate(parts):
            # decide some of what is held (or none) before the next facts
            for p in session.pending:
                choice = data.draw(st.sampled_from(["approve", "reject", "none"]))
                if choice != "none":
                    getattr(session, choice)(p["id"], by="p", at=AT)
            session.add(facts(batch, start, i == 0))
            start += len(batch)
            result = session.run()
        trace = list(result.trace.lines())
    out = replayed(limit, trace)
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("identical:")


@PROFILE
@given(parts=batches(), limit=st.sampled_from(LIMITS), data=st.data())
def test_a_stored_job_resumed_with_facts_and_decisions_replays_identically(
        parts: list[list[Part]], limit: float | None, data: st.DataObject) -> None:
    # the same, kept in a store: `converge run --store`, then decisions recorded on
    # what is held and `--resume --facts` with each later batch
    from converge_rules import api

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "parts.cvg"
        gate = "" if limit is None else f"approve Payment when amount > {limit}\n"
        rules.write_text(TEXT + gate, encoding="utf-8")
        loaded = ruleset(limit)
        db = str(Path(tmp) / "run.db")
        result = api.run(loaded, facts(parts[0], 0, True), store=db, now=None)
        start = len(parts[0])
        for batch in parts[1:]:
            for p in result.pending:
                choice = data.draw(st.sampled_from(["approve", "reject", "none"]))
                if choice != "none":
                    getattr(api, choice)(db, p["id"], by="p", at=AT)
            more = facts(batch, start, False)
            start += len(batch)
            if not more:
                continue  # (no facts: nothing to resume with)
            result = api.resume(db, ruleset=loaded, facts=more)
        out = CliRunner().invoke(main, ["replay", str(rules), db])
        assert out.exit_code == 0, out.output
        assert out.stdout.startswith("identical:")
