"""`meetscale slots` (`kubectl meetscale slots`): when can we meet?

    meetscale slots --agency so-y-te --participants 300 --minutes 90 --on 2026-12-08

lists, in the province's time (+07:00), the starts of that day at which such a Meeting
would be admitted if it were applied now, and why the others would not. The answer is
the admission core's (meetscale.decide.admit.slots), given what the operator's own
admission pass is given: the live Meetings, AgencyQuotas, namespaces and BridgePool
(kubeconfig), or the same objects from files (-f, e.g. `kubectl get
ns,agencyquotas,meetings,bridgepools -A -o yaml`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from pydantic import ValidationError

from meetscale.admission.statuses import PoolPass, plan_pool
from meetscale.commands.options import (
    PROVINCE_OFFSET,
    clock,
    day,
    dns_label,
    int_in,
    moment,
    offset_text,
    utc_offset,
)
from meetscale.commands.snapshot import Snapshot, api_client, from_cluster, from_files
from meetscale.decide.admit.slots import Ask, Gap, Slots, free_windows, reservations
from meetscale.models import PRIORITY_VALUES, BridgePoolSpec, PriorityClass
from meetscale.models.meeting import MAX_DURATION_MINUTES, MAX_PARTICIPANTS
from meetscale.records import MeetingRecord, QuotaRecord, quota_views, validation_message
from meetscale.usererror import UserError

__all__ = ["Booked", "add_arguments", "add_source_arguments", "booked", "main"]


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the bookings come from, and which pool (shared with `book`)."""
    src = parser.add_argument_group("where the bookings are read")
    src.add_argument(
        "-f",
        "--filename",
        action="append",
        metavar="FILE",
        help="read Meetings, AgencyQuotas, Namespaces and BridgePools from FILE (YAML, "
        "repeatable, - for stdin) instead of the cluster",
    )
    src.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    src.add_argument("--context", help="kubeconfig context (default: the current one)")
    src.add_argument(
        "--pool",
        default="default",
        type=dns_label("--pool"),
        help="BridgePool (default: %(default)s)",
    )
    src.add_argument(
        "--pool-namespace",
        default="meetscale-system",
        type=dns_label("--pool-namespace"),
        help="namespace of the BridgePools (default: %(default)s)",
    )
    src.add_argument(
        "--margin-minutes",
        type=int_in(0, 120),
        default=10,
        help="quota is held from this long before the start: the operator's "
        "MEETSCALE_PRE_JOIN_MARGIN_SECONDS / 60 (default: %(default)s)",
    )
    src.add_argument(
        "--now",
        type=moment,
        help="decide as at this time (RFC 3339), e.g. to replay files (default: now)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (__doc__ or "").split("\n\n", 1)[0] + (
        " Lists the starts of a day at which a Meeting would be admitted if applied now."
    )
    parser.add_argument("--agency", required=True, help="the agency's AgencyQuota, e.g. so-y-te")
    parser.add_argument(
        "--participants",
        required=True,
        type=int_in(1, MAX_PARTICIPANTS),
        help="expected participants",
    )
    parser.add_argument(
        "--minutes", required=True, type=int_in(1, MAX_DURATION_MINUTES), help="duration"
    )
    parser.add_argument("--on", type=day, help="the day, YYYY-MM-DD (default: today)")
    parser.add_argument("--from", dest="since", type=clock, default=timedelta(0), metavar="HH:MM")
    parser.add_argument(
        "--to", dest="until", type=clock, default=timedelta(hours=24), metavar="HH:MM"
    )
    parser.add_argument(
        "--priority",
        choices=[p.value for p in PriorityClass],
        default=PriorityClass.NORMAL.value,
        help="priority class (default: %(default)s)",
    )
    parser.add_argument("--confidential", action="store_true", help="a MẬT meeting")
    parser.add_argument(
        "--step", type=int_in(1, 60), default=5, help="minutes between starts (default: 5)"
    )
    parser.add_argument(
        "--tz", type=utc_offset, default=utc_offset(PROVINCE_OFFSET), help="UTC offset (+07:00)"
    )
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    add_source_arguments(parser)


@dataclass
class Booked:
    """One pool's bookings, decided as the operator would decide them now."""

    pool_name: str
    pool: BridgePoolSpec
    quotas: list[QuotaRecord]
    result: PoolPass
    now: datetime

    def quota(self, agency: str) -> QuotaRecord:
        for q in self.quotas:
            if q.name == agency:
                return q
        known = ", ".join(q.name for q in self.quotas) or "none"
        raise UserError(f"--agency {agency}: no AgencyQuota of that name (there are: {known})")

    def display_name(self, agency: str) -> str | None:
        spec = self.quota(agency).spec
        return spec.display_name if spec is not None else None

    def display(self, agency: str) -> str:
        name = self.display_name(agency)
        return f"{name} ({agency})" if name else agency


def read(args: argparse.Namespace) -> Snapshot:
    if args.filename:
        return from_files(args.filename)
    return from_cluster(api_client(args.kubeconfig, args.context), args.pool_namespace)


def booked(args: argparse.Namespace, snap: Snapshot) -> Booked:
    key = f"{args.pool_namespace}/{args.pool}"
    body = snap.pools.get(key)
    if body is None:
        there = ", ".join(sorted(snap.pools)) or "none"
        raise UserError(
            f"--pool {args.pool} --pool-namespace {args.pool_namespace}: no BridgePool {key} "
            f"in {snap.source or 'the input'} (there are: {there})"
        )
    try:
        pool = BridgePoolSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        raise UserError(f"BridgePool {key}: {validation_message(exc, 'spec')}") from None
    now = args.now or datetime.now(UTC)
    meetings = [
        MeetingRecord.from_body(b)
        for b in snap.meetings
        if ((b.get("spec") or {}).get("pool") or "default") == args.pool
    ]
    if args.filename:
        missing = sorted({m.namespace for m in meetings} - set(snap.namespace_labels))
        if missing:
            raise UserError(
                f"-f: namespace {missing[0]} of Meetings is not in the files; add it "
                f"(kubectl get namespace {' '.join(missing)} -o yaml): its labels say "
                "which agency its Meetings belong to"
            )
    quotas = [QuotaRecord.from_body(b) for b in snap.quotas]
    margin = timedelta(minutes=args.margin_minutes)
    result = plan_pool(args.pool, pool, meetings, quotas, snap.namespace_labels, margin, now)
    return Booked(args.pool, pool, quotas, result, now)


def main(args: argparse.Namespace) -> int:
    tz: timezone = args.tz
    if args.until <= args.since:
        raise UserError(
            f"--from {_hhmm(args.since)} --to {_hhmm(args.until)}: --to must be after --from"
        )
    b = booked(args, read(args))
    quota = b.quota(args.agency)
    if quota.spec is None:
        raise UserError(f"AgencyQuota {args.agency}: invalid: {quota.spec_error}")
    on: date = args.on or b.now.astimezone(tz).date()
    midnight = datetime(on.year, on.month, on.day, tzinfo=tz)
    ask = Ask(
        agency=args.agency,
        participants=args.participants,
        duration=timedelta(minutes=args.minutes),
        priority=PRIORITY_VALUES[PriorityClass(args.priority)],
        confidential=args.confidential,
    )
    inputs, plan = b.result.inputs, b.result.plan
    assert inputs is not None and plan is not None
    reserved = reservations(inputs.requests, plan)
    slots = free_windows(
        ask,
        reserved,
        quota_views(b.quotas),
        inputs.pool,
        b.now,
        midnight + args.since,
        midnight + args.until,
        timedelta(minutes=args.step),
    )
    if args.output == "json":
        json.dump(as_json(args, b, slots, len(reserved)), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    print(heading(args, b, on, tz))
    for line in table(slots, tz):
        print(line)
    print(footer(b, slots, len(reserved), tz))
    return 0


def _hhmm(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def heading(args: argparse.Namespace, b: Booked, on: date, tz: timezone) -> str:
    what = "confidential meeting" if args.confidential else "meeting"
    return (
        f"{b.display(args.agency)}: a {args.priority} {what} of {args.participants} "
        f"participants for {args.minutes} minutes on {on:%a %Y-%m-%d} (times "
        f"{offset_text(tz)}); pool {args.pool_namespace}/{args.pool}: "
        f"{b.pool.max_bridges} bridges x {b.pool.participants_per_bridge} participants"
    )


def table(slots: Slots, tz: timezone) -> list[str]:
    """`07:00-08:15  free` / `08:20-09:35  QuotaExceeded: exceeded quota ...`."""
    if not slots.windows and not slots.gaps:
        return ["  (no start left in that time range: it is over)"]
    lines = []
    for span in slots.spans():
        when = f"{span.first.astimezone(tz):%H:%M}-{span.last.astimezone(tz):%H:%M}"
        if isinstance(span, Gap):
            lines.append(f"  {when}  {span.why.reason}: {span.why.message}")
        else:
            lines.append(f"  {when}  free: a start in this window would be admitted now")
    return lines


def footer(b: Booked, slots: Slots, reserved: int, tz: timezone) -> str:
    return (
        f"As of {b.now.astimezone(tz):%Y-%m-%d %H:%M} {offset_text(tz)}: the admission core was "
        f"asked {slots.asked} time{'' if slots.asked == 1 else 's'} beside {reserved} "
        "reservations (Queued meetings hold nothing; "
        "a window can still go to a Meeting applied before yours)."
    )


def as_json(args: argparse.Namespace, b: Booked, slots: Slots, reserved: int) -> dict[str, Any]:
    tz: timezone = args.tz

    def t(x: datetime) -> str:
        return x.astimezone(tz).isoformat()

    return {
        "agency": args.agency,
        "displayName": b.display_name(args.agency),
        "participants": args.participants,
        "minutes": args.minutes,
        "priorityClass": args.priority,
        "confidential": args.confidential,
        "pool": f"{args.pool_namespace}/{args.pool}",
        "now": t(b.now),
        "reservations": reserved,
        "windows": [{"first": t(w.first), "last": t(w.last)} for w in slots.windows],
        "gaps": [
            {
                "first": t(g.first),
                "last": t(g.last),
                "reason": g.why.reason,
                "message": g.why.message,
            }
            for g in slots.gaps
        ],
    }
