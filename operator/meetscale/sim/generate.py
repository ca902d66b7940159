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
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml

from meetscale.sim.builder import Meeting, TraceBuilder, at
from meetscale.sim.province import DEPARTMENTS, DISTRICTS, PERIODS, SCHOOLS

__all__ = ["DAYS", "GENERATORS", "TraceBuilder", "generate", "main", "render"]

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


def over_declaring(seed: int) -> TraceBuilder:
    day = MONDAY + timedelta(days=7)
    b = TraceBuilder(
        "over-declaring",
        at(day, "06:00"),
        at(day, "20:00"),
        seed,
        "a third of the agencies book three to ten times the people who come, every time",
    )
    b.standard_agencies()
    b.department_day(day, per_dept=(3, 5))
    b.district_day(day, 21, slots=("07:30", "08:00", "09:00", "10:30", "13:30", "14:00", "15:30"))
    rng = b.rng
    agencies = sorted({m.agency for m in b.meetings})
    factor = {a: rng.uniform(3.0, 10.0) for a in rng.sample(agencies, len(agencies) // 3)}
    for m in b.meetings:
        if m.agency in factor:
            m.actual = max(1, round(m.participants / factor[m.agency]))
    b.adhoc_sprinkle(day, 10)
    return b


CONFIDENTIAL_AGENCIES = ("ubnd-tinh", "so-noi-vu", "so-tai-chinh", "thanh-tra-tinh")


def confidential_day(seed: int) -> TraceBuilder:
    day = MONDAY + timedelta(days=8)
    b = TraceBuilder(
        "confidential-day",
        at(day, "06:00"),
        at(day, "20:00"),
        seed,
        "confidential meetings all day on a pool of their own, beside a shared pool at its limit",
    )
    b.max_bridges = 12
    b.confidential_max_bridges = 6
    b.standard_agencies()
    b.department_day(day, per_dept=(2, 3))
    b.district_day(day, 21)
    b.adhoc_sprinkle(day, 30)
    rng = b.rng
    hosts = [a for a in CONFIDENTIAL_AGENCIES if a in b.agencies]
    for hour in range(8, 17):
        for agency in rng.sample(hosts, 2):
            b.add(
                f"{agency}-hop-mat-{hour:02d}h-{day:%m%d}",
                agency,
                at(day, f"{hour:02d}:00") + timedelta(minutes=rng.choice([0, 15, 30])),
                rng.choice([45, 60, 90]),
                rng.choice([15, 25, 40, 60, 120, 150]),
                lead_minutes=(60, 2 * 24 * 60),
                confidential=True,
                priority_class="high",
            )
    return b


GENERATORS: dict[str, Callable[[int], TraceBuilder]] = {
    "monday-briefing": monday_briefing,
    "school-day": school_day,
    "adhoc-surge": adhoc_surge,
    "wrong-declarations": wrong_declarations,
    "agency-flood": agency_flood,
    "over-declaring": over_declaring,
    "confidential-day": confidential_day,
    "week": week,
}
#: the day traces (every sample but the week), drawn again with other seeds by the benchmark
DAYS: tuple[str, ...] = tuple(name for name in GENERATORS if name != "week")
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
