"""Bad usage of every command — missing paths, `-` where stdin is not read, bogus
options and formats, unwritable outputs, damaged traces: a usage message naming what is
wrong, exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Run = Callable[..., Any]  # the `converge` fixtures of conftest.py
CONSOLE_SCRIPT = Path(sys.executable).with_name("converge")

RULESET = """\
ruleset t
fact A { key s: str, n: int }
fact B { key s: str, n: int }
agent a tier 1 {
  when A(s, n)
  emit B(s: s, n: n)
}
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "t.cvg").write_text(RULESET, encoding="utf-8")
    (tmp_path / "in.jsonl").write_text('{"A": {"s": "x", "n": 1}}\n', encoding="utf-8")
    return tmp_path


@pytest.mark.usefixtures("files")
@pytest.mark.parametrize("args", [
    ["check", "-"], ["run", "-"], ["compile", "-"], ["replay", "-", "in.jsonl"],
])
def test_stdin_is_explained_where_it_is_not_read(converge: Run, args: list[str]) -> None:
    done = converge(*args)
    assert done.code == 2
    assert "does not read a ruleset from standard input" in done.err
    assert "converge fmt -" in done.err


@pytest.mark.usefixtures("files")
@pytest.mark.parametrize("command", ["check", "run", "compile", "test", "fmt"])
def test_a_misspelt_path_gets_a_suggestion(converge: Run, command: str) -> None:
    done = converge(command, "tt.cvg")
    assert done.code == 2
    assert "'tt.cvg' does not exist; did you mean 't.cvg'?" in done.err


@pytest.mark.usefixtures("files")
def test_facts_from_stdin_are_refused_with_a_fix(converge: Run) -> None:
    done = converge("run", "t.cvg", "-f", "-")
    assert done.code == 2
    assert "facts are not read from standard input" in done.err
    assert "write them to a file" in done.err


@pytest.mark.usefixtures("files")
@pytest.mark.parametrize("args", [
    ["run", "t.cvg", "--bogus"],
    ["run", "t.cvg", "--format", "yaml"],
    ["check", "t.cvg", "--format", "bogus"],
    ["plugins", "--format", "xml"],
    ["run", "t.cvg", "--workers", "0"],
    ["run", "t.cvg", "--executor", "bogus"],
    ["run", "t.cvg", "--max-rows", "-1"],
    ["run", "t.cvg", "-f", "in.jsonl", "--trace", "missing/dir/t.jsonl"],
    ["check", "t.cvg", "-o", "missing/dir/out.txt"],
    ["compile", "t.cvg", "--show", "nope"],
    ["nosuchcommand"],
])
def test_bad_options_are_usage_errors(converge: Run, args: list[str]) -> None:
    done = converge(*args)
    assert done.code == 2, done.text
    assert done.err.strip()


def _trace(converge: Run) -> None:
    assert converge("run", "t.cvg", "-f", "in.jsonl", "--trace", "tr.jsonl").code == 0


@pytest.mark.usefixtures("files")
def test_replay_to_an_unwritable_output_is_a_usage_error(converge: Run) -> None:
    _trace(converge)
    done = converge("replay", "t.cvg", "tr.jsonl", "-o", "missing/dir/out.jsonl")
    assert done.code == 2
    assert "cannot write the replayed trace to missing/dir/out.jsonl" in done.err


@pytest.mark.parametrize(("data", "expected"), [
    (b"\n", "tr.jsonl: the trace is empty"),
    (b'{"event": "fact_added", "cycle": 0}\n', "tr.jsonl:1: a `fact_added` event without "
                                               "`id`, `type`, `fields`"),
    (b'{"event": "tool_call", "cycle": 1, "agent": "a", "tool": "fx", "args": 3, '
     b'"result": null, "error": null}\n', "a `tool_call` event with a bad `args`"),
    (b'{"event": "x"}\n{"event": "caf\xe9"}\n', "tr.jsonl:2: not UTF-8 text"),
])
def test_replay_of_a_damaged_trace_names_the_line(converge: Run, files: Path, data: bytes,
                                                  expected: str) -> None:
    (files / "tr.jsonl").write_bytes(data)
    done = converge("replay", "t.cvg", "tr.jsonl")
    assert done.code == 2
    assert expected in done.err


@pytest.mark.parametrize(("args", "victim"), [
    (["check", "t.cvg", "-o", "t.cvg"], "t.cvg"),
    (["check", ".", "-o", "./t.cvg"], "t.cvg"),
    (["run", "t.cvg", "-f", "in.jsonl", "--trace", "in.jsonl"], "in.jsonl"),
    (["run", "t.cvg", "-f", "A=in.jsonl", "--trace", "in.jsonl"], "in.jsonl"),
    (["run", "t.cvg", "--trace", "t.cvg"], "t.cvg"),
    (["test", "t.cvg", "-o", "t.cvg"], "t.cvg"),
    (["test", "t.cvg", "--coverage-xml", "t.cvg"], "t.cvg"),
    (["graph", "t.cvg", "-o", "t.cvg"], "t.cvg"),
])
def test_an_output_never_overwrites_an_input(converge: Run, files: Path, args: list[str],
                                             victim: str) -> None:
    before = (files / victim).read_bytes()
    done = converge(*args)
    assert done.code == 2
    assert "is an input of this command" in done.err
    assert (files / victim).read_bytes() == before


@pytest.mark.usefixtures("files")
def test_replay_never_overwrites_the_recorded_trace(converge: Run, files: Path) -> None:
    _trace(converge)
    before = (files / "tr.jsonl").read_bytes()
    done = converge("replay", "t.cvg", "tr.jsonl", "-o", "tr.jsonl")
    assert done.code == 2
    assert "is an input of this command" in done.err
    assert (files / "tr.jsonl").read_bytes() == before


DEV_FULL = Path("/dev/full")


@pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full")
def test_a_full_disk_is_an_error_not_an_internal_error(converge: Run, files: Path) -> None:
    done = converge("run", "t.cvg", "-f", "in.jsonl", "--trace", str(DEV_FULL))
    assert done.code == 2
    assert "cannot write the trace to /dev/full: No space left on device" in done.err
    with DEV_FULL.open("wb") as full:
        proc = subprocess.run([str(CONSOLE_SCRIPT), "run", "t.cvg", "-f", "in.jsonl"],
                              cwd=files, stdout=full, stderr=subprocess.PIPE, check=False,
                              timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert "converge: error: No space left on device" in err
    assert "internal error" not in err and "Traceback" not in err


def test_a_closed_pipe_ends_quietly(files: Path) -> None:
    lines = "".join(f'{{"A": {{"s": "x{i}", "n": {i}}}}}\n' for i in range(3000))
    (files / "many.jsonl").write_text(lines, encoding="utf-8")
    proc = subprocess.Popen([str(CONSOLE_SCRIPT), "run", "t.cvg", "-f", "many.jsonl",
                             "--max-rows", "0"], cwd=files, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "internal error" not in err, err


@pytest.mark.parametrize("args", [
    ("run", "t.cvg", "-f", "many.jsonl", "--max-rows", "0"),
    ("run", "t.cvg", "-f", "many.jsonl", "--format", "json"),
])
def test_a_closed_pipe_exits_141_not_a_job_status(files: Path, args: tuple[str, ...]) -> None:
    # found: `converge run ... | head` exited 1 ("not converged", Rich's own handling of
    # the broken pipe), other commands 2 ("bad usage"): 128 + SIGPIPE, as a shell
    # shows for a command a closed pipe ended, on every command; and the JSON result,
    # one large write that CPython cut short without an error, exited 0
    lines = "".join(f'{{"A": {{"s": "x{i}", "n": {i}}}}}\n' for i in range(10_000))
    (files / "many.jsonl").write_text(lines, encoding="utf-8")
    proc = subprocess.Popen([str(CONSOLE_SCRIPT), *args], cwd=files,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(1)
    proc.stdout.close()  # as `| head -c 1` does: the rest (far over a pipe's 64 KiB) fails
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("run", "--help")])
def test_a_closed_pipe_ends_help_with_141(files: Path, args: tuple[str, ...]) -> None:
    # found: `converge --help | head -c 0` exited 1 (click's handling), not as run does
    proc = subprocess.Popen([str(CONSOLE_SCRIPT), *args], cwd=files,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the interpreter starts and writes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""


@pytest.mark.parametrize("args", [
    ("store", "info", "adir"), ("store", "gc", "adir", "--keep-last", "1"),
    ("trace", "export", "adir"), ("pending", "adir"), ("approve", "adir", "p-0"),
])
def test_a_directory_given_as_a_store_argument_is_not_called_the_store_option(
    converge: Run, tmp_path: Path, args: tuple[str, ...],
) -> None:
    # found: `converge store info DIR` said "give --store a file name": the command
    # has no --store option (its STORE is an argument)
    (tmp_path / "adir").mkdir()
    done = converge(*args)
    assert done.code == 2
    assert "adir is a directory; give the store a file name (e.g. run.db)" in done.err
    assert "--store" not in done.err


@pytest.mark.parametrize(("ruleset", "facts"), [
    ("ruleset t\nfact A {\n", '{"A": {"s": "x", "n": 1}}\n'),           # ruleset errors
    (RULESET, '{"A": {"s": "x", "n": "one"}}\n'),                       # bad facts
    (RULESET, '{"Z": {}}\n'),                                           # unknown type
])
def test_a_run_refused_before_it_starts_leaves_no_new_store(
    converge: Run, tmp_path: Path, ruleset: str, facts: str,
) -> None:
    # found: "nothing was run: fix the input and run again", and a new 90 KB run.db
    # with no job in it
    (tmp_path / "r.cvg").write_text(ruleset, encoding="utf-8")
    (tmp_path / "in.jsonl").write_text(facts, encoding="utf-8")
    done = converge("run", "r.cvg", "-f", "in.jsonl", "--store", "run.db")
    assert done.code == 2
    assert not (tmp_path / "run.db").exists()
    (tmp_path / "in.jsonl").write_text('{"A": {"s": "x", "n": 1}}\n', encoding="utf-8")
    (tmp_path / "r.cvg").write_text(RULESET, encoding="utf-8")
    assert converge("run", "r.cvg", "-f", "in.jsonl", "--store", "run.db").code == 0
    assert (tmp_path / "run.db").is_file()


def test_store_gc_of_a_store_without_jobs_says_so(converge: Run, tmp_path: Path) -> None:
    # found: "nothing to delete (1 newest finished jobs kept)" of a store with no job
    from converge_rules.store.sqlite import SqliteStore

    SqliteStore(tmp_path / "empty.db").close()
    done = converge("store", "gc", "empty.db", "--keep-last", "1")
    assert done.code == 0
    assert done.out == "empty.db: nothing to delete (no finished job)\n"
