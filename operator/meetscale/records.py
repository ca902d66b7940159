"""What the operator keeps in memory about each object (Kopf index values), and how those
records become the decision core's inputs. No I/O here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from meetscale.adapt import MeetingFacts, quota_view
from meetscale.adapt import meeting_request as adapt_request
from meetscale.decide.admit.types import AgencyQuotaView, MeetingRequest
from meetscale.models import AgencyQuotaSpec, MeetingSpec
from meetscale.times import parse_rfc3339

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

    def facts(self) -> MeetingFacts | None:
        """What the adapter needs of this Meeting (None when its spec is invalid): its
        agency as admission found it, and its conference's peak once that closed."""
        if self.spec is None:
            return None
        conference = self.status.get("conference") or {}
        peak = conference.get("peakParticipants") if conference.get("closedAt") else None
        agency = self.status.get("agency")
        return MeetingFacts(
            self.key,
            self.spec,
            self.phase,
            self.created,
            agency=str(agency) if agency else None,
            peak=int(peak) if isinstance(peak, int) else None,
            at_the_door=self.phase == "Queued" and self.status.get("reason") == "PoolFull",
        )

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
            created=parse_rfc3339(meta.get("creationTimestamp"))
            or datetime.min.replace(tzinfo=UTC),
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
        return quota_view(self.name, self.spec)

    def view(self) -> AgencyQuotaView:
        """The core's view of this quota, built once per record (a record is immutable and
        replaced on every change, so the webhook and every pass reuse it)."""
        return self._view


def meeting_request(
    record: MeetingRecord, agency: str, agency_priority: int, *, elsewhere: bool = False
) -> MeetingRequest:
    """The core's view of a Meeting record (through the adapter); an edit since it was
    decided (a newer generation than the status observed) makes it a Pending request.
    ``elsewhere``: the Meeting is another pool's (it counts against its quota only)."""
    assert record.spec is not None
    observed = int(record.status.get("observedGeneration") or 0)
    return adapt_request(
        record.key,
        record.spec,
        agency=agency,
        agency_priority=agency_priority,
        created=record.created,
        phase=record.phase,
        edited=record.generation > observed and not elsewhere,  # its own pool re-decides it
        elsewhere=elsewhere,
    )


def quota_views(quotas: Iterable[QuotaRecord]) -> dict[str, AgencyQuotaView]:
    return {q.name: q.view() for q in quotas if q.spec is not None}
