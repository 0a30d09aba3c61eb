"""Issue 10 item 8, the smaller slips a rule author met: a tie among input facts under
`on tie reject` named neither type nor key in the status line; CVG106's help about
`= none` contradicted itself; `converge compile` said "negates" for an aggregate;
`render()` raised AttributeError on `sources=None`. (The plugin-testing snippet of
docs/plugins.md is run by tests/plugins/test_plugin_docs.py.)"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

import converge_rules
from converge_rules.cli import main
from converge_rules.language.checks.checker import check_file
from converge_rules.language.diagnostics.render import render

REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_tie_among_input_facts_names_the_type_and_key(tmp_path: Path) -> None:
    ruleset = tmp_path / "tie.cvg"
    ruleset.write_text('ruleset tie "input tie"\n'
                       "fact Price { key sku: str, amount: float, vendor: str }\n"
                       "policy Price { resolve by highest amount }\n", encoding="utf-8")
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Price": {"sku": "A", "amount": 1.0, "vendor": "x"}}\n'
                     '{"Price": {"sku": "A", "amount": 1.0, "vendor": "y"}}\n',
                     encoding="utf-8")
    result = invoke("run", ruleset, "-f", facts)
    assert result.exit_code == 1
    status = result.output.strip().splitlines()[-1]
    assert status == "conflict after 0 cycles: Price (sku: 'A'): tie, on tie reject"


NONE_DEFAULT = """\
ruleset n "none"
fact A { key id: str, note: str? = none }
fact B { key id: str, note: str? }
agent a {
  when A(id)
  emit B(id: id, note: none)
}
"""


def test_the_help_about_none_says_one_thing_and_following_it_works(tmp_path: Path) -> None:
    checked = check_file(tmp_path / "n.cvg", source=NONE_DEFAULT)
    helps = [d.help or "" for d in checked.diagnostics if d.code == "CVG106"]
    assert len(helps) == 2
    for help_text in helps:
        assert "no `= none`" in help_text and "leave the value out" in help_text
        assert "(or `= none`)" not in help_text
    followed = NONE_DEFAULT.replace(" = none", "").replace(", note: none", "")
    assert check_file(tmp_path / "n.cvg", source=followed).ok


def test_compile_says_aggregates_for_an_aggregate() -> None:
    result = invoke("compile", REPO / "rulesets" / "inventory" / "inventory.cvg")
    assert result.exit_code == 0, result.output
    lines = {line.split(" (")[0].strip(): line for line in result.output.splitlines()}
    assert lines["agent level"].endswith("emits Level; aggregates Movement")
    assert "negates" not in lines["agent level"]
    assert lines["agent order"].endswith("negates Blocked")


BAD = "ruleset bad\nfact A { x: int }\nagent a { when B(x) emit A(x: x) }\n"


def test_render_without_sources_shows_no_snippet() -> None:
    try:
        converge_rules.loads(BAD)
    except converge_rules.CheckError as error:
        text = render("human", error.diagnostics, None)
        assert "unknown type `B`" in text and "agent a {" not in text
        given = render("human", error.diagnostics, {"<string>": BAD})
        assert "agent a { when B(x)" in given
    else:
        raise AssertionError("expected a CheckError")
    for fmt in ("text", "json", "sarif", "junit", "github"):
        try:
            converge_rules.loads(BAD)
        except converge_rules.CheckError as error:
            assert "CVG101" in render(fmt, error.diagnostics)
        else:
            raise AssertionError("expected a CheckError")
