"""No output of any command (``-o``, ``--trace``, ``--coverage-xml``) may write over a
file the command reads: not the entry ruleset only, but every file it imports,
transitively, its tests' ``cases`` files, the facts and the trace it reads — however
the path is spelt (``./x``, an absolute path, a symbolic link to it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main

FILES = {
    "main.cvg": 'ruleset main\nimport "lib/lib.cvg"\n'
                "fact B { key s: str, n: int }\n"
                "agent a tier 1 {\n  when A(s, n)\n  emit B(s: s, n: n)\n}\n"
                'test "t" {\n  cases "rows.csv"\n  given A(s: s, n: n)\n'
                "  expect B(s: s, n: n)\n}\n",
    "lib/lib.cvg": 'ruleset lib\nimport "base.cvg"\n',
    "lib/base.cvg": "ruleset base\nfact A { key s: str, n: int }\n",
    "rows.csv": "s,n\nx,1\n",
    "in.jsonl": '{"A": {"s": "x", "n": 1}}\n',
}


@pytest.fixture
def converge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str]]:
    monkeypatch.chdir(tmp_path)
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    (tmp_path / "link.cvg").symlink_to(tmp_path / "lib" / "base.cvg")

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, list(args))
        return result.exit_code, result.output

    code, output = run("run", "main.cvg", "-f", "in.jsonl", "--trace", "tr.jsonl")
    assert code == 0, output
    return run


# Every way of naming a file the ruleset reads: an import, an import of an import
# (spelt ./), a cases file, a symbolic link to an import, an import's absolute path.
VICTIMS = ["lib/lib.cvg", "./lib/base.cvg", "rows.csv", "link.cvg", "ABSOLUTE"]

COMMANDS = [
    ["check", "main.cvg", "-o", "{}"],
    ["check", ".", "-o", "{}"],
    ["test", "main.cvg", "-o", "{}"],
    ["test", "main.cvg", "--coverage-xml", "{}"],
    ["run", "main.cvg", "-f", "in.jsonl", "--trace", "{}"],
    ["graph", "main.cvg", "-o", "{}"],
    ["replay", "main.cvg", "tr.jsonl", "-o", "{}"],
    ["explain", "--trace", "tr.jsonl", "-r", "main.cvg", "B()", "-o", "{}"],
    ["explain", "-r", "main.cvg", "--facts", "in.jsonl", "B()", "-o", "{}"],
]


@pytest.mark.parametrize("victim", VICTIMS)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c[0]} {c[-2]}")
def test_an_output_never_replaces_a_file_the_ruleset_reads(
        converge: Callable[..., tuple[int, str]], tmp_path: Path, command: list[str],
        victim: str) -> None:
    target = str(tmp_path / "lib" / "lib.cvg") if victim == "ABSOLUTE" else victim
    before = {rel: (tmp_path / rel).read_bytes() for rel in FILES}
    code, output = converge(*(target if arg == "{}" else arg for arg in command))
    assert code == 2, output
    assert "is an input of this command" in output
    assert {rel: (tmp_path / rel).read_bytes() for rel in FILES} == before


@pytest.mark.parametrize(("command", "victim"), [
    (["explain", "--trace", "tr.jsonl", "B()", "-o", "./tr.jsonl"], "tr.jsonl"),
    (["explain", "-r", "main.cvg", "--facts", "in.jsonl", "B()", "-o", "./in.jsonl"], "in.jsonl"),
    (["explain", "-r", "main.cvg", "--facts", "A=in.jsonl", "B()", "-o", "in.jsonl"], "in.jsonl"),
    (["explain", "-r", "main.cvg", "--facts", "in.jsonl", "B()", "-o", "main.cvg"], "main.cvg"),
])
def test_explain_never_replaces_the_trace_or_facts_it_reads(
        converge: Callable[..., tuple[int, str]], tmp_path: Path, command: list[str],
        victim: str) -> None:
    before = (tmp_path / victim).read_bytes()
    code, output = converge(*command)
    assert code == 2, output
    assert "is an input of this command" in output
    assert (tmp_path / victim).read_bytes() == before


def test_another_output_file_is_written(converge: Callable[..., tuple[int, str]],
                                        tmp_path: Path) -> None:
    code, output = converge("check", "main.cvg", "-o", "report.txt")
    assert code == 0, output
    assert (tmp_path / "report.txt").read_text(encoding="utf-8").strip()
