"""Variables in the index and in a rename: each bound in its own rule (an agent, an
invariant, an aggregate's pattern inside one), by every form that binds one, with its
uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from converge_rules.language.checks.checker import check
from converge_rules.language.loader import load_file
from converge_rules.lsp.index import RulesetIndex, Symbol, build
from converge_rules.lsp.rename import RenameRefused, check_new_name, edits, texts_after

SCOPES = """ruleset scopes
uses tool fx_rate
fact Quote { key sku: str, amount: float, currency: str }
fact Price { key sku: str, amount: float }
fact Big { key sku: str }
agent convert {
  when q: Quote(sku, amount, currency) where count(Quote(sku: s, amount)) > 0
  call fx_rate(currency: currency) as rate
  emit Price(sku: sku, amount: amount * rate.usd)
  evaluate q score 1.0
}
agent pick one at a time by lowest amount, then lowest sku {
  when Price(sku, amount) where amount > max(Quote(sku: other, amount: amount), amount)
  emit Big(sku: sku)
}
invariant no_free never Price(sku, amount) where amount < 0.0
"""


def indexed(tmp_path: Path, text: str = SCOPES) -> tuple[Path, RulesetIndex]:
    path = tmp_path / "scopes.cvg"
    checked = check(load_file(path, source=text))
    assert checked.ok, [str(d) for d in checked.diagnostics]
    return path, build(checked)


def at(index: RulesetIndex, text: str, needle: str, offset: int = 0) -> Symbol:
    before = text[:text.index(needle) + offset]
    line, column = before.count("\n") + 1, len(before) - before.rfind("\n")
    found = index.at(next(iter(index.occurrences)), line, column)
    assert found is not None
    return found.symbol


def renamed(tmp_path: Path, needle: str, offset: int, new: str) -> str:
    path, index = indexed(tmp_path)
    symbol = at(index, SCOPES, needle, offset)
    check_new_name(symbol, new, [index])
    (text,) = texts_after(edits(symbol, new, [index]), index.checked.sources).values()
    checked = check(load_file(path, source=text))
    assert checked.ok, [str(d) for d in checked.diagnostics]
    return text


def test_each_rule_binds_its_own_variables(tmp_path: Path) -> None:
    _, index = indexed(tmp_path)
    amounts = {o.symbol for o in index.all()
               if o.symbol.kind == "variable" and o.symbol.name == "amount"}
    assert len(amounts) == 3  # convert's, pick's, the invariant's
    inner = at(index, SCOPES, "sku: s,", 5)
    assert inner.kind == "variable" and inner.key[1] == "7:46"  # the aggregate's


def test_a_call_alias_and_a_binder_are_renamed_with_their_uses(tmp_path: Path) -> None:
    assert renamed(tmp_path, "as rate", 3, "fx") == SCOPES.replace(
        "as rate", "as fx").replace("rate.usd", "fx.usd")
    assert renamed(tmp_path, "evaluate q", 9, "quote") == SCOPES.replace(
        "when q:", "when quote:").replace("evaluate q", "evaluate quote")


def test_a_variable_used_in_an_order_and_an_aggregate(tmp_path: Path) -> None:
    assert renamed(tmp_path, "where amount > max", 6, "price") == SCOPES.replace(
        "lowest amount,", "lowest price,").replace(
        "when Price(sku, amount) where amount > max(Quote(sku: other, amount: amount), "
        "amount)", "when Price(sku, amount: price) where price > max(Quote(sku: other, "
        "amount: price), amount)")


def test_an_invariants_variable(tmp_path: Path) -> None:
    assert renamed(tmp_path, "where amount < 0.0", 6, "paid") == SCOPES.replace(
        "never Price(sku, amount) where amount < 0.0",
        "never Price(sku, amount: paid) where paid < 0.0")


def test_an_outer_variable_may_not_take_an_aggregates_name(tmp_path: Path) -> None:
    _, index = indexed(tmp_path)
    with pytest.raises(RenameRefused, match="bound in the same rule"):
        check_new_name(at(index, SCOPES, "as rate", 3), "s", [index])
    with pytest.raises(RenameRefused, match="bound in the same rule"):
        check_new_name(at(index, SCOPES, "sku: s,", 5), "currency", [index])
