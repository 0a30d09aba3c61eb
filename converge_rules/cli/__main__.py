"""``python -m converge_rules.cli``: the ``converge`` command, for when the console
script is not on the PATH (and for ``converge bench``'s start-up figures)."""

from __future__ import annotations

from converge_rules.cli import main

main(prog_name="converge")
