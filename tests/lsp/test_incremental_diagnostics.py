"""The editor's diagnostics equal a full check's, edit after edit.

The language server checks what :class:`IncrementalParser` gives (items that did not
change are kept, and moved where they stand when lines are inserted or deleted above
them); ``converge check`` parses every file afresh. After every edit of a random
sequence (lines inserted and deleted, blocks of 20 lines pasted and cut, the last item
edited, an imported file edited) both must give exactly the same diagnostics, spans,
related spans and messages included."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from converge_rules.benchmarks import generated_ruleset
from converge_rules.language.checks.checker import check
from converge_rules.language.diagnostics.core import Diagnostic
from converge_rules.language.loader import load_file
from converge_rules.language.syntax.incremental import IncrementalParser

REPO = Path(__file__).resolve().parents[2]
FILES = sorted([*(REPO / "rulesets").rglob("*.cvg"),
                *(REPO / "grammar" / "examples").rglob("*.cvg")])


def edit(text: str, rnd: random.Random) -> str:
    """``text`` after one random edit of the kinds an editor makes."""
    lines = text.split("\n")
    i = rnd.randrange(len(lines))
    op = rnd.randrange(7)
    if op == 0:
        lines.insert(i, rnd.choice(["", "fact X { a: nope }", "  when", "}"]))
    elif op == 1 and len(lines) > 1:
        del lines[i]
    elif op == 2:  # paste 20 lines copied from elsewhere (the same items twice)
        start = rnd.randrange(len(lines))
        lines[i:i] = lines[start:start + 20]
    elif op == 3:  # cut 20 lines
        del lines[i:i + 20]
    elif op == 4:  # an edit in the last item
        last = max(j for j, line in enumerate(lines) if line.strip() or j == 0)
        lines[last] = lines[last][:len(lines[last]) // 2]
    elif op == 5:
        lines[i] = lines[i][:len(lines[i]) // 2]
    else:
        lines[i] = lines[i] + " x"
    return "\n".join(lines)


def full(path: Path, text: str, overlay: dict[Path, str] | None = None) -> tuple[
        Diagnostic, ...]:
    """What ``converge check`` reports for ``path`` holding ``text``."""
    return check(load_file(path, source=text, overlay=overlay)).diagnostics


def incremental(parser: IncrementalParser, path: Path, text: str,
                overlay: dict[Path, str] | None = None) -> tuple[Diagnostic, ...]:
    return check(load_file(path, source=text, overlay=overlay,
                           parser=parser)).diagnostics


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_diagnostics_after_each_edit_equal_a_full_checks(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    parser = IncrementalParser()
    rnd = random.Random(path.name)
    for _ in range(8):
        assert incremental(parser, path, text) == full(path, text)
        text = edit(text, rnd)
    assert incremental(parser, path, text) == full(path, text)


def test_a_long_ruleset_edited_many_times(tmp_path: Path) -> None:
    path = tmp_path / "big.cvg"
    text = generated_ruleset(400)
    parser = IncrementalParser()
    rnd = random.Random(7)
    for _ in range(25):
        text = edit(text, rnd)
        assert incremental(parser, path, text) == full(path, text)


def test_an_edit_in_an_imported_file(tmp_path: Path) -> None:
    """The importer's diagnostics follow its import's unsaved text, as the imported
    file's items move and change."""
    shared = tmp_path / "shared.cvg"
    shared_text = 'ruleset shared\n\nfact Shared { key id: str }\n\nfact Other { id: str }\n'
    shared.write_text(shared_text, encoding="utf-8")
    path = tmp_path / "main.cvg"
    text = ('ruleset main\nimport "shared.cvg"\n\nfact Hold { id: str }\n\n'
            "agent use tier 1 {\n  when Shared(id)\n  emit Hold(id: id)\n}\n")
    parser = IncrementalParser()
    rnd = random.Random(3)
    for _ in range(30):
        overlay = {shared.resolve(): shared_text}
        assert incremental(parser, path, text, overlay) == full(path, text, overlay)
        shared_text = edit(shared_text, rnd)


def test_an_item_twice_moves_each_copy_on_its_own() -> None:
    """Two items with the same text are kept apart: moving one must not move the
    other."""
    item = "fact Cost { key sku: str }\n\n"  # the same text twice, blank line and all
    text = f"ruleset r\n\n{item}{item}"
    parser = IncrementalParser()
    path = Path("twice.cvg")
    for edited in (text, "\n" + text, "\n\n" + text, text + item, "\n" + text + item,
                   text):
        assert incremental(parser, path, edited) == full(path, edited)
        assert [d.span.line for d in full(path, edited) if d.span] == \
            [d.span.line for d in incremental(parser, path, edited) if d.span]
