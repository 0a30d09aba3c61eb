"""A damaged trace given to ``converge replay`` or ``converge explain --trace`` is an
error naming the line and what is wrong with it, exit code 2 — never an internal error.

Real traces (every kind of event the engine writes) are damaged the ways an edit, a
crash or a bad copy damages them: each field of each kind of event deleted or given a
value of the wrong JSON type, each event turned into every other kind, the file cut
in the middle of a line, bytes that are not UTF-8, values nested 100,000 deep, lines
that are JSON but not events, events about facts that were never added.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules.cli import main

RULESET = """\
ruleset shop "Every kind of trace event"

uses tool fx_rate

root "something is flagged" {
  max_cycles = MAX_CYCLES
  require count(Alert()) >= 1
}

fact Cost  { key sku: str, amount: float }
fact Quote { sku: str, vendor: str, amount: float, currency: str = "USD" }
fact Price { key sku: str, amount: float }
fact Alert { sku: str }
fact Rate  { key currency: str, usd: float }
fact Ratio { sku: str, r: float }
fact Count { key id: str, n: int }
fact Seen  { id: str, n: int }
fact Tag   { name: str }
intent NeedRate { currency: str }

agent ask_rate tier 1 {
  when Quote(currency) where currency != "USD"
  intend NeedRate(currency: currency)
}

agent fetch_rate tier 1 {
  when intent NeedRate(currency)
  call fx_rate(currency: currency) as rate
  emit Rate(currency: currency, usd: rate.usd)
}

agent cost_plus tier 1 {
  when Cost(sku, amount: cost)
  emit Price(sku: sku, amount: round(cost * 1.2, 2)) confidence 0.6
}

agent undercut tier 1 {
  when Cost(sku, amount: cost) and Quote(sku, amount: theirs) where theirs > cost
  emit Price(sku: sku, amount: theirs) confidence 0.8
}

agent ratio tier 1 {
  when Quote(sku, amount)
  emit Ratio(sku: sku, r: 1.0 / (amount - amount))
}

agent step tier 1 {
  when Count(id, n) where n < 3
  emit Count(id: id, n: n + 1)
}

agent seen tier 1 {
  when Count(id, n)
  emit Seen(id: id, n: n)
}

agent tag tier 1 {
  when Rate(currency)
  emit Tag(name: currency)
}

agent cheap tier 2 {
  when p: Price(sku, amount) where amount < 100.0
  emit Alert(sku: sku)
  evaluate p score 0.5 reason "cheap"
}

agent flag tier 2 {
  when Price(sku, amount) where amount > 1.0
  emit Alert(sku: sku)
}

policy Price { resolve by highest confidence, then lowest amount }
policy Count { resolve by latest }

prune Rate when age > 1
"""

FACTS = [
    {"Cost": {"sku": "A1", "amount": 10.0}},
    {"Quote": {"sku": "A1", "vendor": "acme", "amount": 12.0}},
    {"Quote": {"sku": "A1", "vendor": "euro", "amount": 11.0, "currency": "EUR"}},
    {"Count": {"id": "c", "n": 0}},
]

EVENT_KINDS = ("cycle_start", "cycle_end", "fact_added", "fact_supported", "effect_merged",
               "effect_discarded", "output_skipped", "tool_call", "evaluation", "conflict",
               "replaced", "retracted", "pruned", "intent_closed", "budget", "status")


def _record(folder: Path, max_cycles: int) -> Path:
    """Run the ruleset for real and return its trace."""
    folder.mkdir()
    ruleset = folder / "shop.cvg"
    ruleset.write_text(RULESET.replace("MAX_CYCLES", str(max_cycles)), encoding="utf-8")
    loaded = converge_rules.load(ruleset, plugins=False)
    trace = folder / "t.jsonl"
    converge_rules.run(loaded, [(t, f) for fact in FACTS for t, f in fact.items()],
                       tools={"fx_rate": lambda args: {"usd": 1.1}}, trace=trace)
    return trace


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A converged trace and one whose budget ran out: between them, every kind."""
    base = tmp_path_factory.mktemp("traces")
    recorded = [_record(base / "converged", 30), _record(base / "budget", 2)]
    kinds = {json.loads(line)["event"] for path in recorded
             for line in path.read_text().splitlines()}
    assert kinds == set(EVENT_KINDS), set(EVENT_KINDS) - kinds
    return recorded


def _converge(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def _commands(trace: Path, *, with_ruleset: bool = True) -> list[list[str | Path]]:
    ruleset = trace.parent / "shop.cvg"
    commands: list[list[str | Path]] = [["replay", "--no-plugins", ruleset, trace],
                                        ["explain", "--trace", trace, "Price()"]]
    if with_ruleset:  # slower (the ruleset is checked and compiled first)
        commands.append(["explain", "--trace", trace, "-r", ruleset, "Alert()"])
    return commands


def _lines(trace: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]


def _damaged(original: Path, lines: list[str], name: str) -> Path:
    """The damaged copy, beside the ruleset it was recorded with."""
    path = original.parent / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _wrong_type(value: object) -> object:
    """A JSON value of another type than ``value``'s."""
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return "12"
    if isinstance(value, str):
        return 12
    if isinstance(value, list):
        return {"a": 1}
    if isinstance(value, dict):
        return [1, 2]
    return [None]  # null


def _edits(trace: Path) -> Iterator[tuple[str, int, list[str]]]:
    """``(what, damaged line number, lines)`` for every edit of the first event of each
    kind: each field deleted, each field of the wrong type, the event renamed."""
    events = _lines(trace)
    dumped = [json.dumps(e, sort_keys=True) for e in events]
    seen: set[object] = set()
    for index, event in enumerate(events):
        if event["event"] in seen:
            continue
        seen.add(event["event"])
        for key in event:
            if key == "event":
                continue
            if key != "hash":  # optional: traces before the chain have none
                edited = dict(event)
                del edited[key]
                yield f"{event['event']} without {key}", index + 1, [
                    *dumped[:index], json.dumps(edited), *dumped[index + 1:]]
            edited = {**event, key: _wrong_type(event[key])}
            yield f"{event['event']} with a wrong {key}", index + 1, [
                *dumped[:index], json.dumps(edited), *dumped[index + 1:]]
        for kind in EVENT_KINDS:
            if kind != event["event"]:
                edited = {**event, "event": kind}
                yield f"{event['event']} renamed {kind}", index + 1, [
                    *dumped[:index], json.dumps(edited), *dumped[index + 1:]]


def _assert_named(trace: Path, line: int, what: str, *, with_ruleset: bool = True) -> None:
    for args in _commands(trace, with_ruleset=with_ruleset):
        code, output = _converge(*args)
        assert "internal error" not in output and "Traceback" not in output, (what, output)
        assert code == 2, (what, args[0], output)
        assert f"{trace.name}:{line}:" in output, (what, args[0], output)


def test_the_undamaged_traces_replay_and_explain(traces: list[Path]) -> None:
    for trace in traces:
        replay, explain, with_ruleset = (_converge(*args)[0] for args in _commands(trace))
        assert replay == 0 and explain in (0, 1) and with_ruleset in (0, 1)


def test_every_field_deleted_mistyped_or_renamed_is_named(traces: list[Path]) -> None:
    count = 0
    for trace in traces:
        for what, line, lines in _edits(trace):
            _assert_named(_damaged(trace, lines, "edited.jsonl"), line, what,
                          with_ruleset=False)
            count += 1
    assert count > 300  # the edits above, not a handful


@pytest.mark.parametrize("damage", [
    "truncated", "not utf-8", "deep list", "deep object", "array", "number", "string",
    "null", "no event", "event not a string", "unknown support", "unknown target",
    "unknown supported fact",
])
def test_a_damaged_line_is_named(traces: list[Path], damage: str) -> None:
    trace = traces[0]
    lines = trace.read_text(encoding="utf-8").splitlines()
    events = _lines(trace)
    at = len(lines) // 2  # 0-based index of the damaged line
    if damage == "truncated":  # the file cut in the middle of a line
        data = trace.read_bytes()
        cut = sum(len(line) + 1 for line in lines[:at]) + len(lines[at]) // 2
        damaged = trace.parent / "edited.jsonl"
        damaged.write_bytes(data[:cut])
        _assert_named(damaged, at + 1, damage)
        return
    if damage == "not utf-8":
        damaged = trace.parent / "edited.jsonl"
        text = "".join(line + "\n" for line in lines)
        offset = sum(len(line) + 1 for line in lines[:at]) + 3
        damaged.write_bytes(text[:offset].encode() + b"\xff\xfe" + text[offset:].encode())
        _assert_named(damaged, at + 1, damage)
        return
    fact = next(i for i, e in enumerate(events) if e["event"] == "fact_added")
    replacement = {
        "deep list": '{"event": "status", "status": "converged", "detail": '
                     + "[" * 100_000 + "]" * 100_000 + "}",
        "deep object": '{"event": "fact_added", "fields": ' + '{"a": ' * 100_000 + "1"
                       + "}" * 100_000 + "}",
        "array": "[1, 2, 3]",
        "number": "42",
        "string": '"fact_added"',
        "null": "null",
        "no event": '{"id": 1, "type": "Cost"}',
        "event not a string": '{"event": ["fact_added"]}',
        "unknown support": json.dumps({**events[fact], "id": 900, "support": [777]}),
        "unknown target": json.dumps({"event": "evaluation", "cycle": 1, "agent": "cheap",
                                      "target": 777, "score": 0.5, "reason": None}),
        "unknown supported fact": json.dumps({"event": "fact_supported", "id": 777,
                                              "agent": "flag", "cycle": 2, "support": []}),
    }[damage]
    damaged = _damaged(trace, [*lines[:at], replacement, *lines[at + 1:]], "edited.jsonl")
    _assert_named(damaged, at + 1, damage)
