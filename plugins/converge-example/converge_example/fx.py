"""The ``fx_rate`` tool: its function and pydantic models, imported when a job calls
the tool (``converge check`` reads the types declared with ``FX_RATE`` in
``converge_example``)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

#: US dollars per unit of each currency: fixed demo values, not market data.
DEMO_RATES: Mapping[str, float] = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "JPY": 0.0067,
                                   "CHF": 1.13}


class FxArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency: str


class FxRate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    usd: float


def fx_rate(args: FxArgs) -> FxRate:
    """The demo rate of ``args.currency``; an unknown currency fails the call."""
    currency = args.currency.upper()
    if currency not in DEMO_RATES:
        known = ", ".join(sorted(DEMO_RATES))
        raise ValueError(f"no demo rate for {currency!r} (known: {known})")
    return FxRate(usd=DEMO_RATES[currency])
