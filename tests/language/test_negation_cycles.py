"""Issue 10 item 6: on a real negation cycle (`approve` negates Deny, `deny` negates
Approve, same tier) CVG302's help said to move each agent to tier 2, which gives the
same errors at tiers 2 and 3. The message names the cycle; the help's remedies work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from converge_rules.language.checks.checked import CheckedRuleset
from converge_rules.language.checks.checker import check_file
from converge_rules.language.diagnostics.core import Diagnostic

CYCLE = """\
ruleset claims "a real negation cycle"
fact Claim   { key id: str, amount: float }
fact Approve { key id: str }
fact Deny    { key id: str }
agent approve {
  when Claim(id, amount) and not Deny(id)
  where amount < 100.0
  emit Approve(id: id)
}
agent deny {
  when Claim(id) and not Approve(id)
  emit Deny(id: id)
}
"""


def chk(text: str, tmp_path: Path) -> CheckedRuleset:
    return check_file(tmp_path / "main.cvg", source=text)


def errors(checked: CheckedRuleset) -> list[Diagnostic]:
    return [d for d in checked.diagnostics if d.code == "CVG302"]


def test_the_message_names_the_cycle(tmp_path: Path) -> None:
    found = errors(chk(CYCLE, tmp_path))
    assert len(found) == 2
    first = found[0].message
    assert "`approve` (tier 1) negates Deny, which `deny` (tier 1) produces" in first
    assert "`deny` negates Approve, which `approve` produces" in first
    assert "no choice of tiers" in first


def test_moving_both_sides_up_as_the_old_help_said_does_not_work(tmp_path: Path) -> None:
    moved = CYCLE.replace("agent approve {", "agent approve tier 2 {").replace(
        "agent deny {", "agent deny tier 3 {")
    assert errors(chk(moved, tmp_path))


def test_the_help_never_suggests_moving_every_agent_of_the_cycle(tmp_path: Path) -> None:
    for diag in errors(chk(CYCLE, tmp_path)):
        assert "move only" in (diag.help or "")
        assert "move `approve` to tier 2" not in (diag.help or "")


def _apply(text: str, help_text: str, which: int) -> str:
    """Follow remedy ``which`` of a CVG302 help on the CYCLE ruleset, literally."""
    remedy = help_text.split(": ", 1)[1].split("; or ")[which]
    m = re.fullmatch(r"remove `(\w+)`'s dependency on (\w+), then move only `(\w+)` "
                     r"to tier (\d+)", remedy)
    assert m, remedy
    drop_from, dropped, move, tier = m.groups()
    lines = text.splitlines()
    owner = ""
    for i, line in enumerate(lines):
        if line.startswith("agent "):
            owner = line.split()[1]
            if owner == move:
                lines[i] = f"agent {move} tier {tier} {{"
        if owner == drop_from and f" and not {dropped}(id)" in line:
            lines[i] = line.replace(f" and not {dropped}(id)", "")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("which", [0, 1])
def test_each_remedy_of_the_help_gives_a_clean_ruleset(tmp_path: Path, which: int) -> None:
    for diag in errors(chk(CYCLE, tmp_path)):
        fixed = _apply(CYCLE, diag.help or "", which)
        assert fixed != CYCLE
        assert chk(fixed, tmp_path).ok, [d.message for d in chk(fixed, tmp_path).diagnostics]


def test_a_longer_cycle_through_a_read_is_named_too(tmp_path: Path) -> None:
    text = """\
ruleset r "three agents"
fact Claim { key id: str }
fact A { key id: str }
fact B { key id: str }
fact C { key id: str }
agent a {
  when Claim(id) and not B(id)
  emit A(id: id)
}
agent b {
  when C(id)
  emit B(id: id)
}
agent c {
  when A(id)
  emit C(id: id)
}
"""
    (diag,) = errors(chk(text, tmp_path))
    assert "`b` reads C, which `c` produces, and `c` reads A, which `a` produces" in diag.message
    # remove c's read of A: c, then b, need no move; a negates B, so a goes above b
    assert "remove `c`'s dependency on A, then move only `a` to tier 2" in (diag.help or "")


def test_without_a_cycle_the_help_still_moves_the_consumer(tmp_path: Path) -> None:
    text = CYCLE.replace("  when Claim(id) and not Approve(id)", "  when Claim(id)")
    (diag,) = errors(chk(text, tmp_path))
    assert "cycle" not in diag.message
    assert diag.help == "move `approve` to tier 2"


def _follow(text: str, remedy: str) -> str:
    """Follow one remedy of a CVG302 help literally: drop the `when` pattern of the
    named agent on the named type, then move the named agents to their tiers."""
    m = re.fullmatch(r"remove `(\w+)`'s dependency on (\w+), then (.*)", remedy)
    assert m, remedy
    drop_from, dropped, moves_text = m.groups()
    moves = dict(re.findall(r"`(\w+)` to tier (\d+)", moves_text))
    assert moves, remedy
    out = []
    owner = ""
    for line in text.splitlines():
        if line.startswith("agent "):
            owner = line.split()[1]
            if owner in moves:
                line = f"agent {owner} tier {moves[owner]} {{"
        if owner == drop_from and line.startswith("  when "):
            kept = [p for p in line[len("  when "):].split(" and ")
                    if not re.match(rf"(not )?{dropped}\(", p)]
            line = "  when " + " and ".join(kept)
        out.append(line)
    return "\n".join(out) + "\n"


def _remedies(diag: Diagnostic) -> list[str]:
    return (diag.help or "").split(": ", 1)[1].split("; or ")


# a negates C, which c makes from B, which b makes from A, which a makes; and c negates
# A too: two cycles share `a negates C`. Removing `c`'s negation of A leaves the longer
# one, and moving `a` up then leaves `b` in tier 1 reading A that only tier 2 makes:
# the ruleset checked clean and never derived B or C.
TWO_CYCLES = """\
ruleset r "two cycles through one negation"
fact Claim { key id: str }
fact A { key id: str }
fact B { key id: str }
fact C { key id: str }
agent a {
  when Claim(id) and not C(id)
  emit A(id: id)
}
agent b {
  when A(id)
  emit B(id: id)
}
agent c {
  when B(id) and not A(id)
  emit C(id: id)
}
"""

# the CYCLE plus an agent outside it that reads what `approve` makes: moving only
# `approve` up left `notify` in tier 1, where it never saw an Approve
WITH_A_READER = CYCLE + """\
fact Notice { key id: str }
agent notify {
  when Approve(id)
  emit Notice(id: id)
}
"""


@pytest.mark.parametrize("text", [TWO_CYCLES, WITH_A_READER])
def test_every_remedy_followed_literally_orders_every_dependency(
    tmp_path: Path, text: str
) -> None:
    found = errors(chk(text, tmp_path))
    assert found
    for diag in found:
        for remedy in _remedies(diag):
            fixed = _follow(text, remedy)
            checked = chk(fixed, tmp_path)
            assert checked.ok, (remedy, [d.message for d in checked.diagnostics])
            # every agent runs in a tier no lower than the producers of what it reads
            tiers = {m.group(1): int(m.group(2) or 1) for m in re.finditer(
                r"^agent (\w+)(?: tier (\d+))? \{", fixed, re.M)}
            assert _reads_ordered(fixed, tiers), remedy


def _reads_ordered(text: str, tiers: dict[str, int]) -> bool:
    made: dict[str, list[str]] = {}
    reads: dict[str, list[str]] = {}
    owner = ""
    for line in text.splitlines():
        if line.startswith("agent "):
            owner = line.split()[1]
        elif owner and line.startswith("  emit "):
            made.setdefault(line.split()[1].split("(")[0], []).append(owner)
        elif owner and line.startswith("  when "):
            reads[owner] = re.findall(r"(?<!not )\b([A-Z]\w*)\(", line)
    return all(tiers[p] <= tiers[a] for a, ts in reads.items() for t in ts
               for p in made.get(t, ()))


def test_a_remedy_that_leaves_another_cycle_is_not_offered(tmp_path: Path) -> None:
    for diag in errors(chk(TWO_CYCLES, tmp_path)):
        assert "remove `c`'s dependency on A" not in (diag.help or ""), diag.help
        assert "remove `a`'s dependency on C, then move only `c` to tier 2" in (
            diag.help or "")


def test_a_reader_of_a_moved_agent_moves_with_it(tmp_path: Path) -> None:
    helps = " ".join(d.help or "" for d in errors(chk(WITH_A_READER, tmp_path)))
    assert ("remove `deny`'s dependency on Approve, then move `approve` to tier 2, "
            "`notify` to tier 2") in helps


def test_without_a_cycle_the_readers_of_the_moved_agent_move_too(tmp_path: Path) -> None:
    # `show` reads what `approve` makes: moved alone, `approve` would make it in tier 2,
    # after tier 1 (and `show`) had finished, and no Notice was ever made
    text = WITH_A_READER.replace("  when Claim(id) and not Approve(id)", "  when Claim(id)")
    (diag,) = errors(chk(text, tmp_path))
    assert diag.help == ("move `approve` to tier 2, and with it `notify` to tier 2 (an agent "
                         "must not run before what it reads is made)")
    fixed = text.replace("agent approve {", "agent approve tier 2 {").replace(
        "agent notify {", "agent notify tier 2 {")
    assert chk(fixed, tmp_path).ok


def test_an_agent_reading_what_only_a_higher_tier_makes_is_warned(tmp_path: Path) -> None:
    # what the old help led to: `b` in tier 1 reading A, made only in tier 2 — clean,
    # and B and C were never derived
    text = TWO_CYCLES.replace("  when B(id) and not A(id)", "  when B(id)").replace(
        "agent a {", "agent a tier 2 {")
    checked = chk(text, tmp_path)
    assert checked.ok
    (warn,) = [d for d in checked.diagnostics if d.code == "CVG305"]
    assert "`b` (tier 1) reads A, which only `a` (tier 2) produces" in warn.message
    assert warn.help == "move `b` to tier 2 or higher, or the producers of A down to tier 1"
