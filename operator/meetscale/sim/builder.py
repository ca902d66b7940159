"""Building a trace: agencies, meetings and their actual attendance, drawn from a seeded
`random.Random`, rendered as the trace format's YAML."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from meetscale.sim.province import (
    ADHOC_TOPICS,
    DEPARTMENTS,
    DEPT_TOPICS,
    DISTRICT_TOPICS,
    DISTRICTS,
    PERIODS,
    SUBJECTS,
    TZ,
)

__all__ = ["Agency", "Meeting", "TraceBuilder", "at"]


def at(day: date, hhmm: str) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime.combine(day, time(h, m), tzinfo=TZ)


@dataclass
class Agency:
    name: str
    priority: int
    weight: int
    max_concurrent_participants: int
    max_concurrent_meetings: int
    max_meeting_participants: int
    max_priority_class: str = "high"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "priority": self.priority,
            "weight": self.weight,
            "maxConcurrentParticipants": self.max_concurrent_participants,
            "maxConcurrentMeetings": self.max_concurrent_meetings,
            "maxMeetingParticipants": self.max_meeting_participants,
        }
        if self.max_priority_class != "high":
            out["maxPriorityClass"] = self.max_priority_class
        return out


@dataclass
class Meeting:
    name: str
    agency: str
    created_at: datetime
    start: datetime
    end: datetime
    participants: int
    actual: int
    join_start: int = 0
    join_spread: int = 300
    end_offset: int = 0
    confidential: bool = False
    priority_class: str = "normal"


@dataclass
class TraceBuilder:
    name: str
    start: datetime
    end: datetime
    seed: int
    description: str = ""
    min_bridges: int = 2
    max_bridges: int = 40
    ppb: int = 300
    startup: int = 120
    confidential_max_bridges: int = 4  # the confidential pool (when a meeting is confidential)
    agencies: dict[str, Agency] = field(default_factory=dict)
    meetings: list[Meeting] = field(default_factory=list)
    _names: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # -- agencies ------------------------------------------------------------------

    def agency(self, name: str, **kw: int | str) -> None:
        defaults: dict[str, int | str] = {
            "priority": 0,
            "weight": 1,
            "max_concurrent_participants": 400,
            "max_concurrent_meetings": 4,
            "max_meeting_participants": 200,
        }
        defaults.update(kw)
        self.agencies[name] = Agency(name=name, **defaults)  # type: ignore[arg-type]

    def standard_agencies(self, schools: Sequence[str] = (), classes: int = 0) -> None:
        self.agency(
            "ubnd-tinh",
            priority=1000,
            weight=4,
            max_concurrent_participants=3000,
            max_concurrent_meetings=40,
            max_meeting_participants=1000,
            max_priority_class="provincial",
        )
        for d in DEPARTMENTS:
            if d == "so-gd-dt":
                self.agency(
                    d,
                    priority=100,
                    weight=3,
                    max_concurrent_participants=1500,
                    max_concurrent_meetings=10,
                    max_meeting_participants=600,
                )
            elif d == "so-y-te":
                self.agency(
                    d,
                    priority=200,
                    weight=3,
                    max_concurrent_participants=900,
                    max_concurrent_meetings=8,
                    max_meeting_participants=300,
                )
            else:
                self.agency(
                    d,
                    priority=100,
                    weight=2,
                    max_concurrent_participants=600,
                    max_concurrent_meetings=6,
                    max_meeting_participants=300,
                )
        for d in DISTRICTS:
            big = d == "ubnd-tp-vinh"
            self.agency(
                d,
                priority=50,
                weight=2 if big else 1,
                max_concurrent_participants=600 if big else 400,
                max_concurrent_meetings=6 if big else 4,
                max_meeting_participants=250,
            )
        for s in schools:
            # back-to-back periods overlap by the pre-join margin: room for two periods
            self.agency(
                s,
                priority=10,
                weight=1,
                max_concurrent_participants=2 * classes * 45 + 100,
                max_concurrent_meetings=2 * classes + 2,
                max_meeting_participants=100,
            )

    # -- meetings ------------------------------------------------------------------

    def unique(self, base: str) -> str:
        name = base
        i = 2
        while name in self._names:
            name = f"{base}-{i}"
            i += 1
        self._names.add(name)
        return name

    def add(
        self,
        base: str,
        agency: str,
        start: datetime,
        minutes: int,
        declared: int,
        *,
        created: datetime | None = None,
        lead_minutes: tuple[int, int] | None = None,
        actual: int | None = None,
        accuracy: float = 0.1,
        join_start: int | None = None,
        join_spread: int | None = None,
        end_offset: int | None = None,
        confidential: bool = False,
        priority_class: str = "normal",
    ) -> Meeting:
        rng = self.rng
        if created is None:
            lo, hi = lead_minutes or (24 * 60, 3 * 24 * 60)
            created = start - timedelta(minutes=rng.randint(lo, hi))
            created = created.replace(second=0, microsecond=0)
        if actual is None:
            actual = max(0, round(declared * rng.gauss(1.0, accuracy)))
        if join_start is None:
            join_start = rng.choice([-600, -420, -300, -180, -120, -60, 0, 60, 120])
        if join_spread is None:
            join_spread = rng.choice([180, 240, 300, 420, 600])
        if end_offset is None:
            end_offset = rng.choice([-600, -300, 0, 0, 300, 600, 900, 1200])
        m = Meeting(
            name=self.unique(base),
            agency=agency,
            created_at=min(created, start),
            start=start,
            end=start + timedelta(minutes=minutes),
            participants=max(1, declared),
            actual=actual,
            join_start=join_start,
            join_spread=join_spread,
            end_offset=end_offset,
            confidential=confidential,
            priority_class=priority_class,
        )
        self.meetings.append(m)
        return m

    def adhoc(
        self, base: str, agency: str, start: datetime, minutes: int, declared: int, **kw: object
    ) -> Meeting:
        kw.setdefault("join_start", self.rng.choice([0, 0, 30, 60]))
        return self.add(base, agency, start, minutes, declared, created=start, **kw)  # type: ignore[arg-type]

    # -- building blocks -------------------------------------------------------------

    def school_classes(
        self,
        day: date,
        schools: Sequence[str],
        classes: int,
        periods: Sequence[tuple[str, str]] = PERIODS,
    ) -> None:
        """Every class of every school has an online lesson every period, booked the
        week before; students join from two minutes early, teachers run a little over."""
        rng = self.rng
        monday = day - timedelta(days=day.weekday())
        created = at(monday - timedelta(days=3), "16:00")  # timetable out on Friday
        for school in schools:
            grades = ["12a", "11a", "10a"]
            for c in range(classes):
                cls = f"{grades[c % 3]}{c // 3 + 1}"
                for p, (s, e) in enumerate(periods, start=1):
                    start = at(day, s)
                    minutes = int((at(day, e) - start).total_seconds() // 60)
                    declared = 45
                    present = rng.choices(
                        [rng.randint(36, 45), rng.randint(25, 35), 0], weights=[88, 11, 1]
                    )[0]
                    self.add(
                        f"{school}-{cls}-{SUBJECTS[(c + p) % len(SUBJECTS)]}-t{p}-{day:%m%d}",
                        school,
                        start,
                        minutes,
                        declared,
                        created=created,
                        actual=present,
                        join_start=-120,
                        join_spread=rng.choice([120, 180, 240]),
                        end_offset=rng.choice([0, 0, 60, 120]),
                    )

    def department_day(
        self,
        day: date,
        per_dept: tuple[int, int] = (1, 3),
        slots: Sequence[str] = (
            "08:00",
            "08:30",
            "09:00",
            "10:00",
            "13:30",
            "14:00",
            "15:00",
            "15:30",
        ),
        accuracy: float = 0.1,
    ) -> None:
        rng = self.rng
        for d in DEPARTMENTS:
            used: list[tuple[datetime, datetime]] = []
            for _ in range(rng.randint(*per_dept)):
                start = at(day, rng.choice(slots))
                minutes = rng.choice([60, 90, 90, 120, 150])
                end = start + timedelta(minutes=minutes)
                if sum(1 for s, e in used if s < end and start < e) >= 2:
                    continue
                used.append((start, end))
                declared = rng.choice([20, 30, 40, 60, 80, 100, 120, 150, 200])
                self.add(
                    f"{d}-{rng.choice(DEPT_TOPICS)}-{day:%m%d}",
                    d,
                    start,
                    minutes,
                    declared,
                    accuracy=accuracy,
                )

    def district_day(
        self,
        day: date,
        count: int,
        slots: Sequence[str] = ("07:30", "08:00", "13:30", "14:00", "15:00"),
        accuracy: float = 0.1,
    ) -> None:
        rng = self.rng
        for d in rng.sample(DISTRICTS, count):
            start = at(day, rng.choice(slots))
            self.add(
                f"{d}-{rng.choice(DISTRICT_TOPICS)}-{day:%m%d}",
                d,
                start,
                rng.choice([60, 90, 120]),
                rng.choice([40, 60, 80, 100, 150]),
                accuracy=accuracy,
            )

    def adhoc_sprinkle(
        self,
        day: date,
        count: int,
        window: tuple[str, str] = ("08:00", "16:30"),
        agencies: Sequence[str] | None = None,
    ) -> None:
        rng = self.rng
        lo, hi = at(day, window[0]), at(day, window[1])
        pool = list(agencies or [*DEPARTMENTS, *DISTRICTS])
        span = int((hi - lo).total_seconds() // 60)
        for _ in range(count):
            start = lo + timedelta(minutes=rng.randint(0, span))
            agency = rng.choice(pool)
            self.adhoc(
                f"{agency}-{rng.choice(ADHOC_TOPICS)}-{day:%m%d}",
                agency,
                start,
                rng.choice([20, 30, 45, 60]),
                rng.choice([5, 10, 15, 20, 30, 50]),
            )

    def monday_briefing(self, day: date) -> None:
        """The provincial People's Committee's 8:00 Monday briefing with all districts and
        departments, and the districts relaying it to their communes afterwards."""
        rng = self.rng
        friday = day - timedelta(days=3)
        self.add(
            f"giao-ban-tuan-ubnd-tinh-{day:%m%d}",
            "ubnd-tinh",
            at(day, "08:00"),
            120,
            800,
            created=at(friday, "10:00"),
            actual=860,
            join_start=-600,
            join_spread=420,
            end_offset=1200,
            priority_class="provincial",
        )
        # a confidential (MẬT) steering meeting in the afternoon
        self.add(
            f"ban-chi-dao-phong-chong-dich-mat-{day:%m%d}",
            "ubnd-tinh",
            at(day, "14:00"),
            90,
            120,
            created=at(day, "09:00"),
            actual=110,
            join_start=-300,
            join_spread=300,
            end_offset=600,
            confidential=True,
            priority_class="provincial",
        )
        for d in DISTRICTS:
            start = at(day, rng.choice(["10:30", "11:00", "13:30", "14:00"]))
            self.add(
                f"{d}-trien-khai-ket-luan-giao-ban-{day:%m%d}",
                d,
                start,
                rng.choice([60, 90]),
                rng.choice([60, 80, 100, 120, 150]),
                created=at(friday, "15:00") + timedelta(minutes=rng.randint(0, 2000)),
            )

    def _pool(self, min_bridges: int, max_bridges: int) -> dict[str, int]:
        return {
            "participantsPerBridge": self.ppb,
            "minBridges": min_bridges,
            "maxBridges": max_bridges,
            "bridgeStartupSeconds": self.startup,
            "drainTimeoutSeconds": 3600,
            "leadTimeSeconds": 600,
        }

    def build(self) -> dict[str, object]:
        """The trace; confidential meetings get a pool of their own (no bridge when none
        is booked)."""
        meetings = sorted(self.meetings, key=lambda m: (m.start, m.created_at, m.name))
        out: dict[str, object] = {
            "name": self.name,
            "start": self.start,
            "end": self.end,
            "tickSeconds": 15,
            "pool": self._pool(self.min_bridges, self.max_bridges),
        }
        if any(m.confidential for m in meetings):
            out["confidentialPool"] = self._pool(0, self.confidential_max_bridges)
        out["agencies"] = [a.to_dict() for a in self.agencies.values()]
        out["meetings"] = meetings
        return out


# ------------------------------------------------------------------------------ traces
