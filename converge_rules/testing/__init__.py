"""Running the ``test`` blocks of rulesets: the runner behind ``converge test`` and the
pytest plugin, rule coverage, and the explanations of a run (derivation trees, why
not) that failures and ``converge explain`` print."""

from converge_rules.testing.coverage import Coverage
from converge_rules.testing.outcome import Failure, Outcome, TestReport
from converge_rules.testing.runner import Suite, load_plugins, load_suite, run_case, run_tests

__all__ = [
    "Coverage",
    "Failure",
    "Outcome",
    "Suite",
    "TestReport",
    "load_plugins",
    "load_suite",
    "run_case",
    "run_tests",
]
