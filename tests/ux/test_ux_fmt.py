"""``converge fmt`` given files it cannot format: a non-UTF-8 file (or stdin) is a
diagnostic at the bad byte, as ``converge check`` reports it, and the other files are
still formatted; exit code 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Run = Callable[..., Any]  # the `converge` fixtures of conftest.py


def test_a_non_utf8_file_is_reported_and_the_others_are_formatted(converge: Run,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "a_latin.cvg").write_bytes(b"ruleset x\n#caf\xe9\n")
    (tmp_path / "b_ok.cvg").write_text("ruleset x\nfact A {  key s: str }\n", encoding="utf-8")
    done = converge("fmt", "a_latin.cvg", "b_ok.cvg")
    assert done.code == 2
    assert "a_latin.cvg:2:5" in done.err
    assert "not UTF-8 text (byte 0xe9 at line 2, column 5)" in done.err
    assert "reformatted b_ok.cvg" in done.err
    assert (tmp_path / "b_ok.cvg").read_text(encoding="utf-8").endswith(
        "fact A { key s: str }\n")
    assert (tmp_path / "a_latin.cvg").read_bytes() == b"ruleset x\n#caf\xe9\n"


def test_non_utf8_stdin_is_reported_at_the_bad_byte(converge_script: Run) -> None:
    done = converge_script("fmt", "-", input=b"ruleset x\n\xe9\n")
    assert done.code == 2
    assert "<stdin>:2:1" in done.err
    assert "not UTF-8 text" in done.err
    assert done.out == ""


def test_stdin_is_formatted_to_stdout(converge_script: Run) -> None:
    done = converge_script("fmt", "-", input=b"ruleset x\r\nfact A {  key s: str }\r\n")
    assert done.code == 0
    assert done.out == "ruleset x\n\nfact A { key s: str }\n"


def test_an_import_of_a_non_utf8_file_says_where_the_bad_byte_is(converge: Run,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "lib.cvg").write_bytes(b"ruleset lib\n#\xe9\n")
    (tmp_path / "main.cvg").write_text('ruleset main\nimport "lib.cvg"\n', encoding="utf-8")
    done = converge("check", "main.cvg", "--format", "text")
    assert done.code == 1
    assert "main.cvg:2:1" in done.out
    assert "`lib.cvg` is not UTF-8 text (byte 0xe9 at line 2, column 2)" in done.out


def test_dev_stdin_is_read_as_a_ruleset_and_as_facts(converge_script: Run,
                                                     tmp_path: Path) -> None:
    bad = b"ruleset x\nfact A { key s: strr }\n"
    done = converge_script("check", "/dev/stdin", "--format", "text", input=bad)
    assert done.code == 1
    assert "/dev/stdin:2:17" in done.out
    (tmp_path / "t.cvg").write_text("ruleset t\nfact A { key s: str }\n", encoding="utf-8")
    done = converge_script("run", "t.cvg", "-f", "/dev/stdin", "--format", "json",
                           input=b'{"A": {"s": "x"}}\n')
    assert done.code == 0, done.text
    assert '"s": "x"' in done.out


LONG = (
    'ruleset long\n\nroot "all shipped" {\n'
    '  require count(Order(status: "shipped")) == count(Order()) and count(Alert()) == 0'
    " or count(Order()) == 0 # goal\n}\n\n"
    "fact Order { key id: str, status: str, amount: float, country: str }\n"
    "fact Alert { id: str, level: str }\n\n"
    "agent flag {\n  when Order(id, status, amount, country)\n"
    '  where status == "open" and amount > 10_000.0 and country != "US" or status == "held"'
    " and amount > 50_000.0 # big\n"
    '  emit Alert(id: id, level: if amount > 100_000.0 and country != "US" then "critical"'
    ' else if amount > 50_000.0 then "high" else "normal")\n}\n'
)

LONG_FORMATTED = """ruleset long

root "all shipped" {
  require count(Order(status: "shipped")) == count(Order()) and count(Alert()) == 0
    or count(Order()) == 0               # goal
}

fact Order  { key id: str, status: str, amount: float, country: str }
fact Alert  { id: str, level: str }

agent flag {
  when Order(id, status, amount, country)
  where status == "open" and amount > 10_000.0 and country != "US"
    or status == "held" and amount > 50_000.0  # big
  emit Alert(
    id: id,
    level: if amount > 100_000.0 and country != "US" then "critical"
      else if amount > 50_000.0 then "high"
      else "normal",
  )
}
"""


def test_a_long_guard_require_or_value_breaks_at_or_and_else(converge_script: Run) -> None:
    """Found: fmt put an expression of any length on one line (Waltz's `shapes` agent,
    written over 10 lines, came out with a line of 600 columns); lines now break
    before `or`, then `and`, and before each `else`, within the 100 columns."""
    done = converge_script("fmt", "-", input=LONG.encode())
    assert done.code == 0, done.err
    assert done.out == LONG_FORMATTED
    again = converge_script("fmt", "-", input=LONG_FORMATTED.encode())
    assert again.out == LONG_FORMATTED


def test_a_long_nested_chain_goes_one_level_further_in(converge_script: Run) -> None:
    parts = [f"(n > {i}_000_000 and n < {i}_500_000 and n != {i}_250_000 and m != {i}_260_000"
             f" and m < {i}_700_000 and m > {i}_100_000)" for i in (1, 2)]
    text = ("ruleset n\nfact A { key id: str, n: int, m: int }\nagent a {\n"
            "  when A(id, n, m)\n  where " + " or ".join(parts) + "\n"
            "  emit A(id: id, n: n, m: m)\n}\n")
    done = converge_script("fmt", "-", input=text.encode())
    assert done.code == 0, done.err
    assert done.out.split("\n  where ", 1)[1].split("\n  emit", 1)[0].splitlines() == [
        "n > 1_000_000",
        "      and n < 1_500_000",
        "      and n != 1_250_000",
        "      and m != 1_260_000",
        "      and m < 1_700_000",
        "      and m > 1_100_000",
        "    or n > 2_000_000",
        "      and n < 2_500_000",
        "      and n != 2_250_000",
        "      and m != 2_260_000",
        "      and m < 2_700_000",
        "      and m > 2_100_000",
    ]
