"""Bad input found by trying every command the way a new user would (session 22): each is
a clear error naming the file and the fix, exit 2, never a traceback and never a
success."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from converge_rules.cli import main

REPO = Path(__file__).resolve().parents[2]
PRICING = REPO / "rulesets" / "pricing" / "pricing.cvg"
PRICING_INPUT = REPO / "rulesets" / "pricing" / "input.jsonl"


def invoke(*args: str | Path, stdin: bytes | None = None) -> Any:
    result = CliRunner().invoke(main, [str(a) for a in args], input=stdin)
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    return result


@pytest.mark.parametrize("command", [["report", "{}", "-o", "{}.html"],
                                     ["explain", "--trace", "{}", 'Price(sku: "A1")']])
@pytest.mark.parametrize("content", ["", "\n\n"])
def test_an_empty_trace_is_an_error_not_an_empty_report(tmp_path: Path, command: list[str],
                                                        content: str) -> None:
    """`converge report empty.jsonl` wrote a page of "no status, 0 cycles" and exited 0;
    `converge explain --trace empty.jsonl` said no fact matched (exit 1)."""
    trace = tmp_path / "empty.jsonl"
    trace.write_text(content, encoding="utf-8")
    done = invoke(*[part.replace("{}", str(trace)) for part in command])
    assert done.exit_code == 2, done.output
    assert f"{trace}: the trace is empty" in done.output
    assert not (tmp_path / "empty.jsonl.html").exists()


def test_verify_of_a_directory_says_it_is_a_directory(tmp_path: Path) -> None:
    """It said the directory was "a symbolic link that leads to no file"."""
    done = invoke("verify", tmp_path)
    assert done.exit_code == 2
    assert "is a directory" in done.output
    assert "symbolic link" not in done.output


def test_verify_reads_a_trace_from_a_pipe(tmp_path: Path) -> None:
    """/dev/stdin is no regular file, and verify called it a link to nowhere."""
    trace = tmp_path / "t.jsonl"
    assert invoke("run", PRICING, "-f", PRICING_INPUT, "--trace", trace).exit_code == 0
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "converge_rules.cli", "verify",
                           "/dev/stdin"], input=trace.read_text(encoding="utf-8"),
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("intact: /dev/stdin: ")


@pytest.mark.parametrize("command", ["replay", "report"])
def test_replay_and_report_read_a_trace_from_a_pipe(tmp_path: Path, command: str) -> None:
    """Found when the three "is this a store?" checks became one: replay and report
    read the first 16 bytes of /dev/stdin to look for a SQLite file, then read the
    trace without them (verify looked at regular files only)."""
    trace = tmp_path / "t.jsonl"
    assert invoke("run", PRICING, "-f", PRICING_INPUT, "--trace", trace).exit_code == 0
    import subprocess
    import sys

    args = [str(PRICING), "/dev/stdin"] if command == "replay" else [
        "/dev/stdin", "-o", "r.html"]
    done = subprocess.run([sys.executable, "-m", "converge_rules.cli", command, *args],
                          input=trace.read_text(encoding="utf-8"),
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert command == "replay" or (tmp_path / "r.html").exists()


@pytest.mark.parametrize(("name", "content", "said"), [
    ("pricing.cvg", None, ":1: not JSON"),
    ("input.jsonl", None, ':1: not a trace event (a JSON object with an "event" key)'),
    ("cut.jsonl", '{"event": "fact_added", "cycle"', ":1: not JSON"),
    ("notes.db", "not a database\n", ":1: not JSON"),
])
def test_verify_of_a_file_that_is_no_trace_says_so(tmp_path: Path, name: str,
                                                   content: str | None, said: str) -> None:
    """A ruleset, an input file or a cut line was "a trace that carries no hashes"
    (exit 3, 'record it again'), as if it were an old trace."""
    path = tmp_path / name
    if content is None:
        source = PRICING if name.endswith(".cvg") else PRICING_INPUT
        path.write_bytes(source.read_bytes())
    else:
        path.write_text(content, encoding="utf-8")
    done = invoke("verify", path)
    assert done.exit_code == 2, done.output
    assert f"{path}{said}" in done.output
    assert "carries no hashes" not in done.output


def test_verify_of_a_trace_without_hashes_still_says_it_is_unverifiable(
        tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    assert invoke("run", PRICING, "-f", PRICING_INPUT, "--trace", trace).exit_code == 0
    import re

    old = tmp_path / "old.jsonl"
    old.write_text(re.sub(r',"hash":"[0-9a-f]+"', "", trace.read_text(encoding="utf-8")),
                   encoding="utf-8")
    done = invoke("verify", old)
    assert done.exit_code == 3, done.output
    assert "carries no hashes" in done.output


def test_a_csv_file_given_without_its_type_says_how_to_give_it(tmp_path: Path) -> None:
    """`--facts costs.csv` said only "not valid JSON ... write one JSON object per line"."""
    costs = tmp_path / "costs.csv"
    costs.write_text("sku,amount\nA1,10.0\n", encoding="utf-8")
    done = invoke("run", PRICING, "-f", costs)
    assert done.exit_code == 2
    assert f"{costs}:1: not valid JSON" in done.output
    assert f"a CSV file is read as TYPE={costs}" in done.output


@pytest.mark.parametrize("content", ['{"Cost": {"sku": "A1", "amount": 10.0}}\n',
                                     '[{"Cost": {"sku": "A1", "amount": 10.0}}]\n'])
def test_json_given_as_a_csv_file_says_to_drop_the_type(tmp_path: Path, content: str) -> None:
    """`--facts Cost=input.jsonl` said 'CSV column `{"Cost": {"sku": "A1"` is not a field
    of Cost'."""
    facts = tmp_path / "input.jsonl"
    facts.write_text(content, encoding="utf-8")
    done = invoke("run", PRICING, "-f", f"Cost={facts}")
    assert done.exit_code == 2
    assert f"{facts}:1: read as CSV (`Cost=`), but the file holds JSON" in done.output
    assert f"--facts {facts}" in done.output
    assert "is not a field" not in done.output


@pytest.fixture()
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "run.jsonl"
    assert invoke("run", PRICING, "-f", PRICING_INPUT, "--trace", path).exit_code == 0
    return path


@pytest.mark.parametrize(("pattern", "said"), [
    ('Price(sku: ', "it ends too early: a `(` or a string left open"),
    ('Price(sku: "A1"', "it ends too early"),
    ('Price(sku: "{A1}"', "it ends too early"),
    ('Price(sku: "A1"))', "unexpected `)` at column 17"),
    ('Price sku', "unexpected name `sku` at column 7"),
    ('Price(sku: "A1",\n  amount: )', "unexpected `)` at line 2, column 11"),
    ('', "it is empty"),
    ('Price(sku: "A1") }', "`{` and `}` are no part of a pattern"),
    ('Price(sku: "A1")\n}\ntest "x" {', "not a pattern"),
])
def test_a_pattern_that_does_not_parse_is_described_as_a_pattern(
        trace: Path, pattern: str, said: str) -> None:
    """explain's messages spoke of the test block the pattern is parsed in ('unexpected
    `}` in test "query"', 'expected `)` to close test "query" opened at 2:1'), and a
    pattern that closed that block and opened another was explained."""
    done = invoke("explain", "--trace", trace, pattern)
    assert done.exit_code == 2, done.output
    assert f"cannot read the pattern {pattern!r}: {said}" in done.output
    assert "query" not in done.output


@pytest.mark.parametrize(("args", "pattern", "said"), [
    ((), 'Price(amount: 1 / 0)', "ZeroDivisionError: division by zero at column 15"),
    (("-r", PRICING), 'Price(amount: 1 / 0)', "division by zero at column 15"),
    (("-r", PRICING, "--why-not"), 'Price(sku: "A1",\n  amount: 2 % 0)',
     "integer modulo by zero at line 2, column 11"),
    (("-r", PRICING), 'Price(amount: 9223372036854775807 + 1)', "integer overflow"),
])
def test_a_pattern_value_that_cannot_be_computed_is_described_as_a_pattern(
        trace: Path, args: tuple[str | Path, ...], pattern: str, said: str) -> None:
    """Met as: 'converge: error: <pattern>:3:17: ZeroDivisionError: division by zero',
    a line and column of the test block the pattern is parsed in."""
    done = invoke("explain", "--trace", trace, *args, pattern)
    assert done.exit_code == 2, done.output
    assert f"cannot evaluate the pattern {pattern!r}: " in done.output
    assert said in done.output and "<pattern>" not in done.output


def test_a_pattern_with_braces_in_a_string_is_explained(trace: Path) -> None:
    done = invoke("explain", "--trace", trace, 'Price(sku: "{A1}")')
    assert done.exit_code == 1, done.output  # parsed; no such price
    assert "no fact matches" in done.output


@pytest.mark.parametrize(("where", "said"), [
    ("adir", "Invalid value for '--output' / '-o': File '{out}' is a directory"),
    ("missing/t.jsonl", "cannot write --output {out}: No such file or directory; nothing "
                        "was written"),
])
def test_trace_export_to_a_bad_output_names_the_option(tmp_path: Path, where: str,
                                                        said: str) -> None:
    """`converge trace export run.db -o DIR` said "Is a directory (DIR) / hint: check free
    disk space, permissions and the paths given", as for an internal error."""
    store = tmp_path / "run.db"
    assert invoke("run", PRICING, "-f", PRICING_INPUT, "--store", store).exit_code == 0
    (tmp_path / "adir").mkdir()
    out = tmp_path / where
    done = invoke("trace", "export", store, "-o", out)
    assert done.exit_code == 2, done.output
    assert said.format(out=out) in done.output
    assert "hint: check free disk space" not in done.output


def _at_most_2_gib() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
@pytest.mark.parametrize("args", [["verify", "/dev/zero"],
                                  ["replay", str(PRICING), "/dev/zero"],
                                  ["report", "/dev/zero", "-o", "report.html"],
                                  ["explain", "--trace", "/dev/zero", "Price()"]])
def test_a_device_given_as_a_trace_is_refused_not_read(tmp_path: Path,
                                                       args: list[str]) -> None:
    """`converge verify /dev/zero` read the device into memory until the machine ran out
    (17 GB in 14 s); replay, report and explain --trace read traces the same way. Run
    under a 2 GiB address-space limit, so the old behaviour fails here, not the host."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "converge_rules.cli", *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          preexec_fn=_at_most_2_gib)
    assert done.returncode == 2, done.stderr
    assert "/dev/zero: cannot read trace: it is a device, not a trace" in done.stderr
    assert not (tmp_path / "report.html").exists()


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
@pytest.mark.parametrize(("args", "option"), [
    (["report", "{trace}", "--timings", "/dev/zero", "-o", "report.html"], "--timings"),
    (["verify", "{trace}", "--result", "/dev/zero"], "--result"),
])
def test_a_device_given_to_a_file_option_is_refused_not_read(
        trace: Path, args: list[str], option: str) -> None:
    """`report --timings /dev/zero` and `verify --result /dev/zero` read until memory ran
    out ("out of memory; lower the job's budgets")."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "converge_rules.cli",
                           *[a.replace("{trace}", str(trace)) for a in args]],
                          capture_output=True, text=True, cwd=trace.parent, timeout=120,
                          preexec_fn=_at_most_2_gib)
    assert done.returncode == 2, done.stderr
    assert f"{option} /dev/zero is a device, not a file" in done.stderr


def _in_deleted_folder(tmp_path: Path, *args: str | Path) -> Any:
    """``converge ARGS`` run from a working directory deleted before it starts (a shell
    left in a folder another process removed)."""
    import os
    import subprocess
    import sys

    gone = tmp_path / "gone"
    gone.mkdir()
    script = ("import os, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); "
              "from converge_rules.cli import main; main(sys.argv[2:])")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    return subprocess.run([sys.executable, "-c", script, str(gone), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_a_ruleset_named_by_its_full_path_checks_from_a_deleted_working_directory(
    tmp_path: Path,
) -> None:
    """Found by review (session 23): `converge check /abs/r.cvg` from a deleted folder
    said "No such file or directory" and blamed disk space, permissions and paths; the
    file was there (the name shown relative to the working directory needed it)."""
    done = _in_deleted_folder(tmp_path, "check", PRICING)
    assert done.returncode == 0, done.stderr
    assert "no problems" in done.stdout + done.stderr

