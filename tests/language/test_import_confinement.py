"""Imports and ``cases`` fixtures read only what they should: regular files, within a
size limit, inside the entry ruleset's folder (or a folder allowed with
``--allow-path`` / ``allow_paths=``) — and a file that is not a ruleset is named, never
quoted.

Found by an adversarial pass: ``import "/dev/zero"`` and ``cases "/dev/zero"``
exhausted memory in ``converge check``, a FIFO hung it, ``import "/etc/passwd"``
printed the file's first line into the diagnostic, absolute and ``../`` fixture paths
were read, a symbolic link loop was an internal error. The commands that could hang or
exhaust memory run in a child process with a memory limit and a timeout, so that this
test fails rather than takes the machine down should the protection break.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules.cli import main
from converge_rules.errors import CheckError
from converge_rules.language.loader import load_file

CONSOLE_SCRIPT = Path(sys.executable).with_name("converge")
SECRET = "root:x:0:0:the-secret-first-line:/root:/bin/bash"
LIB = "ruleset lib\nfact A { key s: str, n: int }\n"
USES_A = ("fact B { key s: str, n: int }\n"
          "agent a tier 1 {\n  when A(s, n)\n  emit B(s: s, n: n)\n}\n")


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")


def _codes(path: Path) -> list[str]:
    return [d.code for d in load_file(path).diagnostics]


@pytest.fixture
def converge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str]]:
    monkeypatch.chdir(tmp_path)

    def run(*args: str | Path) -> tuple[int, str]:
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert "internal error" not in result.output and "Traceback" not in result.output, \
            result.output
        return result.exit_code, result.output

    return run


def _limited(tmp_path: Path, *args: str, timeout: float = 60) -> tuple[int, str]:
    """``converge ARGS`` in a child process that may use 1 GiB of memory at most and
    must finish within ``timeout`` seconds."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    try:
        done = subprocess.run([str(CONSOLE_SCRIPT), *args], cwd=tmp_path, capture_output=True,
                              timeout=timeout, preexec_fn=limit, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"converge {' '.join(args)} hung (more than {timeout}s)")
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert "internal error" not in output and "Traceback" not in output, output
    return done.returncode, output


# ----------------------------------------------------------------- confinement


@pytest.mark.parametrize("imported", ["../outside/lib.cvg", "ABSOLUTE", "link/lib.cvg"])
def test_an_import_outside_the_entry_folder_is_refused(tmp_path: Path, imported: str) -> None:
    _write(tmp_path, {"outside/lib.cvg": LIB})
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "link").symlink_to(tmp_path / "outside")  # a way out
    path = str(tmp_path / "outside" / "lib.cvg") if imported == "ABSOLUTE" else imported
    main_cvg = tmp_path / "rules" / "main.cvg"
    main_cvg.write_text(f'ruleset main\nimport "{path}"\n' + USES_A, encoding="utf-8")
    result = load_file(main_cvg)
    [diag] = [d for d in result.diagnostics if d.is_error]
    assert diag.code == "CVG605"
    assert diag.span is not None and (diag.span.line, diag.span.column) == (2, 1)
    assert path in diag.message
    assert diag.help is not None and "--allow-path DIR" in diag.help
    assert [m.header.name.name for m in result.modules if m.header] == ["main"]
    # Allowed explicitly, the same import loads.
    allowed = load_file(main_cvg, allow_paths=[tmp_path / "outside"])
    assert allowed.ok, allowed.diagnostics
    assert [m.header.name.name for m in allowed.modules if m.header] == ["lib", "main"]


def test_imports_below_the_entry_folder_load_however_they_are_spelt(tmp_path: Path) -> None:
    _write(tmp_path, {"main.cvg": 'ruleset main\nimport "./lib/a.cvg"\n' + USES_A,
                      "lib/a.cvg": 'ruleset a\nimport "../lib/b/../b.cvg"\n',
                      "lib/b.cvg": LIB})
    assert _codes(tmp_path / "main.cvg") == []


def test_the_api_takes_allow_paths(tmp_path: Path) -> None:
    _write(tmp_path, {"shared/lib.cvg": LIB,
                      "rules/main.cvg": 'ruleset main\nimport "../shared/lib.cvg"\n' + USES_A})
    with pytest.raises(CheckError, match="must lie inside the folder of the entry ruleset"):
        converge_rules.load(tmp_path / "rules" / "main.cvg", plugins=False)
    ruleset = converge_rules.load(tmp_path / "rules" / "main.cvg", plugins=False,
                                  allow_paths=[tmp_path / "shared"])
    assert ruleset.fact_types == ("A", "B")
    loaded = converge_rules.loads('ruleset m\nimport "../shared/lib.cvg"\n' + USES_A,
                                  path=str(tmp_path / "rules" / "m.cvg"), plugins=False,
                                  allow_paths=[str(tmp_path / "shared")])
    assert loaded.fact_types == ("A", "B")


@pytest.mark.parametrize("allow", ["/nonexistent", Path("/nonexistent"), None, [5]])
def test_allow_paths_that_is_no_list_of_folders_is_refused(tmp_path: Path,
                                                          allow: object) -> None:
    """Found: allow_paths="/nonexistent" (one string) was read a character at a time,
    and its "/" let the ruleset import from every folder of the machine."""
    from converge_rules.testing.runner import run_tests

    _write(tmp_path, {"shared/lib.cvg": LIB,
                      "rules/main.cvg": 'ruleset main\nimport "../shared/lib.cvg"\n' + USES_A})
    main = tmp_path / "rules" / "main.cvg"
    with pytest.raises(TypeError, match="allow_paths takes a list of folders"):
        converge_rules.load(main, plugins=False, allow_paths=allow)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="allow_paths takes a list of folders"):
        converge_rules.loads(main.read_text(), path=str(main), plugins=False,
                             allow_paths=allow)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="allow_paths takes a list of folders"):
        run_tests([main], plugins=False, allow_paths=allow)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="allow_paths takes a list of folders"):
        load_file(main, allow_paths=allow)  # type: ignore[arg-type]


COMMANDS = [
    ["check", "rules/main.cvg"],
    ["compile", "rules/main.cvg"],
    ["graph", "rules/main.cvg"],
    ["run", "rules/main.cvg", "-f", "in.jsonl"],
    ["test", "rules/main.cvg"],
    ["explain", "-r", "rules/main.cvg", "--facts", "in.jsonl", "B()"],
    ["replay", "rules/main.cvg", "tr.jsonl"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_every_command_that_loads_a_ruleset_takes_allow_path(
        converge: Callable[..., tuple[int, str]], tmp_path: Path, command: list[str]) -> None:
    _write(tmp_path, {"shared/lib.cvg": LIB,
                      "rules/main.cvg": 'ruleset main\nimport "../shared/lib.cvg"\n' + USES_A
                      + 'test "t" {\n  given A(s: "x", n: 1)\n  expect B(s: "x", n: 1)\n}\n',
                      "in.jsonl": '{"A": {"s": "x", "n": 1}}\n'})
    code, output = converge("run", "rules/main.cvg", "-f", "in.jsonl", "--trace", "tr.jsonl",
                            "--allow-path", "shared")
    assert code == 0, output
    code, output = converge(*command)
    assert code in (1, 2), output
    assert "../shared/lib.cvg" in output and "--allow-path" in output
    code, output = converge(*command, "--allow-path", "shared")
    assert code == 0, output


# ------------------------------------------------------- what is never read


def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    _write(tmp_path, {"main.cvg": 'ruleset main\nimport "pipe.cvg"\nfact B { key s: str }\n'
                                  'test "t" {\n  cases "rows.csv"\n  given B(s: s)\n'
                                  '  expect B(s: s)\n}\n'})
    os.mkfifo(tmp_path / "pipe.cvg")
    os.mkfifo(tmp_path / "rows.csv")
    code, output = _limited(tmp_path, "check", "main.cvg", "--format", "text", timeout=30)
    assert code == 1, output
    assert "main.cvg:2:1" in output and "cannot read `pipe.cvg`: it is a FIFO" in output
    assert "main.cvg:5:3" in output and "cannot read the cases file `rows.csv`: it is a FIFO" \
        in output
    code, output = _limited(tmp_path, "test", "main.cvg", timeout=30)
    assert code == 2, output


def test_a_device_is_never_read(tmp_path: Path) -> None:
    zero = Path("/dev/zero")
    if not zero.exists():
        pytest.skip("no /dev/zero on this system")
    _write(tmp_path, {"main.cvg": 'ruleset main\nimport "/dev/zero"\nfact B { key s: str }\n'
                                  'test "t" {\n  cases "/dev/zero"\n  given B(s: s)\n'
                                  '  expect B(s: s)\n}\n'})
    code, output = _limited(tmp_path, "check", "main.cvg", "--format", "text")
    assert code == 1, output
    assert "CVG605" in output and "CVG705" in output
    # Allowed, /dev is still no place for rulesets: a device is not read.
    code, output = _limited(tmp_path, "check", "main.cvg", "--format", "text",
                            "--allow-path", "/dev")
    assert code == 1, output
    assert "cannot import `/dev/zero`" not in output  # it is inside an allowed folder now
    assert "it is a character device, not a regular file" in output
    code, output = _limited(tmp_path, "test", "main.cvg", "--allow-path", "/dev")
    assert code == 2, output


def test_a_socket_and_a_directory_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, {"main.cvg": 'ruleset main\nimport "sock.cvg"\nimport "dir.cvg"\n',
                      "dir.cvg/inner.cvg": LIB})
    with socket.socket(socket.AF_UNIX) as server:
        try:
            server.bind(str(tmp_path / "sock.cvg"))
        except OSError as exc:  # a path too long for AF_UNIX
            pytest.skip(f"cannot create a socket here: {exc}")
        result = load_file(tmp_path / "main.cvg")
    messages = [d.message for d in result.diagnostics]
    assert [d.code for d in result.diagnostics] == ["CVG603", "CVG603"]
    assert "it is a socket, not a regular file" in messages[0]
    assert "it is a directory" in messages[1]


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    _write(tmp_path, {"main.cvg": 'ruleset main\nimport "huge.cvg"\n'})
    with open(tmp_path / "huge.cvg", "wb") as huge:  # sparse: no disk used
        huge.write(b"ruleset huge\n")
        huge.truncate(11 * 1024 * 1024)
    [diag] = load_file(tmp_path / "main.cvg").diagnostics
    assert diag.code == "CVG603" and "larger than 10 MiB" in diag.message
    assert diag.span is not None and diag.span.line == 2


def test_a_symbolic_link_loop_is_a_clear_error(
        converge: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    (tmp_path / "a.cvg").symlink_to(tmp_path / "b.cvg")
    (tmp_path / "b.cvg").symlink_to(tmp_path / "a.cvg")
    _write(tmp_path, {"main.cvg": 'ruleset main\nimport "a.cvg"\nfact B { key s: str }\n'
                                  'test "t" {\n  cases "b.cvg"\n  given B(s: s)\n'
                                  '  expect B(s: s)\n}\n'})
    code, output = converge("check", "main.cvg", "--format", "text")
    assert code == 1, output
    assert "main.cvg:2:1" in output and "symbolic link loop" in output
    assert "main.cvg:5:3" in output
    code, output = converge("check", "a.cvg")
    assert code == 2 and "symbolic link" in output
    code, output = converge("test", "main.cvg")
    assert code == 2 and "symbolic link loop" in output


# ------------------------------------------------- named, never quoted


def test_a_file_that_is_not_a_ruleset_is_named_not_quoted(
        converge: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    _write(tmp_path, {"main.cvg": 'ruleset main\nimport "passwd"\n', "passwd": SECRET + "\n",
                      "data.csv": "sku,amount\nA1,10.0\n"})
    for fmt in ("human", "text", "json", "sarif", "github", "junit"):
        code, output = converge("check", "main.cvg", "--format", fmt)
        assert code == 1, output
        assert "CVG606" in output and "passwd" in output
        assert "the-secret" not in output, output
    code, output = converge("check", "passwd", "data.csv", "--format", "text")
    assert code == 1
    assert "passwd:1:1" in output and "data.csv:1:1" in output
    assert "the-secret" not in output and "A1" not in output, output
    for command in ("run", "compile", "graph", "test"):
        code, output = converge(command, "passwd")
        assert code == 2, output
        assert "the-secret" not in output, output


def test_a_system_file_outside_the_folder_is_not_read(
        converge: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    _write(tmp_path, {"etc/passwd": SECRET + "\n",
                      "rules/main.cvg": f'ruleset main\nimport "{tmp_path}/etc/passwd"\n'})
    code, output = converge("check", "rules/main.cvg", "--format", "text")
    assert code == 1 and "CVG605" in output
    assert "the-secret" not in output
    code, output = converge("check", "rules/main.cvg", "--format", "text",
                            "--allow-path", "etc")
    assert code == 1 and "CVG606" in output
    assert "the-secret" not in output


def test_ruleset_like_files_still_get_their_syntax_errors(tmp_path: Path) -> None:
    _write(tmp_path, {"main.cvg": 'ruleset main\nimport "typo.cvg"\nimport "nohead.cvg"\n',
                      "typo.cvg": "rulset typo\n",
                      "nohead.cvg": "# a comment first\n\nfact A { key s: str }\n"})
    codes = _codes(tmp_path / "main.cvg")
    assert "CVG606" not in codes
    assert "CVG006" in codes  # nohead.cvg: the file does not start with `ruleset`


# ------------------------------------------------------------ cases fixtures


@pytest.mark.parametrize("fixture", ["../rows.csv", "ABSOLUTE", "link/rows.csv"])
def test_a_cases_file_outside_the_folder_is_refused(
        converge: Callable[..., tuple[int, str]], tmp_path: Path, fixture: str) -> None:
    path = str(tmp_path / "rows.csv") if fixture == "ABSOLUTE" else fixture
    _write(tmp_path, {"rows.csv": "s,n\nx,1\n",
                      "rules/main.cvg": "ruleset main\n" + LIB.split("\n", 1)[1] + USES_A
                      + f'test "t" {{\n  cases "{path}"\n  given A(s: s, n: n)\n'
                        "  expect B(s: s, n: n)\n}\n"})
    (tmp_path / "rules" / "link").symlink_to(tmp_path)
    code, output = converge("check", "rules/main.cvg", "--format", "text")
    assert code == 0, output  # a warning: the other tests still run
    assert "CVG705" in output and path in output and "--allow-path DIR" in output
    code, output = converge("test", "rules/main.cvg")
    assert code == 1, output
    assert "cannot read the cases file" in output and path in output
    assert "--allow-path" in output
    code, output = converge("test", "rules/main.cvg", "--allow-path", ".")
    assert code == 0, output


def test_a_huge_cases_file_is_not_read(converge: Callable[..., tuple[int, str]],
                                      tmp_path: Path) -> None:
    _write(tmp_path, {"main.cvg": "ruleset main\n" + LIB.split("\n", 1)[1] + USES_A
                      + 'test "t" {\n  cases "rows.csv"\n  given A(s: s, n: n)\n'
                        "  expect B(s: s, n: n)\n}\n"})
    with open(tmp_path / "rows.csv", "wb") as rows:
        rows.write(b"s,n\n")
        rows.truncate(101 * 1024 * 1024)
    code, output = converge("test", "main.cvg")
    assert code == 1, output
    assert "larger than 100 MiB" in output
