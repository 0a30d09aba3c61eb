"""Facts of a run written the way the language writes them, for failure messages and
explanations: ``Price(sku: "A1", channel: web, amount: 11.88)``.

Rule text (expressions, patterns) and values are written by the one unparser,
:mod:`converge_rules.language.format.formatter`; this module only lays out a fact."""

from __future__ import annotations

from collections.abc import Mapping

from converge_rules.analysis.interpret import Fact
from converge_rules.language.format.formatter import format_value


def fact_text(fact: Fact, field_enums: Mapping[tuple[str, str], str] | None = None) -> str:
    """``Type(field: value, …)`` in the order of ``fact.values``; fields that hold an
    enum (by ``field_enums``) are written bare."""
    enums = field_enums or {}
    inner = ", ".join(f"{k}: {format_value(v, enum=(fact.type, k) in enums)}"
                      for k, v in fact.values.items())
    return f"{fact.type}({inner})"
