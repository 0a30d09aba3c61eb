"""Checks: a parsed ruleset (and its imports) → a :class:`~.checked.CheckedRuleset` with
every diagnostic — names, types, tiers and strata, policies, budgets, tools, tests."""
