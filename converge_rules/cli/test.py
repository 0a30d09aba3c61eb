"""``converge test``: run the ``test`` blocks of rulesets, with coverage."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from converge_rules.analysis.runview import RunView
from converge_rules.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    allow_path_option,
    expand_paths,
    load_plugins,
    refuse_to_overwrite,
    report_internal_errors,
    write_output,
)
from converge_rules.jsontext import dumps
from converge_rules.testing.cases import TestCase
from converge_rules.testing.coverage import Coverage
from converge_rules.testing.outcome import TestReport
from converge_rules.testing.report import FORMATS, render_report
from converge_rules.testing.runner import Suite, run_tests
from converge_rules.testing.selection import SelectionError, compile_keyword


def _a_number(ctx: click.Context, param: click.Parameter, value: float | None
              ) -> float | None:
    # click's range check lets NaN through: it compares false with both ends
    if value is not None and math.isnan(value):
        raise click.BadParameter("NaN is not a number from 0 to 100", ctx, param)
    return value


@click.command("test")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("-k", "keyword", default=None, metavar="EXPR",
              help="Run only tests whose id (file.cvg::name) contains a word; words "
                   "combine with and/or/not and parentheses, as in pytest.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
              show_default=True,
              help="text, json, junit (JUnit XML for test dashboards) or github "
                   "(annotations in GitHub Actions).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the report to this file instead of stdout.")
@click.option("-v", "--verbose", is_flag=True, help="List passing tests too (text).")
@click.option("--coverage", "with_coverage", is_flag=True,
              help="Report which agents fired, which policies resolved a conflict, which "
                   "where-guards were seen false and which prunes fired.")
@click.option("--fail-under", type=click.FloatRange(0, 100), default=None,
              callback=_a_number, metavar="PERCENT",
              help="Exit 1 when total coverage is below PERCENT (implies --coverage).")
@click.option("--coverage-xml", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help="Write coverage as Cobertura XML to FILE (implies --coverage).")
@click.option("--report", "html_report", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help="Also write an HTML page of the run to FILE: each test, pass or fail, "
                   "with its failures (expected, found, derivation) and what its run did.")
@allow_path_option
@report_internal_errors
def command(paths: tuple[str, ...], keyword: str | None, fmt: str, output: Path | None,
            verbose: bool, with_coverage: bool, fail_under: float | None,
            coverage_xml: Path | None, html_report: Path | None,
            allow_paths: tuple[Path, ...]) -> None:
    """Run every `test` block in PATH... (.cvg files, or directories searched
    recursively). Each test runs its whole ruleset on its `given` facts, with tools
    replaced by its `mock tool` answers (no network, ever), and checks its `expect`
    steps. A test's id is `file.cvg::test name` (`…[case N]` for a table-test row,
    `…[NAME]` for a row named `case "NAME" {…}`).

    \b
    Examples:
      converge test rulesets/
      converge test pricing.cvg -k undercut
      converge test rulesets/ -k "pricing and not slow"
      converge test rulesets/ --format junit -o converge-tests.xml
      converge test rulesets/ --coverage --fail-under 90 --coverage-xml coverage.xml
      converge test rulesets/ --format github     # annotations in GitHub Actions
      converge test rulesets/ --report tests.html  # a page to open in a browser

    \b
    Exit codes:
      0  every selected test passed
      1  a test failed (or coverage is below --fail-under)
      2  bad usage, a ruleset with errors (shown first as diagnostics), no test
         selected by -k, or an internal error

    The text and github formats end with the line `N passed, N failed`
    (`, N skipped` when tests were skipped); json and junit print it on stderr.
    """
    try:
        compile_keyword(keyword)  # a bad -k is a usage error before anything runs
    except SelectionError as exc:
        raise click.UsageError(str(exc)) from None
    files = expand_paths(paths)
    refuse_to_overwrite(output, files, "--output")
    refuse_to_overwrite(coverage_xml, files, "--coverage-xml")
    refuse_to_overwrite(html_report, files, "--report")
    with_coverage = with_coverage or fail_under is not None or coverage_xml is not None
    coverage = Coverage()
    runs: dict[str, dict[str, object]] = {}

    def observe(suite: Suite, case: TestCase, view: RunView) -> None:
        if with_coverage and suite.checked is not None:
            coverage.record(suite.file, suite.checked, view, suite.functions)
        if html_report is not None:
            from converge_rules.report.testrun import run_summary

            runs[case.id] = run_summary(view)

    report, suites = run_tests(files, keyword=keyword,
                               observe=observe if with_coverage or html_report else None,
                               plugins=load_plugins(), allow_paths=allow_paths)
    read = [path for suite in suites for path in suite.files]  # imports, cases files
    refuse_to_overwrite(output, read, "--output")
    refuse_to_overwrite(coverage_xml, read, "--coverage-xml")
    refuse_to_overwrite(html_report, read, "--report")
    text = render_report(fmt, report, verbose=verbose)
    if with_coverage:
        for suite in suites:
            if suite.runnable and suite.checked is not None:
                coverage.add_unrun(suite.file, suite.checked)
        text = _with_coverage(fmt, text, coverage)
        if coverage_xml is not None:
            write_output(coverage.cobertura(), coverage_xml)
    write_output(text, output)
    if html_report is not None:
        write_output(_html(report, runs), html_report)
    if fmt in ("json", "junit") or output is not None:
        click.echo(report.summary(), err=True)

    if report.ruleset_errors:
        sys.exit(EXIT_USAGE)
    if keyword and not report.outcomes:
        click.echo(f"converge test: -k {keyword!r} selected no test", err=True)
        sys.exit(EXIT_USAGE)
    failed = report.count("failed") > 0
    if fail_under is not None and coverage.percent() < fail_under:
        click.echo(f"coverage {coverage.percent():.1f}% is below --fail-under "
                   f"{fail_under:g}%", err=True)
        failed = True
    sys.exit(EXIT_FINDINGS if failed else EXIT_OK)


def _html(report: TestReport, runs: dict[str, dict[str, object]]) -> str:
    """The HTML page of the run (Jinja2 is imported only now)."""
    from converge_rules.language.diagnostics.render import render
    from converge_rules.report.html import render_test_report
    from converge_rules.report.testrun import outcome_rows, outcomes_summary

    diagnostics = render("text", report.diagnostics, report.sources) \
        if report.diagnostics else ""
    return render_test_report("converge test: " + report.summary(),
                              outcome_rows(report, runs),
                              outcomes_summary(report, diagnostics))


def _with_coverage(fmt: str, text: str, coverage: Coverage) -> str:
    if fmt == "json":
        data = json.loads(text)
        data["coverage"] = coverage.json()
        return dumps(data, indent=2, sort_keys=True) + "\n"
    if fmt == "junit":
        return text  # JUnit has no place for coverage: use --coverage-xml
    # Coverage goes before the closing summary line, which stays last.
    body, summary = text.rstrip("\n").rsplit("\n", 1) if "\n" in text.rstrip("\n") \
        else ("", text.rstrip("\n"))
    body = body.rstrip("\n")
    return (body + "\n\n" if body else "") + coverage.text() + "\n" + summary + "\n"
