"""Checking costs work in proportion to the ruleset, however it is shaped: thousands of
agents emitting one type, of fact types, of tests, of references to unknown names with
suggestions computed against large pools of declared ones.

Not timed: each case counts the Python function calls the checker makes (a profile
hook) on a generated ruleset of n and of 2n items. Linear work doubles; work that
compares every item with every other one (a list membership test with deep equality, a
"did you mean" that ranks every declared name for every unknown one) quadruples.
``bench/parse/bench_parse.py`` shows the same in lines per second on large rulesets.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from converge_rules.language.checks.checker import check
from converge_rules.language.diagnostics.suggest import EXHAUSTIVE, Vocabulary, closest
from converge_rules.language.loader import load_file

N = 100  # above EXHAUSTIVE, so large pools are searched through their index
LINEAR = 2.25  # calls(2n) / calls(n): 2 for linear work plus a little fixed cost


def agents_emitting_one_type(n: int) -> str:
    out = ["ruleset g", "fact In { key id: str, v: float }", "fact Out { key id: str, v: float }"]
    for i in range(n):
        out += [f"agent a{i} {{", "  when In(id, v)", "  emit Out(id: id, v: v)", "}"]
    out.append("policy Out { resolve by highest v }")
    return "\n".join(out) + "\n"


def unknown_types_among_many(n: int) -> str:
    out = ["ruleset g", "fact In { key id: str, v: float }"]
    out += [f"fact Item{i} {{ key id: str, v: float }}" for i in range(n)]
    for i in range(n):
        out += [f"agent a{i} {{", f"  when In(id, v) and not Itme{i}(id)",
                f"  emit Iten{i}(id: id, v: v)", "}"]
        out += [f"prune Itm{i} when age > 3"]
    return "\n".join(out) + "\n"


def fact_types(n: int) -> str:
    return "ruleset g\n" + "".join(f"fact F{i} {{ key id: str, v: float }}\n"
                                   for i in range(n))


def many_tests(n: int) -> str:
    out = ["ruleset g", "fact In { key id: str, v: float }"]
    for i in range(n):
        out += [f'test "t{i}" {{', f'  given In(id: "x{i}", v: 1.0)',
                f'  expect In(id: "x{i}")', "}"]
    return "\n".join(out) + "\n"


def unknown_field_types_among_many_enums(n: int) -> str:
    out = ["ruleset g"] + [f"enum Level{i} {{ low, high }}" for i in range(n)]
    out += [f"fact F{i} {{ key id: str, level: Levle{i} }}" for i in range(n)]
    return "\n".join(out) + "\n"


def consumers_of_lower_tiers(n: int) -> str:
    out = ["ruleset g", "fact In { key id: str, v: float }", "fact Mid { key id: str, v: float }",
           "fact Out { key id: str, v: float }",
           "policy Mid { resolve by latest }", "policy Out { resolve by latest }"]
    for i in range(n):
        out += [f"agent p{i} tier 1 {{", "  when In(id, v)", "  emit Mid(id: id, v: v)", "}",
                f"agent c{i} tier 2 {{", "  when In(id, v) and not Mid(id)",
                "  emit Out(id: id, v: count(Mid(id)))", "}"]
    return "\n".join(out) + "\n"


def members_of_a_large_enum(n: int) -> str:
    out = ["ruleset g", "enum Big { " + ", ".join(f"member{i}" for i in range(n)) + " }",
           "fact In { key id: str, e: Big, f: Big }", "fact Out { key id: str, e: Big }",
           "policy Out { resolve by latest }"]
    for i in range(n):
        out += [f"agent a{i} {{", f"  when In(id, e, f: member{i})",
                f"  emit Out(id: id, e: if e == membr{i} then Big.memebr{i} else Big.member{i})",
                "}"]
    return "\n".join(out) + "\n"


def fields_of_a_wide_fact(n: int) -> str:
    fields = ", ".join(f"field{i}: int" for i in range(n))
    out = ["ruleset g", f"fact W {{ key id: str, {fields} }}", "fact Out { key id: str, v: int }",
           "policy Out { resolve by latest }"]
    for i in range(n):
        out += [f"agent a{i} {{", f"  when w: W(id, field{i}: 1, feild{i}: 2)",
                f"  emit Out(id: id, v: w.field{i} + w.fiedl{i})", "}"]
    return "\n".join(out) + "\n"


def undeclared_tools_and_agents(n: int) -> str:
    out = ["ruleset g", "uses tool " + ", ".join(f"lookup{i}" for i in range(n)),
           "fact In { key id: str, v: float }", "fact Out { key id: str, v: float }"]
    for i in range(n):
        out += [f"agent a{i} {{", "  when In(id, v)", f"  call lokup{i}(id: id) as r",
                "  emit Out(id: id, v: v)", "}"]
    out.append("policy Out { resolve by priority [" + ", ".join(f"agnt{i}" for i in range(n))
               + "] }")
    out += [f'test "t{i}" {{\n  mock tool lookpu{i}(id: "x") returns {{v: 1}}\n'
            "  expect status converged\n}" for i in range(n)]
    return "\n".join(out) + "\n"


CASES: dict[str, Callable[[int], str]] = {
    "agents emitting one type": agents_emitting_one_type,
    "unknown types among many": unknown_types_among_many,
    "fact types": fact_types,
    "test blocks": many_tests,
    "unknown field types among many enums": unknown_field_types_among_many_enums,
    "consumers of lower tiers": consumers_of_lower_tiers,
    "members of a large enum": members_of_a_large_enum,
    "fields of a wide fact": fields_of_a_wide_fact,
    "undeclared tools and agents": undeclared_tools_and_agents,
}


def calls_to_check(text: str, tmp_path: Path) -> int:
    """The Python function calls :func:`check` makes (the parse not included)."""
    path = tmp_path / "g.cvg"
    path.write_text(text, encoding="utf-8")
    loaded = load_file(path)
    assert not loaded.diagnostics, loaded.diagnostics[:3]
    count = 0

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event == "call":
            count += 1

    sys.setprofile(hook)
    try:
        check(loaded)
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize("case", sorted(CASES))
def test_checking_work_grows_linearly(case: str, tmp_path: Path) -> None:
    small = calls_to_check(CASES[case](N), tmp_path)
    large = calls_to_check(CASES[case](2 * N), tmp_path)
    assert large / small <= LINEAR, (
        f"{case}: {small} calls for {N} items, {large} for {2 * N} "
        f"(x{large / small:.2f}; linear work would be x2)")


def test_the_generated_rulesets_have_the_expected_findings(tmp_path: Path) -> None:
    # the cases exercise the paths they are named after: each unknown name is reported
    # with a suggestion found through the large pool's index
    def helps(text: str, code: str) -> list[str]:
        path = tmp_path / "g.cvg"
        path.write_text(text, encoding="utf-8")
        found = [d for d in check(load_file(path)).diagnostics if d.code == code]
        return [d.help or "" for d in found]

    assert not [h for h in helps(agents_emitting_one_type(N), "CVG409")]
    unknown = helps(unknown_types_among_many(N), "CVG101")
    assert len(unknown) == 3 * N and "did you mean `Item7`?" in unknown
    assert "did you mean `Level7`?" in helps(unknown_field_types_among_many_enums(N), "CVG112")
    members = helps(members_of_a_large_enum(N), "CVG106") + helps(
        members_of_a_large_enum(N), "CVG105")
    assert "did you mean `member7`?" in members and len(members) == 2 * N
    fields = helps(fields_of_a_wide_fact(N), "CVG103")
    assert len(fields) == 2 * N and "did you mean `field7`?" in fields
    assert "did you mean `lookup7`? Or add `uses tool lokup7` near the top of the file" in \
        helps(undeclared_tools_and_agents(N), "CVG801")
    assert "did you mean `a7`?" not in helps(undeclared_tools_and_agents(N), "CVG406")
    assert not helps(consumers_of_lower_tiers(N), "CVG302")


# ------------------------------------------------------------------- suggestions


def test_a_small_pool_is_ranked_exactly_as_closest_ranks_it() -> None:
    pool = ["Price", "price_usd", "Prices", "Cost", "Quote", "PRICE", "Alert", "Pricing"]
    vocabulary = Vocabulary(pool)
    for name in ("price", "Pricee", "Prise", "Cots", "quote", "nothing", "Alrt", "Price"):
        assert vocabulary.closest(name) == closest(name, pool)


def test_a_large_pool_suggests_names_one_edit_away_in_any_case() -> None:
    pool = [f"Item{i}" for i in range(EXHAUSTIVE * 10)] + ["Price", "Quote"]
    vocabulary = Vocabulary(pool)
    assert vocabulary.closest("Pricee") == ["Price"]  # an insertion
    assert vocabulary.closest("Prie") == ["Price"]  # a deletion
    assert vocabulary.closest("Qoute") == ["Quote"]  # neighbours swapped
    assert vocabulary.closest("quote") == ["Quote"]  # case
    assert vocabulary.closest("ITEM12") == ["Item12"]
    assert vocabulary.closest("Itme12")[0] == "Item12"
    assert vocabulary.closest("Zebra") == []
    assert vocabulary.did_you_mean("Zebra", otherwise=lambda: "declare it") == "declare it"
    assert vocabulary.did_you_mean("Pricee", otherwise="declare it") == "did you mean `Price`?"


def test_extra_candidates_are_ranked_with_the_pool() -> None:
    pool = [f"member{i}" for i in range(EXHAUSTIVE * 2)]
    vocabulary = Vocabulary(pool)
    assert vocabulary.closest("amout", also=["amount", "sku"]) == ["amount"]
    assert vocabulary.closest("membr3", also=["amount"])[0] == "member3"
