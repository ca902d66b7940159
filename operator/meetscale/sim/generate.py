"""Seeded generator of the sample traces in traces/ (Nghe An province, times in +07:00).

    python -m meetscale.sim.generate --out traces            # all of them
    python -m meetscale.sim.generate monday-briefing --seed 7 --out /tmp

The agencies are the province's: the provincial People's Committee (`ubnd-tinh`,
highest priority), about twenty departments (`so-...`), the 21 district-level People's
Committees (`ubnd-tp-vinh`, `ubnd-tx-...`, `ubnd-huyen-...`) and upper-secondary schools
(`thpt-...`) teaching online. The dates are April 2020, when schools were closed and
the province ran its meetings online (letter 509/STTTT of 3 April 2020).

Every figure comes from `random.Random(seed)`: the same seed gives the same file.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import yaml

__all__ = ["GENERATORS", "TraceBuilder", "generate", "main", "render"]

TZ = timezone(timedelta(hours=7))

DEPARTMENTS = [
    "so-y-te",
    "so-gd-dt",
    "so-tt-tt",
    "so-tai-chinh",
    "so-ke-hoach-dau-tu",
    "so-noi-vu",
    "so-tu-phap",
    "so-cong-thuong",
    "so-nong-nghiep-ptnt",
    "so-tai-nguyen-moi-truong",
    "so-giao-thong-van-tai",
    "so-xay-dung",
    "so-lao-dong-tbxh",
    "so-van-hoa-the-thao",
    "so-du-lich",
    "so-khoa-hoc-cong-nghe",
    "so-ngoai-vu",
    "thanh-tra-tinh",
    "ban-dan-toc",
    "van-phong-ubnd-tinh",
]

DISTRICTS = [
    "ubnd-tp-vinh",
    "ubnd-tx-cua-lo",
    "ubnd-tx-thai-hoa",
    "ubnd-tx-hoang-mai",
    "ubnd-huyen-anh-son",
    "ubnd-huyen-con-cuong",
    "ubnd-huyen-dien-chau",
    "ubnd-huyen-do-luong",
    "ubnd-huyen-hung-nguyen",
    "ubnd-huyen-ky-son",
    "ubnd-huyen-nam-dan",
    "ubnd-huyen-nghi-loc",
    "ubnd-huyen-nghia-dan",
    "ubnd-huyen-que-phong",
    "ubnd-huyen-quy-chau",
    "ubnd-huyen-quy-hop",
    "ubnd-huyen-quynh-luu",
    "ubnd-huyen-tan-ky",
    "ubnd-huyen-thanh-chuong",
    "ubnd-huyen-tuong-duong",
    "ubnd-huyen-yen-thanh",
]

SCHOOLS = [
    "thpt-chuyen-phan-boi-chau",
    "thpt-huynh-thuc-khang",
    "thpt-ha-huy-tap",
    "thpt-le-viet-thuat",
    "thpt-cua-lo",
    "thpt-dien-chau-2",
    "thpt-do-luong-1",
    "thpt-nam-dan-1",
    "thpt-quynh-luu-1",
    "thpt-thanh-chuong-1",
    "thpt-yen-thanh-2",
    "thpt-nghi-loc-1",
]

# (start, end) of the teaching periods ("tiết") of a school day
PERIODS = [
    ("07:00", "07:45"),
    ("07:50", "08:35"),
    ("08:50", "09:35"),
    ("09:40", "10:25"),
    ("10:30", "11:15"),
    ("13:30", "14:15"),
    ("14:20", "15:05"),
    ("15:20", "16:05"),
    ("16:10", "16:55"),
]
SUBJECTS = ["toan", "van", "anh", "ly", "hoa", "sinh", "su", "dia", "gdcd", "tin"]

DEPT_TOPICS = [
    "hop-giao-ban",
    "hop-chuyen-de",
    "trien-khai-ke-hoach",
    "tong-ket-quy-1",
    "hop-xet-duyet",
    "hop-ban-chi-dao",
    "tap-huan",
    "hop-thao-luan",
]
DISTRICT_TOPICS = ["giao-ban-voi-xa", "phong-chong-dich", "hop-ubnd", "trien-khai-chi-thi"]
ADHOC_TOPICS = ["hop-khan", "trao-doi-nhanh", "xu-ly-su-viec", "hop-dot-xuat"]


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

    def build(self) -> dict[str, object]:
        meetings = sorted(self.meetings, key=lambda m: (m.start, m.created_at, m.name))
        return {
            "name": self.name,
            "start": self.start,
            "end": self.end,
            "tickSeconds": 15,
            "pool": {
                "participantsPerBridge": self.ppb,
                "minBridges": self.min_bridges,
                "maxBridges": self.max_bridges,
                "bridgeStartupSeconds": self.startup,
                "drainTimeoutSeconds": 3600,
                "leadTimeSeconds": 600,
            },
            "agencies": [a.to_dict() for a in self.agencies.values()],
            "meetings": meetings,
        }


# ------------------------------------------------------------------------------ traces

MONDAY = date(2020, 4, 6)


def monday_briefing(seed: int) -> TraceBuilder:
    b = TraceBuilder(
        "monday-briefing",
        at(MONDAY, "06:00"),
        at(MONDAY, "20:00"),
        seed,
        "the 8:00 Monday briefing of the provincial People's Committee",
    )
    b.standard_agencies()
    b.monday_briefing(MONDAY)
    b.department_day(
        MONDAY, per_dept=(1, 2), slots=("10:00", "10:30", "13:30", "14:00", "15:00", "15:30")
    )
    b.adhoc_sprinkle(MONDAY, 12)
    return b


def school_day(seed: int) -> TraceBuilder:
    day = MONDAY + timedelta(days=1)
    b = TraceBuilder(
        "school-day",
        at(day, "06:30"),
        at(day, "18:00"),
        seed,
        "online classes every period in twelve upper-secondary schools",
    )
    b.standard_agencies(SCHOOLS, classes=7)
    b.school_classes(day, SCHOOLS, classes=7)
    b.add(
        f"so-gd-dt-hop-hieu-truong-{day:%m%d}",
        "so-gd-dt",
        at(day, "08:00"),
        90,
        150,
        lead_minutes=(24 * 60, 48 * 60),
    )
    b.add(
        f"so-gd-dt-tap-huan-day-hoc-truc-tuyen-{day:%m%d}",
        "so-gd-dt",
        at(day, "14:00"),
        150,
        500,
        lead_minutes=(3 * 24 * 60, 5 * 24 * 60),
        actual=540,
        join_start=-600,
        join_spread=600,
        end_offset=900,
    )
    b.department_day(day, per_dept=(0, 1))
    b.adhoc_sprinkle(day, 6)
    return b


def adhoc_surge(seed: int) -> TraceBuilder:
    day = MONDAY + timedelta(days=2)
    b = TraceBuilder(
        "adhoc-surge",
        at(day, "06:00"),
        at(day, "20:00"),
        seed,
        "a directive at 13:30: seventy agencies convene at once, unbooked",
    )
    b.standard_agencies()
    b.department_day(day)
    b.district_day(day, 12)
    rng = b.rng
    surge_start = at(day, "13:45")
    agencies = [*DEPARTMENTS, *DISTRICTS]
    for _ in range(70):
        start = surge_start + timedelta(minutes=int(rng.triangular(0, 75, 10)))
        agency = rng.choice(agencies)
        declared = rng.choice([30, 50, 60, 80, 100, 120, 150, 200])
        b.adhoc(
            f"{agency}-trien-khai-chi-thi-khan-{day:%m%d}",
            agency,
            start,
            rng.choice([60, 90, 120]),
            declared,
            join_spread=rng.choice([120, 180, 300]),
        )
    b.adhoc_sprinkle(day, 10)
    return b


def wrong_declarations(seed: int) -> TraceBuilder:
    day = MONDAY + timedelta(days=3)
    b = TraceBuilder(
        "wrong-declarations",
        at(day, "06:00"),
        at(day, "20:00"),
        seed,
        "the declared sizes are wrong: no-shows, crowds, empty rooms",
    )
    b.standard_agencies()
    b.department_day(day, per_dept=(2, 4))
    b.district_day(day, 21, slots=("07:30", "08:00", "09:00", "13:30", "14:00", "15:00"))
    rng = b.rng
    for m in b.meetings:
        kind = rng.choices(["over", "under", "empty", "right"], weights=[35, 35, 5, 25])[0]
        if kind == "over":  # declared too many: people did not come
            m.actual = round(m.participants * rng.uniform(0.3, 0.7))
        elif kind == "under":  # declared too few: a crowd came
            m.actual = round(m.participants * rng.uniform(1.3, 2.0))
        elif kind == "empty":
            m.actual = 0
    b.adhoc_sprinkle(day, 10)
    return b


def agency_flood(seed: int) -> TraceBuilder:
    day = MONDAY + timedelta(days=4)
    b = TraceBuilder(
        "agency-flood",
        at(day, "06:00"),
        at(day, "20:00"),
        seed,
        "one district books far beyond its quota; everyone else stays within",
    )
    b.max_bridges = 24
    b.standard_agencies()
    b.department_day(day)
    b.district_day(day, 12)
    flooder = "ubnd-huyen-dien-chau"
    b.meetings = [m for m in b.meetings if m.agency != flooder]
    b.agencies[flooder].max_concurrent_participants = 450
    b.agencies[flooder].max_concurrent_meetings = 4
    rng = b.rng
    for i in range(36):
        b.add(
            f"{flooder}-tap-huan-xa-{i + 1:02d}-{day:%m%d}",
            flooder,
            at(day, "09:00"),
            120,
            150,
            created=at(day, "07:30") + timedelta(minutes=rng.randint(0, 70)),
            actual=rng.randint(135, 165),
        )
    return b


def week(seed: int) -> TraceBuilder:
    b = TraceBuilder(
        "week",
        at(MONDAY, "00:00"),
        at(MONDAY + timedelta(days=7), "00:00"),
        seed,
        "a whole week: classes, briefings, departments, districts, surprises",
    )
    schools = SCHOOLS[:10]
    b.standard_agencies(schools, classes=6)
    rng = b.rng
    for i in range(7):
        day = MONDAY + timedelta(days=i)
        if i < 5:
            b.school_classes(day, schools, classes=6)
            b.department_day(day, per_dept=(1, 3))
            b.district_day(day, rng.randint(10, 16))
            b.adhoc_sprinkle(day, rng.randint(15, 30))
        elif i == 5:  # Saturday: morning classes only
            b.school_classes(day, schools, classes=6, periods=PERIODS[:5])
            b.adhoc_sprinkle(day, 5, window=("08:00", "11:00"))
        if i == 0:
            b.monday_briefing(day)
        if i == 2:  # Wednesday afternoon: a smaller surge of unbooked meetings
            for _ in range(30):
                start = at(day, "14:00") + timedelta(minutes=int(rng.triangular(0, 60, 5)))
                agency = rng.choice([*DEPARTMENTS, *DISTRICTS])
                b.adhoc(
                    f"{agency}-hop-khan-{day:%m%d}",
                    agency,
                    start,
                    rng.choice([60, 90]),
                    rng.choice([30, 50, 80, 100]),
                )
    # some declarations are wrong, as in real life
    for m in b.meetings:
        if m.agency.startswith("thpt-"):
            continue
        r = rng.random()
        if r < 0.08:
            m.actual = round(m.participants * rng.uniform(0.4, 0.7))
        elif r < 0.16:
            m.actual = round(m.participants * rng.uniform(1.2, 1.6))
    return b


GENERATORS: dict[str, Callable[[int], TraceBuilder]] = {
    "monday-briefing": monday_briefing,
    "school-day": school_day,
    "adhoc-surge": adhoc_surge,
    "wrong-declarations": wrong_declarations,
    "agency-flood": agency_flood,
    "week": week,
}
DEFAULT_SEED = 2020


# ------------------------------------------------------------------------------ output


def _ts(t: datetime) -> str:
    return t.isoformat()


def _meeting_line(m: Meeting) -> str:
    parts = [
        f"name: {m.name}",
        f"agency: {m.agency}",
        f"createdAt: {_ts(m.created_at)}",
        f"start: {_ts(m.start)}",
        f"end: {_ts(m.end)}",
        f"participants: {m.participants}",
    ]
    if m.confidential:
        parts.append("confidential: true")
    if m.priority_class != "normal":
        parts.append(f"priorityClass: {m.priority_class}")
    actual = [f"participants: {m.actual}"]
    if m.join_start:
        actual.append(f"joinStartOffsetSeconds: {m.join_start}")
    if m.join_spread != 300:
        actual.append(f"joinSpreadSeconds: {m.join_spread}")
    if m.end_offset:
        actual.append(f"endOffsetSeconds: {m.end_offset}")
    parts.append("actual: {" + ", ".join(actual) + "}")
    return "  - {" + ", ".join(parts) + "}"


def render(builder: TraceBuilder, seed: int) -> str:
    """The trace as YAML: header in block style, one meeting per line."""
    data = builder.build()
    meetings = data.pop("meetings")
    assert isinstance(meetings, list)
    head = dict(data)
    head["start"] = _ts(builder.start)
    head["end"] = _ts(builder.end)
    text = yaml.dump(head, sort_keys=False, allow_unicode=True, width=100)
    # times unquoted so YAML reads them as timestamps, like the hand-written traces
    text = text.replace(f"'{head['start']}'", str(head["start"]))
    text = text.replace(f"'{head['end']}'", str(head["end"]))
    lines = [
        f"# {builder.name}: {builder.description}.",
        f"# Generated by `python -m meetscale.sim.generate {builder.name} --seed {seed}`;"
        " regenerate rather than edit.",
        f"# {len(meetings)} meetings; times in +07:00 (Nghe An).",
        text.rstrip("\n"),
        "meetings:",
        *(_meeting_line(m) for m in meetings),
    ]
    return "\n".join(lines) + "\n"


def generate(name: str, seed: int = DEFAULT_SEED) -> str:
    if name not in GENERATORS:
        raise KeyError(f"unknown trace {name!r}; choose from {', '.join(GENERATORS)}")
    return render(GENERATORS[name](seed), seed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meetscale.sim.generate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names", nargs="*", help=f"traces (default: all of {', '.join(GENERATORS)})"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", default="traces", help="directory (default: %(default)s)")
    args = parser.parse_args(argv)
    from meetscale.sim.trace import load_trace

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names or list(GENERATORS):
        if name not in GENERATORS:
            parser.error(f"unknown trace {name!r}; choose from {', '.join(GENERATORS)}")
        path = out / f"{name}.yaml"
        path.write_text(generate(name, args.seed), encoding="utf-8")
        trace = load_trace(path)  # what we write must load
        print(f"{path}: {len(trace.meetings)} meetings", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
