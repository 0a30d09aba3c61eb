"""``converge check``: paths, formats, exit codes and error handling.

Most tests replace the checker with a stand-in that returns chosen diagnostics, so they
test the command and not the checker; the last ones run the real checker end to end.
"""

from __future__ import annotations

import io
import json
import sys
import types
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main
from converge_rules.cli._common import expand_paths, use_color
from converge_rules.language.diagnostics.core import Diagnostic, Related, Severity
from converge_rules.language.syntax.span import Span


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("CONVERGE_DEBUG", raising=False)
    return tmp_path


class FakeChecker:
    """Stands in for the checker: ``table[name]`` are the diagnostics of file ``name``;
    ``calls`` are the paths it was asked to check."""

    def __init__(self) -> None:
        self.table: dict[str, list[Diagnostic]] = {}
        self.calls: list[str] = []
        self.sources: dict[str, str] = {}  # what ``checked_sources`` returns

    def __setitem__(self, name: str, diagnostics: list[Diagnostic]) -> None:
        self.table[name] = diagnostics

    def check_file(self, path: str | Path, **_: object) -> types.SimpleNamespace:
        self.calls.append(Path(path).as_posix())
        found = tuple(self.table.get(Path(path).as_posix(), []))
        return types.SimpleNamespace(diagnostics=found, ok=not any(d.is_error for d in found))


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> FakeChecker:
    fake = FakeChecker()
    module = types.ModuleType("converge_rules.language.checks.checker")
    module.check_file = fake.check_file  # type: ignore[attr-defined]
    module.checked_sources = lambda checked: fake.sources  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "converge_rules.language.checks.checker", module)
    return fake


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["check", *args])


def error_in(file: str, line: int = 1, code: str = "CVG101",
             severity: Severity = Severity.ERROR) -> Diagnostic:
    return Diagnostic(code, severity, f"problem in {file}", Span(file, line, 1, line, 5),
                      help="fix it")


def write(path: Path, text: str = "ruleset r\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------- usage


def test_no_path_is_a_usage_error(workdir: Path) -> None:
    result = run()
    assert result.exit_code == 2
    assert "PATH" in result.output


def test_missing_path_is_a_usage_error_naming_it(workdir: Path, checked: FakeChecker) -> None:
    write(workdir / "a.cvg")
    result = run("a.cvg", "nope.cvg")
    assert result.exit_code == 2
    assert "'nope.cvg' does not exist" in result.output
    assert "Traceback" not in result.output


def test_directory_without_rulesets_is_a_usage_error(workdir: Path) -> None:
    (workdir / "empty").mkdir()
    result = run("empty")
    assert result.exit_code == 2
    assert "no .cvg files found under empty" in result.output


def test_help_teaches_with_examples() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "converge check rulesets/ --format sarif" in result.output
    assert "--strict" in result.output and "Exit codes" in result.output


def test_expand_paths_recurses_sorts_skips_hidden_and_dedupes(workdir: Path) -> None:
    for name in ("rules/b.cvg", "rules/a.cvg", "rules/sub/c.cvg", "rules/.git/x.cvg",
                 "rules/notes.txt", "single.txt"):
        write(workdir / name)
    found = expand_paths(["rules", "single.txt", "rules/a.cvg"])
    assert [p.as_posix() for p in found] == [
        "rules/a.cvg", "rules/b.cvg", "rules/sub/c.cvg", "single.txt"]


# ------------------------------------------------------------------ exit codes


def test_clean_files_exit_0_with_a_summary(workdir: Path, checked: FakeChecker) -> None:
    write(workdir / "a.cvg")
    write(workdir / "sub/b.cvg")
    result = run("a.cvg", "sub")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "no problems in 2 files"
    assert checked.calls == ["a.cvg", "sub/b.cvg"]


def test_errors_exit_1_and_show_the_source(workdir: Path, checked: FakeChecker) -> None:
    write(workdir / "a.cvg", "ruleset a\nfact Pricee {}\n")
    checked["a.cvg"] = [error_in("a.cvg", line=2)]
    result = run("a.cvg")
    assert result.exit_code == 1
    assert "error[CVG101]: problem in a.cvg\n --> a.cvg:2:1\n" in result.output
    assert "2 | fact Pricee {}\n  | ^^^^\n" in result.output
    assert result.output.endswith("1 error in 1 file\n")


def test_snippets_show_the_text_as_checked_not_as_now_on_disk(
    workdir: Path, checked: FakeChecker
) -> None:
    write(workdir / "a.cvg", "ruleset a\nedited since\n")
    checked.sources = {"a.cvg": "ruleset a\nas checked\n"}
    checked["a.cvg"] = [error_in("a.cvg", line=2)]
    output = run("a.cvg").output
    assert "2 | as checked\n" in output and "edited since" not in output


def test_warnings_pass_unless_strict(workdir: Path, checked: FakeChecker) -> None:
    write(workdir / "a.cvg")
    checked["a.cvg"] = [error_in("a.cvg", severity=Severity.WARNING),
                        error_in("a.cvg", severity=Severity.NOTE, code="CVG102")]
    assert run("a.cvg").exit_code == 0
    assert run("a.cvg", "--strict").exit_code == 1


def test_diagnostic_reported_through_two_entry_files_appears_once(
    workdir: Path, checked: FakeChecker
) -> None:
    write(workdir / "lib.cvg")
    write(workdir / "main.cvg")
    shared = error_in("lib.cvg")
    checked["lib.cvg"] = [shared]
    checked["main.cvg"] = [shared]
    document = json.loads(run("lib.cvg", "main.cvg", "--format", "json").output)
    assert len(document["diagnostics"]) == 1
    assert document["summary"]["files"] == 2


def test_unexpected_exception_is_an_internal_error_not_a_traceback(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: object, **_: object) -> object:
        raise RuntimeError("checker fell over")

    fake = types.ModuleType("converge_rules.language.checks.checker")
    fake.check_file = broken  # type: ignore[attr-defined]
    fake.checked_sources = lambda checked: {}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "converge_rules.language.checks.checker", fake)
    write(workdir / "a.cvg")
    result = run("a.cvg")
    assert result.exit_code == 2
    assert "internal error: RuntimeError: checker fell over" in result.output
    assert "bug" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------- formats


@pytest.fixture
def one_error(workdir: Path, checked: FakeChecker) -> None:
    write(workdir / "a.cvg", "ruleset a\nfact Pricee {}\n")
    write(workdir / "lib.cvg", "ruleset lib\nfact Price {}\n")
    diagnostic = error_in("a.cvg", line=2)
    checked["a.cvg"] = [Diagnostic(
        diagnostic.code, diagnostic.severity, diagnostic.message, diagnostic.span,
        diagnostic.help, (Related(Span("lib.cvg", 2, 6, 2, 11), "declared here"),))]


@pytest.mark.usefixtures("one_error")
def test_json_format() -> None:
    result = run("a.cvg", "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["summary"] == {"errors": 1, "warnings": 0, "notes": 0, "files": 1}
    assert document["diagnostics"][0]["related"][0]["file"] == "lib.cvg"


@pytest.mark.usefixtures("one_error")
def test_sarif_format() -> None:
    log = json.loads(run("a.cvg", "--format", "sarif").output)
    assert log["version"] == "2.1.0"
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "CVG101"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "a.cvg"


@pytest.mark.usefixtures("one_error")
def test_junit_format() -> None:
    root = ET.fromstring(run("a.cvg", "--format", "junit").output)
    assert root.get("failures") == "1"


@pytest.mark.usefixtures("one_error")
def test_github_format() -> None:
    output = run("a.cvg", "--format", "github").output
    assert output.startswith("::error file=a.cvg,line=2,col=1,endLine=2,endColumn=4,"
                             "title=CVG101::problem in a.cvg%0Ahelp: fix it")


@pytest.mark.usefixtures("one_error")
def test_output_file(workdir: Path) -> None:
    result = run("a.cvg", "--format", "sarif", "--output", "out/report.sarif")
    assert result.exit_code == 2  # the directory does not exist
    assert "cannot write out/report.sarif" in result.output
    result = run("a.cvg", "--format", "sarif", "-o", "report.sarif")
    assert result.exit_code == 1
    assert result.output == ""
    assert json.loads((workdir / "report.sarif").read_text())["version"] == "2.1.0"


@pytest.mark.usefixtures("one_error")
def test_colour_only_when_asked_or_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "\x1b[" not in run("a.cvg").output  # CliRunner is not a terminal
    assert "\x1b[" in run("a.cvg", "--color", "always").output
    assert "\x1b[" not in run("a.cvg", "--format", "text", "--color", "always").output
    assert "\x1b[" not in run("a.cvg", "--color", "never").output


# ------------------------------------------------------------ with the real checker


def test_real_checker_reports_an_unknown_fact_type(workdir: Path) -> None:
    write(workdir / "bad.cvg", (
        "ruleset bad\n"
        "fact Price { key sku: str, amount: float }\n"
        "agent a {\n"
        "  when Pricee(sku)\n"
        "  emit Price(sku: sku, amount: 1.0)\n"
        "}\n"
    ))
    result = run("bad.cvg", "--format", "json")
    assert result.exit_code == 1, result.output
    diagnostic = json.loads(result.output)["diagnostics"][0]
    assert diagnostic["code"].startswith("CVG1") and diagnostic["severity"] == "error"
    assert (diagnostic["file"], diagnostic["line"], diagnostic["column"]) == ("bad.cvg", 4, 8)
    assert "Price" in diagnostic["help"]
    human = run("bad.cvg").output
    assert " --> bad.cvg:4:8\n" in human and "^^^^^^" in human


def test_real_checker_accepts_a_clean_ruleset_and_reports_syntax_errors(workdir: Path) -> None:
    write(workdir / "rules/good.cvg", (
        "ruleset good\n"
        "fact Cost { key sku: str, amount: float }\n"
        "fact Alert { sku: str, message: str }\n"
        "agent cheap {\n"
        "  when Cost(sku, amount) where amount < 1.0\n"
        '  emit Alert(sku: sku, message: "cheap")\n'
        "}\n"
    ))
    result = run("rules")
    assert result.exit_code == 0, result.output
    write(workdir / "rules/broken.cvg", "ruleset broken\nfact {\n")
    result = run("rules", "--format", "json")
    assert result.exit_code == 1, result.output
    codes = [d["code"] for d in json.loads(result.output)["diagnostics"]]
    assert codes and all(code.startswith("CVG0") for code in codes)


# ---------------------------------------------------------------- shared helpers


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_use_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color("always", io.StringIO()) is True
    assert use_color("never", _Terminal()) is False
    assert use_color("auto", io.StringIO()) is False
    assert use_color("auto", _Terminal()) is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color("auto", _Terminal()) is False


def test_converge_debug_shows_the_traceback_of_an_internal_error(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: object, **_: object) -> object:
        raise KeyError("boom")

    module = types.ModuleType("converge_rules.language.checks.checker")
    module.check_file = broken  # type: ignore[attr-defined]
    module.checked_sources = lambda checked: {}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "converge_rules.language.checks.checker", module)
    monkeypatch.setenv("CONVERGE_DEBUG", "1")
    write(workdir / "a.cvg")
    result = run("a.cvg")
    assert result.exit_code == 2
    assert "Traceback" in result.output and "internal error: KeyError" in result.output


def _documented_codes() -> list[str]:
    from converge_rules.language.diagnostics.core import all_codes

    return sorted(all_codes())


DOC_PLUGIN = """
from pydantic import BaseModel

from converge_rules.plugins.api import Tool, hookimpl


class FxArgs(BaseModel):
    currency: str


class FxRate(BaseModel):
    usd: float


def fx_rate(args):
    return {"usd": 1.0}


def vendor_rank(type_spec, contenders):
    return [0]


@hookimpl
def converge_register_tools(register):
    register(Tool("fx_rate", fx_rate, FxArgs, FxRate))


@hookimpl
def converge_register_resolvers(register):
    register("vendor_rank", vendor_rank)
"""
"""What the documented examples may assume is installed (as in
tests/language/test_codes.py): one typed tool and one resolver, as a real plugin."""


def with_plugin(monkeypatch: pytest.MonkeyPatch, workdir: Path, name: str, source: str
                ) -> Callable[..., Result]:
    """``run`` for ``converge --plugin NAME check …``, with the module NAME written to
    ``workdir`` and only that plugin loaded (installed ones disabled)."""
    write(workdir / f"{name}.py", source)
    monkeypatch.syspath_prepend(str(workdir))
    monkeypatch.setenv("CONVERGE_DISABLE_PLUGINS", "converge-http,converge-llm,converge-example")

    def run_with(*args: str) -> Result:
        return CliRunner().invoke(main, ["--plugin", name, "check", *args])

    return run_with


@pytest.mark.parametrize("code", _documented_codes())
def test_every_documented_example_renders_with_its_code(
    code: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from converge_rules.language.diagnostics.codes_doc import render_markdown
    from converge_rules.language.diagnostics.core import all_codes

    run = with_plugin(monkeypatch, workdir, "doc_plugin", DOC_PLUGIN)
    info = all_codes()[code]
    for name, text in info.extra_files.items():
        write(workdir / name, text)
    write(workdir / "main.cvg", info.wrong)
    human = run("main.cvg", "--format", "text")
    assert f"[{code}]: " in human.output
    assert human.exit_code == (1 if info.severity is Severity.ERROR else 0), human.output
    assert run("main.cvg", "--format", "text", "--strict").exit_code == 1
    log = json.loads(run("main.cvg", "--format", "sarif").output)
    rules = {rule["id"]: rule for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    assert rules[code]["name"] == info.name
    anchor = rules[code]["helpUri"].split("#", 1)[1]
    assert f'<a id="{anchor}"></a>' in render_markdown(all_codes())
    write(workdir / "main.cvg", info.right)
    right = run("main.cvg", "--format", "text")
    assert right.exit_code == 0, right.output


def test_plugins_inform_the_check_unless_no_plugins(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(workdir / "main.cvg", (
        "ruleset r\n"
        "fact Price { key sku: str, amount: float }\n"
        "policy Price { resolve by using vendor_rank }\n"
    ))
    without = with_plugin(monkeypatch, workdir, "nothing", "")
    assert without("main.cvg").exit_code == 1
    assert without("main.cvg", "--no-plugins").exit_code == 0
    ranked = with_plugin(monkeypatch, workdir, "doc_plugin", DOC_PLUGIN)
    assert ranked("main.cvg").exit_code == 0


def test_a_plugin_that_fails_to_load_is_a_clear_error(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = with_plugin(monkeypatch, workdir, "acme", (
        "from converge_rules.plugins.api import hookimpl\n\n"
        "@hookimpl\n"
        "def converge_register_tools(register):\n"
        "    raise ValueError('no licence key')\n"
    ))
    write(workdir / "main.cvg")
    result = run("main.cvg")
    assert result.exit_code == 2
    assert ("converge: error: plugin 'acme': converge_register_tools raised ValueError: "
            "no licence key") in result.output, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert run("main.cvg", "--no-plugins").exit_code == 0


@pytest.mark.usefixtures("one_error")
def test_human_report_to_a_file_keeps_the_summary_on_the_terminal(workdir: Path) -> None:
    result = run("a.cvg", "--color", "always", "-o", "report.txt")
    assert result.exit_code == 1
    assert result.output == "1 error in 1 file (report written to report.txt)\n"
    report = (workdir / "report.txt").read_text(encoding="utf-8")
    assert report.startswith("error[CVG101]: problem in a.cvg\n")
    assert "\x1b[" not in report  # a file never gets colour codes
