"""``converge check``: paths, formats, exit codes and error handling.

Every test runs the real checker on real ``.cvg`` files. Installed entry-point plugins
are switched off, so the plugins a test needs are real plugin modules it writes and
passes with ``converge --plugin MODULE``.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main
from converge_rules.cli._common import expand_paths, report_internal_errors, use_color
from converge_rules.cli.check import exit_code
from converge_rules.language.diagnostics.core import Diagnostic, Severity
from converge_rules.language.syntax.span import Span

INSTALLED_PLUGINS = ",".join(
    ep.name for ep in importlib.metadata.entry_points(group="converge_rules"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("CONVERGE_DEBUG", raising=False)
    monkeypatch.delenv("CONVERGE_PLUGINS", raising=False)
    monkeypatch.setenv("CONVERGE_DISABLE_PLUGINS", INSTALLED_PLUGINS)
    return tmp_path


WritePlugin = Callable[[str, str], str]


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WritePlugin]:
    """A writer of plugin modules: ``plugin(name, source)`` writes ``name.py`` where it
    can be imported and returns the name to pass to ``--plugin``."""
    folder = tmp_path / "plugin_modules"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    written: list[str] = []

    def write_plugin(name: str, source: str) -> str:
        (folder / f"{name}.py").write_text(source, encoding="utf-8")
        written.append(name)
        return name

    yield write_plugin
    for name in written:  # the next test's module of that name is another file
        sys.modules.pop(name, None)


def run(*args: str, plugins: tuple[str, ...] = ()) -> Result:
    loaded = [arg for name in plugins for arg in ("--plugin", name)]
    return CliRunner().invoke(main, [*loaded, "check", *args])


def write(path: Path, text: str = "ruleset r\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# An unknown type (CVG101) on line 4, column 8.
UNKNOWN_TYPE = (
    "ruleset a\n"
    "fact Price { key sku: str }\n"
    "agent x {\n"
    "  when Pricee(sku)\n"
    "  emit Price(sku: sku)\n"
    "}\n"
)

# ------------------------------------------------------------------------- usage


def test_no_path_is_a_usage_error(workdir: Path) -> None:
    result = run()
    assert result.exit_code == 2
    assert "PATH" in result.output


def test_missing_path_is_a_usage_error_naming_it(workdir: Path) -> None:
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


def test_clean_files_exit_0_with_a_summary(workdir: Path) -> None:
    write(workdir / "a.cvg")
    write(workdir / "sub/b.cvg")
    result = run("a.cvg", "sub")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "no problems in 2 files"
    write(workdir / "sub/b.cvg", UNKNOWN_TYPE)  # the directory's file is checked too
    result = run("a.cvg", "sub")
    assert result.exit_code == 1
    assert " --> sub/b.cvg:4:8\n" in result.output
    assert result.output.endswith("1 error in 2 files\n")


def test_errors_exit_1_and_show_the_source(workdir: Path) -> None:
    write(workdir / "a.cvg", UNKNOWN_TYPE)
    result = run("a.cvg")
    assert result.exit_code == 1
    assert "error[CVG101]: unknown type `Pricee`\n --> a.cvg:4:8\n" in result.output
    assert "4 |   when Pricee(sku)\n  |        ^^^^^^\n" in result.output
    assert "= help: did you mean `Price`?" in result.output
    assert result.output.endswith("1 error in 1 file\n")


EDITED_WHILE_CHECKING = """
from pathlib import Path

from converge_rules.language.diagnostics.core import Diagnostic, Severity
from converge_rules.language.syntax.span import Span
from converge_rules.plugins.hookspecs import hookimpl


def edited_while_checking(checked):
    # An editor saves the file while `converge check` is still running.
    Path("a.cvg").write_text("ruleset a\\nedited since\\n", encoding="utf-8")
    yield Diagnostic("ACME001", Severity.ERROR, "flagged by a plugin",
                     Span("a.cvg", 2, 1, 2, 5))


@hookimpl
def converge_register_checks(register):
    register("edited_while_checking", edited_while_checking)
"""


def test_snippets_show_the_text_as_checked_not_as_now_on_disk(
    workdir: Path, plugin: WritePlugin
) -> None:
    write(workdir / "a.cvg", "ruleset a\nfact Price { key sku: str }\n")
    result = run("a.cvg", plugins=(plugin("check_edits_plugin", EDITED_WHILE_CHECKING),))
    assert result.exit_code == 1, result.output
    assert "error[ACME001]: flagged by a plugin\n" in result.output
    assert "2 | fact Price { key sku: str }\n" in result.output
    assert "edited since" not in result.output
    assert "edited since" in (workdir / "a.cvg").read_text(encoding="utf-8")


def test_warnings_pass_unless_strict(workdir: Path) -> None:
    write(workdir / "a.cvg", "ruleset a\nuses tool fx_rate\nuses tool fx_rate\n")
    result = run("a.cvg", "--no-plugins")
    assert result.exit_code == 0, result.output
    assert "warning[CVG114]: tool `fx_rate` is already declared" in result.output
    assert result.output.endswith("1 warning in 1 file\n")
    assert run("a.cvg", "--no-plugins", "--strict").exit_code == 1


def test_notes_never_fail_a_check() -> None:
    note = Diagnostic("CVG999", Severity.NOTE, "for your information",
                      Span("a.cvg", 1, 1, 1, 2))
    warning = Diagnostic("CVG999", Severity.WARNING, "look", Span("a.cvg", 1, 1, 1, 2))
    assert exit_code([note], strict=False) == exit_code([note], strict=True) == 0
    assert (exit_code([warning], strict=False), exit_code([warning], strict=True)) == (0, 1)


def test_diagnostic_reported_through_two_entry_files_appears_once(workdir: Path) -> None:
    write(workdir / "lib.cvg", "ruleset lib\nfact A { key k: str }\nagent y {\n"
                               "  when B(k)\n  emit A(k: k)\n}\n")
    write(workdir / "main.cvg", 'ruleset main\nimport "lib.cvg"\n')
    result = run("lib.cvg", "main.cvg", "--format", "json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.output)
    assert [(d["code"], d["file"], d["line"]) for d in document["diagnostics"]] == [
        ("CVG101", "lib.cvg", 4)]
    assert document["summary"]["files"] == 2


# ---------------------------------------------------------------------- formats


@pytest.fixture
def one_error(workdir: Path) -> None:
    """a.cvg declares Price again (CVG102 at 3:6), pointing at lib.cvg's declaration."""
    write(workdir / "lib.cvg", "ruleset lib\nfact Price { key sku: str }\n")
    write(workdir / "a.cvg", 'ruleset a\nimport "lib.cvg"\nfact Price { key sku: str }\n')


@pytest.mark.usefixtures("one_error")
def test_json_format() -> None:
    result = run("a.cvg", "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["summary"] == {"errors": 1, "warnings": 0, "notes": 0, "files": 1}
    (diagnostic,) = document["diagnostics"]
    assert (diagnostic["code"], diagnostic["line"], diagnostic["column"]) == ("CVG102", 3, 6)
    assert [(r["file"], r["line"], r["message"]) for r in diagnostic["related"]] == [
        ("lib.cvg", 2, "first declared here")]


@pytest.mark.usefixtures("one_error")
def test_sarif_format() -> None:
    log = json.loads(run("a.cvg", "--format", "sarif").output)
    assert log["version"] == "2.1.0"
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "CVG102"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "a.cvg"


@pytest.mark.usefixtures("one_error")
def test_junit_format() -> None:
    root = ET.fromstring(run("a.cvg", "--format", "junit").output)
    assert root.get("failures") == "1"


@pytest.mark.usefixtures("one_error")
def test_github_format() -> None:
    output = run("a.cvg", "--format", "github").output
    assert output.startswith("::error file=a.cvg,line=3,col=6,endLine=3,endColumn=10,"
                             "title=CVG102::`Price` is already declared%0Ahelp: rename ")
    assert "%0Anote: first declared here (lib.cvg:2:6)" in output


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


@click.command()
@report_internal_errors
def _falls_over() -> None:
    """A command with a bug in it: what every command does with an unexpected error."""
    raise KeyError("boom")


def test_an_unexpected_exception_is_an_internal_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONVERGE_DEBUG", raising=False)
    result = CliRunner().invoke(_falls_over)
    assert result.exit_code == 2
    assert "converge: internal error: KeyError: 'boom'" in result.output
    assert "bug" in result.output and "CONVERGE_DEBUG=1" in result.output
    assert "Traceback" not in result.output


def test_converge_debug_shows_the_traceback_of_an_internal_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVERGE_DEBUG", "1")
    result = CliRunner().invoke(_falls_over)
    assert result.exit_code == 2
    assert "Traceback" in result.output and "internal error: KeyError" in result.output


def _documented_codes() -> list[str]:
    from converge_rules.language.diagnostics.core import all_codes

    return sorted(all_codes())


# What the documented examples may assume is installed (as in tests/language/test_codes.py):
# one typed tool, one resolver and one pruner, from a real plugin module.
EXAMPLE_PLUGIN = """
from pydantic import BaseModel

from converge_rules.plugins.hookspecs import hookimpl
from converge_rules.plugins.registries import Tool


class Currency(BaseModel):
    currency: str


class Rate(BaseModel):
    usd: float


def fx_rate(args):
    return Rate(usd=1.0)


def vendor_rank(type_spec, contenders):
    return [0]


class Ttl:
    parameters = {"cycles": "int?"}

    def bind(self, arguments):
        return self

    def __call__(self, fact_type, fields, age):
        return False


@hookimpl
def converge_register_tools(register):
    register(Tool("fx_rate", fx_rate, Currency, Rate))


@hookimpl
def converge_register_resolvers(register):
    register("vendor_rank", vendor_rank)


@hookimpl
def converge_register_pruners(register):
    register("ttl", Ttl())
"""


@pytest.mark.parametrize("code", _documented_codes())
def test_every_documented_example_renders_with_its_code(
    code: str, workdir: Path, plugin: WritePlugin
) -> None:
    from converge_rules.language.diagnostics.codes_doc import render_markdown
    from converge_rules.language.diagnostics.core import all_codes

    info = all_codes()[code]
    texts = [info.wrong, info.right, *info.extra_files.values()]
    # Loading plugins costs time; only examples with tools or resolvers need them.
    if any(re.search(r"\buses tool\b|\busing\b", text) for text in texts):
        installed, options = (plugin("check_example_plugin", EXAMPLE_PLUGIN),), ()
    else:
        installed, options = (), ("--no-plugins",)
    for name, text in info.extra_files.items():
        write(workdir / name, text)
    write(workdir / "main.cvg", info.wrong)
    human = run("main.cvg", "--format", "text", *options, plugins=installed)
    assert f"[{code}]: " in human.output
    assert human.exit_code == (1 if info.severity is Severity.ERROR else 0), human.output
    strict = run("main.cvg", "--format", "text", "--strict", *options, plugins=installed)
    assert strict.exit_code == 1
    log = json.loads(run("main.cvg", "--format", "sarif", *options, plugins=installed).output)
    rules = {rule["id"]: rule for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    assert rules[code]["name"] == info.name
    anchor = rules[code]["helpUri"].split("#", 1)[1]
    assert f'<a id="{anchor}"></a>' in render_markdown(all_codes())
    write(workdir / "main.cvg", info.right)
    right = run("main.cvg", "--format", "text", *options, plugins=installed)
    assert right.exit_code == 0, right.output


RANKS_PLUGIN = """
from converge_rules.plugins.hookspecs import hookimpl


def vendor_rank(type_spec, contenders):
    return [0]


@hookimpl
def converge_register_resolvers(register):
    register("vendor_rank", vendor_rank)
"""


def test_plugins_inform_the_check_unless_no_plugins(workdir: Path, plugin: WritePlugin) -> None:
    write(workdir / "main.cvg", (
        "ruleset r\n"
        "fact Price { key sku: str, amount: float }\n"
        "policy Price { resolve by using vendor_rank }\n"
    ))
    unknown = run("main.cvg")  # no plugin registers vendor_rank
    assert unknown.exit_code == 1
    assert "vendor_rank" in unknown.output
    assert run("main.cvg", "--no-plugins").exit_code == 0  # not checked without plugins
    ranks = plugin("check_ranks_plugin", RANKS_PLUGIN)
    known = run("main.cvg", plugins=(ranks,))
    assert known.exit_code == 0, known.output


BROKEN_PLUGIN = """
from converge_rules.plugins.hookspecs import hookimpl


@hookimpl
def converge_register_tools(register):
    raise ValueError("no API key")
"""


def test_a_plugin_that_fails_to_load_is_a_clear_error(workdir: Path, plugin: WritePlugin) -> None:
    broken = plugin("check_broken_plugin", BROKEN_PLUGIN)
    write(workdir / "main.cvg")
    result = run("main.cvg", plugins=(broken,))
    assert result.exit_code == 2
    assert ("converge: error: plugin 'check_broken_plugin': converge_register_tools raised "
            "ValueError: no API key") in result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert run("main.cvg", "--no-plugins", plugins=(broken,)).exit_code == 0


@pytest.mark.usefixtures("one_error")
def test_human_report_to_a_file_keeps_the_summary_on_the_terminal(workdir: Path) -> None:
    result = run("a.cvg", "--color", "always", "-o", "report.txt")
    assert result.exit_code == 1
    assert result.output == "1 error in 1 file (report written to report.txt)\n"
    report = (workdir / "report.txt").read_text(encoding="utf-8")
    assert report.startswith("error[CVG102]: `Price` is already declared\n")
    assert "\x1b[" not in report  # a file never gets colour codes
