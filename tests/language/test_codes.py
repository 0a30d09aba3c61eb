"""Every diagnostic code's documented examples behave as documented: the ``wrong``
ruleset produces the code and the ``right`` ruleset produces no error."""

from __future__ import annotations

from pathlib import Path

import pytest

from converge_rules.language.checks.checked import (
    CheckedRuleset,
    PrunerSignature,
    ToolSignature,
)
from converge_rules.language.checks.checker import check_file
from converge_rules.language.diagnostics.core import CodeInfo, all_codes
from converge_rules.plugins.builtin.knowledge import KNOWLEDGE_FIND

# What the examples may assume about installed plugins (documented in the codes that
# depend on it): one typed tool, one resolver and one pruner; and the built-in tools.
EXAMPLE_TOOLS = {"fx_rate": ToolSignature("fx_rate", {"currency": "str"}, {"usd": "float"}),
                 KNOWLEDGE_FIND.name: KNOWLEDGE_FIND.signature()}
EXAMPLE_RESOLVERS = ("vendor_rank",)
EXAMPLE_PRUNERS = {"ttl": PrunerSignature("ttl", {"cycles": "int?"})}

CODES = all_codes()


def _run(tmp_path: Path, info: CodeInfo, text: str) -> CheckedRuleset:
    for rel, content in info.extra_files.items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    main = tmp_path / "main.cvg"
    main.write_text(text, encoding="utf-8")
    return check_file(main, tools=EXAMPLE_TOOLS, resolvers=EXAMPLE_RESOLVERS,
                      pruners=EXAMPLE_PRUNERS)


def _show(checked: CheckedRuleset) -> str:
    return "\n".join(f"{d.code} {d.severity} {d.span}: {d.message}"
                     for d in checked.diagnostics)


def test_codes_are_defined() -> None:
    assert len(CODES) >= 30
    assert all(code.startswith("CVG") for code in CODES)


@pytest.mark.parametrize("code", sorted(CODES))
def test_wrong_example_produces_its_code(code: str, tmp_path: Path) -> None:
    info = CODES[code]
    checked = _run(tmp_path, info, info.wrong)
    assert code in {d.code for d in checked.diagnostics}, _show(checked)


@pytest.mark.parametrize("code", sorted(CODES))
def test_right_example_has_no_error(code: str, tmp_path: Path) -> None:
    info = CODES[code]
    checked = _run(tmp_path, info, info.right)
    assert checked.ok, _show(checked)
