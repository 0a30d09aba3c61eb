"""``-k EXPR``: choose tests by name, as pytest does.

``EXPR`` is a boolean expression of words joined by ``and``, ``or``, ``not`` and
parentheses; a word selects the tests whose id contains it (case-insensitive). A word
may be quoted (``'"price rounding"'``) to include spaces or operator words. An empty
expression selects everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from converge_rules.errors import ConvergeError

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"|\'([^\']*)\'|([^\s()]+))')

Matcher = Callable[[str], bool]


class SelectionError(ConvergeError):
    """A ``-k`` expression that does not parse (``converge test`` reports it as a usage
    error, exit code 2)."""


def compile_keyword(expr: str | None) -> Matcher:
    """A predicate on test ids for the ``-k`` expression ``expr``."""
    if expr is None or not expr.strip():
        return lambda _id: True
    tokens = _tokenize(expr)
    parser = _Parser(tokens, expr)
    matcher = parser.parse_or()
    if parser.pos != len(tokens):
        raise SelectionError(f"-k {expr!r}: unexpected {tokens[parser.pos][1]!r}; "
                             "write words joined by and/or/not, with parentheses")
    return matcher


def _tokenize(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if m is None:  # pragma: no cover - the pattern accepts any non-space run
            raise SelectionError(f"-k {expr!r}: cannot read from column {pos + 1}")
        pos = m.end()
        if m.group(1):
            tokens.append(("(", "("))
        elif m.group(2):
            tokens.append((")", ")"))
        elif m.group(3) is not None or m.group(4) is not None:
            tokens.append(("word", m.group(3) if m.group(3) is not None else m.group(4)))
        else:
            word = m.group(5)
            kind = word if word in ("and", "or", "not") else "word"
            tokens.append((kind, word))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.pos = 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def _fail(self, wanted: str) -> SelectionError:
        got = repr(self.tokens[self.pos][1]) if self.pos < len(self.tokens) else "the end"
        return SelectionError(f"-k {self.text!r}: expected {wanted}, found {got}")

    def parse_or(self) -> Matcher:
        left = self.parse_and()
        while self._peek() == "or":
            self.pos += 1
            right = self.parse_and()
            left = (lambda a, b: lambda s: a(s) or b(s))(left, right)
        return left

    def parse_and(self) -> Matcher:
        left = self.parse_not()
        while self._peek() == "and":
            self.pos += 1
            right = self.parse_not()
            left = (lambda a, b: lambda s: a(s) and b(s))(left, right)
        return left

    def parse_not(self) -> Matcher:
        if self._peek() == "not":
            self.pos += 1
            inner = self.parse_not()
            return lambda s: not inner(s)
        return self.parse_atom()

    def parse_atom(self) -> Matcher:
        kind = self._peek()
        if kind == "(":
            self.pos += 1
            inner = self.parse_or()
            if self._peek() != ")":
                raise self._fail("`)`")
            self.pos += 1
            return inner
        if kind == "word":
            word = self.tokens[self.pos][1].lower()
            self.pos += 1
            return lambda s: word in s.lower()
        raise self._fail("a word or `(`")
