"""The fingerprints of the contexts a job went through, to find a return to one.

A job whose context can shrink checks after every cycle whether it is back in a state
it was in before (status ``oscillating``). It keeps one fingerprint per cycle for the
whole job, so each must be small: a dict of ``(fp1, fp2)`` tuples kept about 200
bytes a cycle (the tuple, two 64-bit ints, the cycle's int and the dict slot); here
they are flat arrays and an open-addressing index over them, 40 to 56 bytes a cycle.
"""

from __future__ import annotations

from array import array


class FingerprintIndex:
    """Fingerprints (two 64-bit ints) and the cycle each was first seen after."""

    __slots__ = ("_cycles", "_fp1", "_fp2", "_mask", "_table")

    def __init__(self) -> None:
        self._fp1 = array("Q")
        self._fp2 = array("Q")
        self._cycles = array("q")
        self._table = array("q", [-1]) * 64  # position in the arrays, -1 for empty
        self._mask = 63

    def __len__(self) -> int:
        return len(self._cycles)

    def get(self, fingerprint: tuple[int, int]) -> int | None:
        """The cycle after which the context had ``fingerprint``, or None."""
        fp1, fp2 = fingerprint
        table, mask, first, second = self._table, self._mask, self._fp1, self._fp2
        i = fp1 & mask
        while True:
            slot = table[i]
            if slot < 0:
                return None
            if first[slot] == fp1 and second[slot] == fp2:
                return self._cycles[slot]
            i = (i + 1) & mask

    def add(self, fingerprint: tuple[int, int], cycle: int) -> None:
        """Note that the context had ``fingerprint`` after ``cycle``. The caller has
        found it not noted yet (:meth:`get`): the cycle loop asks first anyway."""
        fp1, fp2 = fingerprint
        self._fp1.append(fp1)
        self._fp2.append(fp2)
        self._cycles.append(cycle)
        if 2 * len(self._cycles) > len(self._table):  # at most half full
            self._table = array("q", [-1]) * (2 * len(self._table))
            self._mask = len(self._table) - 1
            for slot in range(len(self._cycles)):
                self._place(slot)
        else:
            self._place(len(self._cycles) - 1)

    def _place(self, slot: int) -> None:
        table, mask = self._table, self._mask
        i = self._fp1[slot] & mask
        while table[i] >= 0:
            i = (i + 1) & mask
        table[i] = slot
