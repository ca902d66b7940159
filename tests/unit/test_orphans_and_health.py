"""Meetings that no pool decides get a status saying so (PoolNotFound, PoolInvalid), and an
admission loop that keeps failing is seen: /healthz (the Kopf probe) fails after
LoopHealth.limit failed passes in a row and recovers with the next good pass. A fake
writer stands in for the apiserver (the integration tests use the real one); no time is
patched: the loops run with short real intervals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest

from meetscale.admission.loop import LoopHealth, retry_after, run_orphans, run_pool
from meetscale.admission.orphans import orphan_changes, pool_problem
from meetscale.config import Settings
from meetscale.handlers.admission import AdmissionState, _ensure_orphans, admission_health
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord
from meetscale.runtime import Runtime

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DEFAULT = "meetscale-system/default"
FAST = Settings(admission_resync_seconds=0.02, admission_debounce_seconds=0)


def meeting(
    name: str, start_h: float = 2, spec_pool: str | None = "big", **status: Any
) -> MeetingRecord:
    spec: dict[str, Any] = {
        "title": name,
        "start": (NOW + timedelta(hours=start_h)).isoformat(),
        "durationMinutes": 60,
        "participants": 20,
    }
    if spec_pool:
        spec["pool"] = spec_pool
    return MeetingRecord.from_body(
        {
            "metadata": {
                "namespace": "so-y-te",
                "name": name,
                "uid": f"uid-{name}",
                "generation": 1,
            },
            "spec": spec,
            "status": status,
        }
    )


POOLS = {DEFAULT: True, "meetscale-system/small": True, "other-ns/big": True}


@pytest.mark.parametrize(
    ("key", "pools", "reason", "fragments"),
    [
        (
            "meetscale-system/big",
            POOLS,
            "PoolNotFound",
            ('spec.pool "big" names no BridgePool in namespace meetscale-system',
             "BridgePools there: default, small"),
        ),
        (
            DEFAULT,
            {"meetscale-system/small": True},
            "PoolNotFound",
            ('spec.pool is unset and the default BridgePool "default" does not exist',
             "BridgePools there: small"),
        ),
        (
            "meetscale-system/big",
            {},
            "PoolNotFound",
            ("BridgePools there: none",),
        ),
        (
            "meetscale-system/small",
            {**POOLS, "meetscale-system/small": False},
            "PoolInvalid",
            ("BridgePool meetscale-system/small has a spec the operator cannot use",),
        ),
    ],
    ids=["named-missing", "default-missing", "no-pool-at-all", "pool-spec-invalid"],
)  # fmt: skip
def test_pool_problem_names_spec_pool_and_the_pools_that_exist(key, pools, reason, fragments):
    got = pool_problem(key, pools, DEFAULT)
    assert got is not None and got[0] == reason
    for fragment in fragments:
        assert fragment in got[1], got[1]


def test_an_existing_pool_is_no_problem():
    assert pool_problem(DEFAULT, POOLS, DEFAULT) is None


def _orphans(*records: MeetingRecord) -> dict[str, dict[str, Any]]:
    changes = orphan_changes("meetscale-system/big", records, POOLS, DEFAULT, NOW)
    return {c.record.name: {**c.status, "event": c.event} for c in changes}


def test_orphans_get_a_status_and_an_event():
    got = _orphans(
        meeting("future"),
        meeting("over", start_h=-3),
        _cancelled("cancel"),
        meeting("done", phase="Finished", reason="Finished"),
    )
    assert (got["future"]["phase"], got["future"]["reason"]) == ("Pending", "PoolNotFound")
    assert got["future"]["event"][0] == "PoolNotFound" and got["future"]["event"][2] is True
    assert 'spec.pool "big"' in got["future"]["message"]
    assert got["future"]["pool"] == "big" and got["future"]["reservedParticipants"] == 0
    assert (got["over"]["phase"], got["over"]["reason"]) == ("Rejected", "PoolNotFound")
    assert "without a pool" in got["over"]["message"]
    assert got["cancel"]["phase"] == "Cancelled"
    assert "done" not in got  # terminal: left as it is


def _cancelled(name: str) -> MeetingRecord:
    rec = meeting(name)
    assert rec.spec is not None
    return MeetingRecord(
        rec.namespace, rec.name, rec.uid, 1, rec.created,
        rec.spec.model_copy(update={"cancelled": True}), None, {},
    )  # fmt: skip


def test_orphan_statuses_are_not_rewritten_once_written():
    first = _orphans(meeting("m"))["m"]
    stored = meeting("m", **{k: v for k, v in first.items() if k != "event"})
    assert _orphans(stored) == {}


async def _until(predicate) -> None:
    """Poll what the loop under test changes (it offers no event to wait on)."""
    async with asyncio.timeout(5):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


class Writer:
    def __init__(self) -> None:
        self.statuses: list[tuple[str, str, str]] = []
        self.events: list[tuple[str, str]] = []

    async def meeting_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        self.statuses.append((name, status["phase"], status["reason"]))
        return True

    async def quota_status(self, name: str, status: dict[str, Any]) -> bool:
        return True

    def event(self, kind: str, ref: dict[str, Any], reason: str, message: str, w: bool) -> None:
        self.events.append((ref["name"], reason))


async def test_orphan_loop_writes_pool_not_found_until_the_pool_exists():
    writer, health, stop = Writer(), LoopHealth(), asyncio.Event()
    records = {"meetscale-system/big": [meeting("m")], DEFAULT: [meeting("d", spec_pool=None)]}
    pools = dict(POOLS)
    wake = asyncio.Event()
    task = asyncio.create_task(
        run_orphans(
            lambda: (records, pools), DEFAULT, FAST, writer, wake, stop.is_set, health,  # type: ignore[arg-type]
            clock=lambda: NOW,
        )
    )  # fmt: skip
    await _until(lambda: writer.events)
    assert writer.statuses == [("m", "Pending", "PoolNotFound")]
    assert writer.events == [("m", "PoolNotFound")]
    await asyncio.sleep(0.1)  # several passes: the overlay keeps it from being rewritten
    assert len(writer.statuses) == 1
    pools["meetscale-system/big"] = True  # the pool was created: its own loop decides now
    records["meetscale-system/big"] = [meeting("m2")]
    wake.set()
    await asyncio.sleep(0.1)
    assert [s[0] for s in writer.statuses] == ["m"]
    stop.set()
    await asyncio.wait_for(task, 5)


class Standby:
    """A replica's leadership while another holds the Lease; `take()` makes it the leader."""

    def __init__(self) -> None:
        self._leading = asyncio.Event()

    @property
    def leading(self) -> bool:
        return self._leading.is_set()

    async def wait(self) -> None:
        await self._leading.wait()

    def take(self) -> None:
        self._leading.set()


async def test_only_the_leader_writes_orphan_statuses():
    """Every replica fills its indexes (and is ready), but a standby writes nothing: the
    orphans loop, like admission and scaling, starts once the replica leads."""
    runtime, writer, standby = Runtime(FAST), Writer(), Standby()
    runtime.leadership = standby  # type: ignore[assignment]
    runtime._writer = writer  # type: ignore[assignment]
    memo = kopf.Memo(runtime=runtime, admission=(state := AdmissionState()))
    indices = {"meetings_by_pool": {"meetscale-system/big": [meeting("m")]},
               "pools_by_key": {DEFAULT: [BridgePoolSpec()]}}  # fmt: skip
    _ensure_orphans(memo, indices)
    assert runtime.indexed.is_set()
    try:
        await asyncio.sleep(0.1)  # several resync intervals
        assert writer.statuses == []
        standby.take()
        await _until(lambda: writer.statuses)
        # (Pending or Rejected: the handler's loop reads the wall clock, the meeting is dated)
        assert [(name, reason) for name, _, reason in writer.statuses] == [("m", "PoolNotFound")]
    finally:
        assert state.orphans is not None
        state.orphans.cancel()
        with pytest.raises(asyncio.CancelledError):
            await state.orphans


async def test_a_loop_that_keeps_failing_makes_health_fail_and_recovers():
    health, stop = LoopHealth(limit=3), asyncio.Event()
    broken = {"now": True}
    passes: list[bool] = []

    def inputs():
        passes.append(broken["now"])
        if broken["now"]:
            raise RuntimeError("index exploded")
        return [], [], {}

    spec = BridgePoolSpec.model_validate({"template": {}})
    memo = kopf.Memo()
    assert await admission_health(memo=memo) == {}  # starting: healthy
    memo["admission"] = AdmissionState(health=health)
    assert await admission_health(memo=memo) == {}
    task = asyncio.create_task(
        run_pool(
            "meetscale-system/default", lambda: spec, inputs, FAST, Writer(),  # type: ignore[arg-type]
            asyncio.Event(), stop.is_set, write_quota_status=False, health=health,
        )
    )  # fmt: skip
    await _until(lambda: len(passes) >= 3)
    with pytest.raises(kopf.PermanentError) as unhealthy:
        await admission_health(memo=memo)
    assert "admission loop meetscale-system/default failed" in str(unhealthy.value)
    assert "RuntimeError: index exploded" in str(unhealthy.value)
    assert not task.done(), "the loop goes on (Kopf would otherwise retry it every 60 s)"
    broken["now"] = False
    await _until(lambda: passes[-1] is False)
    await _until(lambda: not health.problems())
    assert await admission_health(memo=memo) == {}
    stop.set()
    await asyncio.wait_for(task, 5)


@pytest.mark.parametrize(
    ("failures", "seconds"), [(1, 1.0), (2, 2.0), (4, 8.0), (5, 15.0), (50, 15.0)],
    ids=["first", "second", "fourth", "capped", "many"],
)  # fmt: skip
def test_retry_after_doubles_up_to_the_resync_interval(failures, seconds):
    assert retry_after(failures, Settings()) == seconds


def test_an_admitted_meeting_whose_pool_is_deleted_says_it_lost_its_reservation():
    """Its pool deleted: an Admitted Meeting is Pending PoolNotFound (the bridges it was
    booked on are gone), with a Warning, and its message says it was Admitted and what it
    held, also at the passes after (not silently dropped)."""
    was = meeting("booked", phase="Admitted", reason="Admitted", reservedParticipants=20)
    got = _orphans(was)["booked"]
    assert (got["phase"], got["reason"], got["event"][2]) == ("Pending", "PoolNotFound", True)
    assert got["message"].endswith(
        "; Admitted before (20 participants reserved), its reservation went with the pool: "
        "it is decided again once a pool exists"
    ), got["message"]
    stored = {k: v for k, v in got.items() if k != "event"}
    assert _orphans(meeting("booked", **stored)) == {}  # the next pass keeps it as it is
