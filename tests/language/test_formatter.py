"""The formatter: canonical layout, minimal parentheses, comments kept, idempotence and
meaning preserved on every example we have."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from converge_rules.errors import RulesSyntaxError
from converge_rules.language.format.formatter import (
    format_expr,
    format_module,
    format_source,
    format_value,
)
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.parser import parse
from converge_rules.language.syntax.span import UNKNOWN_SPAN, Span

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "language-contract.md"  # the contract, copied verbatim


def _code_blocks() -> list[str]:
    return re.findall(r"```\n(.*?)```", CONTRACT.read_text(encoding="utf-8"), re.S)


def _module(text: str) -> n.Module:
    result = parse(text, "t.cvg")
    assert [d for d in result.diagnostics if d.is_error] == []
    assert result.module is not None
    return result.module


def assert_round_trip(text: str) -> str:
    """Formatting keeps the meaning and every comment, and is idempotent."""
    formatted = format_source(text, "t.cvg")
    before, after = _module(text), _module(formatted)
    assert after == before
    assert [c.text for c in after.comments] == [c.text for c in before.comments]
    assert format_source(formatted, "t.cvg") == formatted
    return formatted


# ------------------------------------------------------------------- examples

def test_the_pricing_example_is_canonical() -> None:
    """The contract's own example is the house layout: ``converge fmt --check`` passes
    on it unchanged."""
    source = _code_blocks()[0]
    assert source.startswith("ruleset pricing")
    assert assert_round_trip(source) == source


def _complete_examples() -> list[str]:
    return [b for b in _code_blocks() if parse(b, "t.cvg").module is not None
            and not any(d.is_error for d in parse(b, "t.cvg").diagnostics)]


@pytest.mark.parametrize("source", _complete_examples())
def test_language_examples_round_trip(source: str) -> None:
    assert_round_trip(source)


@pytest.mark.parametrize(
    "path", sorted((ROOT / "rulesets").rglob("*.cvg")), ids=lambda p: p.name,
)
def test_rulesets_round_trip(path: Path) -> None:
    assert_round_trip(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------- expressions


def _prune_expr(source: str) -> str:
    """The canonical text of ``source`` written as a prune condition."""
    formatted = assert_round_trip(f"ruleset t\n\nprune X when {source}\n")
    return formatted.removeprefix("ruleset t\n\nprune X when ").removesuffix("\n")


@pytest.mark.parametrize(("source", "canonical"), [
    ("((a))", "a"),
    ("a+b*c", "a + b * c"),
    ("(a + b) * c", "(a + b) * c"),
    ("a + (b * c)", "a + b * c"),
    ("(a - b) - c", "a - b - c"),
    ("a - (b - c)", "a - (b - c)"),
    ("a / (b * c)", "a / (b * c)"),
    ("(a or b) and c", "(a or b) and c"),
    ("a or (b and c)", "a or b and c"),
    ("a and (b and c)", "a and (b and c)"),
    ("(not a) and b", "not a and b"),
    ("not (a and b)", "not (a and b)"),
    ("not (a == b)", "not a == b"),
    ("(not a) == b", "(not a) == b"),
    ("(a < b) == c", "(a < b) == c"),
    ("a == (b < c)", "a == (b < c)"),
    ("-(a + b)", "-(a + b)"),
    ("(-a) * b", "-a * b"),
    ("-(-a)", "--a"),
    ("a * -b", "a * -b"),
    ("a - -1", "a - -1"),
    ("-(p.amount)", "-p.amount"),
    ("(a + b).c", "(a + b).c"),
    ("x in [1, 2,3]", "x in [1, 2, 3]"),
    ("(x in y) == true", "(x in y) == true"),
    ("if a then b else (if c then d else e)", "if a then b else if c then d else e"),
    ("if (if a then b else c) then d else e", "if (if a then b else c) then d else e"),
    ("(if a then b else c) + 1", "(if a then b else c) + 1"),
    ("1 + (if a then b else c)", "1 + (if a then b else c)"),
    ("if a then b else c or d", "if a then b else c or d"),
    ("round( x*1.05 ,2)", "round(x * 1.05, 2)"),
    ("count( Alert( sku:s ) ) == 0", "count(Alert(sku: s)) == 0"),
    ("sum(Price(sku), amount) > 0", "sum(Price(sku), amount) > 0"),
    ("count(intent NeedRate(currency)) > 0", "count(intent NeedRate(currency)) > 0"),
    ("Channel.web == c", "Channel.web == c"),
    ("age > 50_000", "age > 50_000"),
    ("age > 1.50", "age > 1.50"),
    ("age > 1e-3", "age > 1e-3"),
    ("age > 2s", "age > 2s"),
    ("age > 250ms", "age > 250ms"),
    ('name == "a\\"b\\\\c\\n\\td"', 'name == "a\\"b\\\\c\\n\\td"'),
    ('name == "é→#"', 'name == "é→#"'),
    ("false != true", "false != true"),
])
def test_expressions_take_the_fewest_parentheses(source: str, canonical: str) -> None:
    assert _prune_expr(source) == canonical


def test_format_expr_of_a_hand_built_tree() -> None:
    s = UNKNOWN_SPAN
    tree = n.Binary("*", n.Binary("+", n.Name("a", s), n.Literal(1, "1", s), s),
                    n.Unary("-", n.Name("b", s), s), s)
    assert format_expr(tree) == "(a + 1) * -b"


# ------------------------------------------------------------------- layout


def test_layout_is_normalised() -> None:
    source = (
        "ruleset   demo\n\n\n"
        "fact Quote { sku: str, vendor: str, amount: float, currency: str = \"USD\", "
        "region: str, notes: list[str]? }\n"
        "enum Channel{web,store}\n"
        "agent long {\n"
        "when Cost(sku, amount: cost) and Quote(sku, amount: theirs, currency: \"USD\") "
        "and not Alert(sku, message: \"x\") where theirs > cost * 1.05\n"
        "call fx_rate(currency: \"EUR\") as rate\n"
        "intend NeedRate(currency: currency) evaluate p score 0.5 reason \"because\"\n"
        "}\n"
        "agent short tier 2 { when p: Price(sku, amount) where amount < 0 emit A(sku: sku) }\n"
        "policy Price { keep all }\n"
        "policy Cost { combine sum amount }\n"
        "policy Rate { resolve by latest, using mine, priority [a, b] on tie reject }\n"
        "policy Alert { reject }\n"
        "root \"g\" { max_cycles=3 require true job_timeout=1m }\n"
        "test \"t\" { given A(x: 1) mock tool fx_rate(currency: \"EUR\") returns {usd: 1.1}"
        " expect conflict Price(sku: \"A1\") }\n"
    )
    assert assert_round_trip(source) == (
        "ruleset demo\n"
        "\n"
        "fact Quote {\n"
        "  sku: str\n"
        "  vendor: str\n"
        "  amount: float\n"
        "  currency: str = \"USD\"\n"
        "  region: str\n"
        "  notes: list[str]?\n"
        "}\n"
        "\n"
        "enum Channel { web, store }\n"
        "\n"
        "agent long {\n"
        "  when Cost(sku, amount: cost)\n"
        "    and Quote(sku, amount: theirs, currency: \"USD\")\n"
        "    and not Alert(sku, message: \"x\")\n"
        "  where theirs > cost * 1.05\n"
        "  call fx_rate(currency: \"EUR\") as rate\n"
        "  intend NeedRate(currency: currency)\n"
        "  evaluate p score 0.5 reason \"because\"\n"
        "}\n"
        "\n"
        "agent short tier 2 {\n"
        "  when p: Price(sku, amount) where amount < 0\n"
        "  emit A(sku: sku)\n"
        "}\n"
        "\n"
        "policy Price {\n"
        "  keep all\n"
        "}\n"
        "\n"
        "policy Cost {\n"
        "  combine sum amount\n"
        "}\n"
        "\n"
        "policy Rate {\n"
        "  resolve by latest, then using mine, then priority [a, b]\n"
        "  on tie reject\n"
        "}\n"
        "\n"
        "policy Alert {\n"
        "  reject\n"
        "}\n"
        "\n"
        "root \"g\" {\n"
        "  max_cycles    = 3\n"
        "  require true\n"
        "  job_timeout   = 1m\n"
        "}\n"
        "\n"
        "test \"t\" {\n"
        "  given A(x: 1)\n"
        "  mock tool fx_rate(currency: \"EUR\") returns {usd: 1.1}\n"
        "  expect conflict Price(sku: \"A1\")\n"
        "}\n"
    )


def test_adjacent_one_line_items_stay_grouped_and_aligned() -> None:
    source = (
        "ruleset t\n"
        "import \"a.cvg\"\n"
        "import \"b.cvg\"\n\n\n"
        "fact A { x: int }\n"
        "fact Long { y: int }\n"
        "intent Need { z: int }\n\n"
        "fact B { x: int }\n"
    )
    assert assert_round_trip(source) == (
        "ruleset t\n\n"
        "import \"a.cvg\"\n"
        "import \"b.cvg\"\n\n"
        "fact A     { x: int }\n"
        "fact Long  { y: int }\n"
        "intent Need { z: int }\n\n"
        "fact B { x: int }\n"
    )


# ----------------------------------------------------------------- comments

COMMENTED = """\
# file header comment
ruleset demo   # trailing on header

# about the import
import "lib.cvg"
fact   A {   # opener comment
  key x: int,   # the key
  # own line inside
  y: str = "q"
}
fact LongName { q: int }   # trailing on one-liner


agent   x  tier 2 {
  # before when
  when A(x) and
     B(z: (z + 1) * 2)   # after B
  where x > 1   # guard
  # before emit
  emit B(z: x)    # first
  emit B(z: 2)  # second
  # at end of body
}   # after closing brace
test "t" {
  given A(x: 1)

  # group two
  expect no B(z: 1.0)
     expect status converged
}
# end of file
"""

COMMENTED_CANONICAL = """\
# file header comment
ruleset demo                             # trailing on header

# about the import
import "lib.cvg"

fact A {                                 # opener comment
  key x: int                             # the key
  # own line inside
  y: str = "q"
}

fact LongName { q: int }                 # trailing on one-liner

agent x tier 2 {
  # before when
  when A(x) and B(z: (z + 1) * 2)        # after B
  where x > 1                            # guard
  # before emit
  emit B(z: x)                           # first
  emit B(z: 2)                           # second
  # at end of body
}                                        # after closing brace

test "t" {
  given A(x: 1)

  # group two
  expect no B(z: 1.0)
  expect status converged
}

# end of file
"""


def test_comments_stay_where_they_were() -> None:
    assert assert_round_trip(COMMENTED) == COMMENTED_CANONICAL


def test_comments_keep_count_text_and_order() -> None:
    formatted = format_source(COMMENTED)
    texts = [line.strip() for line in COMMENTED.splitlines() if "#" in line]
    assert [c.text for c in _module(formatted).comments] == [
        t[t.index("#"):] for t in texts
    ]


def test_trailing_comments_share_a_column_past_long_code() -> None:
    source = (
        "ruleset t\n"
        "test \"t\" {\n"
        "  given Quote(sku: \"A1\", vendor: \"acme\", amount: 12.0, currency: \"EUR\") # a\n"
        "  given A() # b\n"
        "  given B()\n"
        "  given C() # c\n"
        "}\n"
    )
    long = '  given Quote(sku: "A1", vendor: "acme", amount: 12.0, currency: "EUR")'
    assert len(long) > 41
    assert assert_round_trip(source).splitlines()[3:7] == [
        long + "  # a",
        "  given A()".ljust(len(long) + 2) + "# b",  # aligned with the line above
        "  given B()",
        "  given C()".ljust(41) + "# c",  # a new group: back to column 42
    ]


def test_two_trailing_comments_joined_on_one_line_keep_their_order() -> None:
    source = "ruleset t\nprune A when x > 1 # one\n  and y > 2 # two\n"
    formatted = assert_round_trip(source)
    assert formatted == (
        "ruleset t\n\n"
        "# one\n"
        "prune A when x > 1 and y > 2             # two\n"
    )


def test_comments_in_a_one_line_fact_open_it_up() -> None:
    source = "ruleset t\nfact A { x: int, # the x\n y: int }\n"
    assert assert_round_trip(source) == (
        "ruleset t\n\nfact A {\n  x: int                                 # the x\n  y: int\n}\n"
    )


# ---------------------------------------------------------------- API edges


def test_format_source_raises_on_syntax_errors() -> None:
    with pytest.raises(RulesSyntaxError) as info:
        format_source("ruleset t\nfact A { x: }\n", "bad.cvg")
    first = info.value.diagnostics[0]
    assert first.code.startswith("CVG0")
    assert first.span is not None
    assert (first.span.file, first.span.line) == ("bad.cvg", 2)


def test_format_module_needs_no_spans() -> None:
    s = UNKNOWN_SPAN
    module = n.Module(
        n.RulesetDecl(n.Ident("r", s), None, s),
        (
            n.FactDecl(n.Ident("A", s), (n.FieldDecl(n.Ident("x", s), n.TypeRef(
                "int", (), True, s), True, None, s),), False, s),
            n.Prune(n.Ident("A", s), n.Binary(">", n.Name("age", s), n.Literal(3, "3", s), s),
                    s),
        ),
        (),
        s,
    )
    text = format_module(module)
    assert text == "ruleset r\n\nfact A { key x: int? }\n\nprune A when age > 3\n"
    assert _module(text) == module


def test_long_argument_lists_take_one_argument_per_line() -> None:
    long_note = "a note long enough to push the line past one hundred columns"
    source = (
        "ruleset t\n"
        "agent a {\n"
        "  when Order(sku)\n"
        f'  emit Order(sku: sku,  # the sku\n    units: 5, note: "{long_note}"\n'
        "  # before the parenthesis\n"
        "  ) confidence 0.5  # end\n"
        "}\n"
    )
    assert assert_round_trip(source) == (
        "ruleset t\n\n"
        "agent a {\n"
        "  when Order(sku)\n"
        "  emit Order(\n"
        "    sku: sku,                            # the sku\n"
        "    units: 5,\n"
        f'    note: "{long_note}",\n'
        "    # before the parenthesis\n"
        "  ) confidence 0.5                       # end\n"
        "}\n"
    )


# Reached through a typed field of their parent, never by dispatch on the node type.
_WRITTEN_THROUGH_THEIR_PARENT = {"Ident", "FieldMatch", "RulesetDecl", "Budget", "Require",
                                 "OnTie"}


def test_the_formatter_writes_every_node_type() -> None:
    """A node type added to ``nodes.py`` must get a case in the formatter."""
    source = (ROOT / "converge_rules" / "language" / "format" / "formatter.py").read_text()
    node_types = [
        name for name, obj in vars(n).items()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj)
        and obj.__module__ == n.__name__
    ]
    missing = [name for name in node_types
               if f"n.{name}" not in source and name not in _WRITTEN_THROUGH_THEIR_PARENT]
    assert not missing


def test_an_unknown_node_is_an_error_not_wrong_text() -> None:
    @dataclasses.dataclass(frozen=True)
    class Mystery:
        span: Span

    module = n.Module(None, (Mystery(UNKNOWN_SPAN),), (), UNKNOWN_SPAN)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot write a Mystery node"):
        format_module(module)


def test_blank_lines_around_comments_follow_the_source() -> None:
    source = (
        "ruleset t\n"
        "# section\n\n"
        "fact A { x: int }\n"
        "test \"t\" {\n"
        "  given A(x: 1)\n"
        "  # then\n\n\n"
        "  expect A(x: 1)\n\n"
        "  # last\n"
        "\n"
        "}\n"
    )
    assert assert_round_trip(source) == (
        "ruleset t\n\n"
        "# section\n\n"
        "fact A { x: int }\n\n"
        "test \"t\" {\n"
        "  given A(x: 1)\n"
        "  # then\n\n"
        "  expect A(x: 1)\n\n"
        "  # last\n"
        "}\n"
    )


@pytest.mark.parametrize(("value", "enum", "text"), [
    ("A1", False, '"A1"'),
    ('say "hi"\n\tback\\slash', False, '"say \\"hi\\"\\n\\tback\\\\slash"'),
    ("web", True, "web"),
    (("web", "store"), True, "[web, store]"),
    (None, False, "none"),
    (True, False, "true"),
    (11.88, False, "11.88"),
    ({"usd": 1.1, "ok": False}, False, "{usd: 1.1, ok: false}"),
    # a tool's answer must not drive the terminal: no raw control characters
    ("red\x1b[31m\r", False, '"red\\u001b[31m\\r"'),
])
def test_run_time_values_are_written_as_literals(value: object, enum: bool, text: str) -> None:
    assert format_value(value, enum=enum) == text


def test_string_literals_in_rule_text_keep_raw_control_characters() -> None:
    # The language has no escape for a control character: rule text keeps it as
    # written, so formatting stays a round trip. (A raw carriage return is refused:
    # tests/language/test_line_ends_and_controls.py.)
    source = 'ruleset t\n\nprune X when s == "a\x1bb"\n'
    assert format_source(source) == source
