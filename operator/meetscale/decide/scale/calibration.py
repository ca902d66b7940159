"""How many of an agency's declared participants come: a correction learnt from its past
Meetings (pure).

Each past Meeting gives one sample: what it declared and the most participants its
conference had at once. The correction is the median of peak / declared, shrunk toward 1
while there are few samples and bounded, so that one odd meeting moves nothing and no
history can make the operator provision almost nothing; its spread (how far single
meetings stray from it) sizes the margin a bridge keeps for the conferences it shares.
It applies to the booked term only: what an agency may book (its quota) always counts
the declaration.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["PRIOR", "Attendance", "Calibration", "calibrate"]

#: samples the prior counts as (a new agency is taken at its word)
PRIOR_WEIGHT: Final = 5
#: bounds of the correction: never provision below a quarter, nor above twice, of a
#: declaration
FLOOR: Final = 0.25
CAP: Final = 2.0
#: the relative spread of a meeting's attendance around what is expected: 10 % when
#: nothing is known (people come give or take a tenth), at most 100 %
DEFAULT_SPREAD: Final = 0.1
MAX_SPREAD: Final = 1.0
_MAD_TO_SIGMA: Final = 1.4826  # a normal distribution's sigma from its median deviation


@dataclass(frozen=True, slots=True)
class Attendance:
    """One past Meeting: what it declared, and the most who were there at once."""

    declared: int
    peak: int


@dataclass(frozen=True, slots=True)
class Calibration:
    """``factor``: expected = declared x factor; ``spread``: a meeting's relative standard
    deviation around that; ``samples``: how many past Meetings it was learnt from."""

    factor: float
    spread: float
    samples: int

    def expected(self, declared: int) -> int:
        return max(1, round(declared * self.factor))

    def describe(self) -> str:
        """A sentence for events: what the agency's history says."""
        if self.samples == 0:
            return "no past meetings: provisioning its declarations as given"
        books = 1 / self.factor if self.factor > 0 else float("inf")
        return (
            f"books {books:.1f}x what joins over {self.samples} past meetings; "
            f"provisioning {self.factor:.2f}x of its declarations (spread {self.spread:.2f})"
        )


PRIOR = Calibration(1.0, DEFAULT_SPREAD, 0)


def _shrink(value: float, prior: float, n: int) -> float:
    return (n * value + PRIOR_WEIGHT * prior) / (n + PRIOR_WEIGHT)


def calibrate(history: Sequence[Attendance]) -> Calibration:
    """The correction of one agency's declarations from its past Meetings.

    >>> calibrate([])
    Calibration(factor=1.0, spread=0.1, samples=0)
    >>> c = calibrate([Attendance(100, 30)] * 20)  # books 3.3x what joins
    >>> round(c.factor, 2), round(c.spread, 2)
    (0.44, 0.02)
    >>> calibrate([Attendance(100, 10)] * 200).factor  # never below the floor
    0.25
    """
    ratios = [a.peak / a.declared for a in history if a.declared > 0 and a.peak >= 0]
    n = len(ratios)
    if n == 0:
        return PRIOR
    median = statistics.median(ratios)
    factor = min(CAP, max(FLOOR, _shrink(median, 1.0, n)))
    if median > 0:
        mad = statistics.median(abs(r / median - 1.0) for r in ratios)
        spread = _shrink(_MAD_TO_SIGMA * mad, DEFAULT_SPREAD, n)
    else:
        spread = MAX_SPREAD
    return Calibration(factor, min(MAX_SPREAD, max(0.0, spread)), n)
