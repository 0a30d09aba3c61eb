"""Read the classic benchmarks' fact files (CLIPS fact syntax) as converge input facts.

``(guest (name n1) (sex m) (hobby h3))`` becomes ``("Guest", {"name": "n1", "sex": "m",
"hobby": "h3"})``: the template name in CamelCase (``last_seat`` → ``LastSeat``), each
slot a field, integers as ``int`` and every other symbol as a string; :func:`retype`
then writes an integer as text where the ruleset declares a ``str`` field (some
Manners files name guests ``1``, ``2``…). Run as a script it writes JSON Lines for
``converge run --facts``::

    python bench/classics/clips_facts.py bench/data/manners8.fct \\
        rulesets/manners/manners.cvg > m8.jsonl
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_INT = re.compile(r"-?[0-9]+\Z")


def type_name(template: str) -> str:
    """``last_seat`` → ``LastSeat``."""
    return "".join(part[:1].upper() + part[1:] for part in template.split("_"))


def _value(word: str) -> Any:
    return int(word) if _INT.match(word) else word


def read_clips_facts(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Every fact in ``text``, in order, as ``(type name, fields)``. Comments (``;``)
    are skipped; a slot with several values is refused (the benchmarks have none)."""
    text = "\n".join(line.split(";", 1)[0] for line in text.splitlines())
    tokens = _TOKEN.findall(text)
    facts: list[tuple[str, dict[str, Any]]] = []
    i = 0
    while i < len(tokens):
        if tokens[i] != "(":
            raise ValueError(f"expected '(' before {tokens[i]!r}")
        template = tokens[i + 1]
        i += 2
        fields: dict[str, Any] = {}
        while tokens[i] == "(":
            slot, value, close = tokens[i + 1], tokens[i + 2], tokens[i + 3]
            if close != ")":
                raise ValueError(f"slot {slot!r} of {template!r} has more than one value")
            fields[slot] = _value(value)
            i += 4
        if tokens[i] != ")":
            raise ValueError(f"unexpected {tokens[i]!r} in {template!r}")
        i += 1
        facts.append((type_name(template), fields))
    return facts


def retype(facts: list[tuple[str, dict[str, Any]]],
           program: Any) -> list[tuple[str, dict[str, Any]]]:
    """``facts`` with each integer in a field that ``program`` (a compiled
    ``converge_rules.program.Program``) declares ``str`` written as text."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, fields in facts:
        spec = program.type(name)
        strings = {f.name for f in spec.fields if f.type.base == "str"}
        out.append((name, {k: str(v) if k in strings and isinstance(v, int) else v
                           for k, v in fields.items()}))
    return out


def read_file(path: str | Path, program: Any = None) -> list[tuple[str, dict[str, Any]]]:
    """The facts of a ``.fct`` file (retyped for ``program`` when given)."""
    facts = read_clips_facts(Path(path).read_text())
    return facts if program is None else retype(facts, program)


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: clips_facts.py FILE.fct [RULESET.cvg]  (writes JSON Lines to stdout)",
              file=sys.stderr)
        return 2
    program = None
    if len(argv) == 2:
        import converge_rules

        program = converge_rules.load(argv[1], plugins=False).program
    for name, fields in read_file(argv[0], program):
        print(json.dumps({name: fields}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
