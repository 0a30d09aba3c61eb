"""The generated documentation matches the code that it documents."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from converge_rules.language.diagnostics.codes_doc import REGENERATE, render_markdown
from converge_rules.language.diagnostics.core import CodeInfo, Severity, all_codes

ROOT = Path(__file__).resolve().parent.parent
DIAGNOSTICS_MD = ROOT / "docs" / "diagnostics.md"


def test_diagnostics_reference_is_up_to_date() -> None:
    expected = render_markdown(all_codes())
    actual = DIAGNOSTICS_MD.read_text(encoding="utf-8") if DIAGNOSTICS_MD.exists() else ""
    assert actual == expected, (
        f"docs/diagnostics.md is out of date with the diagnostic codes; regenerate it "
        f"with:\n    {REGENERATE}"
    )


def test_module_entry_point_prints_the_reference() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "converge_rules.language.diagnostics.codes_doc"],
        capture_output=True, check=True, cwd=ROOT,
    )
    assert completed.stdout.decode("utf-8") == render_markdown(all_codes())


SAMPLE = {
    "CVG101": CodeInfo(
        "CVG101", "unknown-name", Severity.ERROR, "Unknown name",
        "A name is used that is not declared.",
        wrong="ruleset r\nagent a { when Pricee() emit X() }\n",
        right="ruleset r\nfact Price {}\n",
    ),
    "CVG601": CodeInfo(
        "CVG601", "import-cycle", Severity.WARNING, "Import | cycle",
        "Files import each other.",
        wrong='ruleset a\nimport "b.cvg"\n',
        right="ruleset a\n",
        extra_files={"b.cvg": 'ruleset b\nimport "a.cvg"\n'},
    ),
}


def test_reference_has_an_anchor_heading_and_examples_per_code() -> None:
    text = render_markdown(SAMPLE)
    entry = text[text.index('<a id="cvg101"></a>'):text.index('<a id="cvg601"></a>')]
    assert "### CVG101 unknown-name\n" in entry
    assert "**Unknown name** · severity: error" in entry
    assert "A name is used that is not declared." in entry
    wrong, right = entry.index("**Wrong**"), entry.index("**Right**")
    assert wrong < right
    assert "```cvg\nruleset r\nagent a { when Pricee() emit X() }\n```" in entry[wrong:right]
    assert "```cvg\nruleset r\nfact Price {}\n```" in entry[right:]
    assert "| [CVG601](#cvg601) | `import-cycle` | warning | Import \\| cycle |" in text
    assert "## CVG1xx: Names" in text and "## CVG6xx: Imports" in text
    assert "with `b.cvg`:\n\n```cvg\nruleset b\nimport \"a.cvg\"\n```" in text


def test_reference_is_sorted_and_deterministic() -> None:
    backwards = dict(reversed(list(SAMPLE.items())))
    assert render_markdown(backwards) == render_markdown(SAMPLE)
    text = render_markdown(SAMPLE)
    assert text.index("### CVG101") < text.index("### CVG601")


def test_example_with_backticks_gets_a_longer_fence() -> None:
    info = CodeInfo("CVG001", "syntax", Severity.ERROR, "Syntax", "x",
                    wrong="ruleset r ```\n", right="ruleset r\n")
    assert "````cvg\nruleset r ```\n````" in render_markdown({"CVG001": info})


def test_no_codes_gives_a_page_saying_so() -> None:
    assert "No diagnostic codes are defined yet." in render_markdown({})
