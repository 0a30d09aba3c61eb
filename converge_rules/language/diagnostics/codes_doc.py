"""Generate ``docs/diagnostics.md``, the reference of every diagnostic code, from the
definitions made with :func:`~converge_rules.language.diagnostics.core.define`.

Regenerate with::

    python -m converge_rules.language.diagnostics.codes_doc > docs/diagnostics.md

The test suite fails when the file and the definitions disagree.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from converge_rules.language.diagnostics.core import CodeInfo, all_codes

REGENERATE = "python -m converge_rules.language.diagnostics.codes_doc > docs/diagnostics.md"

_RANGES = {
    "0": "Syntax",
    "1": "Names",
    "2": "Types",
    "3": "Tiers and stratification",
    "4": "Policies",
    "5": "Root and budgets",
    "6": "Imports",
    "7": "Tests",
    "8": "Tools, functions and plugins",
    "9": "Input and internal",
}


def render_markdown(codes: Mapping[str, CodeInfo]) -> str:
    """The Markdown reference page for ``codes``: an index table, then per code range a
    section, and per code a ``### CVG101 unknown-name`` heading (with an explicit
    ``#cvg101`` anchor, which SARIF ``helpUri``s point at), its title, severity,
    explanation, and a wrong and a right example. Sorted by code; deterministic."""
    ordered = [codes[code] for code in sorted(codes)]
    out = [
        "# Diagnostics reference",
        "",
        f"<!-- Generated from the code definitions; do not edit. Regenerate with: {REGENERATE} -->",
        "",
        "Every finding `converge check` reports has a stable code (`CVG` and three digits), a "
        "severity, a place (file, line, column), a message that says what is wrong and a "
        "`help` line that says how to fix it. Each code below comes with a complete ruleset "
        "that produces it (**wrong**) and the fixed ruleset (**right**); the test suite runs "
        "both, so these examples stay true.",
        "",
        "Severities: an **error** stops a ruleset from running; a **warning** is reported but "
        "does not (unless `converge check --strict`); a **note** is information.",
        "",
    ]
    if not ordered:
        out += ["No diagnostic codes are defined yet.", ""]
        return "\n".join(out)
    out += ["| code | name | severity | title |", "|---|---|---|---|"]
    out += [
        f"| [{info.code}](#{info.code.lower()}) | `{info.name}` | {info.severity.value} "
        f"| {_cell(info.title)} |"
        for info in ordered
    ]
    section = None
    for info in ordered:
        digit = info.code[3]
        if digit != section:
            section = digit
            out += ["", f"## CVG{digit}xx: {_RANGES.get(digit, 'Other')}"]
        out += ["", *_entry(info)]
    return "\n".join(out) + "\n"


def _entry(info: CodeInfo) -> list[str]:
    lines = [
        f'<a id="{info.code.lower()}"></a>',
        "",
        f"### {info.code} {info.name}",
        "",
        f"**{info.title.strip()}** · severity: {info.severity.value}",
        "",
        info.explanation.strip(),
        "",
        "**Wrong**",
        "",
        *_example(info.wrong),
    ]
    for name, text in sorted(info.extra_files.items()):
        lines += ["", f"with `{name}`:", "", *_example(text)]
    lines += ["", "**Right**", "", *_example(info.right)]
    return lines


def _example(text: str) -> list[str]:
    fence = "```"
    while fence in text:  # a longer fence than any run of backticks in the example
        fence += "`"
    return [f"{fence}cvg", text.strip("\n"), fence]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def main() -> None:
    """Print the reference for every defined code to stdout, as UTF-8 with ``\n`` line
    ends whatever the platform and locale, so the file is the same everywhere."""
    sys.stdout.flush()
    sys.stdout.buffer.write(render_markdown(all_codes()).encode("utf-8"))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
