"""Root budgets: what a job may use, and what it used.

The report is part of the result document, so it holds no timings: the time budgets
report their limit, how many agent runs overran (``agent_timeout``) and whether the
job ran out of time, never a measured duration. ``max_string_length`` and
``max_list_length`` report their limit only (values are measured, not tallied);
``memory`` has no limit of its own (it is the process's) and reports only whether a
``MemoryError`` ended the job.
"""

from __future__ import annotations

from typing import Any

from converge_rules.program import Budgets
from converge_rules.records import record

BUDGET_NAMES = (
    "max_facts", "max_cycles", "max_agents", "max_tool_calls", "agent_timeout", "job_timeout",
    "max_string_length", "max_list_length", "memory",
)


@record(frozen=False)
class BudgetMeter:
    """Usage against the root budgets; ``exceeded`` names the budget that ended the job."""

    budgets: Budgets
    facts_peak: int = 0
    cycles: int = 0
    agents_peak: int = 0
    tool_calls: int = 0
    timeouts: int = 0
    exceeded: str | None = None

    def used(self, name: str) -> int | None:
        if name == "max_facts":
            return self.facts_peak
        if name == "max_cycles":
            return self.cycles
        if name == "max_agents":
            return self.agents_peak
        if name == "max_tool_calls":
            return self.tool_calls
        if name == "agent_timeout":
            return self.timeouts
        return None

    def report(self) -> dict[str, dict[str, Any]]:
        """``{name: {"limit", "used", "exceeded"}}`` for every budget (limit ``None``
        when unlimited)."""
        return {
            name: {
                "limit": getattr(self.budgets, name, None),
                "used": self.used(name),
                "exceeded": self.exceeded == name,
            }
            for name in BUDGET_NAMES
        }
