"""``converge explain``: how a fact was derived, or why it was not."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from converge_rules.analysis.explain import Explainer
from converge_rules.analysis.interpret import (
    EvalError,
    Interpreter,
    interpreter_for,
    job_time,
    read_times,
)
from converge_rules.analysis.runview import RunView, read_trace, view_from_result
from converge_rules.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    allow_path_option,
    is_store,
    load_plugins,
    missing_path,
    refuse_to_overwrite,
    report_input_error,
    report_internal_errors,
    write_output,
)
from converge_rules.errors import ConvergeError, InputError
from converge_rules.jsontext import dumps
from converge_rules.language.checks.checked import CheckedRuleset
from converge_rules.language.diagnostics.render import render
from converge_rules.language.format.formatter import format_pattern
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.span import Span
from converge_rules.testing.runner import Suite, load_suite
from converge_rules.text import printable

MAX_FACTS = 20
"""How many matching facts ``explain`` shows before it says how many more there are."""


@click.command("explain")
@click.argument("pattern", required=False)
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="A trace written by `converge run --trace FILE`.")
@click.option("--store", "store", default=None, metavar="FILE | URL",
              help="A job store written by `converge run --store` (run.db, "
                   "sqlite:///PATH, postgresql://HOST/DB): its newest job, or --job ID.")
@click.option("--job", "job", type=click.IntRange(min=1), default=None, metavar="ID",
              help="With --store: the job to explain (default: the newest).")
@click.option("--ruleset", "-r", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="The ruleset: adds rule locations and bindings; needed "
                                 "for --why-not.")
@click.option("--facts", "-f", "facts", multiple=True, metavar="FILE | TYPE=FILE.csv",
              help="Input facts: with --ruleset, run it (tools are not called) and "
                   "explain that run instead of a trace. Repeatable.")
@click.option("--why-not", "why_not", default=None, metavar="PATTERN",
              help="Name the agents that could have produced a fact matching PATTERN "
                   "and the first condition of each that failed.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text",
              show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write to this file instead of stdout.")
@allow_path_option
@report_internal_errors
def command(pattern: str | None, trace_path: Path | None, store: str | None,
            job: int | None, ruleset: Path | None,
            facts: tuple[str, ...], why_not: str | None, fmt: str,
            output: Path | None, allow_paths: tuple[Path, ...]) -> None:
    """Explain the facts matching PATTERN: the derivation tree of each (the agent that
    produced it, its rule's location, the cycle, the bindings of the match, the support
    facts recursively down to input facts, and the conflicts it won).

    PATTERN is written as in an `expect` step: `Price(sku: "A1")` (fields left out are
    free). With --why-not, list every agent that emits the type and the first of its
    conditions (pattern, negation, guard, emitted values) that fails in the final
    context, and what became of matching facts that were derived and then lost.

    \b
    Examples:
      converge run pricing.cvg --facts in.jsonl --trace run.jsonl
      converge explain --trace run.jsonl 'Price(sku: "A1")'
      converge explain --trace run.jsonl -r pricing.cvg 'Price(sku: "A1")'
      converge explain --store run.db 'Price(sku: "A1")'
      converge explain -r pricing.cvg --facts in.jsonl --why-not 'Alert(sku: "A1")'

    With --ruleset, the pattern is checked against it as rule text is (unknown types,
    fields and enum members, values of the wrong type). It has no variables: a bare
    name that is no enum member is an error; quote strings, and the whole pattern for
    the shell ('Claim(id: "C2")'). A bare field (`Claim(id)`), `not` and a binder are
    errors with or without --ruleset.

    \b
    Exit codes: 0 explained, 1 no fact matches PATTERN (explain) or a matching fact
    exists (--why-not), 2 bad usage, a pattern with errors, an unreadable trace or a
    ruleset with errors.
    """
    if (pattern is None) == (why_not is None):
        raise click.UsageError("give a PATTERN to explain, or --why-not PATTERN")
    if trace_path is not None and store is not None:
        raise click.UsageError("give --trace FILE or --store STORE, not both")
    if trace_path is not None and is_store(str(trace_path)):
        raise click.UsageError(f"{trace_path} is a job store, not a trace: give it as "
                               f"--store {trace_path}")
    if facts and (trace_path is not None or store is not None):
        # (the facts were left unread: the recorded run was explained)
        raise click.UsageError("--facts runs the ruleset on them instead of reading a "
                               "recorded run: give --trace or --store, or --facts")
    if job is not None and store is None:
        raise click.UsageError("--job says which job of --store to explain; give --store")
    if trace_path is None and store is None and not (ruleset and facts):
        raise click.UsageError("give --trace FILE, --store STORE, or --ruleset RULESET "
                               "with --facts FILE")
    if why_not is not None and ruleset is None:
        raise click.UsageError("--why-not needs --ruleset RULESET (it reads the agents)")

    fact_files = [spec.partition("=")[2] if "=" in spec and not Path(spec).exists() else spec
                  for spec in facts]
    read = [p for p in (trace_path, ruleset) if p is not None] + fact_files
    refuse_to_overwrite(output, read, "--output")
    loaded = _load(ruleset, plugins=True, allow_paths=allow_paths) \
        if ruleset is not None else None
    if loaded is not None:
        refuse_to_overwrite(output, loaded.files, "--output")  # imports, cases files
    checked = loaded.checked if loaded is not None else None
    view = _stored(store, job, output) if store is not None \
        else _view(trace_path, loaded, facts)
    if checked is not None:
        read_times(view.facts, checked)
    interp = interpreter_for(checked, view.context(), loaded.functions,
                             now=job_time(view.now)) \
        if loaded is not None and checked is not None else None
    text = why_not if why_not is not None else pattern
    assert text is not None
    target = parse_pattern(text)
    _check_pattern(checked, target, text)
    if interp is None:
        interp = _bare_interpreter(target, view)
    explainer = Explainer(view, checked, interp)

    try:
        if why_not is not None:
            data, body, code = _why_not(explainer, target)
        else:
            data, body, code = _explain(explainer, target)
    except EvalError as exc:
        at = _in_pattern(exc.span) if isinstance(exc.span, Span) \
            and exc.span.file == PATTERN_FILE else None
        if at is None:
            raise
        # a value the pattern asks for cannot be computed (`amount: 1 / 0`): said of the
        # pattern as given, not of the test block parse_pattern wrapped it in
        where = f"column {at.column}" if "\n" not in text \
            else f"line {at.line}, column {at.column}"
        raise click.UsageError(f"cannot evaluate the pattern {text!r}: {exc.message} at "
                               f"{where}; give each field a value that can be computed"
                               ) from exc
    write_output(dumps(data, indent=2, sort_keys=True) + "\n"
                 if fmt == "json" else body, output)
    sys.exit(code)


def _explain(ex: Explainer, target: n.Pattern) -> tuple[dict[str, Any], str, int]:
    found = ex.find(target)
    gone = [f for f in ex.find(target, include_removed=True) if f not in found]
    lines: list[str] = []
    for fact in (found + gone)[:MAX_FACTS]:
        assert fact.id is not None
        lines.extend(ex.tree_lines(ex.tree(fact.id)))
        lines.append("")
    if len(found) + len(gone) > MAX_FACTS:
        lines.append(f"… and {len(found) + len(gone) - MAX_FACTS} more matching facts")
    if not found and not gone:
        lines.append(f"no fact matches {format_pattern(target)} in this run")
        if ex.checked is not None:
            lines.append("why not:")
            lines.extend("  " + r.text() for r in ex.why_not(target))
            if lines[-1] == "why not:":
                lines.append(f"  no agent emits {target.type.name}: it can only be given "
                             "as input")
        else:
            lines.append("hint: add --ruleset RULESET to see why (--why-not)")
    data = {"pattern": format_pattern(target), "status": ex.view.status,
            "facts": [ex.tree_json(ex.tree(f.id)) for f in (found + gone)[:MAX_FACTS]
                      if f.id is not None]}
    return data, _text(lines).rstrip("\n") + "\n", EXIT_OK if found or gone \
        else EXIT_FINDINGS


def _why_not(ex: Explainer, target: n.Pattern) -> tuple[dict[str, Any], str, int]:
    found = ex.find(target)
    reasons = ex.why_not(target)
    lines = []
    if found:
        lines.append(f"{format_pattern(target)} is in the final context:")
        for fact in found[:MAX_FACTS]:
            assert fact.id is not None
            lines.extend("  " + line for line in ex.tree_lines(ex.tree(fact.id)))
    else:
        lines.append(f"why no {format_pattern(target)}:")
        lines.extend("  " + r.text() for r in reasons)
        if not reasons:
            lines.append(f"  no agent emits {target.type.name}: it can only be given as "
                         "input")
    data = {"pattern": format_pattern(target), "status": ex.view.status,
            "present": [ex.tree_json(ex.tree(f.id)) for f in found if f.id is not None],
            "reasons": [r.json() for r in reasons]}
    return data, _text(lines) + "\n", EXIT_FINDINGS if found else EXIT_OK


def _text(lines: list[str]) -> str:
    """The lines of the text output, each escaped to one printable line: they quote
    patterns, values, resolver reasons and tool errors, which must not drive the
    terminal or start lines of their own."""
    return "\n".join(printable(line) for line in lines)


def parse_pattern(text: str) -> n.Pattern:
    """A pattern written as in an ``expect`` step; a syntax error is a usage error that
    quotes the parser's message."""
    from converge_rules.language.syntax.parser import parse

    wrapped = f'ruleset query\ntest "query" {{\n{_PREFIX}{text}\n}}\n'
    result = parse(wrapped, "<pattern>")
    module = result.module
    items = module.items if module else ()
    steps = [s for item in items if isinstance(item, n.Test) for s in item.steps]
    if result.diagnostics or len(items) != 1 or len(steps) != 1 \
            or not isinstance(steps[0], n.ExpectFact) or steps[0].negated:
        problem = (_syntax_problem(result.diagnostics[0].span, result.diagnostics[0].message,
                                   text) if result.diagnostics else "not a pattern")
        raise click.UsageError(
            f"cannot read the pattern {text!r}: {problem}; write it as in an expect step, "
            'e.g. \'Price(sku: "A1")\'')
    return steps[0].pattern


def _syntax_problem(span: Span | None, message: str, text: str) -> str:
    """The parser's ``message`` about the wrapped pattern, said of ``text`` alone: the
    test block :func:`parse_pattern` wraps it in is never named (a message about the
    block's closing brace means the pattern ended too early)."""
    if not text.strip():
        return "it is empty"
    bare = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)  # braces in strings are text
    if "{" in bare or "}" in bare:
        return "`{` and `}` are no part of a pattern"
    last_line = 2 + text.count("\n") + 1
    end = len(text.rsplit("\n", 1)[-1]) + (len(_PREFIX) if last_line == 3 else 0)
    if span is None or span.line > last_line or (span.line == last_line
                                                  and span.column > end):
        return ("it ends too early: a `(` or a string left open, or a field without "
                "a value")
    at = _in_pattern(span)
    assert at is not None
    where = (f"column {at.column}" if last_line == 3
             else f"line {at.line}, column {at.column}")
    return f"{message.split(' in test ', 1)[0].split('; ', 1)[0]} at {where}"


PATTERN_FILE = "<pattern>"
"""The name diagnostics give the pattern of the command line."""

_PREFIX = "  expect "
"""What :func:`parse_pattern` writes before the pattern on its line."""


def _check_pattern(checked: CheckedRuleset | None, target: n.Pattern, text: str) -> None:
    """Exit 2 with the diagnostics, pointing into ``text``, when ``target`` is no
    pattern of the ruleset's facts (an unknown type or field, a value of the wrong
    type, a bare name) or, with no ruleset, no query at all (a bare field, `not`, a
    binder)."""
    from converge_rules.language.checks.query import check_query, check_query_form

    found = check_query(checked, target) if checked is not None \
        else check_query_form(target)
    if not found:
        return
    shown = [replace(d, span=_in_pattern(d.span), related=tuple(
        replace(r, span=_in_pattern(r.span) or r.span) for r in d.related))
        for d in found]
    click.echo(render("text", shown, {PATTERN_FILE: text}), err=True, nl=False)
    sys.exit(EXIT_USAGE)


def _in_pattern(span: Span | None) -> Span | None:
    """A span of the wrapped text :func:`parse_pattern` parses, as a span of the
    pattern as given (its first line is shifted by the wrapping)."""
    if span is None:
        return None
    shift = len(_PREFIX)

    def at(line: int, column: int) -> tuple[int, int]:
        return line - 2, column - shift if line == 3 else column

    line, column = at(span.line, span.column)
    end_line, end_column = at(span.end_line, span.end_column)
    return Span(PATTERN_FILE, line, column, end_line, end_column)


def _load(ruleset: Path, *, plugins: bool, allow_paths: tuple[Path, ...] = ()) -> Suite:
    """The checked and compiled ruleset (with the installed plugins' functions and
    resolvers unless ``plugins`` is False); errors are printed, exit code 2."""
    if not ruleset.exists():
        raise missing_path(ruleset)
    try:
        suite = load_suite(ruleset, load_plugins(no_plugins=not plugins),
                           allow_paths=allow_paths)
    except ConvergeError as exc:  # a plugin that fails to load
        raise click.UsageError(str(exc)) from exc
    checked = suite.checked
    assert checked is not None
    if not suite.runnable:
        if suite.problem:
            raise click.UsageError(suite.problem)
        click.echo(render("text", checked.diagnostics, _sources(checked)), err=True, nl=False)
        sys.exit(EXIT_USAGE)
    return suite


def _sources(checked: CheckedRuleset) -> dict[str, str]:
    from converge_rules.language.access import snippet_source

    out = {}
    for d in checked.diagnostics:
        if d.span is not None and d.span.file not in out:
            # The loaded text; a refused file (a device, not a ruleset) is not read.
            text = checked.sources.get(d.span.file) or snippet_source(d.span.file)
            if text is not None:
                out[d.span.file] = text
    return out


def _stored(store: str, job: int | None, output: Path | None) -> RunView:
    """The view of a job of ``store`` (the newest without ``job``), from its trace."""
    from converge_rules.analysis.runview import trace_events, view_from_events
    from converge_rules.cli.store import open_existing

    with open_existing(store, None if output is None else str(output)) as opened:
        info = opened.job(job)
        text = "\n".join(opened.trace_lines(info.id))
    return view_from_events(trace_events(text, f"{store} (job {info.id})"))


def _view(trace_path: Path | None, loaded: Suite | None,
          facts: tuple[str, ...]) -> RunView:
    if trace_path is not None:
        try:
            return read_trace(trace_path)
        except InputError as exc:  # a damaged trace: the line and what is wrong
            report_input_error(exc)
            sys.exit(EXIT_USAGE)
    assert loaded is not None
    from converge_rules.engine import read_all, run

    program = loaded.program
    try:
        inputs = read_all(program, facts)
    except ConvergeError as exc:
        raise click.UsageError(str(exc)) from exc
    return view_from_result(run(program, inputs))


def _bare_interpreter(target: n.Pattern, view: RunView) -> Interpreter:
    """Without a ruleset, a bare name in the pattern (``channel: web``) can only be an
    enum member: treat every such name as one."""
    names = tuple(fm.value.id for fm in target.fields if isinstance(fm.value, n.Name))
    return Interpreter(enums={"<pattern>": names}, facts=view.context())
