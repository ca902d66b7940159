"""What the demo books and what it says it showed (pure: no cluster here).

The demo (testbed/demo.py) collects what it observed into `Observed`; `claims` turns that
into the lines it prints under "what this run showed". The README's "what the demo
shows" quotes those lines between `<!-- demo-claims:begin -->` and
`<!-- demo-claims:end -->`, and tests/integration/test_demo_claims.py checks every quoted
line against a fresh run. Lines carry no clock time and no timing, only what a run on
any machine shows the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

ICT = timezone(timedelta(hours=7))  # the province's time: Vietnam, UTC+7
CLAIMS_BEGIN = "<!-- demo-claims:begin -->"
CLAIMS_END = "<!-- demo-claims:end -->"
METRIC_NAMES = (
    "meetscale_admission_decisions_total",
    "meetscale_quota_participants_in_use",
    "meetscale_quota_participants_peak_booked",
    "meetscale_quota_participants_limit",
    "meetscale_scale_decisions_total",
    "meetscale_pool_desired_bridges",
)
SURGE_PARTICIPANTS = 280


@dataclass(frozen=True)
class Booking:
    namespace: str
    name: str
    title: str
    start_minutes: int  # after now
    minutes: int
    participants: int
    priority: str = "normal"
    confidential: bool = False


BOOKINGS = (
    Booking("ubnd-tinh", "giao-ban-tinh", "Giao ban UBND tỉnh", 8, 120, 900, "provincial"),
    Booking(
        "ubnd-tinh",
        "hop-mat-phong-dich",
        "Họp MẬT phòng chống dịch",
        30,
        60,
        40,
        "high",
        confidential=True,
    ),
    Booking("so-y-te", "giao-ban-so-y-te", "Giao ban Sở Y tế", 30, 90, 250),
    Booking("so-y-te", "tap-huan-covid", "Tập huấn phòng chống COVID-19", 40, 120, 300),
    Booking("so-gd-dt", "lop-10a1-toan", "Lớp 10A1 - Toán", 15, 45, 45),
    Booking("so-gd-dt", "lop-10a2-van", "Lớp 10A2 - Ngữ văn", 15, 45, 42),
)
TOO_BIG = Booking("so-y-te", "hoi-nghi-qua-lon", "Hội nghị toàn ngành", 30, 90, 1200)


def manifest(b: Booking, now: datetime) -> dict[str, Any]:
    """The Meeting as an agency writes it: local time, +07:00, whole minutes."""
    start = (now + timedelta(minutes=b.start_minutes)).astimezone(ICT)
    return {
        "apiVersion": "meetscale.io/v1alpha1",
        "kind": "Meeting",
        "metadata": {"name": b.name, "namespace": b.namespace},
        "spec": {
            "title": b.title,
            "start": start.replace(second=0, microsecond=0).isoformat(),
            "durationMinutes": b.minutes,
            "participants": b.participants,
            "priorityClass": b.priority,
            "confidential": b.confidential,
        },
    }


def local(t: datetime) -> str:
    """`20:05:13 +07:00`: every time the demo prints is the province's."""
    return t.astimezone(ICT).strftime("%H:%M:%S +07:00")


@dataclass(frozen=True)
class ScaleEvent:
    reason: str
    message: str  # "scale up: 2 bridges (0 draining); live: ...; booked: ...; desired 3 ..."

    @property
    def desired(self) -> int | None:
        m = re.search(r"; desired (\d+) ", self.message)
        return int(m.group(1)) if m else None

    @property
    def live(self) -> str:
        """The live term's verdict, without the stress figures (they move with timing)."""
        m = re.search(r"; live: .*?recommends (\d+); booked: ", self.message)
        if m:
            return f"the live load recommends {m.group(1)}"
        return "no live metrics yet" if "metrics unavailable" in self.message else ""

    @property
    def booked(self) -> str:
        """The booked term's clause: what the bookings (and unbooked load) need."""
        m = re.search(r"; booked: (.*?); desired ", self.message)
        return m.group(1) if m else ""


@dataclass
class Observed:
    kubernetes: str = ""
    agencies: list[str] = field(default_factory=list)  # display names, in applied order
    pool: Mapping[str, Any] = field(default_factory=dict)  # the BridgePool's spec
    refusal: str = ""  # kubectl's answer to the too-large booking
    meetings: list[dict[str, Any]] = field(default_factory=list)  # as read back, with status
    bridges_before_surge: int = 0
    surge_bridge: str = ""
    scale_events: list[ScaleEvent] = field(default_factory=list)  # in order
    metrics: set[str] = field(default_factory=set)  # meetscale_* names seen


def _minutes_after(message: str, start: str) -> str:
    """'...; the first start that would be admitted now is T' with T as minutes after the
    Meeting's own start (the clock time differs from run to run)."""
    m = re.search(r"the first start that would be admitted now is (\S+)$", message)
    if not m:
        return message
    later = datetime.fromisoformat(m.group(1)) - datetime.fromisoformat(start)
    head = message[: m.start()]
    minutes = later // timedelta(minutes=1)
    return f"{head}the first start that would be admitted now is its own + {minutes} min"


def _pool_story(o: Observed) -> list[str]:
    out = []
    lo = o.pool.get("minBridges")
    ups = [e for e in o.scale_events if e.reason not in ("AtMinimum",)]
    before = [e for e in ups if e.desired is not None and e.desired <= o.bridges_before_surge]
    after = [e for e in ups if e.desired is not None and e.desired > o.bridges_before_surge]
    out.append(f"the pool starts at its minimum of {lo} bridges")
    if before:
        # whether Prometheus has scraped the new bridges by then depends on the run: the
        # live term's words are left out of this line
        e = before[-1]
        out.append(
            f"before any meeting starts it grows to {e.desired} bridges for the bookings "
            f"({e.reason}): `{e.booked}`"
        )
    if after:
        e = after[-1]
        out.append(
            f"when an unbooked meeting of {SURGE_PARTICIPANTS} participants lands on a bridge, "
            f"it grows to {e.desired} ({e.reason}; {e.live}): `{e.booked}`"
        )
    return out


def claims(o: Observed) -> list[str]:
    """What this run showed, one line each, with no clock time in them."""
    pool = o.pool
    out = [
        f"a local Kubernetes {o.kubernetes} control plane, Prometheus, the operator and "
        "simulated videobridges start on this machine",
        f"{len(o.agencies)} agencies with their quotas ({', '.join(o.agencies)}) and the shared "
        f"pool of {pool.get('minBridges')} to {pool.get('maxBridges')} bridges of "
        f"{pool.get('participantsPerBridge')} participants",
    ]
    refused = o.refusal.split("denied the request: ", 1)[-1].strip()
    out.append(
        f"a booking larger than its agency allows is refused at `kubectl apply`: `{refused}`"
    )
    for m in o.meetings:
        spec, status = m["spec"], m.get("status") or {}
        what = f"{spec['participants']} participants, {spec.get('priorityClass', 'normal')}"
        if spec.get("confidential"):
            what += ", confidential"
        line = (
            f"`{m['metadata']['namespace']}/{m['metadata']['name']}` ({what}): "
            f"{status.get('phase')} ({status.get('reason')})"
        )
        if status.get("phase") == "Queued":
            line += f": `{_minutes_after(str(status.get('message')), spec['start'])}`"
        out.append(line)
    out += _pool_story(o)
    seen = [n for n in METRIC_NAMES if n in o.metrics]
    out.append(f"the operator's metrics: {', '.join(f'`{n}`' for n in seen)}")
    return out


def quoted_claims(markdown: str) -> list[str]:
    """The `- ...` lines between the demo-claims markers of a README."""
    if CLAIMS_BEGIN not in markdown:
        return []
    block = markdown.split(CLAIMS_BEGIN, 1)[1].split(CLAIMS_END, 1)[0]
    lines: list[str] = []
    for raw in block.splitlines():
        if raw.startswith("- "):
            lines.append(raw[2:].strip())
        elif raw.startswith("  ") and lines:  # a wrapped item
            lines[-1] += " " + raw.strip()
    return lines


def render(lines: Sequence[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)
