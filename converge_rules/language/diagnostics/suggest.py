"""Spelling suggestions for names the checker does not know ("did you mean …")."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, candidates: Iterable[str], *, limit: int = 3) -> list[str]:
    """The candidates most like ``name``, best first (at most ``limit``; maybe none).

    Case differences alone always count as close, so ``price`` suggests ``Price``.
    """
    pool = sorted(set(candidates))
    folded = [c for c in pool if c.lower() == name.lower() and c != name]
    rest = difflib.get_close_matches(name, pool, n=limit, cutoff=0.6)
    out = folded + [c for c in rest if c not in folded and c != name]
    return out[:limit]


def did_you_mean(name: str, candidates: Iterable[str], *, otherwise: str = "") -> str:
    """A ``help`` line: "did you mean `x`?" with the closest candidates, or ``otherwise``
    when nothing is close."""
    near = closest(name, candidates)
    if not near:
        return otherwise
    if len(near) == 1:
        return f"did you mean `{near[0]}`?"
    return "did you mean " + ", ".join(f"`{n}`" for n in near[:-1]) + f" or `{near[-1]}`?"
