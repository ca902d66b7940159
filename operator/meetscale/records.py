"""What the operator keeps in memory about each object (Kopf index values), and how those
records become the decision core's inputs. No I/O here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from meetscale.decide.admit.plan import AgencyQuotaView, MeetingRequest, PoolCeiling
from meetscale.models import PRIORITY_VALUES, AgencyQuotaSpec, BridgePoolSpec, MeetingSpec


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


_SHOWN_INPUT = 200  # characters of a refused value quoted back


def _where(prefix: str, loc: tuple[int | str, ...]) -> str:
    """spec + ('matchExpressions', 0, 'values') -> spec.matchExpressions[0].values"""
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def validation_message(exc: ValidationError, prefix: str) -> str:
    """'spec.participants: Input should be less than or equal to 5000 (got 9000)' style.

    A validator whose message already starts with the field's path names the field and
    the value itself; its message is kept as it is."""
    parts = []
    for err in exc.errors():
        where = _where(prefix, tuple(err["loc"]))
        msg = str(err["msg"]).removeprefix("Value error, ")
        if msg.startswith(where.split("[", 1)[0]):
            parts.append(msg)
            continue
        shown = repr(err.get("input"))
        if len(shown) > _SHOWN_INPUT:
            shown = shown[:_SHOWN_INPUT] + "..."
        parts.append(f"{where}: {msg} (got {shown})")
    return "; ".join(parts)


@dataclass(frozen=True)
class MeetingRecord:
    namespace: str
    name: str
    uid: str
    generation: int
    created: datetime
    spec: MeetingSpec | None
    spec_error: str | None
    status: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or "Pending")

    @property
    def ref(self) -> dict[str, Any]:
        return {"name": self.name, "namespace": self.namespace, "uid": self.uid}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> MeetingRecord:
        meta = body.get("metadata", {})
        spec: MeetingSpec | None = None
        error: str | None = None
        try:
            spec = MeetingSpec.model_validate(dict(body.get("spec") or {}))
        except ValidationError as exc:
            error = validation_message(exc, "spec")
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
            created=_parse_time(meta["creationTimestamp"])
            if meta.get("creationTimestamp")
            else datetime.min.replace(tzinfo=UTC),
            spec=spec,
            spec_error=error,
            status=dict(body.get("status") or {}),
        )


@dataclass(frozen=True)
class QuotaRecord:
    name: str
    uid: str
    generation: int
    spec: AgencyQuotaSpec | None
    spec_error: str | None
    status: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> QuotaRecord:
        meta = body.get("metadata", {})
        spec: AgencyQuotaSpec | None = None
        error: str | None = None
        try:
            spec = AgencyQuotaSpec.model_validate(dict(body.get("spec") or {}))
        except ValidationError as exc:
            error = validation_message(exc, "spec")
        return cls(
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
            spec=spec,
            spec_error=error,
            status=dict(body.get("status") or {}),
        )

    @cached_property
    def _view(self) -> AgencyQuotaView:
        assert self.spec is not None
        s, lim = self.spec, self.spec.limits
        return AgencyQuotaView(
            name=self.name,
            max_concurrent_participants=lim.max_concurrent_participants,
            max_concurrent_meetings=lim.max_concurrent_meetings,
            max_meeting_participants=lim.max_meeting_participants,
            max_meeting_duration=timedelta(minutes=lim.max_meeting_duration_minutes),
            max_book_ahead=timedelta(days=lim.max_book_ahead_days),
            priority=s.priority,
            weight=s.weight,
            cohort=s.cohort,
            borrowing_limit=s.borrowing_limit,
            lending_limit=s.lending_limit,
            max_priority=PRIORITY_VALUES[s.max_priority_class],
        )

    def view(self) -> AgencyQuotaView:
        """The core's view of this quota, built once per record (a record is immutable and
        replaced on every change, so the webhook and every pass reuse it)."""
        return self._view


def pool_ceiling(spec: BridgePoolSpec, margin: timedelta) -> PoolCeiling:
    return PoolCeiling(
        max_bridges=spec.max_bridges,
        participants_per_bridge=spec.participants_per_bridge,
        pre_join_margin=margin,
    )


def meeting_request(record: MeetingRecord, agency: str, agency_priority: int) -> MeetingRequest:
    """The core's view of a Meeting. An edited (newer generation) meeting that was admitted
    but has not started is re-checked as Pending, so growing it re-checks quota."""
    assert record.spec is not None
    spec = record.spec
    phase = record.phase
    observed = int(record.status.get("observedGeneration") or 0)
    if phase == "Admitted" and record.generation > observed:
        phase = "Pending"
    return MeetingRequest(
        key=record.key,
        agency=agency,
        start=spec.start,
        end=spec.end_time,
        participants=spec.participants,
        priority=PRIORITY_VALUES[spec.priority_class],
        confidential=spec.confidential,
        created_at=record.created,
        phase=phase,
        agency_priority=agency_priority,
    )


def quota_views(quotas: Iterable[QuotaRecord]) -> dict[str, AgencyQuotaView]:
    return {q.name: q.view() for q in quotas if q.spec is not None}
