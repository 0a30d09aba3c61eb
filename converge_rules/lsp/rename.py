"""Renaming a name of a ruleset: which names can be renamed, whether a new name is
valid, and the edits that rename every place one is written.

A rename never leaves a ruleset that fails ``converge check``: the edits are applied to
the texts in memory and every ruleset they touch is checked again; an error the
original did not have refuses the rename (:func:`verify`).

Positions are the language's: lines and columns count from 1, in characters.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from converge_rules.errors import ConvergeError
from converge_rules.language.checks.checked import CheckedRuleset
from converge_rules.language.diagnostics.core import Diagnostic, Severity
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.parser import _line_starts
from converge_rules.language.syntax.span import Span
from converge_rules.lsp.index import Occurrence, RulesetIndex, Symbol

RENAMABLE = ("type", "field", "member", "agent", "variable")

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Words that cannot be a name where the renamed one stands (grammar/converge.lark's
# "Truly reserved" list), and the words that start an item: a name spelt like one
# would read as the keyword.
RESERVED = frozenset((
    "if", "not", "true", "false", "_", "then", "else", "and", "or", "in",
    "ruleset", "import", "uses", "root", "enum", "fact", "intent", "agent", "policy",
    "prune", "invariant", "approve", "test"))
RESERVED_TYPES = RESERVED | {"no", "conflict", "status", "pending", "now", "lasting"}
# Names the language gives meaning to where a field's name may stand: a policy's
# `highest confidence` / `score`, a prune condition's `age`.
SPECIAL_FIELDS = frozenset(("confidence", "score", "age"))
# Every keyword of the grammar, to say why a position holds no name.
KEYWORDS = RESERVED_TYPES | {
    "when", "where", "call", "as", "emit", "intend", "evaluate", "score", "reason",
    "confidence", "tier", "key", "resolve", "by", "then", "priority", "majority", "using",
    "combine", "keep", "all", "reject", "on", "tie", "first", "latest", "earliest",
    "highest", "lowest", "never", "always", "into", "cases", "case", "given", "mock",
    "tool", "returns", "fails", "expect", "one", "at", "a", "time"}

_WHAT = {"type": "type", "field": "field", "member": "enum member", "agent": "agent",
         "variable": "variable"}


class RenameRefused(ConvergeError):
    """A rename that is not done, and why (the message says what to do instead)."""


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the text at ``span`` with ``text``."""

    span: Span
    text: str


def refusal(symbol: Symbol, checked: CheckedRuleset) -> str | None:
    """Why ``symbol`` cannot be renamed in the ruleset, or None when it can: tools,
    functions, budgets and imported files are declared outside it."""
    name = symbol.name
    if symbol.kind == "tool":
        sig = checked.tools.get(name)
        where = f"plugin `{sig.plugin}`" if sig is not None and sig.plugin else "a plugin"
        return f"tool `{name}` is declared by {where}; rename it there"
    if symbol.kind == "function":
        fsig = checked.functions.get(name)
        if fsig is not None and fsig.plugin and not fsig.plugin.startswith("builtin."):
            return f"function `{name}` is declared by plugin `{fsig.plugin}`; rename it there"
        return f"`{name}` is a built-in function; its name cannot be changed"
    if symbol.kind == "budget":
        return f"`{name}` is a budget the language defines; its name cannot be changed"
    if symbol.kind == "file":
        return ("an imported file is renamed with the file: rename or move it, then edit "
                "the path of the `import`")
    if symbol.kind not in RENAMABLE:
        return f"a {symbol.kind} cannot be renamed"
    return None


def unparsed(indexes: Iterable[RulesetIndex]) -> str | None:
    """Why a rename cannot be computed on these rulesets, or None: a syntax error
    (CVG0xx) leaves an item out of the index, and a name written in it would keep its
    old spelling, an error once the item parses again."""
    for index in indexes:
        for d in index.checked.diagnostics:
            if d.severity == Severity.ERROR and d.code.startswith("CVG0"):
                where = f" at {d.span}" if d.span is not None else ""
                return (f"the ruleset does not parse ({d.code}{where}: {d.message}); fix "
                        "its syntax errors first, or names in the unparsed text keep their "
                        "old spelling")
    return None


def no_name_at(line: str, column: int) -> str:
    """Why the 1-based ``column`` of ``line`` holds no name that can be renamed (a
    column past the line's end, as a client may send, is its end)."""
    column = max(1, min(column, len(line) + 1))
    before = _code_of(line[:column - 1])
    if '"' in before:
        return "there is no name here: a string cannot be renamed"
    if "#" in before:
        return "there is no name here: a comment cannot be renamed"
    start = column - 1
    while start > 0 and (line[start - 1].isalnum() or line[start - 1] == "_"):
        start -= 1
    match = IDENTIFIER.match(line, start) or re.compile(r"[0-9][0-9A-Za-z_.]*").match(
        line, start)
    word = match.group() if match else ""
    if not word:
        return "there is no name here to rename: put the cursor on a type, field, enum " \
               "member, agent or variable"
    if word[0].isdigit():
        return f"`{word}` is a literal, not a name"
    if word in KEYWORDS:
        return f"`{word}` is a keyword of the language, not a name"
    return (f"`{word}` is no type, field, enum member, agent or variable that this ruleset "
            "declares (a status, a resolver, an unknown name, or a file that does not "
            "parse: fix its errors first)")


def _code_of(text: str) -> str:
    """``text`` without its strings (a `#` in a string starts no comment)."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', "", text)


def check_new_name(symbol: Symbol, new: str, indexes: Sequence[RulesetIndex]) -> None:
    """Raise :class:`RenameRefused` unless ``new`` (not ``symbol``'s name) is a name the
    grammar reads as ``symbol``'s kind there and that no other name of the same scope
    already has."""
    what = _WHAT[symbol.kind]
    if not IDENTIFIER.fullmatch(new):
        raise RenameRefused(f"`{new}` is not a name: a name is letters, digits and `_`, "
                            "not starting with a digit")
    if new in (RESERVED_TYPES if symbol.kind == "type" else RESERVED):
        raise RenameRefused(f"`{new}` is a keyword of the language; pick another name")
    if symbol.kind == "type" and not new[0].isupper():
        raise RenameRefused(f"a type's name starts with a capital letter (`{new[0].upper()}"
                            f"{new[1:]}`): `min` and `max` read `max({new}(…), x)` as a "
                            "call of a function otherwise")
    taken = _taken(symbol, new, indexes)
    if taken:
        raise RenameRefused(f"cannot rename the {what} `{symbol.name}` to `{new}`: {taken}; "
                            "pick another name")


def _taken(symbol: Symbol, new: str, indexes: Sequence[RulesetIndex]) -> str:
    for index in indexes:
        checked = index.checked
        if symbol.kind == "type" and (new in checked.facts or new in checked.enums):
            return f"the ruleset declares a type `{new}` already"
        if symbol.kind == "agent" and any(a.name.name == new for a in checked.agents):
            return f"the ruleset has an agent `{new}` already"
        if symbol.kind == "field":
            if index.field_decl(symbol.key[0], new) is not None:
                return f"`{symbol.key[0]}` has a field `{new}` already"
            if new in SPECIAL_FIELDS:
                return f"`{new}` means something else where fields are named (a " \
                       "policy's criterion, a prune condition's age)"
            clash = _bare_in_condition(index, symbol.key[0], kind="member", name=new)
            if clash:
                return f"{clash} writes the enum member `{new}` bare, which would read as " \
                       "the field there"
        if symbol.kind == "member":
            enum = checked.enums.get(symbol.key[0])
            if enum is not None and any(m.name == new for m in enum.members):
                return f"`{symbol.key[0]}` has a member `{new}` already"
            if any(o.symbol.kind == "variable" and o.symbol.name == new
                   for o in index.all()):
                return f"a rule binds a variable `{new}`, which a bare `{new}` would mean"
            for type_name in {c.type.name for c in _conditions(checked)}:
                clash = _bare_in_condition(index, type_name, kind="member",
                                           name=symbol.name)
                if clash and index.field_decl(type_name, new) is not None:
                    return f"{clash} writes `{symbol.name}` bare, where `{new}` would be " \
                           f"the field of `{type_name}`"
        if symbol.kind == "variable":
            if any(o.symbol.kind == "variable" and o.symbol.name == new
                   and o.symbol.key[0] == symbol.key[0] for o in index.all()):
                return f"a variable `{new}` is bound in the same rule already"
            owners = [e.name.name for e in checked.enums.values()
                      if any(m.name == new for m in e.members)]
            if owners:
                return f"`{new}` is a member of enum `{owners[0]}`, which the variable " \
                       "would hide"
    return ""


def _conditions(checked: CheckedRuleset) -> list[n.Prune | n.Gate]:
    """The prunes and gates with a condition: their type's fields are in scope there by
    name, ahead of bare enum members."""
    items: list[n.Prune | n.Gate] = [*checked.prunes, *checked.gates]
    return [c for c in items if c.condition is not None]


def _bare_in_condition(index: RulesetIndex, type_name: str, *, kind: str,
                       name: str) -> str:
    """The first ``prune``/``approve`` of ``type_name`` whose condition writes a
    ``kind`` named ``name`` bare (as ``prune T when …`` at its position), or ""."""
    for c in _conditions(index.checked):
        if c.type.name != type_name or c.condition is None:
            continue
        s = c.condition.span
        for o in index.occurrences.get(s.file, ()):
            if (o.symbol.kind == kind and o.symbol.name == name
                    and (s.line, s.column) <= (o.span.line, o.span.column)
                    and (o.span.end_line, o.span.end_column) <= (s.end_line, s.end_column)):
                what = "prune" if isinstance(c, n.Prune) else "approve"
                return f"`{what} {type_name} when …` at {c.span.line}:{c.span.column}"
    return ""


def related(symbol: Symbol, here: RulesetIndex,
            others: Iterable[RulesetIndex]) -> list[RulesetIndex]:
    """``here`` and the other rulesets that declare ``symbol`` where ``here`` does (they
    import the file that declares it): a rename edits them all, and no ruleset that
    merely has a name spelt the same."""
    where = {(s.file, s.line, s.column) for s in here.declarations(symbol)}
    if not where:
        raise RenameRefused(f"`{symbol.name}` is not declared in this ruleset; nothing "
                            "to rename")
    out = [here]
    for index in others:
        if index is not here and where & {(s.file, s.line, s.column)
                                          for s in index.declarations(symbol)}:
            out.append(index)
    return out


def edits(symbol: Symbol, new: str, indexes: Iterable[RulesetIndex]) -> dict[str, list[Edit]]:
    """The edits, per file (as spans name it), that rename ``symbol`` to ``new`` in
    every place ``indexes`` find it written, in position order. A pattern's bare
    ``amount`` binds the field to a variable of its name: renaming the field keeps the
    variable (``price: amount``), renaming the variable keeps the field
    (``amount: total``)."""
    found: dict[str, dict[tuple[int, int], Edit]] = {}
    for index in indexes:
        for o in index.all():
            if o.symbol == symbol:
                found.setdefault(o.span.file, {})[(o.span.line, o.span.column)] = Edit(
                    o.span, _replacement(o, new))
    return {file: [e for _, e in sorted(by.items())] for file, by in sorted(found.items())}


def _replacement(o: Occurrence, new: str) -> str:
    if not o.shorthand:
        return new
    if o.symbol.kind == "field":
        return f"{new}: {o.symbol.name}"
    return f"{o.symbol.name}: {new}"


def apply(text: str, file_edits: Sequence[Edit]) -> str:
    """``text`` with ``file_edits`` (spans into it, not overlapping) applied."""
    starts = _line_starts(text)

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    out = text
    for e in sorted(file_edits, key=lambda e: (e.span.line, e.span.column), reverse=True):
        s = e.span
        out = out[:offset(s.line, s.column)] + e.text + out[offset(s.end_line,
                                                                   s.end_column):]
    return out


def verify(symbol: Symbol, new: str,
           rulesets: Sequence[tuple[Sequence[Diagnostic], Callable[[], Sequence[Diagnostic]]]]
           ) -> None:
    """Raise :class:`RenameRefused` when a ruleset checked again after the rename
    (each pair: what its check found before, and a function that checks the renamed
    texts) has an error the original did not have, naming the first."""
    for before, again in rulesets:
        had = Counter(d.code for d in before if d.severity == Severity.ERROR)
        for d in again():
            if d.severity != Severity.ERROR:
                continue
            if had[d.code] > 0:
                had[d.code] -= 1
                continue
            where = f"{d.span}: " if d.span is not None else ""
            raise RenameRefused(
                f"renaming the {_WHAT[symbol.kind]} `{symbol.name}` to `{new}` would break "
                f"the ruleset: {where}{d.code} {d.message}")


def texts_after(edited: Mapping[str, Sequence[Edit]],
                texts: Mapping[str, str]) -> dict[str, str]:
    """The text of each edited file (``texts`` holds the text each was indexed from)."""
    return {file: apply(texts[file], file_edits) for file, file_edits in edited.items()}
