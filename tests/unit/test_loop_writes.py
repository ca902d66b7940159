"""The admission loop's background writes: a later pass sees what an earlier pass wrote even
before the watch delivers it, writes of one object land in order, a failed write is
decided again. A fake writer stands in for the apiserver (the real one is exercised by
the integration tests); no time is patched."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meetscale.admission.statuses import StatusChange, plan_pool
from meetscale.admission.writes import Writes
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord, QuotaRecord

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
NS = "so-y-te"


class FakeWriter:
    """Records writes; each one waits until the test lets it through."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.gates: dict[str, list[asyncio.Event]] = {}
        self.landed: list[tuple[str, str]] = []  # (name, phase) in landing order
        self.events: list[str] = []
        self.fail = fail or set()

    async def meeting_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        gate = asyncio.Event()
        self.gates.setdefault(name, []).append(gate)
        await gate.wait()
        if name in self.fail:
            return False
        self.landed.append((name, status["phase"]))
        return True

    async def quota_status(self, name: str, status: dict[str, Any]) -> bool:
        self.landed.append((f"quota/{name}", str(status.get("participantsInUse"))))
        return True

    def event(self, kind: str, ref: dict[str, Any], reason: str, message: str, w: bool) -> None:
        self.events.append(f"{ref['name']} {reason}")

    def release(self, name: str, index: int = 0) -> None:
        self.gates[name][index].set()


def meeting(name: str, participants: int, created: datetime, **status: Any) -> MeetingRecord:
    return MeetingRecord.from_body(
        {
            "metadata": {
                "namespace": NS,
                "name": name,
                "uid": f"uid-{name}",
                "generation": 1,
                "creationTimestamp": created.isoformat().replace("+00:00", "Z"),
            },
            "spec": {
                "title": name,
                "start": (NOW + timedelta(hours=2)).isoformat(),
                "durationMinutes": 60,
                "participants": participants,
            },
            "status": status,
        }
    )


QUOTA = QuotaRecord.from_body(
    {
        "metadata": {"name": NS, "uid": "q", "generation": 1},
        "spec": {
            "namespaceSelector": {"matchLabels": {"agency": NS}},
            "limits": {
                "maxConcurrentParticipants": 100,
                "maxConcurrentMeetings": 10,
                "maxMeetingParticipants": 100,
            },
        },
    }
)
POOL = BridgePoolSpec.model_validate(
    {
        "participantsPerBridge": 300,
        "maxBridges": 10,
        "template": {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}},
    }
)
LABELS = {NS: {"agency": NS}}


def plan(records: list[MeetingRecord]) -> list[StatusChange]:
    return plan_pool("default", POOL, records, [QUOTA], LABELS, timedelta(minutes=10), NOW).changes


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_pass_sees_its_own_write_before_the_watch_does() -> None:
    """`a` (60 of 100) is admitted and its write is still in flight when a higher-priority
    `b` (60) arrives: without the overlay the next pass would see `a` Pending and might
    admit `b` in its place; with it, `a` stays admitted and `b` queues."""
    writer = FakeWriter()
    writes = Writes(writer)  # type: ignore[arg-type]
    a = meeting("a", 60, NOW - timedelta(seconds=2))
    first = plan(writes.overlay([a]))
    assert [(c.record.name, c.status["phase"]) for c in first] == [("a", "Admitted")]
    writes.meeting(first[0])
    await settle()
    b = MeetingRecord.from_body(
        {
            "metadata": {
                "namespace": NS,
                "name": "b",
                "uid": "uid-b",
                "generation": 1,
                "creationTimestamp": NOW.isoformat().replace("+00:00", "Z"),
            },
            "spec": {
                "title": "b",
                "start": (NOW + timedelta(hours=2)).isoformat(),
                "durationMinutes": 60,
                "participants": 60,
                "priorityClass": "high",
            },
        }
    )
    # The index still shows `a` without a status.
    second = plan(writes.overlay([a, b]))
    assert [(c.record.name, c.status["phase"]) for c in second] == [("b", "Queued")]
    writer.release("a")
    await settle()
    assert writer.landed == [("a", "Admitted")]
    assert writer.events == ["a Admitted"]


async def test_writes_of_one_meeting_land_in_order() -> None:
    writer = FakeWriter()
    writes = Writes(writer)  # type: ignore[arg-type]
    a = meeting("a", 60, NOW)
    admitted = plan(writes.overlay([a]))[0]
    writes.meeting(admitted)
    running = StatusChange(a, {**admitted.status, "phase": "Running"}, None, NS)
    writes.meeting(running)
    await settle()
    assert len(writer.gates["a"]) == 1, "the second write must wait for the first"
    writer.release("a")
    await settle()
    writer.release("a", 1)
    await settle()
    assert writer.landed == [("a", "Admitted"), ("a", "Running")]
    await writes.drain(1)


async def test_a_failed_write_is_decided_again() -> None:
    writer = FakeWriter(fail={"a"})
    writes = Writes(writer)  # type: ignore[arg-type]
    a = meeting("a", 60, NOW)
    writes.meeting(plan(writes.overlay([a]))[0])
    await settle()
    writer.release("a")
    await settle()
    assert writer.landed == [] and writer.events == []
    again = plan(writes.overlay([a]))
    assert [(c.record.name, c.status["phase"]) for c in again] == [("a", "Admitted")]


async def test_once_the_index_shows_the_write_nothing_is_written_again() -> None:
    writer = FakeWriter()
    writes = Writes(writer)  # type: ignore[arg-type]
    a = meeting("a", 60, NOW)
    change = plan(writes.overlay([a]))[0]
    writes.meeting(change)
    await settle()
    writer.release("a")
    await settle()
    seen = meeting("a", 60, NOW, **change.status)
    assert plan(writes.overlay([seen])) == []
    assert writes.meetings == {}, "the overlay is dropped once the index caught up"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([{"participantsInUse": 60}], ["60"]),
        ([{"participantsInUse": 60}, {"participantsInUse": 60}], ["60"]),
        ([{"participantsInUse": 60}, {"participantsInUse": 0}], ["60", "0"]),
    ],
    ids=["one", "unchanged-not-rewritten", "changed-rewritten"],
)
async def test_quota_status_written_once_per_change(
    statuses: list[dict[str, Any]], expected: list[str]
) -> None:
    writer = FakeWriter()
    writes = Writes(writer)  # type: ignore[arg-type]
    for status in statuses:
        writes.quota(NS, status)
        await settle()
    assert [v for _, v in writer.landed] == expected


async def test_a_quota_status_is_not_rewritten_faster_than_its_interval() -> None:
    writer = FakeWriter()
    writes = Writes(writer)  # type: ignore[arg-type]
    assert writes.quota(NS, {"participantsInUse": 60}, min_interval=60)
    assert not writes.quota(NS, {"participantsInUse": 120}, min_interval=60)
    assert writes.quota(NS, {"participantsInUse": 60}, min_interval=60), "unchanged is done"
    await settle()
    assert [v for _, v in writer.landed] == ["60"]
    assert writes.quota(NS, {"participantsInUse": 120}, min_interval=0)
    await settle()
    assert [v for _, v in writer.landed] == ["60", "120"]
