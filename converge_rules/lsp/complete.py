"""What may be written at a position of a ``.cvg`` file: the names completion offers.

The text being typed rarely parses, so the place is read from the text before the
cursor (the item it is in, the innermost open bracket, the word before), and the names
come from the last ruleset that did check (:class:`~.index.RulesetIndex`) and the
installed plugins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from converge_rules.language.checks.checked import FunctionSignature, ToolSignature
from converge_rules.language.checks.root import BUDGETS
from converge_rules.language.checks.types import PRIMITIVES
from converge_rules.language.syntax.error_messages import ITEM_WORDS
from converge_rules.lsp.index import RulesetIndex, function_markdown, tool_markdown

ItemKind = str

AGENT_WORDS = ("when", "where", "and", "call", "emit", "intend", "evaluate")
EXPR_WORDS = ("if", "then", "else", "not", "and", "or", "in", "true", "false")
TEST_WORDS = ("given", "mock tool", "expect", "expect no", "expect conflict",
              "expect status", "cases")
POLICY_WORDS = ("resolve by", "combine", "keep all", "reject", "on tie", "highest",
                "lowest", "latest", "earliest", "priority", "majority", "using", "then")
_WORD_BEFORE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_ITEM_START = re.compile(r"^(" + "|".join(("ruleset", *ITEM_WORDS)) + r")\b", re.M)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One completion: the text, what it is (``type``, ``field``, ``member``,
    ``agent``, ``tool``, ``function``, ``budget``, ``keyword``, ``variable``,
    ``resolver``, ``pruner``), a one-line detail and Markdown documentation."""

    label: str
    kind: str
    detail: str = ""
    documentation: str = ""


@dataclass(frozen=True)
class Known:
    """What the installed plugins provide, for completion and hover."""

    tools: Mapping[str, ToolSignature | None] = field(default_factory=dict)
    tool_docs: Mapping[str, str] = field(default_factory=dict)
    functions: Mapping[str, FunctionSignature] = field(default_factory=dict)
    function_docs: Mapping[str, str] = field(default_factory=dict)
    resolvers: tuple[str, ...] = ()
    pruners: tuple[str, ...] = ()


def word_before(text: str, offset: int) -> tuple[int, str]:
    """The start offset and text of the name the cursor at ``offset`` stands in."""
    m = _WORD_BEFORE.search(text, 0, offset)
    return (m.start(), m.group()) if m else (offset, "")


def complete(text: str, offset: int, index: RulesetIndex | None, known: Known) -> list[
        Candidate]:
    """The candidates at ``offset`` of ``text`` (a file of the indexed ruleset, maybe
    edited since it was indexed), best first. None in a string or a comment: a space
    typed there (a trigger character) must not offer keywords that Enter would take."""
    if _in_string_or_comment(text[text.rfind("\n", 0, offset) + 1:offset]):
        return []
    start, _ = word_before(text, offset)
    before = text[:start]
    item_at = _item_start(before)
    item_word = _ITEM_START.match(before, item_at)
    item = item_word.group(1) if item_word else ""
    body = _strip(before[item_at:])
    opener, inside = _innermost_open(body)
    last = body.rstrip()
    prev = re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\S", last[-60:])
    prev_word = prev[-1] if prev else ""
    prev2 = " ".join(prev[-2:])
    facts = index.checked.facts if index else {}
    enums = index.checked.enums if index else {}
    names = _Names(index, known)

    at_line_start = before[before.rfind("\n") + 1:].strip() == "" and opener is None
    if at_line_start and (start == 0 or before.endswith("\n")):
        return names.keywords(("ruleset", *ITEM_WORDS))
    if prev_word == "." and len(prev) >= 2:
        return names.after_dot(prev[-2], body)
    if opener is not None and opener[0] == "[" and opener[1] == "priority":
        return names.agents()
    if prev2 == "uses tool" or prev_word == "call" or prev2 == "mock tool":
        return names.tools()
    if prev_word == "using":
        return names.plugin_names(known.pruners if item == "prune" else known.resolvers,
                                  "pruner" if item == "prune" else "resolver")
    if prev_word in ("emit", "lasting", "given", "expect", "no", "conflict", "policy",
                     "prune", "when", "not") or (prev_word == "and" and opener is None
                                                 and item != "root"):
        want_intent = None if prev_word not in ("emit", "lasting") else False
        return names.types(want_intent)
    if prev_word in ("intend", "intent"):
        return names.types(True)
    if opener is not None and opener[0] == "(" and opener[1]:
        owner = opener[1]
        segment = _top_level_segment(inside)
        naming = ":" not in segment
        if naming and owner in facts:
            used = set(re.findall(r"([A-Za-z_]\w*)\s*(?::|,|$)", inside))
            return names.fields(owner, skip=used)
        if naming and (owner in known.tools or (index and owner in index.checked.tools)):
            sig = known.tools.get(owner) or (index.checked.tools.get(owner) if index else None)
            return [Candidate(k, "field", v) for k, v in (sig.args.items() if sig else ())]
    if opener is not None and opener[0] == "{" and item in ("fact", "intent"):
        if prev_word == ":" or (prev_word == "[" and "list" in prev):
            return names.value_types()
        return names.keywords(("key",))
    if opener is not None and opener[0] == "{" and item == "root" and prev_word != "require" \
            and prev_word not in ("=",) and not _in_expression(prev_word):
        return names.budgets() + names.keywords(("require",))
    if opener is not None and opener[0] == "{" and item == "policy" and prev_word in (
            "highest", "lowest", "combine", "sum", "min", "max", "mean"):
        policy = re.match(r"policy\s+([A-Za-z_]\w*)", before[item_at:])
        return names.fields(policy.group(1)) if policy else []
    if opener is not None and opener[0] == "{" and item == "policy":
        return names.keywords(POLICY_WORDS)
    if prev_word == "tier" or (item == "agent" and opener is None):
        return []
    # an expression, or the start of a statement
    out: list[Candidate] = []
    if item == "agent" and opener is not None and opener[0] == "{" and not _in_expression(
            prev_word):
        out += names.keywords(AGENT_WORDS)
    if item == "test" and opener is not None and opener[0] == "{" and not _in_expression(
            prev_word):
        out += names.keywords(TEST_WORDS)
    out += names.variables(body) + names.members() + names.functions()
    out += [Candidate(e, "type", "enum") for e in sorted(enums)]
    out += names.keywords(EXPR_WORDS)
    return out


def _in_expression(prev_word: str) -> bool:
    return prev_word in ("where", "require", "=", "==", "!=", "<", ">", "+", "-", "*",
                         "/", "%", "and", "or", "not", "in", "if", "then", "else", ":",
                         ",", "(", "score", "confidence", "returns", "now")


def _in_string_or_comment(line: str) -> bool:
    """Whether the end of ``line`` (a line's text up to the cursor) is inside a string
    or a comment (strings do not span lines)."""
    quoted = escaped = False
    for ch in line:
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "#":
            return True
    return quoted


def _item_start(before: str) -> int:
    """Offset of the line starting the item the text ends in."""
    starts = [m.start() for m in _ITEM_START.finditer(before)]
    return starts[-1] if starts else 0


def _strip(text: str) -> str:
    """``text`` with strings emptied and comments removed (brackets in them count for
    nothing)."""
    text = re.sub(r'"(?:[^"\\\n]|\\.)*"?', '""', text)
    return re.sub(r"#[^\n]*", "", text)


def _innermost_open(body: str) -> tuple[tuple[str, str] | None, str]:
    """The innermost bracket still open at the end of ``body``, with the name written
    just before it, and the text after it."""
    stack: list[int] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for i, ch in enumerate(body):
        if ch in "([{":
            stack.append(i)
        elif ch in pairs and stack and body[stack[-1]] == pairs[ch]:
            stack.pop()
    if not stack:
        return None, ""
    at = stack[-1]
    name = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", body[:at])
    return (body[at], name.group(1) if name else ""), body[at + 1:]


def _top_level_segment(inside: str) -> str:
    """The text after the last comma not nested in brackets."""
    depth = 0
    cut = 0
    for i, ch in enumerate(inside):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            cut = i + 1
    return inside[cut:]


class _Names:
    def __init__(self, index: RulesetIndex | None, known: Known) -> None:
        self.index = index
        self.known = known

    def keywords(self, words: tuple[str, ...]) -> list[Candidate]:
        return [Candidate(w, "keyword") for w in words]

    def types(self, intent: bool | None) -> list[Candidate]:
        if self.index is None:
            return []
        return [Candidate(name, "type", "intent" if decl.intent else "fact",
                          f"```converge\n{_first_line(self.index, decl.span)}\n```")
                for name, decl in sorted(self.index.checked.facts.items())
                if intent is None or decl.intent == intent]

    def value_types(self) -> list[Candidate]:
        out = [Candidate(p, "type", "built-in type") for p in (*PRIMITIVES, "list")]
        if self.index is not None:
            out += [Candidate(e, "type", "enum") for e in sorted(self.index.checked.enums)]
        return out

    def fields(self, type_name: str, skip: set[str] | None = None) -> list[Candidate]:
        decl = self.index.checked.facts.get(type_name) if self.index else None
        if decl is None:
            return []
        from converge_rules.lsp.index import _type_text

        return [Candidate(f.name.name, "field",
                          ("key " if f.key else "") + _type_text(f.type))
                for f in decl.fields if f.name.name not in (skip or set())]

    def members(self) -> list[Candidate]:
        if self.index is None:
            return []
        return [Candidate(m.name, "member", f"{name}.{m.name}")
                for name, decl in sorted(self.index.checked.enums.items())
                for m in decl.members]

    def agents(self) -> list[Candidate]:
        if self.index is None:
            return []
        return [Candidate(a.name.name, "agent", f"tier {a.effective_tier}")
                for a in self.index.checked.agents]

    def tools(self) -> list[Candidate]:
        names = dict(self.known.tools)
        if self.index is not None:
            for name, sig in self.index.checked.tools.items():
                names.setdefault(name, sig)
        return [Candidate(name, "tool", (sig.plugin if sig else ""),
                          tool_markdown(name, sig, self.known.tool_docs.get(name, "")))
                for name, sig in sorted(names.items())]

    def functions(self) -> list[Candidate]:
        from converge_rules.language.builtins import builtin_functions

        sigs = {**builtin_functions(), **self.known.functions}
        return [Candidate(name, "function",
                          f"({', '.join(sig.args)}) -> {sig.result}",
                          function_markdown(sig, self.known.function_docs.get(name, "")))
                for name, sig in sorted(sigs.items())]

    def budgets(self) -> list[Candidate]:
        return [Candidate(name, "budget", kind) for name, kind in BUDGETS.items()]

    def plugin_names(self, names: tuple[str, ...], kind: str) -> list[Candidate]:
        return [Candidate(name, kind) for name in names]

    def variables(self, body: str) -> list[Candidate]:
        """The names the item's patterns bind so far."""
        seen: dict[str, None] = {}
        for m in re.finditer(r"([A-Za-z_]\w*)\s*:\s*(?:not\s+)?(?:intent\s+)?[A-Z]\w*\(",
                             body):
            seen[m.group(1)] = None
        for m in re.finditer(r"\bas\s+([A-Za-z_]\w*)", body):
            seen[m.group(1)] = None
        for inner in re.finditer(r"[A-Z]\w*\(([^()]*)\)?", body):
            for part in inner.group(1).split(","):
                name = part.split(":")[-1].strip()
                if re.fullmatch(r"[a-z_]\w*", name):
                    seen[name] = None
        return [Candidate(v, "variable") for v in seen]

    def after_dot(self, owner: str, body: str) -> list[Candidate]:
        if self.index is not None and owner in self.index.checked.enums:
            decl = self.index.checked.enums[owner]
            return [Candidate(m.name, "member", f"{owner}.{m.name}") for m in decl.members]
        bound = re.search(re.escape(owner) + r"\s*:\s*(?:not\s+)?(?:intent\s+)?([A-Z]\w*)\(",
                          body)
        if bound:
            return self.fields(bound.group(1))
        call = re.search(r"call\s+([A-Za-z_]\w*)\s*\([^)]*\)\s*as\s+" + re.escape(owner)
                         + r"\b", body)
        if call:
            sig = self.known.tools.get(call.group(1))
            if sig is None and self.index is not None:
                sig = self.index.checked.tools.get(call.group(1))
            return [Candidate(k, "field", v) for k, v in (sig.result.items() if sig else ())]
        return []


def _first_line(index: RulesetIndex, span: object) -> str:
    from converge_rules.lsp.index import _source_of

    text = _source_of(index.checked, span)  # type: ignore[arg-type]
    return text.split("\n", 1)[0]
