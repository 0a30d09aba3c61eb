"""The outline (document symbols) lists every kind of item, invariants included (found
after the merge of invariants and the language server: they were left out)."""

from __future__ import annotations

from converge_rules.language.syntax.parser import parse
from converge_rules.lsp.index import outline

TEXT = """\
ruleset payouts
fact Payment { key claim: str, amount: float }
invariant small never Payment(claim, amount) where amount > 100.0
invariant total always sum(Payment(), amount) <= 1_000.0
approve Payment when amount > 10_000.0
"""


def test_invariants_are_in_the_outline() -> None:
    module = parse(TEXT, "payouts.cvg").module
    assert module is not None
    entries = {(o.name, o.kind) for o in outline(module)}
    assert {("small", "invariant"), ("total", "invariant")} <= entries


def test_approval_gates_are_in_the_outline() -> None:
    module = parse(TEXT, "payouts.cvg").module
    assert module is not None
    (gate,) = [o for o in outline(module) if o.kind == "gate"]
    assert gate.name == "approve Payment"
    assert (gate.span.line, gate.span.column, gate.span.end_column) == (5, 1, 39)
    assert (gate.selection.line, gate.selection.column) == (5, 9)
