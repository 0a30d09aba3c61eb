"""Turn lark's parse errors into diagnostics written for a domain expert.

Private to the parser. Terminal names (``RBRACE``, ``NAME``) become words ("`}`",
"a field name"); long expected sets collapse ("an expression", "an operator"); the
parser's value stack tells which block is open, so a missing brace reads "expected `}`
to close agent `a` opened at 5:1".
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Any

from converge_rules.language.diagnostics.core import Diagnostic, Related, Severity, define
from converge_rules.language.syntax.span import Span

SYNTAX = define(
    "CVG001", "syntax-error", Severity.ERROR, "Syntax error",
    "The text does not follow the grammar of the rules language at this point. The message "
    "says what was found and what may come there instead.",
    wrong='ruleset r\nfact Cost { key sku: str amount float }\n',
    right='ruleset r\nfact Cost { key sku: str, amount: float }\n',
)
UNCLOSED = define(
    "CVG002", "unclosed-block", Severity.ERROR, "Block or bracket not closed",
    "Every `{`, `(` and `[` needs its closing partner before the next item starts or the "
    "file ends. The diagnostic points at where the closer is missing and at the opener.",
    wrong='ruleset r\nfact Cost { sku: str }\nagent a {\n  when Cost(sku)\n'
          '  emit Cost(sku: sku)\n\nfact Other { x: int }\n',
    right='ruleset r\nfact Cost { sku: str }\nagent a {\n  when Cost(sku)\n'
          '  emit Cost(sku: sku)\n}\n\nfact Other { x: int }\n',
)
UNTERMINATED_STRING = define(
    "CVG003", "unterminated-string", Severity.ERROR, "Unterminated string",
    'A string starts and ends with `"` on the same line. Write `\\"` for a quote inside it.',
    wrong='ruleset r "Prices\n',
    right='ruleset r "Prices"\n',
)
BAD_CHARACTER = define(
    "CVG004", "bad-character", Severity.ERROR, "Character not allowed here",
    "The character cannot start any token of the language. Strings use double quotes, "
    "comments start with `#`. Control characters are allowed only in strings and "
    "comments, and are named by their code point (`U+0000`). A carriage return is "
    "allowed only just before a line feed (CRLF): a file whose lines end in CR alone is "
    "refused at its first CR, where editors and the language still agree on the line.",
    wrong="ruleset r 'Prices'\n",
    right='ruleset r "Prices"\n',
)
BIDI_CONTROL = define(
    "CVG011", "bidi-control", Severity.WARNING, "Bidirectional control character",
    "A string or a comment holds a Unicode bidirectional embedding, override or isolate "
    "(U+202A to U+202E, U+2066 to U+2069). Editors and review tools reorder the text "
    "after it, so the line reads differently from what it holds: a comment can seem to "
    "end where it does not, and a string can seem to be another (the \"Trojan Source\" "
    "attack, CVE-2021-42574). Remove it; right-to-left text needs none of them.",
    wrong='ruleset r\nfact A { key id: str }\n# checked by \u202eana\n',
    right='ruleset r\nfact A { key id: str }\n# checked by ana\n',
)
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def bidi_controls(text: str, path: str, flagged: set[tuple[int, int]]) -> list[Diagnostic]:
    """A warning at each bidirectional control of ``text`` (inside a string or a
    comment: elsewhere it is a bad character already, at a place in ``flagged``)."""
    found = []
    for match in _BIDI.finditer(text):
        pos = match.start()
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        if (line, column) in flagged:
            continue
        found.append(Diagnostic(
            BIDI_CONTROL, Severity.WARNING,
            f"bidirectional control character U+{ord(match.group()):04X} in a string or a "
            "comment: the text after it shows in another order than it is",
            _span(path, line, column, line, column + 1),
            "remove it (it is invisible in most editors); right-to-left text needs no "
            "control characters"))
    return found


MISSING_HEADER = define(
    "CVG006", "missing-ruleset-header", Severity.ERROR, "File does not start with `ruleset`",
    "Every `.cvg` file starts with `ruleset NAME \"title\"`; NAME is the file's namespace.",
    wrong="fact Cost { sku: str }\n",
    right='ruleset costs "Costs"\nfact Cost { sku: str }\n',
)
UNKNOWN_ITEM = define(
    "CVG007", "unknown-item", Severity.ERROR, "Unknown top-level item",
    "A file is made of items, each starting with one of the words `import`, `uses`, "
    "`root`, `enum`, `fact`, `intent`, `agent`, `policy`, `prune`, `test`.",
    wrong="ruleset r\nfact Cost { sku: str }\nagnet a {\n  when Cost(sku)\n"
          "  emit Cost(sku: sku)\n}\n",
    right="ruleset r\nfact Cost { sku: str }\nagent a {\n  when Cost(sku)\n"
          "  emit Cost(sku: sku)\n}\n",
)
MISPLACED_HEADER = define(
    "CVG010", "misplaced-ruleset-header", Severity.ERROR, "`ruleset` line not first",
    "The `ruleset` line comes once, before every other item of the file.",
    wrong="ruleset r\nfact Cost { sku: str }\nruleset again\n",
    right="ruleset r\nfact Cost { sku: str }\n",
)
INTERNAL = define(
    "CVG990", "parser-limit", Severity.ERROR, "Input the parser cannot handle",
    "The input is nested too deeply to parse (or the parser hit an internal error, which is "
    "a bug to report). Split very deep expressions into smaller ones.",
    wrong='ruleset r\nroot "goal" {\n  require ' + "-" * 20000 + "1 < 0\n}\n",
    right='ruleset r\nroot "goal" {\n  require -1 < 0\n}\n',
)

ITEM_WORDS = ("import", "uses", "root", "enum", "fact", "intent", "agent", "policy",
              "prune", "test")
_ITEM_TYPES = {w.upper() for w in ITEM_WORDS}
_ITEM_RULES = {"header", "import_decl", "uses", "root", "enum_decl", "fact_decl",
               "intent_decl", "agent", "policy", "prune", "prune_using", "test"}
_EXPR_START = {"NAME", "NUMBER", "STRING", "TRUE", "FALSE", "IF", "NOT", "MINUS",
               "UNDERSCORE", "LPAR", "LSQB", "LBRACE"}
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "PERCENT", "EQ", "NE", "LT", "GT", "LE",
              "GE", "IN", "AND", "OR", "DOT"}
_OPENERS = {"LBRACE": "RBRACE", "LPAR": "RPAR", "LSQB": "RSQB"}
_CLOSERS = set(_OPENERS.values())
_STATEMENT_WORDS = {"when", "where", "call", "emit", "intend", "evaluate", "require", "given",
                    "mock", "expect", *ITEM_WORDS}
_SYNTAX = {
    "agent": "`agent NAME [tier N] [one at a time by ORDER] { when PATTERN [and PATTERN]* "
             "[where EXPR] "
             "[call TOOL(arg: EXPR) as NAME]* OUTPUT+ }` where OUTPUT is `emit`, `intend` "
             "or `evaluate`",
    "fact": "`fact NAME { [key] field: type [= default], … }`",
    "intent": "`intent NAME { field: type, … }`",
    "enum": "`enum NAME { member, … }`",
    "root": '`root "goal" { budget = value … require EXPR … }`',
    "policy": "`policy FACT { resolve by CRITERION[, then CRITERION]* | combine "
              "sum|min|max|mean FIELD | keep all | reject [on tie reject|first|latest] }`",
    "test": '`test "name" { given … mock tool … returns|fails … expect [no|conflict|status] … }`',
    "emit": "`emit [lasting] Fact(field: EXPR, …) [confidence EXPR]`",
    "intend": "`intend Intent(field: EXPR, …)`",
    "given": "`given Fact(field: value, …)`",
    "call": "`call TOOL(arg: EXPR, …) as NAME`",
}
_WORDS = {"NAME": "a name", "NUMBER": "a number", "STRING": "a string",
          "$END": "the end of the file"}


def _span(path: str, line: int, column: int, end_line: int, end_column: int) -> Span:
    return Span(path, line, column, end_line, end_column)


def misplaced_header(span: Span) -> Diagnostic:
    """The ``ruleset`` line appears again, or after other items."""
    return Diagnostic(MISPLACED_HEADER, Severity.ERROR,
                      "the `ruleset` line must be the first item and appear once", span,
                      "move it to the top of the file, or delete this copy")


def describe_error(exc: Any, text: str, path: str, line_offset: int, parser: Any, *,
                   at_file_start: bool) -> Diagnostic:
    """One diagnostic for one lark ``UnexpectedInput`` raised on ``text`` (a chunk of
    ``path`` that starts ``line_offset`` lines into the file)."""
    if hasattr(exc, "token"):
        return _unexpected_token(exc, text, path, line_offset, parser,
                                 at_file_start=at_file_start)
    return _unexpected_character(exc, text, path, line_offset)


def _ascii_suggestion(text: str, pos: int) -> str:
    """``: write `cle` for `clé``` for the word around ``pos``, when dropping accents
    leaves an ASCII name."""
    start = pos
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    end = pos
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    word = text[start:end]
    plain = "".join(c for c in unicodedata.normalize("NFKD", word)
                    if not unicodedata.combining(c))
    if plain and plain != word and plain.isascii() and plain.isidentifier():
        return f": write `{plain}` for `{word}`"
    return ""


def _not_a_token_start(char: str) -> bool:
    """True for a character that no token starts with and that is not whitespace: a
    control character, or any character beyond ASCII (outside strings and comments)."""
    return bool(char) and char != "\ufeff" and not (
        char.isascii() and (char.isprintable() or char in " \t\n\r\f"))


def _unexpected_character(exc: Any, text: str, path: str, off: int) -> Diagnostic:
    return _bad_character(text, exc.pos_in_stream, path, exc.line + off, exc.column)


def _bad_character(text: str, pos: int, path: str, line: int, col: int) -> Diagnostic:
    """The diagnostic for the character at ``pos`` of ``text`` (at ``line``:``col`` of
    the file), which no token can start."""
    char = text[pos] if 0 <= pos < len(text) else ""
    if char and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
        # Invisible, or shown differently by every editor: say which it is by its code.
        code = f"U+{ord(char):04X}"
        if unicodedata.category(char) == "Cc":
            message = f"control character {code} is not allowed here"
            help_ = ("control characters are not allowed outside strings and comments: "
                     "remove it (it is invisible in most editors)")
        else:
            message = f"invisible character {code} is not allowed here"
            help_ = ("remove it: outside strings and comments only ASCII letters, digits, "
                     "punctuation and spaces are allowed")
        return Diagnostic(BAD_CHARACTER, Severity.ERROR, message,
                          _span(path, line, col, line, col + 1), help_)
    if char == '"':
        rest = text[pos:].split("\n", 1)[0]
        return Diagnostic(UNTERMINATED_STRING, Severity.ERROR,
                          "unterminated string: no closing `\"` on this line",
                          _span(path, line, col, line, col + len(rest)),
                          'end the string with `"` on the same line; write `\\"` for a quote '
                          "inside it")
    if char == "'":
        help_ = 'strings use double quotes: "like this"'
    elif char == "=" and text[pos:pos + 2] != "==":
        help_ = "compare with `==`; `=` only sets budgets and defaults"
    elif char in "\u201c\u201d\u201e\u2018\u2019\u00ab\u00bb":
        help_ = 'a typographic quote: strings use straight double quotes "like this"'
    elif char in "\u00a0\u2007\u202f\u200b\u3000":
        help_ = "an invisible non-standard space: replace it with an ordinary space"
    elif char.isalnum():  # a letter beyond ASCII, most likely inside a name
        help_ = ("names use ASCII letters, digits and `_` only"
                 + _ascii_suggestion(text, pos) + "; any text may go inside a string")
    else:
        help_ = "remove it; comments start with `#`"
    shown = repr(char) if not char.isprintable() or char.isspace() else f"`{char}`"
    return Diagnostic(BAD_CHARACTER, Severity.ERROR, f"unexpected character {shown}",
                      _span(path, line, col, line, col + 1), help_)


def _unexpected_token(exc: Any, text: str, path: str, off: int, parser: Any, *,
                      at_file_start: bool) -> Diagnostic:
    tok = exc.token
    if tok.type != "$END" and _not_a_token_start(text[tok.end_pos:tok.end_pos + 1]):
        # `fa\x00ct`: the parser refuses the name `fa` before the lexer reaches the
        # character that split the word; that character is the error.
        return _bad_character(text, tok.end_pos, path, tok.end_line + off,
                              tok.end_column)
    expected: set[str] = set(exc.expected)
    stack: list[Any] = []
    interactive = getattr(exc, "interactive_parser", None)
    if interactive is not None:
        stack = list(interactive.parser_state.value_stack)
        # LALR merges lookaheads, so lark's `expected` can list tokens that would fail a
        # step later; trying each one gives the tokens that truly fit here.
        expected = set(interactive.accepts()) or expected
    at_end = tok.type == "$END"
    if at_end:
        line, col = _end_of(stack[-1]) if stack else (1, 1)
        span = _span(path, line + off, col, line + off, col)
    else:
        span = _span(path, tok.line + off, tok.column, tok.end_line + off, tok.end_column)

    open_brackets = _unclosed(stack)
    found = _owner_token(stack, open_brackets[-1][0]) if open_brackets else None
    owner, owner_tok = found if found else (None, None)
    context = f" in {owner}" if owner else ""

    at_item_start = interactive is not None and all(
        getattr(v, "data", None) in _ITEM_RULES for v in stack)
    if not at_end and at_item_start and tok.type not in _ITEM_TYPES:
        word = str(tok.value)
        if word == "ruleset":
            return misplaced_header(span)
        candidates = list(ITEM_WORDS) + (["ruleset"] if at_file_start else [])
        guess = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
        message = f"unknown item `{word}`"
        help_ = (f"did you mean `{guess[0]}`?" if guess else
                 "an item starts with " + _join([f"`{w}`" for w in candidates]))
        return Diagnostic(UNKNOWN_ITEM, Severity.ERROR, message, span, help_)

    if open_brackets:
        _, opener = open_brackets[-1]
        closer = _OPENERS[opener.type]
        line_start = text.rfind("\n", 0, tok.start_pos) + 1 if not at_end else 0
        first_on_line = not at_end and not text[line_start:tok.start_pos].strip()
        starts_new_line = first_on_line and (tok.column == 1 or str(tok.value) in ITEM_WORDS)
        if closer in expected and (at_end or starts_new_line):
            close_text = {"RBRACE": "}", "RPAR": ")", "RSQB": "]"}[closer]
            if stack:
                end_line, end_col = _end_of(stack[-1])
                span = _span(path, end_line + off, end_col, end_line + off, end_col)
            start = owner_tok if owner_tok is not None else opener
            opened = f"{start.line + off}:{start.column}"
            what = owner or f"the `{opener.value}`"
            o_span = _span(path, start.line + off, start.column, start.end_line + off,
                           start.end_column)
            return Diagnostic(
                UNCLOSED, Severity.ERROR,
                f"expected `{close_text}` to close {what} opened at {opened}", span,
                f"add `{close_text}` at the end of {what}",
                (Related(o_span, f"{what} opened here"),))

    last = _last_token(stack)
    if last is not None and last.type == "NAME" and str(last.value) in _STATEMENT_WORDS:
        # `where x > emit …`: the contextual lexer read the keyword as an operand.
        word = str(last.value)
        return Diagnostic(
            SYNTAX, Severity.ERROR,
            f"`{word}` is read as a name{context} because what comes before it is "
            "incomplete",
            _span(path, last.line + off, last.column, last.end_line + off, last.end_column),
            _bare_point(text, last, False) or f"finish the expression or pattern before "
            f"`{word}`")

    words = _expected_words(expected, parser, stack, open_brackets)
    message = f"unexpected {_describe_token(tok)}{context}; expected {_join(words)}"
    kind = owner.split(" ", 1)[0] if owner else None
    bare = _bare_point(text, tok, at_end)
    if bare is not None:
        help_ = bare
    elif tok.type == "EQUAL" and "COLON" in expected:
        help_ = "fields are written `name: value`"
    elif tok.type == "EQUAL" and "EQ" in expected:
        help_ = "compare with `==`; a single `=` only sets budgets and defaults"
    elif tok.type in _CLOSERS and not open_brackets:
        help_ = f"remove this `{tok.value}`: no block is open here"
    elif tok.type == "LASTING":
        help_ = "a lasting fact is written `emit lasting Fact(field: EXPR, …)`"
    elif set(expected) == {"HIGHEST", "LOWEST", "EARLIEST", "LATEST"}:  # a one-at-a-time order
        help_ = ("order a one-at-a-time agent's matches by `lowest X` or `highest X` (a "
                 "variable of the match), then possibly `earliest` or `latest`")
    elif len(words) == 1:
        help_ = f"write {words[0]} here"
    elif kind in _SYNTAX:
        help_ = f"{kind} is written {_SYNTAX[kind]}"
    else:
        help_ = "see the syntax of this construct in docs/language.md"
    return Diagnostic(SYNTAX, Severity.ERROR, message, span, help_)


_BARE_POINT = re.compile(r"(?<![0-9A-Za-z_])([0-9][0-9_]*)\.\s*\Z")


def _bare_point(text: str, tok: Any, at_end: bool) -> str | None:
    """The fix for a float written with nothing on one side of its point, as Python
    allows (`.5`, `1.`): the point reads as a field access here."""
    if at_end:
        return None
    start = tok.start_pos
    if tok.type == "DOT" and text[tok.end_pos:tok.end_pos + 1].isdigit():
        digits = re.match(r"[0-9_]+", text[tok.end_pos:])
        assert digits is not None
        return f"a float needs a digit before its point: write `0.{digits.group()}`"
    written = _BARE_POINT.search(text, 0, start)
    if written is not None:
        return f"a float needs a digit after its point: write `{written.group(1)}.0`"
    return None


def _last_token(stack: list[Any]) -> Any:
    """The last token shifted, looking inside reduced subtrees."""
    value = stack[-1] if stack else None
    while value is not None and hasattr(value, "data"):
        children = [c for c in value.children if c is not None]
        value = children[-1] if children else None
    return value


def _end_of(value: Any) -> tuple[int, int]:
    if hasattr(value, "meta"):
        return value.meta.end_line, value.meta.end_column
    return value.end_line, value.end_column


def _unclosed(stack: list[Any]) -> list[tuple[int, Any]]:
    opened: list[tuple[int, Any]] = []
    for index, value in enumerate(stack):
        kind = getattr(value, "type", None) if not hasattr(value, "data") else None
        if kind in _OPENERS:
            opened.append((index, value))
        elif kind in _CLOSERS and opened:
            opened.pop()
    return opened


def _owner(stack: list[Any], bracket_index: int) -> str | None:
    """Name the construct an open bracket belongs to: "agent `a`", "emit `Price`"."""
    found = _owner_token(stack, bracket_index)
    return found[0] if found else None


def _owner_token(stack: list[Any], bracket_index: int) -> tuple[str, Any] | None:
    """The construct an open bracket belongs to and the token that starts it."""
    for index in range(bracket_index - 1, -1, -1):
        value = stack[index]
        kind = getattr(value, "type", None) if not hasattr(value, "data") else None
        if kind in _ITEM_TYPES or kind == "ROOT":
            following = stack[index + 1] if index + 1 < len(stack) else None
            label = str(value.value)
            if following is not None and getattr(following, "type", None) == "NAME":
                return f"{label} `{following.value}`", value
            if following is not None and getattr(following, "type", None) == "STRING":
                return f"{label} {following.value}", value
            return label, value
        if kind in {"EMIT", "INTEND", "GIVEN", "CALL"} and index < bracket_index:
            name = stack[index + 1] if index + 1 < len(stack) else None
            if name is not None and getattr(name, "type", None) == "NAME":
                return f"{value.value} `{name.value}`", value
        if kind is None:
            continue
    if bracket_index > 0:
        before = stack[bracket_index - 1]
        if getattr(before, "type", None) == "NAME" and not hasattr(before, "data"):
            return f"`{before.value}(…)`", before
    return None


def _expected_words(expected: set[str], parser: Any, stack: list[Any],
                    open_brackets: list[tuple[int, Any]]) -> list[str]:
    remaining = set(expected)
    words: list[str] = []
    if {"NUMBER", "STRING", "LPAR"} <= remaining:
        words.append("an expression")
        remaining -= _EXPR_START
    if len(remaining & _OPERATORS) >= 5:
        words.append("an operator")
        remaining -= _OPERATORS
    if len(remaining & _ITEM_TYPES) >= 3:
        words.append("a new item (`agent`, `fact`, `policy`, …)")
        remaining -= _ITEM_TYPES
    if "NAME" in remaining:
        remaining.discard("NAME")
        words.append(_name_word(stack, open_brackets))
    for name in ("NUMBER", "STRING"):
        if name in remaining:
            remaining.discard(name)
            words.append(_WORDS[name])
    keywords: list[str] = []
    punctuation: list[str] = []
    for name in sorted(remaining):
        word = _terminal_word(name, parser)
        (keywords if word[1:2].isalpha() else punctuation).append(word)
    words.extend(sorted(keywords))
    words.extend(sorted(punctuation))
    if len(words) > 8:
        words = [*words[:8], "…"]
    return words


_NAME_AFTER = {
    "AGENT": "an agent name", "FACT": "a fact type name", "INTENT": "a type name",
    "ENUM": "an enum name", "POLICY": "a fact type name", "PRUNE": "a fact type name",
    "EMIT": "a fact type name", "INTEND": "an intent name", "GIVEN": "a fact type name",
    "TOOL": "a tool name", "CALL": "a tool name", "AS": "a name for the result",
    "USING": "a resolver name", "EVALUATE": "a bound variable", "DOT": "a field name",
    "HIGHEST": "a field name (or `confidence`, `score`)",
    "LOWEST": "a field name (or `confidence`, `score`)",
    "STATUS": "a status (`converged`, `unmet_goal`, `budget_exceeded`, `conflict`, "
              "`oscillating`, `invariant_violated`)",
    "INVARIANT": "an invariant name", "NEVER": "a pattern", "ALWAYS": "a condition",
    "LSQB": "a name", "RULESET": "the ruleset's name",
}


def _name_word(stack: list[Any], open_brackets: list[tuple[int, Any]]) -> str:
    """What kind of name fits here, judged from the token before it."""
    if _expects_field(stack, open_brackets):
        return "a field name"
    last = stack[-1] if stack else None
    kind = getattr(last, "type", None) if last is not None and not hasattr(last, "data") else None
    if kind == "COLON" and open_brackets and open_brackets[-1][1].type == "LBRACE":
        owner = _owner(stack, open_brackets[-1][0]) or ""
        if owner.startswith(("fact", "intent")):
            return "a type (`str`, `int`, `float`, `bool`, an enum, `list[T]`)"
    if open_brackets and (_owner(stack, open_brackets[-1][0]) or "").startswith("enum"):
        return "an enum member"
    if kind == "LSQB" and len(stack) > 1 and getattr(stack[-2], "value", None) == "list":
        return "a type"
    return _NAME_AFTER.get(kind or "", "a name")


def _expects_field(stack: list[Any], open_brackets: list[tuple[int, Any]]) -> bool:
    if not stack or not open_brackets:
        return False
    last = stack[-1]
    if hasattr(last, "data") or last.type not in {"LPAR", "COMMA", "LBRACE"}:
        return False
    index, opener = open_brackets[-1]
    owner = _owner(stack, index) or ""
    if opener.type == "LBRACE":
        return owner.startswith(("fact", "intent"))
    return bool(opener.type == "LPAR")


def _terminal_word(name: str, parser: Any) -> str:
    if name in _WORDS:
        return _WORDS[name]
    try:
        pattern = parser.get_terminal(name).pattern
    except KeyError:
        return name.lower()
    if type(pattern).__name__ == "PatternStr":
        return f"`{pattern.value}`"
    return name.lower()


def _describe_token(tok: Any) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "NAME":
        return f"name `{tok.value}`"
    if tok.type == "NUMBER":
        return f"number `{tok.value}`"
    if tok.type == "STRING":
        return f"string {tok.value}"
    return f"`{tok.value}`"


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words) or "nothing"
    return ", ".join(words[:-1]) + " or " + words[-1]
