"""``converge lsp``: the language server editors start (Language Server Protocol over
standard input and output)."""

from __future__ import annotations

import click

from converge_rules.cli._common import EXIT_USAGE, report_internal_errors

INSTALL = 'pip install "converge-rules[lsp]"'


class _NotInstalled(click.ClickException):
    """pygls or lsprotocol is missing: a usage error (exit 2) saying what to install."""

    exit_code = EXIT_USAGE


@click.command("lsp")
@click.option("--stdio", is_flag=True,
              help="Speak over standard input and output (the default and only "
                   "transport; accepted because editors pass it).")
@report_internal_errors
def command(stdio: bool) -> None:
    """Start the language server for .cvg files, speaking LSP over stdin and stdout.

    Editors start it: diagnostics as you type (with quick fixes), completion, hover,
    go to definition, find references, outline, formatting and semantic highlighting,
    with the installed plugins' tools and functions. See docs/editors.md for VS Code,
    Neovim, Helix and Emacs.

    Needs the `lsp` extra: pip install "converge-rules[lsp]".

    \b
    Examples:
      converge lsp          # what an editor runs; docs/editors.md has each editor's setup

    Exit codes: 0 the editor asked the server to exit, 2 pygls or lsprotocol is not
    installed (the message says what to install) or an internal error.
    """
    try:
        import lsprotocol  # noqa: F401
        import pygls  # noqa: F401
    except ImportError as exc:
        raise _NotInstalled(
            f"`converge lsp` needs pygls and lsprotocol ({exc.name} is not installed); "
            f"install them with: {INSTALL}") from None
    from converge_rules.lsp.server import serve

    serve()

