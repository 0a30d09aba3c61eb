"""Check a test's ``expect`` steps against a finished run.

* ``expect T(f: v, …)`` — some fact of type T in the final context has those field
  values (fields not written are free; floats compare with a relative tolerance of
  1e-9 and an absolute one of 1e-12). On failure: the closest facts of T with a field
  diff and their derivations, or when there is none, why each agent that emits T did
  not.
* ``expect no T(…)`` — no fact in the final context matches; on failure the matching
  facts and their derivations.
* ``expect conflict T(key: v, …)`` — a conflict on a T whose key matches was resolved
  (or raised) during the run.
* ``expect status S`` — the job ended with status S.
* ``expect pending T(…)`` — an approval gate still holds a fact that matches when the
  job ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from converge_rules.analysis.explain import Explainer
from converge_rules.analysis.interpret import EvalError, Fact, values_equal
from converge_rules.language.format.formatter import format_value
from converge_rules.language.syntax import nodes as n
from converge_rules.testing.outcome import Failure

CLOSEST = 3
"""How many near-miss facts a failure shows."""

DEPTH = 3
"""How many levels of derivation a failure shows (``converge explain`` shows all)."""


def check_expectations(steps: tuple[n.TestStep, ...], explainer: Explainer,
                       env: Mapping[str, Any]) -> list[Failure]:
    """Every failed expectation among ``steps``, in written order."""
    failures: list[Failure] = []
    for step in steps:
        try:
            failure = _check(step, explainer, env)
        except EvalError as exc:
            failure = Failure(f"cannot evaluate this expectation: {exc.message}", step.span)
        if failure is not None:
            failures.append(failure)
    return failures


def _check(step: n.TestStep, ex: Explainer, env: Mapping[str, Any]) -> Failure | None:
    if isinstance(step, n.ExpectFact):
        return _expect_no(step, ex, env) if step.negated else _expect(step, ex, env)
    if isinstance(step, n.ExpectConflict):
        return _expect_conflict(step, ex, env)
    if isinstance(step, n.ExpectStatus):
        return _expect_status(step, ex)
    if isinstance(step, n.ExpectPending):
        return _expect_pending(step, ex, env)
    return None


def _expect_pending(step: n.ExpectPending, ex: Explainer, env: Mapping[str, Any]
                    ) -> Failure | None:
    pattern = step.pattern
    interp = ex.interp
    assert interp is not None
    held = [(pid, fact) for pid, fact in ex.view.pending.items()
            if fact.type == pattern.type.name]
    if any(interp.match_fact(pattern, fact, env, tolerant=True) is not None
           for _, fact in held):
        return None
    details = [f"{pattern.type.name} facts pending at the end:"] if held else [
        f"no {pattern.type.name} fact is pending at the end"]
    for pid, fact in held[:CLOSEST]:
        fields = ", ".join(f"{k}: {format_value(v)}" for k, v in fact.values.items())
        details.append(f"  {pid}: {fact.type}({fields})")
    if len(held) > CLOSEST:
        details.append(f"  … and {len(held) - CLOSEST} more")
    details.extend(_status_note(ex))
    return Failure(f"expected {_want(pattern, ex, env)} pending approval", step.span,
                   tuple(details))


def _expect(step: n.ExpectFact, ex: Explainer, env: Mapping[str, Any]) -> Failure | None:
    pattern = step.pattern
    if ex.find(pattern, env):
        return None
    message = f"expected {_want(pattern, ex, env)} in the final context"
    candidates = ex.view.live(pattern.type.name)
    details: list[str] = []
    if candidates:
        scored = sorted(((_diff(pattern, fact, ex, env), fact) for fact in candidates),
                        key=lambda item: (len(item[0]), item[1].id or 0))
        details.append(f"no {pattern.type.name} fact matches; the closest "
                       f"{'one is' if len(scored) == 1 else 'ones are'}:")
        for diff, fact in scored[:CLOSEST]:
            assert fact.id is not None
            details.extend("  " + line for line in ex.tree_lines(ex.tree(fact.id, max_depth=DEPTH)))
            details.extend(f"    {field}: expected {want}, got {got}"
                           for field, want, got in diff)
        if len(scored) > CLOSEST:
            details.append(f"  … and {len(scored) - CLOSEST} more {pattern.type.name} "
                           "facts")
    else:
        details.append(f"the final context has no {pattern.type.name} fact at all")
    reasons = ex.why_not(pattern, env)
    if reasons:
        details.append("why not:")
        details.extend("  " + r.text() for r in reasons)
    details.extend(_status_note(ex))
    return Failure(message, step.span, tuple(details))


def _expect_no(step: n.ExpectFact, ex: Explainer, env: Mapping[str, Any]) -> Failure | None:
    found = ex.find(step.pattern, env)
    if not found:
        return None
    details = [f"found {len(found)} matching fact{'s' if len(found) != 1 else ''}:"]
    for fact in found[:CLOSEST]:
        assert fact.id is not None
        details.extend("  " + line for line in ex.tree_lines(ex.tree(fact.id, max_depth=DEPTH)))
    if len(found) > CLOSEST:
        details.append(f"  … and {len(found) - CLOSEST} more")
    return Failure(f"expected no {_want(step.pattern, ex, env)} in the final context",
                   step.span, tuple(details))


def _expect_conflict(step: n.ExpectConflict, ex: Explainer, env: Mapping[str, Any]
                     ) -> Failure | None:
    pattern = step.pattern
    interp = ex.interp
    assert interp is not None
    same_type = [c for c in ex.view.conflicts if c.type == pattern.type.name]
    for conflict in same_type:
        fact = Fact(conflict.type, {**(conflict.winner or {}), **conflict.key})
        if interp.match_fact(pattern, fact, env, tolerant=True) is not None:
            return None
    details = [f"conflicts on {pattern.type.name} during the run:"] if same_type else [
        f"there was no conflict on {pattern.type.name} during the run"]
    for conflict in same_type[:CLOSEST]:
        key = ", ".join(f"{k}: {format_value(v)}" for k, v in conflict.key.items())
        details.append(f"  cycle {conflict.cycle}: key ({key}): {conflict.reason}")
    details.extend(_status_note(ex))
    return Failure(f"expected a conflict on {_want(pattern, ex, env)}", step.span,
                   tuple(details))


def _expect_status(step: n.ExpectStatus, ex: Explainer) -> Failure | None:
    if ex.view.status == step.status.name:
        return None
    details = [f"the job ended with status {ex.view.status or 'unknown'}"]
    if ex.view.status_detail:
        details.append(ex.view.status_detail)
    return Failure(f"expected status {step.status.name}", step.span, tuple(details))


def _status_note(ex: Explainer) -> list[str]:
    if ex.view.status and ex.view.status != "converged":
        detail = f": {ex.view.status_detail}" if ex.view.status_detail else ""
        return [f"note: the job ended with status {ex.view.status}{detail}"]
    return []


def _want(pattern: n.Pattern, ex: Explainer, env: Mapping[str, Any]) -> str:
    return ex.pattern_with(pattern, env)


def _diff(pattern: n.Pattern, fact: Fact, ex: Explainer, env: Mapping[str, Any]
          ) -> list[tuple[str, str, str]]:
    """(field, expected, got) for each constrained field whose value differs."""
    interp = ex.interp
    assert interp is not None
    bound = dict(env)
    diffs = []
    for fm in pattern.fields:
        actual = fact.values.get(fm.field.name)
        constrains, want = interp.field_expected(pattern.type.name, fm, bound)
        if not constrains:
            if want is not None:
                bound[want] = actual
            continue
        if not values_equal(actual, want, tolerant=True):
            enum = (pattern.type.name, fm.field.name) in interp.field_enums
            diffs.append((fm.field.name, format_value(want, enum=enum),
                          format_value(actual, enum=enum)))
    return diffs
