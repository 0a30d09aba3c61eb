"""Diagnostics: what the checker finds (:class:`Diagnostic`, each code defined beside
the check that reports it), "did you mean" suggestions, and the renderers (human,
json, SARIF, JUnit, GitHub).

``converge_rules.language.diagnostics.Diagnostic`` is what a plugin check returns."""

from converge_rules.language.diagnostics.core import (
    CODES,
    CodeInfo,
    Diagnostic,
    Related,
    Severity,
    all_codes,
    define,
)

__all__ = ["CODES", "CodeInfo", "Diagnostic", "Related", "Severity", "all_codes", "define"]
