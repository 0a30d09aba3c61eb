"""Rename (F2) through the real server: what each kind of name renames, what a rename
refuses and why, and that the renamed ruleset passes ``converge check``."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest.importorskip("pytest_lsp")
from lsprotocol import types as t
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from converge_rules.language.checks.checker import check
from converge_rules.language.loader import load_file
from tests.lsp import test_server
from tests.lsp.test_server import (
    CONFIG,
    IMPORTED,
    IMPORTING,
    PRICING,
    diagnostics,
    open_doc,
    position_of,
    write,
    write_imports,
)

client = test_server.client  # the fixture: a started and initialised server

pytestmark = pytest.mark.asyncio(loop_scope="function")

SHOP = """ruleset shop
enum Channel { web, store }
fact Cost { key sku: str, amount: float }
fact Price { key sku: str, key channel: Channel, amount: float }
fact Alert { key sku: str, gap: float }
agent markup {
  when Cost(sku, amount)
  emit Price(sku: sku, channel: web, amount: amount * 1.2)
}
agent store_price {
  when Cost(sku, amount: x) where x > 1.0
  emit Price(sku: sku, channel: Channel.store, amount: x * 1.1)
}
agent floor {
  when p: Price(sku, amount: x) and Cost(sku, amount: c) where x < c
  emit Alert(sku: sku, gap: c - p.amount)
}
policy Price { resolve by lowest amount, then priority [markup, store_price] }
prune Cost when amount > 1000.0
test "markup" {
  cases { {s: "A1"} }
  given Cost(sku: s, amount: 10.0)
  expect Price(sku: s, channel: web, amount: 12.0)
}
"""


def apply(text: str, edits: list[t.TextEdit]) -> str:
    """``text`` (ASCII) with LSP ``edits`` applied."""
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character),
                    reverse=True):
        a = starts[e.range.start.line] + e.range.start.character
        b = starts[e.range.end.line] + e.range.end.character
        text = text[:a] + e.new_text + text[b:]
    return text


def checks_clean(path: Path, text: str) -> None:
    checked = check(load_file(path, source=text))
    assert checked.ok, [str(d) for d in checked.diagnostics]


async def renamed(client: LanguageClient, uri: str, text: str, needle: str, offset: int,
                  new: str) -> dict[str, list[t.TextEdit]]:
    """The edits, per URI, of renaming the name at ``needle`` + ``offset`` to ``new``
    (prepareRename first, as an editor does)."""
    where = position_of(text, needle, offset)
    prepared = await client.text_document_prepare_rename_async(t.PrepareRenameParams(
        t.TextDocumentIdentifier(uri), where))
    assert isinstance(prepared, t.PrepareRenamePlaceholder)
    assert prepared.range.start.line == where.line
    edit = await client.text_document_rename_async(t.RenameParams(
        t.TextDocumentIdentifier(uri), where, new))
    assert edit is not None and edit.changes is not None
    return dict(edit.changes)


async def refused(client: LanguageClient, uri: str, text: str, needle: str, offset: int,
                  new: str | None = None) -> str:
    """The message of the refusal (prepareRename's, or rename's when ``new`` is given)."""
    where = position_of(text, needle, offset)
    with pytest.raises(JsonRpcException) as info:
        if new is None:
            await client.text_document_prepare_rename_async(t.PrepareRenameParams(
                t.TextDocumentIdentifier(uri), where))
        else:
            await client.text_document_rename_async(t.RenameParams(
                t.TextDocumentIdentifier(uri), where, new))
    assert info.value.code == t.LSPErrorCodes.RequestFailed
    return info.value.message


async def test_each_kind_of_name_is_renamed_everywhere_it_is_written(
        client: LanguageClient, tmp_path: Path) -> None:
    path = tmp_path / "shop.cvg"
    uri = write(path, SHOP)
    open_doc(client, uri, SHOP)
    assert await diagnostics(client, uri, version=1) == []

    async def after(needle: str, offset: int, new: str) -> str:
        changes = await renamed(client, uri, SHOP, needle, offset, new)
        assert list(changes) == [uri]
        text = apply(SHOP, changes[uri])
        checks_clean(path, text)
        return text

    assert await after("when Cost(", 5, "Expense") == SHOP.replace("Cost", "Expense")
    assert await after("agent markup", 6, "mark_up") == SHOP.replace(
        "agent markup", "agent mark_up").replace("[markup,", "[mark_up,")
    assert await after("channel: web", 9, "online") == SHOP.replace("web", "online")
    assert await after("Channel.store", 8, "shop") == SHOP.replace(
        "web, store", "web, shop").replace("Channel.store", "Channel.shop")
    # a field: its declaration, patterns, outputs, `p.amount`, `resolve by`, `given`…
    assert await after("gap: c - p.amount", 11, "value") == SHOP.replace(
        "Price { key sku: str, key channel: Channel, amount: float }",
        "Price { key sku: str, key channel: Channel, value: float }").replace(
        "channel: web, amount: amount * 1.2", "channel: web, value: amount * 1.2").replace(
        "amount: x * 1.1", "value: x * 1.1").replace(
        "p: Price(sku, amount: x)", "p: Price(sku, value: x)").replace(
        "p.amount", "p.value").replace("lowest amount", "lowest value").replace(
        "channel: web, amount: 12.0", "channel: web, value: 12.0")
    # …and a bare `amount` keeps binding the variable of that name; a prune's condition
    assert await after("fact Cost { key sku: str, amount", 26, "cost") == SHOP.replace(
        "Cost { key sku: str, amount: float }", "Cost { key sku: str, cost: float }").replace(
        "when Cost(sku, amount)", "when Cost(sku, cost: amount)").replace(
        "Cost(sku, amount: x)", "Cost(sku, cost: x)").replace(
        "Cost(sku, amount: c)", "Cost(sku, cost: c)").replace(
        "when amount > 1000.0", "when cost > 1000.0").replace(
        "Cost(sku: s, amount: 10.0)", "Cost(sku: s, cost: 10.0)")
    # the editor applies a rename (the server checked its text already, with the same
    # parser): the diagnostics and the next rename are those of the new text
    expense = SHOP.replace("Cost", "Expense")
    test_server.change(client, uri, expense, 2)
    assert await diagnostics(client, uri, version=2) == []
    back = await renamed(client, uri, expense, "fact Expense", 5, "Cost")
    assert apply(expense, back[uri]) == SHOP


async def test_a_variable_is_renamed_in_its_rule_only(client: LanguageClient,
                                                      tmp_path: Path) -> None:
    path = tmp_path / "shop.cvg"
    uri = write(path, SHOP)
    open_doc(client, uri, SHOP)
    await diagnostics(client, uri, version=1)

    async def after(needle: str, offset: int, new: str) -> str:
        changes = await renamed(client, uri, SHOP, needle, offset, new)
        text = apply(SHOP, changes[uri])
        checks_clean(path, text)
        return text

    # store_price's `x`, not floor's
    assert await after("where x > 1.0", 6, "y") == SHOP.replace(
        "Cost(sku, amount: x) where x > 1.0", "Cost(sku, amount: y) where y > 1.0").replace(
        "amount: x * 1.1", "amount: y * 1.1")
    # another rule's variable of the new name is no collision
    assert await after("where x > 1.0", 6, "c") == SHOP.replace(
        "Cost(sku, amount: x) where x > 1.0", "Cost(sku, amount: c) where c > 1.0").replace(
        "amount: x * 1.1", "amount: c * 1.1")
    # a variable a bare field binds: the field stays, written out
    assert await after("amount: amount * 1.2", 8, "total") == SHOP.replace(
        "when Cost(sku, amount)", "when Cost(sku, amount: total)").replace(
        "amount: amount * 1.2", "amount: total * 1.2")
    # a bare field that joins on a variable bound before it: both written out
    assert await after("emit Alert(sku: sku", 16, "code") == SHOP.replace(
        "p: Price(sku, amount: x) and Cost(sku, amount: c)",
        "p: Price(sku: code, amount: x) and Cost(sku: code, amount: c)").replace(
        "emit Alert(sku: sku", "emit Alert(sku: code")
    assert await after("p.amount", 0, "price") == SHOP.replace(
        "when p: Price", "when price: Price").replace("p.amount", "price.amount")
    # a test's variable, bound by its cases
    assert await after("given Cost(sku: s", 16, "code") == SHOP.replace(
        '{s: "A1"}', '{code: "A1"}').replace("sku: s,", "sku: code,")
    # go-to-definition and find-references keep two agents' `x` apart too
    found = await client.text_document_definition_async(t.DefinitionParams(
        t.TextDocumentIdentifier(uri), position_of(SHOP, "where x < c", 6)))
    assert isinstance(found, list) and [f.range.start for f in found] == [
        t.Position(14, 29)]
    refs = await client.text_document_references_async(t.ReferenceParams(
        text_document=t.TextDocumentIdentifier(uri),
        position=position_of(SHOP, "where x < c", 6),
        context=t.ReferenceContext(include_declaration=True)))
    assert refs is not None
    assert sorted((r.range.start.line, r.range.start.character) for r in refs) == [
        (14, 29), (14, 63)]


async def test_a_rename_edits_the_imported_file_that_declares_the_name(
        client: LanguageClient, tmp_path: Path) -> None:
    facts, main = IMPORTED, IMPORTING
    lib_uri, uri = write_imports(tmp_path)
    open_doc(client, uri, main)
    assert await diagnostics(client, uri, version=1) == []
    changes = await renamed(client, uri, main, "when Cost", 6, "Expense")
    assert sorted(changes) == sorted([uri, lib_uri])
    assert apply(facts, changes[lib_uri]) == facts.replace("Cost", "Expense")
    assert apply(main, changes[uri]) == main.replace("Cost", "Expense")
    # the field, from the file that uses it: the bare `amount` keeps its variable
    changes = await renamed(client, uri, main, "Cost(sku, amount)", 10, "cost")
    assert apply(facts, changes[lib_uri]) == facts.replace("amount", "cost")
    assert apply(main, changes[uri]) == main.replace("Cost(sku, amount)",
                                                     "Cost(sku, cost: amount)")


async def test_what_a_rename_refuses_and_why(client: LanguageClient,
                                             tmp_path: Path) -> None:
    uri = write(tmp_path / "shop.cvg", SHOP)
    open_doc(client, uri, SHOP)
    pricing = write(tmp_path / "pricing.cvg", PRICING)
    open_doc(client, pricing, PRICING)
    await diagnostics(client, uri, version=1)
    await diagnostics(client, pricing, version=1)
    # declared outside the ruleset
    assert "tool `fx_rate` is declared by plugin `converge-example`; rename it there" in \
        await refused(client, pricing, PRICING, "call fx_rate", 6)
    assert "`round` is a built-in function" in \
        await refused(client, pricing, PRICING, "round(theirs", 1)
    assert "budget" in await refused(client, pricing, PRICING, "max_cycles", 1)
    # no name
    assert "`emit` is a keyword" in await refused(client, uri, SHOP, "emit Alert", 1)
    assert "`1.2` is a literal" in await refused(client, uri, SHOP, "1.2)", 1)
    assert "a string" in await refused(client, uri, SHOP, '"A1"', 2)
    assert "no name here" in await refused(client, uri, SHOP, "  when Cost(sku, amount)", 0)
    for past_the_end in (t.Position(1, 200), t.Position(500, 0)):  # not an internal error
        with pytest.raises(JsonRpcException) as info:
            await client.text_document_prepare_rename_async(t.PrepareRenameParams(
                t.TextDocumentIdentifier(uri), past_the_end))
        assert "no name here" in info.value.message
    # a document the editor has not open, whose file does not exist (found by rev30's
    # sweep: a FileNotFoundError inside the server)
    gone = (tmp_path / "gone.cvg").as_uri()
    with pytest.raises(JsonRpcException) as info:
        await client.text_document_prepare_rename_async(t.PrepareRenameParams(
            t.TextDocumentIdentifier(gone), t.Position(0, 0)))
    assert info.value.code == t.LSPErrorCodes.RequestFailed, info.value.message
    # the new name: invalid, a keyword, not a type's capital, taken
    assert "`9lives` is not a name" in await refused(client, uri, SHOP, "when Cost", 6,
                                                      "9lives")
    assert "`if` is a keyword" in await refused(client, uri, SHOP, "where x > 1.0", 6, "if")
    assert "starts with a capital letter (`Expense`)" in \
        await refused(client, uri, SHOP, "when Cost", 6, "expense")
    assert "declares a type `Price` already" in \
        await refused(client, uri, SHOP, "when Cost", 6, "Price")
    assert "an agent `floor` already" in \
        await refused(client, uri, SHOP, "agent markup", 6, "floor")
    assert "a member `store` already" in \
        await refused(client, uri, SHOP, "channel: web", 9, "store")
    assert "`Cost` has a field `sku` already" in \
        await refused(client, uri, SHOP, "Cost(sku, amount: x)", 11, "sku")
    assert "a variable `sku` is bound in the same rule already" in \
        await refused(client, uri, SHOP, "where x > 1.0", 6, "sku")
    assert "`converged` is no type, field" in await refused(client, pricing, PRICING,
                                                           "status converged", 8)
    unchanged = await client.text_document_rename_async(t.RenameParams(
        t.TextDocumentIdentifier(uri), position_of(SHOP, "when Cost", 6), "Cost"))
    assert unchanged is not None and not unchanged.changes
    # valid and free, but the renamed ruleset would not check: named at its place
    message = await refused(client, uri, SHOP, "where x > 1.0", 6, "none")
    assert "would break the ruleset" in message and "shop.cvg:11:" in message


async def test_document_changes_carry_the_open_documents_version(tmp_path: Path) -> None:
    client = await CONFIG.start()
    await client.initialize_session(t.InitializeParams(
        capabilities=t.ClientCapabilities(workspace=t.WorkspaceClientCapabilities(
            workspace_edit=t.WorkspaceEditClientCapabilities(document_changes=True))),
        workspace_folders=[t.WorkspaceFolder(uri=tmp_path.as_uri(), name="ws")]))
    try:
        uri = write(tmp_path / "shop.cvg", SHOP)
        open_doc(client, uri, SHOP, version=7)
        await diagnostics(client, uri, version=7)
        edit = await client.text_document_rename_async(t.RenameParams(
            t.TextDocumentIdentifier(uri), position_of(SHOP, "when Cost", 6), "Expense"))
        assert edit is not None and edit.changes is None and edit.document_changes
        (change,) = edit.document_changes
        assert isinstance(change, t.TextDocumentEdit)
        assert change.text_document.uri == uri and change.text_document.version == 7
        edits = [e for e in change.edits if isinstance(e, t.TextEdit)]
        assert apply(SHOP, edits) == SHOP.replace("Cost", "Expense")
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_a_rename_right_after_an_edit_of_the_imported_file_sees_the_edit(
        client: LanguageClient, tmp_path: Path) -> None:
    facts, main = IMPORTED, IMPORTING
    lib_uri, uri = write_imports(tmp_path)
    open_doc(client, uri, main)
    open_doc(client, lib_uri, facts)
    await diagnostics(client, uri, version=1)
    await diagnostics(client, lib_uri, version=1)
    moved = facts.replace("ruleset facts\n", "ruleset facts\n# costs, by SKU\n\n")
    for version in (2, 3):  # the second within the pause: its check still waits
        test_server.change(client, lib_uri, moved if version == 3 else facts + "\n", version)
    changes = await renamed(client, uri, main, "when Cost", 6, "Expense")
    assert apply(moved, changes[lib_uri]) == moved.replace("Cost", "Expense")


async def test_ranges_count_utf16_units_after_an_astral_character(
        client: LanguageClient, tmp_path: Path) -> None:
    text = SHOP.replace('given Cost(sku: s, amount: 10.0)',
                        'given Cost(sku: s, amount: 10.0)\n  given Alert(sku: "😀", gap: 1.0)')
    path = tmp_path / "shop.cvg"
    uri = write(path, text)
    open_doc(client, uri, text)
    assert await diagnostics(client, uri, version=1) == []
    line = text.split("\n").index('  given Alert(sku: "😀", gap: 1.0)')
    where = t.Position(line, len('  given Alert(sku: "😀", ') + 1)  # UTF-16: 😀 is two
    edit = await client.text_document_rename_async(t.RenameParams(
        t.TextDocumentIdentifier(uri), where, "margin"))
    assert edit is not None and edit.changes is not None
    here = [e for e in edit.changes[uri] if e.range.start.line == line]
    assert [(e.range.start.character, e.range.end.character, e.new_text) for e in here] == [
        (where.character, where.character + 3, "margin")]


async def test_a_rename_reaches_every_ruleset_of_the_declaration_and_no_other(
        client: LanguageClient, tmp_path: Path) -> None:
    facts = "ruleset facts\nfact Cost { key sku: str, amount: float }\n"
    user = ('ruleset {name}\nimport "lib/facts.cvg"\nfact Price {{ key sku: str }}\n'
            'agent markup {{\n  when Cost(sku)\n  emit Price(sku: sku)\n}}\n')
    other = "ruleset other\nfact Cost { key sku: str }\nfact Seen { key sku: str }\n" \
            "agent seen {\n  when Cost(sku)\n  emit Seen(sku: sku)\n}\n"
    lib_uri = write(tmp_path / "lib" / "facts.cvg", facts)
    texts = {write(tmp_path / f"{name}.cvg", user.format(name=name)): user.format(name=name)
             for name in ("one", "two")}
    other_uri = write(tmp_path / "other.cvg", other)
    for uri, text in [*texts.items(), (other_uri, other)]:
        open_doc(client, uri, text)
        assert await diagnostics(client, uri, version=1) == []
    one, two = texts
    changes = await renamed(client, one, texts[one], "when Cost", 6, "Expense")
    assert sorted(changes) == sorted([lib_uri, one, two])  # not other.cvg's own Cost
    for uri, text in texts.items():
        assert apply(text, changes[uri]) == text.replace("Cost", "Expense")


async def test_a_ruleset_that_does_not_parse_is_not_renamed_in(client: LanguageClient,
                                                               tmp_path: Path) -> None:
    # the agent `floor` does not parse, so the index misses its `Cost`: renaming the
    # others would leave it `Cost`, an unknown type once the `)` is typed
    broken = SHOP.replace("gap: c - p.amount)", "gap: c - p.amount")
    uri = write(tmp_path / "shop.cvg", broken)
    open_doc(client, uri, broken)
    assert [d.code for d in await diagnostics(client, uri, version=1)] == ["CVG002"]
    for new in (None, "Expense"):
        assert "does not parse (CVG002" in await refused(client, uri, broken, "when Cost(",
                                                         5, new)
    # nor a ruleset that imports the declaring file and does not parse
    facts = "ruleset facts\nfact Cost { key sku: str }\n"
    main = ('ruleset main\nimport "facts.cvg"\nfact Seen { key sku: str }\n'
            'agent seen {\n  when Cost(sku)\n  emit Seen(sku: sku)\n}\n')
    facts_uri = write(tmp_path / "facts.cvg", facts)
    main_uri = write(tmp_path / "main.cvg", main.replace("emit Seen(sku: sku)", "emit Seen("))
    open_doc(client, main_uri, main.replace("emit Seen(sku: sku)", "emit Seen("))
    open_doc(client, facts_uri, facts)
    await diagnostics(client, main_uri, version=1)
    await diagnostics(client, facts_uri, version=1)
    assert "does not parse" in await refused(client, facts_uri, facts, "fact Cost", 5,
                                             "Expense")


GATED = """ruleset gated
enum Kind { small, large }
fact Claim { key claim: str, kind: Kind, prev: Kind }
agent flip {
  when Claim(claim, kind: k, prev: p)
  emit Claim(claim: claim + "x", kind: p, prev: k)
}
prune Claim when kind == large
approve Claim when prev == small
"""


async def test_a_name_in_a_prune_or_gate_condition_keeps_its_meaning(
        client: LanguageClient, tmp_path: Path) -> None:
    # a condition has its type's fields in scope by name, ahead of bare enum members:
    # `prev` renamed to `small` would make `prev == small` read `small == small`
    uri = write(tmp_path / "gated.cvg", GATED)
    open_doc(client, uri, GATED)
    assert await diagnostics(client, uri, version=1) == []
    assert "`approve Claim when …` at 9:1 writes the enum member `small` bare" in \
        await refused(client, uri, GATED, "prev: Kind", 1, "small")
    # and a member renamed to a field's name would read as the field
    assert "`prune Claim when …` at 8:1 writes `large` bare, where `prev` would be" in \
        await refused(client, uri, GATED, "small, large", 8, "prev")
    # a fresh name still renames
    changes = await renamed(client, uri, GATED, "prev: Kind", 1, "before")
    checks_clean(tmp_path / "gated.cvg", apply(GATED, changes[uri]))


async def test_an_imported_file_changed_on_disk_unannounced_is_read_again(
        client: LanguageClient, tmp_path: Path) -> None:
    # not every client reports changes of watched files: the edits of a file no editor
    # has open must be computed on what is on disk, not on the text last checked
    facts = "ruleset facts\nfact Cost { key sku: str, amount: float }\n"
    main = ('ruleset main\nimport "facts.cvg"\nfact Seen { key sku: str }\n'
            'agent seen {\n  when Cost(sku)\n  emit Seen(sku: sku)\n}\n')
    facts_path = tmp_path / "facts.cvg"
    write(facts_path, facts)
    uri = write(tmp_path / "main.cvg", main)
    open_doc(client, uri, main)
    assert await diagnostics(client, uri, version=1) == []
    moved = "ruleset facts\n# the costs\n\nfact  Cost { key sku: str, amount: float }\n"
    facts_path.write_text(moved, encoding="utf-8")
    changes = await renamed(client, uri, main, "when Cost", 6, "Expense")
    assert apply(moved, changes[facts_path.as_uri()]) == moved.replace("Cost", "Expense")


async def test_a_member_two_enums_have_is_renamed_where_the_field_says_which(
        client: LanguageClient, tmp_path: Path) -> None:
    # `store` is a member of both enums: in `emit` and `given` the field's type says
    # which (as in a pattern), so renaming Channel's `store` edits those, not Place's
    text = """ruleset two
enum Channel { web, store }
enum Place { store, depot }
fact Price { key sku: str, channel: Channel, place: Place }
fact Cost { key sku: str }
agent list_price {
  when Cost(sku)
  emit Price(sku: sku, channel: store, place: store)
}
test "listed" {
  given Cost(sku: "a")
  given Price(sku: "b", channel: store, place: depot)
  expect Price(sku: "a", channel: store, place: store)
}
"""
    path = tmp_path / "two.cvg"
    uri = write(path, text)
    open_doc(client, uri, text)
    assert await diagnostics(client, uri, version=1) == []
    changes = await renamed(client, uri, text, "web, store", 5, "shop")
    after = apply(text, changes[uri])
    assert after == text.replace("web, store", "web, shop").replace(
        "channel: store", "channel: shop")
    checks_clean(path, after)


async def test_a_rename_in_a_folder_whose_name_needs_escaping_edits_the_editors_uris(
        client: LanguageClient, tmp_path: Path) -> None:
    """The edits name each file by the URI the editor knows it by (``my%20rules``: an
    open file's own URI, an imported one's escaped alike). Found at the merge of rename
    with the review's URI change: rename still called pygls' ``from_fs_path``, which
    that change no longer imported, so every rename failed with an internal error."""
    lib = tmp_path / "my rules+1" / "lib facts.cvg"
    write(lib, IMPORTED)
    main = IMPORTING.replace('"lib/facts.cvg"', '"lib facts.cvg"')
    uri = write(tmp_path / "my rules+1" / "main.cvg", main)
    assert "my%20rules%2B1" in uri
    open_doc(client, uri, main)
    assert await diagnostics(client, uri, version=1) == []
    changes = await renamed(client, uri, main, "when Cost", 6, "Expense")
    assert sorted(changes) == sorted([uri, lib.as_uri()])
    assert "lib%20facts.cvg" in lib.as_uri()
    assert apply(main, changes[uri]) == main.replace("Cost", "Expense")
    assert apply(IMPORTED, changes[lib.as_uri()]) == IMPORTED.replace("Cost", "Expense")


RECALL = """ruleset ticker
uses tool knowledge_find
fact Tick { key n: int }
fact Reading { key n: int, value: int }
fact Recall { key n: int, seen: int }
agent tick {
  when Tick(n) where n < 30
  emit lasting Tick(n: n + 1)
  emit lasting Reading(n: n, value: n * 10)
}
agent recall {
  when Tick(n) where n >= 5
  call knowledge_find(type: "Reading", n: n - 5) as k
  emit lasting Recall(n: n, seen: k.count)
}
prune Reading when age >= 2 into knowledge
"""


async def test_a_knowledge_find_call_is_renamed_with_the_type_and_its_fields(
        client: LanguageClient, tmp_path: Path) -> None:
    # found as a user: renaming `Reading` left `type: "Reading"` behind, and the job's
    # every call then answered found: false, with no word from `converge check`
    from converge_rules import api
    from converge_rules.plugins import builtin_registries

    path = tmp_path / "ticker.cvg"
    uri = write(path, RECALL)
    open_doc(client, uri, RECALL)
    assert await diagnostics(client, uri, version=1) == []

    async def after(needle: str, offset: int, new: str) -> str:
        changes = await renamed(client, uri, RECALL, needle, offset, new)
        text = apply(RECALL, changes[uri])
        ruleset = api.loads(text, plugins=builtin_registries())  # the tool's check too
        assert list(ruleset.warnings) == []
        return text

    assert await after("fact Reading", 5, "Measurement") == RECALL.replace(
        "Reading", "Measurement")
    # from the call's text too, and the field the call matches on
    assert await after('type: "Reading"', 7, "Sample") == RECALL.replace("Reading", "Sample")
    assert await after("Reading { key n", 14, "tick") == RECALL.replace(
        "Reading { key n", "Reading { key tick").replace(
        "Reading(n: n,", "Reading(tick: n,").replace(
        '"Reading", n: n - 5', '"Reading", tick: n - 5')
    # a field of another type spelt the same is not the call's
    assert await after("fact Tick { key n", 16, "count") == RECALL.replace(
        "fact Tick { key n", "fact Tick { key count").replace(
        "when Tick(n)", "when Tick(count: n)").replace("Tick(n: n + 1)", "Tick(count: n + 1)")


async def test_a_tests_mock_of_knowledge_find_is_renamed_with_the_call(
        client: LanguageClient, tmp_path: Path) -> None:
    # the mock of the renamed call kept "Reading" and `n`: it no longer matched the
    # call, and the test read the job's own knowledge instead
    text = RECALL + ('test "recall" {\n  given Tick(n: 7)\n'
                     '  mock tool knowledge_find(type: "Reading", n: 2)'
                     ' returns {count: 1, found: true}\n'
                     '  expect Recall(n: 7, seen: 1)\n}\n')
    path = tmp_path / "ticker.cvg"
    uri = write(path, text)
    open_doc(client, uri, text)
    assert await diagnostics(client, uri, version=1) == []
    changes = await renamed(client, uri, text, "fact Reading", 5, "Sample")
    assert apply(text, changes[uri]) == text.replace("Reading", "Sample")
    changes = await renamed(client, uri, text, "Reading { key n", 14, "tick")
    assert '(type: "Reading", tick: 2) returns' in apply(text, changes[uri])
