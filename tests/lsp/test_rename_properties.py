"""Renaming a name of any shipped ruleset (rulesets/, and the whole rulesets of
docs/language.md) to a fresh name: the renamed ruleset checks as the original did; a
type renamed to a name as long formats as the original does with the type's name
changed and nothing else (strings and comments that spell it stay)."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from converge_rules.language.checks.checker import check
from converge_rules.language.format.formatter import format_source
from converge_rules.language.loader import load_file
from converge_rules.lsp.index import Symbol, build
from converge_rules.lsp.rename import RENAMABLE, RESERVED_TYPES, edits, texts_after

REPO = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```cvg\n(ruleset.*?)^```[ \t]*$", re.S | re.M)
# each shipped ruleset, and each whole ruleset of the language reference (as if it were a
# file beside it)
CORPUS = [(p, p.read_text(encoding="utf-8"))
          for p in sorted((REPO / "rulesets").rglob("*.cvg"))] + [
    (REPO / "docs" / f"language-{i}.cvg", m.group(1)) for i, m in enumerate(
        _FENCE.finditer((REPO / "docs" / "language.md").read_text(encoding="utf-8")))]
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|\S')


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


@settings(deadline=None, derandomize=True, database=None, max_examples=60)
@given(st.data())
def test_a_type_renamed_checks_and_formats_as_before(data: st.DataObject) -> None:
    path, text = data.draw(st.sampled_from(CORPUS), label="ruleset")
    before = check(load_file(path, source=text))
    types = sorted({*before.facts, *before.enums})
    assume(types)
    old = data.draw(st.sampled_from(types), label="type")
    spelt = {w for text in before.sources.values() for w in tokens(text)}
    # as long as the old name: the formatter's line breaks (and the trailing commas that
    # come with them) depend on the lines' widths
    new = data.draw(st.from_regex(rf"[A-Z][A-Za-z0-9_]{{{len(old) - 1}}}", fullmatch=True)
                    .filter(lambda w: w not in spelt), label="new name")
    symbol = Symbol("type", (old,))
    edited = edits(symbol, new, [build(before)])
    after_texts = texts_after(edited, before.sources)
    overlay = {Path(f).resolve(): text for f, text in after_texts.items()}
    after = check(load_file(path, source=overlay.get(path.resolve(), text), overlay=overlay))
    assert sorted(d.code for d in after.diagnostics) == sorted(
        d.code for d in before.diagnostics)
    assert set(after.facts) | set(after.enums) == \
        (set(before.facts) | set(before.enums)) - {old} | {new}
    for file, text in after_texts.items():
        was, now = tokens(format_source(before.sources[file])), tokens(format_source(text))
        assert len(was) == len(now)
        changed = [(a, b) for a, b in zip(was, now, strict=True) if a != b]
        assert changed and set(changed) == {(old, new)}, file


@settings(deadline=None, derandomize=True, database=None, max_examples=250)
@given(st.data())
def test_any_name_renamed_checks_as_before(data: st.DataObject) -> None:
    """Any type, field, enum member, agent or variable of a shipped ruleset renamed to
    a fresh name: an occurrence the rename missed, or one it took wrongly, would be an
    unknown name, a type mismatch or a duplicate."""
    path, text = data.draw(st.sampled_from(CORPUS), label="ruleset")
    before = check(load_file(path, source=text))
    index = build(before)
    symbols = sorted({o.symbol for o in index.all()
                      if o.declaration and o.symbol.kind in RENAMABLE},
                     key=lambda s: (s.kind, s.key))
    assume(symbols)
    symbol = data.draw(st.sampled_from(symbols), label="symbol")
    spelt = {w for text in before.sources.values() for w in tokens(text)}
    first = "[A-Z]" if symbol.kind == "type" else "[a-z]"
    new = data.draw(st.from_regex(first + r"[a-z0-9_]{0,8}", fullmatch=True)
                    .filter(lambda w: w not in spelt and w not in RESERVED_TYPES),
                    label="new name")
    after_texts = texts_after(edits(symbol, new, [index]), before.sources)
    overlay = {Path(f).resolve(): text for f, text in after_texts.items()}
    after = check(load_file(path, source=overlay.get(path.resolve(), text), overlay=overlay))
    assert sorted(d.code for d in after.diagnostics) == sorted(
        d.code for d in before.diagnostics)
    renamed = build(after)
    assert not any(o.symbol == symbol for o in renamed.all())
