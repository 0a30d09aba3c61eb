"""Checks of a pattern given on the command line (``converge explain PATTERN``,
``--why-not PATTERN``) against a checked ruleset.

The pattern is checked as an ``expect`` step is: an unknown type or field, a value of
the wrong type, a name that is no member of the field's enum are errors with "did you
mean". A query has no variables, so a bare name that is not an enum member is an error
too (left alone it would match anything): typically a string whose quotes the shell
took (``Assessment(claim: C2)``), so the help writes it quoted. A bare field
(``Assessment(claim)``), which would match any value, and a `not` or a binder, which
would be dropped, are errors even without a ruleset (:func:`check_query_form`).
"""

from __future__ import annotations

from dataclasses import replace

from converge_rules.language.checks.checked import CheckedRuleset
from converge_rules.language.checks.exprs import NONE_WORDS, Typer
from converge_rules.language.checks.scope import UNKNOWN_NAME, Reporter, Scope, Tables
from converge_rules.language.checks.testblocks import EXPECT_FORM
from converge_rules.language.diagnostics.core import Diagnostic
from converge_rules.language.format.formatter import format_pattern, quote
from converge_rules.language.syntax.nodes import Name, Pattern


def check_query(checked: CheckedRuleset, pattern: Pattern) -> list[Diagnostic]:
    """The diagnostics of ``pattern`` as a query of ``checked``'s facts (empty when
    it is fine), in the order found; spans are the pattern's own."""
    report = Reporter()
    tables = Tables(facts=dict(checked.facts), enums=dict(checked.enums),
                    tools=dict(checked.tools), functions=dict(checked.functions))
    Typer(tables, report).pattern(pattern, Scope(), "expect")
    bare = {fm.value.span: fm for fm in pattern.fields if isinstance(fm.value, Name)}
    found = check_query_form(pattern)
    for d in report.found:
        fm = bare.get(d.span) if d.span is not None else None
        if d.code == UNKNOWN_NAME and fm is not None and isinstance(fm.value, Name):
            d = replace(d, message=_bare_name_message(fm.value.id),
                        help=_bare_name_help(tables, pattern, fm.field.name, fm.value.id))
        elif d.code == UNKNOWN_NAME:
            d = replace(d, help="a pattern here has no variables: write a value, or `_` "
                                "for any value")
        found.append(d)
    return found


def check_query_form(pattern: Pattern) -> list[Diagnostic]:
    """The diagnostics of ``pattern`` as a query of any facts, which need no ruleset:
    a bare field (it would match any value), a `not` or a binder (they would be
    dropped); empty when there are none."""
    report = Reporter()
    _check_form(report, pattern)
    return list(report.found)


def _check_form(report: Reporter, pattern: Pattern) -> None:
    if pattern.negated:
        report.error(EXPECT_FORM, pattern.span, "`not` in a pattern to explain",
                     "to ask why no such fact exists, give the pattern without `not` "
                     "to --why-not")
    if pattern.binder is not None:
        report.error(EXPECT_FORM, pattern.binder.span,
                     f"`{pattern.binder.name}:` binds nothing in a pattern to explain",
                     f"remove `{pattern.binder.name}:`")
    for fm in pattern.fields:
        if fm.value is None:
            name = fm.field.name
            report.error(UNKNOWN_NAME, fm.field.span,
                         f"`{name}` alone would match any value: a pattern here has no "
                         "variables",
                         f"write `{name}: VALUE`, or `{name}: _` for any value")


def _bare_name_message(name: str) -> str:
    return (f"`{name}` is a bare name, and a pattern here has no variables "
            "(only `_`, for any value)")


def _bare_name_help(tables: Tables, pattern: Pattern, field_name: str, name: str) -> str:
    decl = tables.field_of(pattern.type.name, field_name)
    if name in NONE_WORDS and (decl is None or decl.type.optional):
        return ("there is no literal for none, so a pattern cannot ask for it: leave "
                f"the field out, or write `{field_name}: _` for any value")
    if decl is not None and decl.type.name == "str" and not decl.type.args:
        shown = format_pattern(pattern, {field_name: quote(name)})
        return (f"did you mean the string {quote(name)}? In a shell, put the whole pattern "
                f"in single quotes: '{shown}'")
    if decl is not None and decl.type.name in tables.enums:
        enum = decl.type.name
        return tables.vocabulary("members", enum).did_you_mean(
            name, otherwise=lambda: f"members of {enum}: " + ", ".join(tables.members(enum)))
    wanted = decl.type.name if decl is not None else "the field's type"
    return f"write a value of type {wanted}, or `_` for any value"
