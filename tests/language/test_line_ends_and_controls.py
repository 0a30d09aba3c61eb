"""Line ends and invisible characters: the language counts lines at LF (a CR before it,
as in CRLF, is whitespace); a lone CR is refused at its place, and a control character
outside strings and comments is named by its code, where it is."""

from __future__ import annotations

import pytest

from converge_rules.errors import RulesSyntaxError
from converge_rules.language.format.formatter import format_source
from converge_rules.language.syntax.incremental import IncrementalParser
from converge_rules.language.syntax.parser import parse

GOOD = """ruleset t "line ends"
# a comment
fact A { key id: str, x: int }
agent a {
  when A(id, x) where x > 1
  emit B(id: id)
}
"""


def located(text: str) -> list[tuple[int, int, str, str]]:
    result = parse(text, "t.cvg")
    return [(d.span.line, d.span.column, d.code, d.message) for d in result.diagnostics
            if d.span is not None]


def test_crlf_counts_lines_as_lf_does() -> None:
    assert located(GOOD.replace("\n", "\r\n")) == located(GOOD)


def test_a_file_with_cr_line_ends_is_refused_at_its_first_cr() -> None:
    # Read as one line, the comment ran on to the end of the file and hid the code
    # after it: the file checked clean.
    result = parse(GOOD.replace("\n", "\r"), "t.cvg")
    assert result.module is None
    [diag] = result.diagnostics
    assert diag.code == "CVG004"
    assert (diag.span.line, diag.span.column) == (1, 22)
    assert "carriage return" in diag.message
    assert "LF" in diag.help


def test_a_lone_cr_among_lf_lines_is_refused_where_it_is() -> None:
    text = GOOD.replace("when A(id, x)", "when A(id,\rx)")
    [diag] = parse(text, "t.cvg").diagnostics
    assert (diag.span.line, diag.span.column, diag.code) == (5, 13, "CVG004")


def test_a_raw_cr_in_a_string_is_refused_too() -> None:
    # An editor and every LSP client end a line there: their line numbers would differ
    # from the language's for the rest of the file.
    [diag] = parse('ruleset t "a\rb"\n', "t.cvg").diagnostics
    assert (diag.span.line, diag.span.column, diag.code) == (1, 13, "CVG004")


def test_the_incremental_parser_refuses_a_lone_cr_as_parse_does() -> None:
    parser = IncrementalParser()
    assert parser(GOOD, "t.cvg").module is not None
    text = GOOD.replace("\n", "\r")
    assert parser(text, "t.cvg") == parse(text, "t.cvg")
    assert parser(GOOD, "t.cvg").module is not None


def test_fmt_writes_crlf_as_lf_and_refuses_cr_line_ends() -> None:
    assert format_source(GOOD.replace("\n", "\r\n")) == format_source(GOOD)
    with pytest.raises(RulesSyntaxError, match="1:22: a carriage return"):
        format_source(GOOD.replace("\n", "\r"))


@pytest.mark.parametrize(("word", "at"), [
    ("agent", 2),  # inside the word that starts an item
    ("emit", 2),   # inside a statement keyword
    ("id,", 1),    # inside a field name
])
@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f"])
def test_a_control_character_in_a_name_is_named_where_it_is(
        word: str, at: int, char: str) -> None:
    # It was "unexpected name `ag`; expected a new item": the parser refused the part
    # before the character, which the message did not mention.
    text = GOOD.replace(word, word[:at] + char + word[at:], 1)
    line = next(i for i, x in enumerate(text.split("\n"), 1) if char in x)
    column = text.split("\n")[line - 1].index(char) + 1
    first = parse(text, "t.cvg").diagnostics[0]
    assert first.code == "CVG004"
    assert first.message == f"control character U+{ord(char):04X} is not allowed here"
    assert (first.span.line, first.span.column) == (line, column)
    assert "control characters are not allowed" in first.help


def test_control_characters_stay_allowed_in_strings_and_comments() -> None:
    text = 'ruleset t "a\x00b\x1b[2J"\n# \x07 bell\n'
    assert parse(text, "t.cvg").diagnostics == ()


TROJAN = ('ruleset t\nfact A { key id: str, admin: bool }\n'
          'agent a {\n  when A(id, admin) where id == "user\u202e \u2066# admin\u2069 \u2066"\n'
          '  emit A(id: "x", admin: true)\n}\n# reviewed \u2067ok\n')


def test_bidirectional_controls_in_strings_and_comments_are_warned_at_their_place() -> None:
    """Found: a string or a comment could hold U+202E and the isolates (the "Trojan
    Source" attack: the line shows in another order than it holds) and checked clean."""
    assert [(line, col, code) for line, col, code, _ in located(TROJAN)] == [
        (4, 38, "CVG011"), (4, 40, "CVG011"), (4, 48, "CVG011"), (4, 50, "CVG011"),
        (7, 12, "CVG011")]
    result = parse(TROJAN, "t.cvg")
    assert all(d.severity.name == "WARNING" for d in result.diagnostics)
    assert result.ok  # a warning: the ruleset still loads
    # outside strings and comments the character is an error already, not twice
    outside = located("ruleset t\nfact A\u202e { key id: str }\n")
    assert [(line, col, code) for line, col, code, _ in outside] == [(2, 7, "CVG004")]


def test_a_diagnostic_shows_a_bidirectional_control_escaped() -> None:
    from converge_rules.language.diagnostics.render import render

    result = parse(TROJAN, "t.cvg")
    text = render("human", list(result.diagnostics)[:1], sources={"t.cvg": TROJAN})
    assert '"user\\u202e \\u2066# admin\\u2069 \\u2066"' in text
    assert "\u202e" not in text
