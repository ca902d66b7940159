"""What one scaling pass gathers: the bridge pods (from the Kopf index), their metrics
(Prometheus), and the writes of this scaler that the index may not show yet (pods created,
drain and hold marks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from meetscale.adapt import BridgeFacts, LastSeen, bridge_state, recall_loads
from meetscale.clients.prometheus import PromResult, PromUnavailable, PromValues
from meetscale.decide.scale import BridgeState
from meetscale.models.labels import (
    DRAIN_STARTED_ANNOTATION,
    DRAINING_LABEL,
    GROUP_LABEL,
    HELD_LABEL,
    POOL_LABEL,
    TEMPLATE_HASH_LABEL,
)
from meetscale.times import parse_rfc3339

__all__ = [
    "CREATE_FORGET",
    "INTENT_FORGET",
    "Intents",
    "Metrics",
    "PodRecord",
    "bridge_states",
    "skipped",
]

INTENT_FORGET: Final = timedelta(seconds=30)
CREATE_FORGET: Final = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class PodRecord:
    """A bridge pod as the pods index keeps it."""

    namespace: str
    name: str
    uid: str
    pool: str
    created: datetime
    ip: str | None = None
    running: bool = False
    ready: bool = False
    deleting: bool = False
    draining: bool = False
    drain_started: datetime | None = None
    template_hash: str | None = None
    held: bool = False
    restarts: int = 0  # its containers' restarts, as the kubelet counts them
    last_exit: str | None = None  # how its last restarted container ended
    group: str | None = None  # the spanning group it was started for (pinned pools)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.pool}"

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> PodRecord:
        meta = body.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        status = body.get("status") or {}
        conditions = status.get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        running = status.get("phase") == "Running"
        ip = status.get("podIP") or None
        restarts, last_exit = _restarts(status)
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            pool=str(labels.get(POOL_LABEL, "")),
            created=parse_rfc3339(meta.get("creationTimestamp")) or datetime.now(UTC),
            ip=ip,
            running=running,
            ready=running and ready and ip is not None,
            deleting=meta.get("deletionTimestamp") is not None,
            draining=labels.get(DRAINING_LABEL) == "true",
            drain_started=parse_rfc3339(annotations.get(DRAIN_STARTED_ANNOTATION)),
            template_hash=labels.get(TEMPLATE_HASH_LABEL),
            held=labels.get(HELD_LABEL) == "true",
            restarts=restarts,
            last_exit=last_exit,
            group=labels.get(GROUP_LABEL) or None,
        )


def _restarts(status: Mapping[str, Any]) -> tuple[int, str | None]:
    """The containers' restarts, and how the last one that restarted ended
    (`lastState.terminated`: exit code and reason)."""
    total, last = 0, None
    for cs in status.get("containerStatuses") or []:
        count = cs.get("restartCount")
        if isinstance(count, int) and count > 0:
            total += count
            ended = (cs.get("lastState") or {}).get("terminated") or {}
            if "exitCode" in ended:
                last = f"exit code {ended['exitCode']}" + (
                    f" ({ended['reason']})" if ended.get("reason") else ""
                )
    return total, last


@dataclass(frozen=True, slots=True)
class Metrics:
    """The Prometheus answers of one pass."""

    stress: PromResult
    endpoints: PromResult
    conferences: PromResult
    drain: PromResult

    @property
    def ok(self) -> bool:
        """Stress and endpoints answered without bad data: the pool may scale down."""
        return self.problem is None

    @property
    def problem(self) -> PromUnavailable | None:
        """Why the stress or endpoint answer is not to be scaled down on (unavailable, or
        bad data in it), or None."""
        for r in (self.stress, self.endpoints):
            if isinstance(r, PromUnavailable):
                return r
            if r.flaw is not None:
                return PromUnavailable(r.flaw.reason, r.flaw.message)
        return None

    @staticmethod
    def value(result: PromResult, pod: str) -> float | None:
        return result.values.get(pod) if isinstance(result, PromValues) else None


def skipped(reason: str, message: str) -> Metrics:
    """The answers of a pass that did not ask Prometheus, and why."""
    r = PromUnavailable(reason, message)
    return Metrics(r, r, r, r)


class Intents:
    """Marks this scaler wrote on pods (value, when) that the pods index may not show yet:
    a later pass must not decide from the stale index (read your own writes)."""

    def __init__(self) -> None:
        self.drain: dict[str, tuple[bool, datetime]] = {}
        self.held: dict[str, tuple[bool, datetime]] = {}
        self.created: dict[str, datetime] = {}  # pods created, not in the index yet
        self.uncertain: dict[str, datetime] = {}  # creates without a clear answer
        self.groups: dict[str, str] = {}  # the spanning group of a pod created for one

    def starting(self) -> list[str]:
        """Pods this scaler created (or may have) that the index does not show yet."""
        return sorted(set(self.created) | set(self.uncertain))

    def forget_gone(self, present: set[str], now: datetime) -> None:
        for marks in (self.drain, self.held):
            for name in [n for n in marks if n not in present]:
                del marks[name]
        for name, when in list(self.created.items()):
            if name in present or now - when > CREATE_FORGET:
                del self.created[name]
        for name in [n for n in self.groups if n not in self.created and n not in self.uncertain]:
            del self.groups[name]

    @staticmethod
    def _pending(
        marks: dict[str, tuple[bool, datetime]], name: str, shown: bool, now: datetime
    ) -> tuple[bool, datetime] | None:
        mark = marks.get(name)
        if mark is None:
            return None
        if shown == mark[0] or now - mark[1] > INTENT_FORGET:
            del marks[name]
            return None
        return mark

    def overlay(self, pod: PodRecord, now: datetime) -> PodRecord:
        """The pod with the drain and hold marks this scaler wrote, if the index lags."""
        held = self._pending(self.held, pod.name, pod.held, now)
        if held is not None:
            pod = replace(pod, held=held[0])
        mark = self._pending(self.drain, pod.name, pod.draining, now)
        if mark is None:
            return pod
        draining, when = mark
        if draining:
            return replace(pod, draining=True, drain_started=when)
        return replace(pod, draining=False, drain_started=None)


def bridge_states(
    pods: Sequence[PodRecord],
    metrics: Metrics,
    starting: Sequence[str],
    now: datetime,
    template: str | None = None,
    memory: Mapping[str, LastSeen] | None = None,
    groups: Mapping[str, str] | None = None,
) -> tuple[list[BridgeState], dict[str, LastSeen]]:
    """The core's view of the pods, through the adapter, plus the pods this scaler created
    that the index does not show yet (``starting``: unready, in service). A pod made from
    another template than ``template`` is outdated. A metric a pod lacks now is its last
    seen one from ``memory`` for a while (:func:`~meetscale.adapt.recall_loads`); returns
    the memory for the next pass as well. ``groups``: the spanning group of each starting
    pod created for one (a pod shown has its label)."""
    facts = [
        BridgeFacts(
            name=p.name,
            ready=p.ready,
            draining=p.draining,
            created=p.created,
            drain_started=p.drain_started,
            held=p.held,
            stress=Metrics.value(metrics.stress, p.name),
            endpoints=Metrics.value(metrics.endpoints, p.name),
            conferences=Metrics.value(metrics.conferences, p.name),
            outdated=template is not None and p.template_hash != template,
            group=p.group,
        )
        for p in pods
    ]
    facts, kept = recall_loads(facts, memory or {}, now, metrics_ok=metrics.ok)
    out = [bridge_state(f) for f in facts]
    for name in starting:
        group = (groups or {}).get(name)
        out.append(BridgeState(name=name, ready=False, draining=False, created_at=now, group=group))
    return out, kept
