"""Helpers every ``converge`` sub-command shares: exit codes, turning the paths a user
typed into ``.cvg`` files, colour choice, output, reporting a ruleset's diagnostics and
bad input, and the guard that turns an unexpected exception into a short "internal
error" message instead of a traceback."""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
import stat
import sys
import traceback
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from converge_rules.errors import CheckError, ConvergeError, InputError

if TYPE_CHECKING:
    from converge_rules.language.diagnostics.core import Diagnostic

if TYPE_CHECKING:
    from converge_rules.plugins.registries import Registries

EXIT_OK = 0
"""Nothing to report."""
EXIT_FINDINGS = 1
"""Findings (errors, or warnings under ``--strict``) or failing tests."""
EXIT_USAGE = 2
"""Bad usage (a path that does not exist, a bad option) or an internal error."""
EXIT_INTERRUPTED = 130
"""Interrupted by a signal: 128 + the signal's number, as shells do (130 for Ctrl-C,
143 for SIGTERM)."""
EXIT_CLOSED_PIPE = 141
"""Stdout was closed by its reader (``converge run ... | head``): 128 + SIGPIPE's
number, the status a shell shows for a command the closed pipe ended."""


class Interrupts:
    """While active (a ``with`` block in the main thread), the first SIGINT or SIGTERM
    only asks the job to stop at the end of its cycle (:meth:`requested`), so its
    partial result is printed; a second one stops at once, as the default handler
    would. :attr:`signal` is the number of the first signal received, or None."""

    def __init__(self, message: str) -> None:
        self._message = message
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def requested(self) -> bool:
        """True once a signal asked the job to stop."""
        return self.signal is not None

    def exit_code(self) -> int:
        """128 + the signal's number (130 when no signal was received)."""
        return 128 + (self.signal or 2)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signal is not None:  # the second one: stop now
            raise KeyboardInterrupt
        self.signal = signum
        click.echo(self._message, err=True)

    def __enter__(self) -> Interrupts:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    @contextlib.contextmanager
    def finishing(self, message: str) -> Iterator[None]:
        """Around a whole command whose job runs inside this object's ``with`` block: a
        signal outside that block (a first one after the job ended, or the second)
        stops at once, printing ``message``, with exit code 128 + the first signal's
        number; when the command exits after a signal, later ones are ignored. Without
        this, Ctrl-C then met the default handler: click's "Aborted!" (exit 1), or a
        traceback."""
        import signal
        import threading

        def stop(signum: int, frame: object) -> None:
            if self.signal is None:
                self.signal = signum
            raise _StopNow

        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, stop)
                    for signum in (signal.SIGINT, signal.SIGTERM)}
        exiting = False
        try:
            yield
        except _StopNow:
            exiting = True
            click.echo(message, err=True)
            raise SystemExit(self.exit_code()) from None
        except SystemExit:
            exiting = True
            raise
        finally:
            # A job that was interrupted is on its way out with its exit code: another
            # signal then would only turn that exit into "Aborted!" or a traceback.
            keep_out = exiting and self.signal is not None
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_IGN if keep_out else handler)


class _StopNow(BaseException):
    """Raised by :meth:`Interrupts.finishing`'s handler: not an ``Exception`` nor a
    ``SystemExit``, so code that guards against failing plugins (which catches those)
    lets it through."""

RULESET_SUFFIX = ".cvg"
BUG_REPORT_HINT = (
    "this is a bug in converge, not in your ruleset; please report it with the command "
    "you ran and this message (set CONVERGE_DEBUG=1 to see the traceback)"
)

P = ParamSpec("P")
R = TypeVar("R")


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The ``.cvg`` files named by ``paths``, in the order given, without duplicates.

    A file is taken as it is, whatever its suffix; a directory contributes every
    ``*.cvg`` below it, recursively and sorted, skipping hidden directories (``.git``,
    ``.venv``). A path that does not exist, or a directory with no ``.cvg`` file, is a
    :class:`click.UsageError` (exit code 2) naming it.
    """
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            below = sorted(
                p for p in path.rglob(f"*{RULESET_SUFFIX}")
                if p.is_file() and not _hidden(p.relative_to(path))
            )
            if not below:
                raise click.UsageError(f"no {RULESET_SUFFIX} files found under {raw}")
            found.update(dict.fromkeys(below))
        elif path.exists():
            found[path] = None
        else:
            raise missing_path(raw)
    return list(found)


def missing_path(raw: str | Path, *, stdin_ok: str = "converge fmt -") -> click.UsageError:
    """The usage error for a path that does not exist: ``-`` is explained (only
    ``stdin_ok`` reads standard input), and a close match in the same directory is
    offered (``pricing.cvg`` for ``pricng.cvg``)."""
    if str(raw) == "-":
        return click.UsageError(
            f"this command does not read a ruleset from standard input (`-`); give "
            f"/dev/stdin, or save it to a file and give its path (`{stdin_ok}` is the "
            "command that reads `-`)")
    path = Path(raw)
    if path.is_dir():
        return click.UsageError(f"path {str(raw)!r} is a directory; give a file")
    if os.path.lexists(path) and not path.exists():  # a link to nowhere, or a loop
        return click.UsageError(
            f"path {str(raw)!r} is a symbolic link that leads to no file (a missing "
            f"target, or a loop of links): `ls -l {raw}` shows where it points")
    message = f"path {str(raw)!r} does not exist"
    try:
        parent = path.parent if str(path.parent) else Path(".")
        siblings = [p.name for p in parent.iterdir()] if parent.is_dir() else []
    except OSError:
        siblings = []
    close = difflib.get_close_matches(path.name, siblings, n=1, cutoff=0.75)
    if close:
        message += f"; did you mean {str(path.with_name(close[0]))!r}?"
    return click.UsageError(message)


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts[:-1])


COLOR_CHOICES = ("auto", "always", "never")


def use_color(choice: str, stream: IO[str] | None = None) -> bool:
    """Whether to colour output: ``always``, ``never``, or for ``auto`` when ``stream``
    (default stdout) is a terminal and ``NO_COLOR`` is not set."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    stream = stream if stream is not None else sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


color_option = click.option(
    "--color",
    type=click.Choice(COLOR_CHOICES),
    default="auto",
    show_default=True,
    help="Colour the human format: auto colours only on a terminal (and not under NO_COLOR).",
)


_SQLITE_MAGIC = b"SQLite format 3\x00"


def is_store(location: str) -> bool:
    """Whether ``location`` names a job store rather than a JSON Lines trace: a URL
    (``sqlite:///…``, ``postgresql://…``) or a SQLite database file, options and all
    (``run.db?timeout=3``). Only a regular file is sniffed: reading the first bytes of
    a pipe (``/dev/stdin``) would eat the trace's."""
    if "://" in location or location.startswith("sqlite:"):
        return True
    if "?" in location and not os.path.exists(location):
        location = location.split("?", 1)[0]  # a store with options: run.db?timeout=3
    if not os.path.isfile(location):
        return False
    try:
        with open(location, "rb") as file:
            return file.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False


def refuse_a_device(path: str | Path, option: str) -> None:
    """A :class:`click.UsageError` when ``path``, given to ``option``, is a device
    (/dev/zero never ends: reading it whole would fill the memory); a pipe is read."""
    try:
        kind = stat.S_IFMT(Path(path).stat().st_mode)
    except OSError:
        return  # reading it says what is wrong
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        raise click.UsageError(f"{option} {path} is a device, not a file: give a file")


def write_output(text: str, output: str | Path | None) -> None:
    """Write ``text`` to the file ``output``, or to stdout when None or ``-``. The text
    is written as it is: whether it holds colour codes was decided by whoever made it."""
    if output is None or str(output) == "-":
        click.echo(text, nl=False, color=True)
        return
    from converge_rules.files import write_text_atomic

    try:
        write_text_atomic(output, text)
    except OSError as exc:
        raise click.UsageError(f"cannot write {output}: {exc.strerror or exc}; "
                               "nothing was written") from exc


def refuse_to_overwrite(output: str | Path | None, inputs: Iterable[str | Path],
                        option: str) -> None:
    """A :class:`click.UsageError` when ``output`` (given as ``option``) names one of
    the files the command reads (the entry ruleset, its imports and ``cases`` files,
    fact files, a trace): writing the report or the trace would destroy it. Paths are
    compared resolved (``./x`` and ``x``, symbolic links, hard links are one file)."""
    if output is None or str(output) == "-":
        return
    target = Path(output)
    for raw in inputs:
        if str(raw) in ("", "-") or not _same_file(target, Path(raw)):
            continue
        from converge_rules.language.loader import display_path

        shown = display_path(Path(raw)) if Path(raw).is_absolute() else str(raw)
        raise click.UsageError(
            f"{option} {str(output)!r} is an input of this command ({shown!r}); "
            f"writing it would destroy it: give another file to {option}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and a.samefile(b)
    except (OSError, RuntimeError, ValueError):  # a symbolic link loop, a NUL byte
        return False


allow_path_option = click.option(
    "--allow-path", "allow_paths", multiple=True, metavar="DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also read imports and `cases` files from DIR (by default a ruleset reads only "
         "files below its own folder). Repeatable.",
)


def _job_time(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``--now``: the UTC datetime it names, or a usage error saying how to write one."""
    from converge_rules.language.builtins import TimeError, parse_datetime

    if value is None:
        return None
    try:
        return parse_datetime(value)
    except TimeError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


now_option = click.option(
    "--now", "now", default=None, metavar="DATETIME", callback=_job_time,
    help="The job's time, what now() and today() give: ISO 8601 with Z or an offset "
         "(2026-12-06T09:00:00Z). Default: the clock when the job starts. Recorded in "
         "the trace; `converge replay` uses it.",
)


def diagnostic_sources(diagnostics: Sequence[Diagnostic], *, skip: Container[str] = ()
                       ) -> dict[str, str]:
    """The text of every file a diagnostic points into (but those in ``skip``), for
    the snippets; a file that cannot be read now, or that is not a ruleset (a system
    file named by an import), simply gets no snippet."""
    from converge_rules.language.access import snippet_source

    names = set()
    for diagnostic in diagnostics:
        if diagnostic.span is not None:
            names.add(diagnostic.span.file)
        names.update(related.span.file for related in diagnostic.related)
    sources = {}
    for name in sorted(n for n in names if n not in skip):
        text = snippet_source(name)
        if text is not None:
            sources[name] = text
    return sources


def report_diagnostics(exc: CheckError, colour: bool) -> None:
    """Print the diagnostics of a ruleset that did not load on stderr, in the human
    format with source snippets (coloured when ``colour``)."""
    from converge_rules.language.diagnostics.render import render

    diagnostics = list(exc.diagnostics)
    click.echo(render("human", diagnostics, diagnostic_sources(diagnostics), color=colour),
               err=True, nl=False)


def report_input_error(exc: InputError) -> None:
    """Print bad input (facts, a trace) on stderr: where, what, the fix, and that
    nothing was run. Text from the input (type and field names, values) is escaped:
    a newline in a fact file's key must not start a line of the reader's choosing."""
    from converge_rules.text import printable

    where = f"{exc.source}:{exc.line}: " if exc.source and exc.line else (
        f"{exc.source}: " if exc.source else "")
    click.echo(f"converge: error: {printable(where + exc.message)}", err=True)
    if exc.help:
        click.echo(f"  help: {printable(exc.help)}", err=True)
    click.echo("  nothing was run: fix the input and run again", err=True)


class _TerminateAsInterrupt:
    """While active (main thread only), SIGTERM raises ``KeyboardInterrupt`` like Ctrl-C,
    so a terminated command unwinds — removing its temporary files — instead of
    vanishing. :attr:`signal` says which signal it was (None for Ctrl-C)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: Any = None

    def _handle(self, signum: int, frame: object) -> None:
        self.signal = signum
        raise KeyboardInterrupt

    def __enter__(self) -> None:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            import signal

            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


def report_internal_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command body; an unexpected exception becomes a one-paragraph "internal
    error" on stderr with a hint to report the bug, and exit code 2 — never a raw
    traceback (unless ``CONVERGE_DEBUG`` is set). A :class:`ConvergeError` (a plugin
    that fails to load, say) is no bug: its message is shown as it is, exit code 2.
    Click's own exits and usage errors pass through unchanged."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        terminated = _TerminateAsInterrupt()
        try:
            with terminated:
                try:
                    return func(*args, **kwargs)
                finally:  # a closed pipe found here, not by the flush at exit
                    _flush_stdout()
        except KeyboardInterrupt as exc:
            # Every file converge writes is atomic: an interrupted write left its target
            # as it was, and the temporary file was removed on the way out.
            click.echo("converge: interrupted; files not written yet were left as they "
                       "were", err=True)
            raise click.exceptions.Exit(128 + (terminated.signal or 2)) from exc
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort,
                SystemExit):
            raise
        except ConvergeError as exc:  # an error with a message meant for the user
            from converge_rules.text import printable

            click.echo(f"converge: error: {printable(str(exc), keep=chr(10))}", err=True)
            raise click.exceptions.Exit(EXIT_USAGE) from exc
        except MemoryError as exc:  # the machine, not a bug: say what to do about it
            click.echo("converge: error: out of memory; lower the job's budgets "
                       "(max_facts, max_string_length, max_list_length) or give the "
                       "process more memory", err=True)
            raise click.exceptions.Exit(EXIT_USAGE) from exc
        except BrokenPipeError as exc:  # the reader went away (`| head`): stop quietly
            silence_stdout()
            raise click.exceptions.Exit(EXIT_CLOSED_PIPE) from exc
        except OSError as exc:  # the machine, not converge: a full disk, a permission
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(f"converge: error: {exc.strerror or exc}{where}", err=True)
            click.echo("  hint: check free disk space, permissions and the paths given",
                       err=True)
            raise click.exceptions.Exit(EXIT_USAGE) from exc
        except Exception as exc:
            if os.environ.get("CONVERGE_DEBUG"):
                traceback.print_exc()
            detail = str(exc) or "(no message)"
            click.echo(f"converge: internal error: {type(exc).__name__}: {detail}", err=True)
            click.echo(f"  hint: {BUG_REPORT_HINT}", err=True)
            raise click.exceptions.Exit(EXIT_USAGE) from exc

    return wrapper


PIPE_PIECE = 1 << 16
"""The size of the pieces :func:`echo_out` writes: a pipe's buffer (64 KiB on Linux)."""


def echo_out(text: str, *, err: bool = False) -> None:
    """``click.echo(text)`` for a text that may be larger than a pipe holds, written in
    pieces: CPython drops the rest of one large write that a closed pipe cut short,
    without an error, so a reader that left midway (``| head``) would go unnoticed; a
    piece after it fails, and the command ends with exit code 141 as for any other
    output. The bytes written are the same."""
    for start in range(0, len(text), PIPE_PIECE):
        click.echo(text[start:start + PIPE_PIECE], err=err, nl=False)
    click.echo("", err=err)


def _flush_stdout() -> None:
    """Flush stdout, so that a reader that went away is found while the command can
    still answer it (a flush at the interpreter's exit would print a traceback and
    exit 120). Raises :class:`BrokenPipeError` then; nothing else."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except (OSError, ValueError, AttributeError):  # closed or not a real file
        pass


def silence_stdout() -> None:
    """Point stdout at the null device, so that flushing it at exit does not fail
    again on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (CliRunner)
        pass


# ----------------------------------------------------------------------- plugins

PLUGIN_MODULES_META = "converge_rules.plugin_modules"
"""Key under which the ``converge`` group keeps its ``--plugin`` modules in the click
context's ``meta`` (shared by the group and its sub-command, so nothing leaks between
invocations in one process)."""


def plugin_modules() -> tuple[str, ...]:
    """The modules given with ``--plugin`` to the ``converge`` command running now;
    empty outside a command."""
    ctx = click.get_current_context(silent=True)
    return tuple(ctx.meta.get(PLUGIN_MODULES_META, ())) if ctx is not None else ()


def load_plugins(*, no_plugins: bool = False) -> Registries:
    """The registries for this command: the built-ins, the installed plugins and the
    ``--plugin`` modules; the built-ins alone with ``no_plugins``. A plugin that fails
    to load raises ``PluginError`` (reported by :func:`report_internal_errors`)."""
    from converge_rules.plugins.manager import builtin_registries, load_registries

    return builtin_registries() if no_plugins else load_registries(plugin_modules())


def check_registered(kind: str, name: str, registered: Mapping[str, Any]) -> None:
    """A usage error naming the registered ``kind`` s (with a "did you mean") unless
    ``name`` is one of them: an executor, a store, a pruner."""
    from converge_rules.language.diagnostics.suggest import did_you_mean

    if name not in registered:
        known = sorted(registered)
        hint = did_you_mean(name, known,
                            otherwise=f"known {kind}s: " + (", ".join(known) or "none"))
        raise click.UsageError(f"unknown {kind} {name!r}; {hint}")


def key_values(pairs: Iterable[str], option: str, *, example: str, name: str = "KEY",
               strip: bool = True) -> dict[str, str]:
    """The ``NAME=VALUE`` pairs of a repeated ``option`` (``--executor-option``,
    ``--set``) as a dict, in the order given: each name stripped of spaces, each value
    too unless ``strip`` is False (``--set`` keeps its value as given: a text field may
    hold spaces). A pair without ``=`` or with an empty name is a usage error showing
    ``option example``; so is a name given twice."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.UsageError(f"{option} {pair!r}: give {name}=VALUE (e.g. {option} "
                                   f"{example})")
        if key in out:
            raise click.UsageError(f"{option} {key} is given twice")
        out[key] = value.strip() if strip else value
    return out


def check_executor(name: str, registries: Registries) -> None:
    """:func:`check_registered` for an executor."""
    check_registered("executor", name, registries.executors)
