"""A range-add / range-max segment tree over integer slots (pure, no I/O).

Used by the admission core for the pool-wide and cohort-wide booked demand:
`add(lo, hi, v)` books `v` on slots `[lo, hi)`, `max(lo, hi)` is the peak booked
on those slots. Both are O(log n). Internal nodes keep a pending add that applies
to their whole subtree (`_d`); `_t[p]` is the max of node `p`'s subtree not counting
the pending adds of its ancestors, which are pushed down along the two boundary
paths before a query.
"""

from __future__ import annotations

from collections.abc import Sequence


class MaxAddTree:
    """Range add, range max over `n` integer slots, built from initial values."""

    __slots__ = ("_d", "_height", "_n", "_size", "_t")

    def __init__(self, values: Sequence[int]) -> None:
        n = len(values)
        size = 1
        while size < n:
            size *= 2
        t = [0] * (2 * size)
        t[size : size + n] = values
        for p in range(size - 1, 0, -1):
            a = t[2 * p]
            b = t[2 * p + 1]
            t[p] = a if a > b else b
        self._n = n
        self._size = size
        self._height = size.bit_length() - 1
        self._t = t
        self._d = [0] * size

    def __len__(self) -> int:
        return self._n

    def _push(self, p: int) -> None:
        t = self._t
        d = self._d
        size = self._size
        for s in range(self._height, 0, -1):
            i = p >> s
            v = d[i]
            if v:
                c = 2 * i
                t[c] += v
                t[c + 1] += v
                if c < size:
                    d[c] += v
                    d[c + 1] += v
                d[i] = 0

    def _rebuild(self, p: int) -> None:
        t = self._t
        d = self._d
        p >>= 1
        while p:
            a = t[2 * p]
            b = t[2 * p + 1]
            t[p] = (a if a > b else b) + d[p]
            p >>= 1

    def add(self, lo: int, hi: int, value: int) -> None:
        """Add `value` to every slot in `[lo, hi)`."""
        if lo >= hi or not value:
            return
        if lo < 0 or hi > self._n:
            raise IndexError(f"range [{lo}, {hi}) outside [0, {self._n})")
        t = self._t
        d = self._d
        size = self._size
        left = lo + size
        right = hi + size
        first = left
        last = right - 1
        while left < right:
            if left & 1:
                t[left] += value
                if left < size:
                    d[left] += value
                left += 1
            if right & 1:
                right -= 1
                t[right] += value
                if right < size:
                    d[right] += value
            left >>= 1
            right >>= 1
        self._rebuild(first)
        self._rebuild(last)

    def max(self, lo: int, hi: int) -> int:
        """The largest slot value in `[lo, hi)` (which must not be empty)."""
        if lo >= hi or lo < 0 or hi > self._n:
            raise IndexError(f"empty or invalid range [{lo}, {hi}) of [0, {self._n})")
        size = self._size
        left = lo + size
        right = hi + size
        self._push(left)
        self._push(right - 1)
        t = self._t
        res = t[left]
        while left < right:
            if left & 1:
                res = max(res, t[left])
                left += 1
            if right & 1:
                right -= 1
                res = max(res, t[right])
            left >>= 1
            right >>= 1
        return res

    def slice(self, lo: int, hi: int) -> list[int]:
        """The values of slots `[lo, hi)` (O(hi - lo + log n))."""
        if lo >= hi:
            return []
        size = self._size
        t = self._t
        d = self._d
        for s in range(self._height, 0, -1):
            for i in range((lo + size) >> s, ((hi - 1 + size) >> s) + 1):
                v = d[i]
                if v:
                    c = 2 * i
                    t[c] += v
                    t[c + 1] += v
                    if c < size:
                        d[c] += v
                        d[c + 1] += v
                    d[i] = 0
        return t[lo + size : hi + size]

    def values(self) -> list[int]:
        """Every slot's value (O(n))."""
        return self.slice(0, self._n)


class FlatSeries:
    """The same interface over a plain list: O(hi - lo) per operation, but in C for `max`.

    Faster than the tree for the few slots most agencies have.
    """

    __slots__ = ("_v",)

    def __init__(self, values: Sequence[int]) -> None:
        self._v = list(values)

    def __len__(self) -> int:
        return len(self._v)

    def add(self, lo: int, hi: int, value: int) -> None:
        if lo < hi and value:
            v = self._v
            v[lo:hi] = [x + value for x in v[lo:hi]]

    def max(self, lo: int, hi: int) -> int:
        if lo >= hi or lo < 0 or hi > len(self._v):
            raise IndexError(f"empty or invalid range [{lo}, {hi}) of [0, {len(self._v)})")
        return max(self._v[lo:hi])

    def slice(self, lo: int, hi: int) -> list[int]:
        return self._v[lo:hi]

    def values(self) -> list[int]:
        return list(self._v)


FLAT_MAX_SLOTS = 256
"""Series with more slots than this use the tree."""


def series(values: Sequence[int]) -> MaxAddTree | FlatSeries:
    """A range-add / range-max series: a list when short, a segment tree when long."""
    if len(values) > FLAT_MAX_SLOTS:
        return MaxAddTree(values)
    return FlatSeries(values)
