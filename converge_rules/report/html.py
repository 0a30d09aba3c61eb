"""Render reports as self-contained HTML with Jinja2 (imported here only, lazily).

Autoescaping is on for every template; the one value marked safe is the embedded JSON
document, which Jinja2's ``tojson`` writes with ``<``, ``>``, ``&`` and ``'`` as
``\\u`` escapes, so no value can close its ``<script>`` element. The page's
Content-Security-Policy allows no network at all and only the page's own script (by its
SHA-256), so even a value that did reach the markup could not run.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import fields
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

    from converge_rules.report.run import RunReport

_PACKAGE = "converge_rules.report"


@functools.cache
def _asset(name: str) -> str:
    return resources.files(_PACKAGE).joinpath("assets", name).read_text(encoding="utf-8")


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader(_PACKAGE, "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _csp(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    return (f"default-src 'none'; script-src 'sha256-{digest}'; "
            "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'")


def _render(template: str, script_name: str, **values: Any) -> str:
    script = _asset(script_name)
    page = _environment().get_template(template).render(
        css=_asset("report.css"), script=script, csp=_csp(script), **values)
    # A trace may hold a lone surrogate (JSON can escape one), which UTF-8 cannot
    # encode: it is shown as its escape, `\ud800`, rather than failing the write.
    return page.encode("utf-8", "backslashreplace").decode("utf-8")


def script_json(data: Any) -> str:
    """``data`` as compact JSON that can sit inside a ``<script>`` element: ``<``, ``>``,
    ``&``, ``'`` and the line separators U+2028 and U+2029 written as ``\\u`` escapes,
    so that no value can end the element or start markup (what Jinja2's ``tojson``
    does, without its spaces: a big report's document is smaller by a tenth)."""
    from markupsafe import Markup

    text = json.dumps(data, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    for char, escape in _SCRIPT_ESCAPES:
        text = text.replace(char, escape)
    return Markup(text)


_SCRIPT_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027"),
                   ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def render_run_report(report: RunReport) -> str:
    """The HTML page of a job's report. The same report gives the same bytes."""
    values = {f.name: getattr(report, f.name) for f in fields(report) if f.name != "data"}
    return _render("run.html.j2", "run.js", data=script_json(report.data), **values)


def render_test_report(title: str, tests: list[dict[str, Any]], summary: dict[str, Any]
                       ) -> str:
    """The HTML page of a test run: ``tests`` and ``summary`` as
    :func:`~converge_rules.report.testrun.outcome_rows` and
    :func:`~converge_rules.report.testrun.outcomes_summary` give them."""
    return _render("test.html.j2", "test.js", title=title, tests=tests, summary=summary)
