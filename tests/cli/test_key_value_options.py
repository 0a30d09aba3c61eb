"""``NAME=VALUE`` options — ``converge approve --set`` and ``converge run
--executor-option`` — are read by one parser (cli/_common.key_values): the same checks
(no ``=``, an empty name, a name given twice) give the same usage errors, exit code 2,
naming the option with an example; ``--set`` keeps its value as given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from converge_rules import api
from converge_rules.cli import main
from converge_rules.cli._common import key_values
from tests.cli.test_approvals_cli import paused  # noqa: F401 (a fixture)


def _run_with(tmp_path: Path, *pairs: str) -> Any:
    (tmp_path / "in.jsonl").write_text('{"A": {"x": 1}}\n')
    (tmp_path / "r.cvg").write_text("ruleset r\nfact A { x: int }\nfact B { x: int }\n"
                                    "agent a { when A(x) emit B(x: x) }\n")
    args = [a for p in pairs for a in ("--executor-option", p)]
    return CliRunner().invoke(main, ["run", str(tmp_path / "r.cvg"), "-f",
                                     str(tmp_path / "in.jsonl"), *args])


def _approve_with(db: Path, *pairs: str) -> Any:
    args = [a for p in pairs for a in ("--set", p)]
    return CliRunner().invoke(main, ["approve", str(db), "p-aa", *args])


@pytest.mark.parametrize("pairs, said", [
    (("amount",), "{opt} 'amount': give {name}=VALUE (e.g. {opt} {example})"),
    (("=1",), "{opt} '=1': give {name}=VALUE (e.g. {opt} {example})"),
    ((" =1",), "{opt} ' =1': give {name}=VALUE (e.g. {opt} {example})"),
    (("a=1", " a =2"), "{opt} a is given twice"),
])
def test_both_options_refuse_the_same_pairs_alike(tmp_path: Path, paused: Path,  # noqa: F811
                                                  pairs: tuple[str, ...], said: str) -> None:
    run = _run_with(tmp_path, *pairs)
    assert run.exit_code == 2, run.output
    assert said.format(opt="--executor-option", name="KEY", example="address=auto") in (
        " ".join(run.output.split()))
    approve = _approve_with(paused, *pairs)
    assert approve.exit_code == 2, approve.output
    assert said.format(opt="--set", name="FIELD", example="amount=9500.0") in (
        " ".join(approve.output.split()))
    assert "Traceback" not in run.output + approve.output
    assert api.decisions(paused) == []  # nothing recorded


def test_set_keeps_its_value_unstripped(paused: Path) -> None:  # noqa: F811
    out = _approve_with(paused, " note =  capped at the limit ")
    assert out.exit_code == 0, out.output
    (decision,) = api.decisions(paused)
    assert decision.edits == {"note": "  capped at the limit "}


def test_the_parser_strips_names_and_optionally_values() -> None:
    assert key_values([" a = 1 ", "b=2=3"], "--x", example="a=1") == {"a": "1", "b": "2=3"}
    assert key_values([" a = 1 "], "--x", example="a=1", strip=False) == {"a": " 1 "}
    with pytest.raises(click.UsageError, match="--x a is given twice"):
        key_values(["a=1", "a=1"], "--x", example="a=1")
