"""The pytest plugin collects ``.cvg`` test blocks as items (tested with pytester)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

SHOP = (Path(__file__).parent / "data" / "shop.cvg").read_text(encoding="utf-8")

PASSING = """
test "undercut wins" {
  given Cost(sku: "A1", amount: 10.0)
  given Quote(sku: "A1", vendor: "acme", amount: 12.0)
  expect Price(sku: "A1", channel: web, amount: 11.88)
}
"""

FAILING = """
test "wrong price" {
  given Cost(sku: "A1", amount: 10.0)
  expect Price(sku: "A1", channel: web, amount: 99.0)
}
"""


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    # No entry-point plugins in the inner runs (faster, and the plugin is then loaded
    # exactly once, by -p, whether or not its pytest11 entry point is installed).
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    # The inner runs share this process: pytester drops the modules a run imported
    # when it ends, so a parser one run loaded from the on-disk parser cache would
    # raise lark exceptions of classes the next run's modules do not catch (a syntax
    # error then read "internal parser error"). Each inner run builds its own parser.
    monkeypatch.setenv("CONVERGE_CACHE_DIR", "")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "converge_rules.testing.pytest_plugin",
                              "-p", "no:cacheprovider", *args)


def test_passing_and_failing_items(pytester: pytest.Pytester) -> None:
    pytester.makefile(".cvg", shop=SHOP + PASSING + FAILING)
    result = _run(pytester, "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*shop.cvg::undercut wins PASSED*",
        "*shop.cvg::wrong price FAILED*",
    ])
    out = result.stdout.str()
    assert 'expected Price(sku: "A1", channel: web, amount: 99.0)' in out
    assert "amount: expected 99.0, got 12.0" in out
    assert "by agent cost_plus" in out
    assert "Traceback" not in out


def test_k_selects_items_by_the_same_ids(pytester: pytest.Pytester) -> None:
    pytester.makefile(".cvg", shop=SHOP + PASSING + FAILING)
    result = _run(pytester, "-k", "undercut")
    result.assert_outcomes(passed=1, deselected=1)


def test_syntax_error_is_a_collection_error_with_the_diagnostic(
        pytester: pytest.Pytester) -> None:
    pytester.makefile(".cvg", broken='ruleset r\nagent a {\n  when Cost(\n}\n'
                                     'test "t" {\n  expect status converged\n}\n')
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "broken.cvg: the ruleset has errors" in out
    assert "CVG0" in out and "broken.cvg:3:" in out


def test_files_without_tests_are_not_collected(pytester: pytest.Pytester) -> None:
    pytester.makefile(".cvg", lib=SHOP, broken="ruleset r\nagent {\n")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_collection_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makefile(".cvg", shop=SHOP + PASSING)
    pytester.makeini("[pytest]\nconverge_collect = false\n")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


@pytest.mark.parametrize("key", ["converge_collect", "converge_plugins"])
def test_an_ini_flag_that_is_no_truth_value_is_named(pytester: pytest.Pytester,
                                                     key: str) -> None:
    # found: "ERROR <dir> - pytest.UsageError: invalid truth value 'maybe'", naming no key
    pytester.makefile(".cvg", shop=SHOP + PASSING)
    pytester.makeini(f"[pytest]\n{key} = maybe\n")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {key} in *tox.ini: invalid truth value 'maybe'; "
                                 "write true or false"])


def test_python_tests_run_beside_ruleset_tests(pytester: pytest.Pytester) -> None:
    pytester.makefile(".cvg", shop=SHOP + PASSING)
    pytester.makepyfile(test_py="def test_python():\n    assert True\n")
    _run(pytester).assert_outcomes(passed=2)


def test_items_run_beside_plugins_that_read_funcargs(pytester: pytest.Pytester) -> None:
    # Found with pytest-lsp installed (the `test` extra has it): its
    # pytest_runtest_call wrapper returns without yielding for an item without
    # `funcargs`, and every ruleset test failed with "did not yield".
    pytester.makeconftest('''
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if not hasattr(item, "funcargs"):
        return
    assert item.funcargs == {}
    yield
''')
    pytester.makefile(".cvg", shop=SHOP + PASSING)
    result = _run(pytester, "-v")
    result.assert_outcomes(passed=1)
