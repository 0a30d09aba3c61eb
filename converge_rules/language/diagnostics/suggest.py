"""Spelling suggestions for names the checker does not know ("did you mean …").

A suggestion compares the unknown name with the names it could have meant.
:func:`closest` and :func:`did_you_mean` compare with every candidate, which is right
for a one-off question. The checker asks many questions of the same large pools (every
fact type of a ruleset, every agent, every member of an enum): it builds a
:class:`Vocabulary` once per pool, so each question costs about the same however large
the pool is, and checking stays linear in the size of the ruleset.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

EXHAUSTIVE = 64
"""Pools of up to this many names are compared name by name (difflib's ratio with every
candidate). A larger pool is first narrowed by an index to the names within one edit of
the unknown name, ignoring case."""

_LONGEST_INDEXED = 64  # a longer name is indexed (and looked up) only as a whole


def closest(name: str, candidates: Iterable[str], *, limit: int = 3) -> list[str]:
    """The candidates most like ``name``, best first (at most ``limit``; maybe none).

    Case differences alone always count as close, so ``price`` suggests ``Price``.
    """
    return _ranked(name, sorted(set(candidates)), limit)


def did_you_mean(name: str, candidates: Iterable[str], *, otherwise: str = "") -> str:
    """A ``help`` line: "did you mean `x`?" with the closest candidates, or ``otherwise``
    when nothing is close."""
    return _phrase(closest(name, candidates), otherwise)


class Vocabulary:
    """A pool of names to suggest from, asked many times.

    For a pool of at most :data:`EXHAUSTIVE` names the answers are exactly those of
    :func:`closest`. For a larger pool, only the names that meet the unknown name, ignoring
    case, once at most one character is deleted from each (one insertion, deletion,
    substitution, swap of neighbours or moved character apart) are ranked: an index
    built on the first question finds them without looking at the others, so a question
    costs the same whatever the size of the pool.
    """

    __slots__ = ("_index", "_pool")

    def __init__(self, names: Iterable[str]) -> None:
        self._pool = sorted(set(names))
        self._index: dict[str, list[str]] | None = None

    def __len__(self) -> int:
        return len(self._pool)

    def closest(self, name: str, *, also: Iterable[str] = (), limit: int = 3) -> list[str]:
        """The names most like ``name``, best first, as :func:`closest` ranks them;
        ``also`` are a few more candidates (compared with ``name`` one by one)."""
        extra = set(also)
        if len(self._pool) <= EXHAUSTIVE:
            return _ranked(name, sorted(extra.union(self._pool)), limit)
        return _ranked(name, sorted(extra.union(self._near(name))), limit)

    def did_you_mean(self, name: str, *, also: Iterable[str] = (),
                     otherwise: str | Callable[[], str] = "") -> str:
        """As :func:`did_you_mean`, from this pool (and ``also``). ``otherwise`` may be
        a function, called only when nothing is close (a list of every name in a large
        pool is not worth building for each question)."""
        near = self.closest(name, also=also)
        if not near and callable(otherwise):
            return otherwise()
        return _phrase(near, otherwise if isinstance(otherwise, str) else "")

    def _near(self, name: str) -> set[str]:
        index = self._index
        if index is None:
            index = self._index = {}
            for candidate in self._pool:
                for key in _one_deleted(candidate.lower()):
                    index.setdefault(key, []).append(candidate)
        found: set[str] = set()
        for key in _one_deleted(name.lower()):
            found.update(index.get(key, ()))
        return found


def one_edit_apart(name: str, other: str) -> bool:
    """Whether ``name`` and ``other`` differ, ignoring case, by at most one insertion,
    deletion or substitution, or two neighbours swapped: how a typo differs, where a
    name that only starts like another (``ReadingStats``, ``Reading``) does not."""
    return bool(_one_deleted(name.lower()) & _one_deleted(other.lower()))


def _one_deleted(word: str) -> set[str]:
    """``word`` and every string one deletion shorter than it (two words one substitution
    apart delete to the same string, as do two words one swap apart)."""
    if len(word) > _LONGEST_INDEXED:
        return {word}
    return {word} | {word[:i] + word[i + 1:] for i in range(len(word))}


def _ranked(name: str, pool: list[str], limit: int) -> list[str]:
    """Case-insensitive equals of ``name`` first, then difflib's closest (ratio ≥ 0.6);
    ``pool`` sorted and without duplicates."""
    folded = [c for c in pool if c.lower() == name.lower() and c != name]
    rest = difflib.get_close_matches(name, pool, n=limit, cutoff=0.6)
    out = folded + [c for c in rest if c not in folded and c != name]
    return out[:limit]


def _phrase(near: list[str], otherwise: str) -> str:
    if not near:
        return otherwise
    if len(near) == 1:
        return f"did you mean `{near[0]}`?"
    return "did you mean " + ", ".join(f"`{n}`" for n in near[:-1]) + f" or `{near[-1]}`?"
