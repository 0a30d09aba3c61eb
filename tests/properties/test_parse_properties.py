"""Properties of parse(): it never raises, and it always answers with a module or with
at least one error, every diagnostic pointing inside the text it was given."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from converge_rules.language.syntax.parser import parse

PRICING = (Path(__file__).resolve().parents[2] / "rulesets" / "pricing" / "pricing.cvg"
           ).read_text(encoding="utf-8")

# Pieces of real syntax, so random texts get deep into the grammar instead of failing on
# the first character.
_TOKENS = (
    "ruleset", "import", "uses", "tool", "root", "enum", "fact", "intent", "agent", "tier",
    "when", "where", "and", "or", "not", "in", "if", "then", "else", "call", "as", "emit",
    "confidence", "intend", "evaluate", "score", "reason", "policy", "resolve", "by",
    "highest", "lowest", "latest", "earliest", "priority", "majority", "using", "combine",
    "sum", "min", "max", "mean", "count", "keep", "all", "reject", "on", "tie", "first",
    "prune", "test", "given", "mock", "returns", "expect", "no", "conflict", "status",
    "key", "str", "int", "float", "bool", "list", "true", "false", "_", "Cost", "Price",
    "sku", "amount", "p", "x", "{", "}", "(", ")", "[", "]", ",", ":", ".", "=", "==",
    "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "?", "0", "1.5", "50_000",
    "1__0", "250ms", "2s", "5h", '"a"', '"b\\n"', '"bad', '"\\q"', "#c\n", "\n", " ",
    "\t", "'", "$", "\r\n", "é", "\x00",
)

tokens = st.sampled_from(_TOKENS)
chars = st.characters(codec="utf-8")
pieces = st.one_of(tokens, tokens, tokens, chars.map(str))
cvgish_texts = st.lists(pieces, max_size=60).map(" ".join) | st.lists(pieces, max_size=60).map(
    "".join)


def _lines(text: str) -> int:
    return text.count("\n") + 1


def _assert_well_formed(text: str) -> None:
    result = parse(text, "p.cvg")
    assert result.module is not None or any(d.is_error for d in result.diagnostics)
    for d in result.diagnostics:
        assert d.code.startswith("CVG") and d.message and d.help
        assert d.span is not None and d.span.file == "p.cvg"
        assert 1 <= d.span.line <= _lines(text) and d.span.column >= 1
        assert (d.span.line, d.span.column) <= (d.span.end_line, d.span.end_column)
    if result.module is not None:
        for comment in result.module.comments:
            assert comment.text.startswith("#")


@settings(max_examples=200, deadline=None)
@given(cvgish_texts)
def test_parse_never_raises_on_cvg_like_text(text: str) -> None:
    _assert_well_formed(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_parse_never_raises_on_any_text(text: str) -> None:
    _assert_well_formed(text)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(PRICING)), st.integers(0, 40), st.sampled_from(_TOKENS))
def test_damaged_ruleset_gives_diagnostics_not_exceptions(start: int, length: int,
                                                          insert: str) -> None:
    text = PRICING[:start] + insert + PRICING[start + length:]
    _assert_well_formed(text)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(PRICING)))
def test_every_prefix_of_a_ruleset_is_handled(cut: int) -> None:
    _assert_well_formed(PRICING[:cut])
