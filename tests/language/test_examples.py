"""The example corpora: the language contract's code blocks, the rulesets, and the valid
and invalid syntax examples under grammar/examples/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from converge_rules.language.checks.checked import ToolSignature
from converge_rules.language.checks.checker import check_file
from converge_rules.language.diagnostics.core import Diagnostic
from converge_rules.language.syntax.parser import parse

REPO = Path(__file__).resolve().parents[2]
# A verbatim copy of the contract (tests/test_language_doc.py keeps it so).
CONTRACT = REPO / "docs" / "language-contract.md"
RULESETS = sorted((REPO / "rulesets").rglob("*.cvg"))
VALID = sorted((REPO / "grammar" / "examples" / "valid").rglob("*.cvg"))
INVALID = sorted((REPO / "grammar" / "examples" / "invalid").glob("syntax_*.cvg"))
EXPECT = re.compile(r"# expect: (CVG\d{3}) line (\d+)(?: col (\d+))?\s*$")

# What the example rulesets may assume about installed plugins.
TOOLS = {
    "fx_rate": ToolSignature("fx_rate", {"currency": "str"}, {"usd": "float"}),
}
RESOLVERS = ("vendor_rank", "median")  # median: converge-example (rulesets/claims)


def _show(diagnostics: tuple[Diagnostic, ...]) -> str:
    return "\n".join(f"{d.span} {d.code} {d.message}" for d in diagnostics)


BLOCKS = re.findall(r"^```\n(.*?)^```", CONTRACT.read_text(encoding="utf-8"), re.S | re.M)
# A block that is a grammar template rather than code (`agent NAME [tier N] { … }`).
TEMPLATE = re.compile(r"\[tier N\]|PATTERN|OUTPUT\+")
CODE_BLOCKS = [b for b in BLOCKS if not TEMPLATE.search(b)]


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in paths]


def test_the_contract_has_the_blocks_we_expect() -> None:
    assert len(BLOCKS) >= 4
    assert sum(b.startswith("ruleset ") for b in CODE_BLOCKS) >= 1
    assert len(CODE_BLOCKS) >= 3  # all but the grammar template


@pytest.mark.parametrize("block", CODE_BLOCKS,
                         ids=[b.split("\n", 1)[0][:40] for b in CODE_BLOCKS])
def test_contract_block_parses(block: str) -> None:
    text = block
    if not block.startswith("ruleset "):
        # A snippet: give it a header and fill in the `…` placeholders with a concrete
        # pattern, the way a reader would.
        text = 'ruleset snippet "a snippet of the contract"\n' + block.replace(
            "FACT(…)", 'Price(sku: "A1")')
    result = parse(text, "language-contract.md")
    assert result.diagnostics == (), _show(result.diagnostics)
    assert result.module is not None and result.module.items


def test_pricing_ruleset_is_the_contract_example_verbatim() -> None:
    pricing = (REPO / "rulesets" / "pricing" / "pricing.cvg").read_text(encoding="utf-8")
    assert pricing == BLOCKS[0]


@pytest.mark.parametrize("path", RULESETS + VALID, ids=_ids(RULESETS + VALID))
def test_valid_example_parses_without_diagnostics(path: Path) -> None:
    result = parse(path.read_text(encoding="utf-8"), str(path))
    assert result.diagnostics == (), _show(result.diagnostics)
    assert result.module is not None and result.module.header is not None


@pytest.mark.parametrize("path", RULESETS, ids=_ids(RULESETS))
def test_ruleset_checks_clean(path: Path) -> None:
    checked = check_file(path, tools=TOOLS, resolvers=RESOLVERS)
    errors = tuple(d for d in checked.diagnostics if d.is_error)
    assert errors == (), _show(checked.diagnostics)


def test_there_are_enough_invalid_examples() -> None:
    assert len(INVALID) >= 15
    codes = {EXPECT.match(p.read_text(encoding="utf-8").split("\n", 1)[0]) for p in INVALID}
    assert None not in codes, "every invalid example starts with `# expect: CVG0NN line L`"


@pytest.mark.parametrize("path", INVALID, ids=_ids(INVALID))
def test_invalid_example_reports_its_code_where_expected(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    match = EXPECT.match(text.split("\n", 1)[0])
    assert match, f"{path.name}: first line must be `# expect: CVG0NN line L[ col C]`"
    code, line, column = match.group(1), int(match.group(2)), match.group(3)
    result = parse(text, str(path))
    errors = [d for d in result.diagnostics if d.is_error]
    assert errors, f"{path.name}: no error reported"
    first = errors[0]
    assert first.span is not None
    got = (first.code, first.span.line, first.span.column if column else None)
    assert got == (code, line, int(column) if column else None), _show(result.diagnostics)
    assert first.help, "every syntax diagnostic says how to fix it"
