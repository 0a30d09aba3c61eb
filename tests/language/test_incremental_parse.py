"""The editor's parser (:class:`IncrementalParser`) gives what :func:`parse` gives, edit
after edit, while re-parsing only the items an edit touched."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from converge_rules.benchmarks import generated_ruleset
from converge_rules.language.syntax import parser as parser_module
from converge_rules.language.syntax.incremental import IncrementalParser
from converge_rules.language.syntax.parser import ParseResult, parse

REPO = Path(__file__).resolve().parents[2]
FILES = sorted([*(REPO / "rulesets").rglob("*.cvg"), *(REPO / "grammar").rglob("*.cvg")])


def layout(result: ParseResult) -> object:
    """Everything a result holds, spans included (nodes compare without them)."""
    module = result.module
    assert module is not None
    return (module, result.diagnostics, repr([i.span for i in module.items]),
            [(c, c.span) for c in module.comments], module.span,
            [d.related for d in result.diagnostics])


def edits(text: str, rnd: random.Random, count: int) -> list[str]:
    """``count`` successive texts, each one random line edit away from the last."""
    out = []
    for _ in range(count):
        lines = text.split("\n")
        i = rnd.randrange(len(lines))
        op = rnd.randrange(4)
        if op == 0:
            lines.insert(i, "")
        elif op == 1 and len(lines) > 1:
            del lines[i]
        elif op == 2:
            lines[i] = lines[i][:len(lines[i]) // 2]
        else:
            lines[i] = lines[i] + " x"
        text = "\n".join(lines)
        out.append(text)
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_edit_parses_as_a_fresh_parse_would(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    name = str(path)
    incremental = IncrementalParser()
    assert layout(incremental(text, name)) == layout(parse(text, name))
    for edited in edits(text, random.Random(path.name), 12):
        assert layout(incremental(edited, name)) == layout(parse(edited, name))


def test_an_error_message_naming_a_line_follows_the_item_when_it_moves() -> None:
    text = 'ruleset r\nfact Cost { key sku: str }\nagent a {\n  when Cost(sku)\n' \
           '  emit Cost(sku: sku\n}\n'
    incremental = IncrementalParser()
    first = incremental(text, "r.cvg")
    assert any("opened at 5:3" in d.message for d in first.diagnostics)
    moved = incremental("\n\n" + text, "r.cvg")
    assert any("opened at 7:3" in d.message for d in moved.diagnostics)
    assert layout(moved) == layout(parse("\n\n" + text, "r.cvg"))


def test_an_edit_parses_only_the_item_it_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    text = generated_ruleset(400)
    incremental = IncrementalParser()
    incremental(text, "g.cvg")
    parsed: list[str] = []
    real = parser_module._parse_chunk

    def counting(chunk: str, *args: object, **kwargs: object) -> object:
        parsed.append(chunk)
        return real(chunk, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("converge_rules.language.syntax.incremental._parse_chunk", counting)
    # one item edited, every item after it moved down a line
    edited = text.replace("value > 10", "value > 11\n", 1)
    assert layout(incremental(edited, "g.cvg")) == layout(parse(edited, "g.cvg"))
    assert len(parsed) == 1 and "value > 11" in parsed[0]


def test_a_forgotten_file_is_parsed_afresh() -> None:
    incremental = IncrementalParser()
    text = "ruleset r\nfact Cost { key sku: str }\n"
    incremental(text, "r.cvg")
    incremental.forget("r.cvg")
    assert layout(incremental(text, "r.cvg")) == layout(parse(text, "r.cvg"))
