"""The scaling shell with fakes (a Kubernetes in memory, a Prometheus, colibri bridges): what
a pass does to the pods, the Services and the bridges, and what the pool's status says.
The same behaviour on the real control plane is in tests/integration/test_pool_*.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from meetscale.clients.kube.pool import KubeError, OwnerRef
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord
from meetscale.scaling.scaler import PassResult, PoolScaler
from tests.unit.scalefakes import T0, FakeColibri, FakeKube, FakeProm

JITSI = {"xmppServer": "jitsi-prosody.jitsi.svc", "authSecret": "jitsi-jvb-secret"}
OWNER = OwnerRef("meetscale.io/v1alpha1", "BridgePool", "pool", "pool-uid")


def meeting(name: str, participants: int, start_min: float, **status: Any) -> MeetingRecord:
    start = T0 + timedelta(minutes=start_min)
    body = {
        "metadata": {
            "namespace": "so-y-te",
            "name": name,
            "uid": f"uid-{name}",
            "generation": 1,
            "creationTimestamp": (T0 - timedelta(days=1)).isoformat(),
        },
        "spec": {
            "title": name,
            "start": start.isoformat(),
            "durationMinutes": 60,
            "participants": participants,
        },
        "status": {"phase": "Admitted", **status},
    }
    return MeetingRecord.from_body(body)


class World:
    """One pool under a scaler, with its fakes and a clock that the test moves."""

    def __init__(self, **spec: Any) -> None:
        base: dict[str, Any] = {
            "jitsi": JITSI,
            "participantsPerBridge": 100,
            "minBridges": 1,
            "maxBridges": 5,
            "protectionSeconds": 0,
            "prometheus": {"url": "http://prometheus:9090"},
            "perBridgeService": {"nodePortMin": 30000, "nodePortMax": 30009},
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
        }
        base.update(spec)
        self.spec = BridgePoolSpec.model_validate(base)
        self.kube = FakeKube(secrets={"jitsi-jvb-secret": {"JVB_AUTH_USER", "JVB_AUTH_PASSWORD"}})
        self.prom = FakeProm()
        self.colibri = FakeColibri(self.kube)
        self.events: list[tuple[str, str, bool]] = []
        self.statuses: list[dict[str, Any]] = []
        self.meeting_writes: list[tuple[str, dict[str, Any]]] = []
        self.meetings: list[MeetingRecord] = []
        self.now = T0

        async def write_meeting(ns: str, name: str, status: dict[str, Any]) -> bool:
            self.meeting_writes.append((f"{ns}/{name}", status))
            return True

        async def write(status: dict[str, Any]) -> bool:
            self.statuses.append(status)
            return True

        self.scaler = PoolScaler(
            "ns",
            "pool",
            kube=self.kube,  # type: ignore[arg-type]
            prom=self.prom,  # type: ignore[arg-type]
            colibri=self.colibri,  # type: ignore[arg-type]
            events=lambda r, m, w: self.events.append((r, m, w)),
            write_status=write,
            clock=lambda: self.now,
            write_meeting=write_meeting,
        )

    async def run(self, *, ready: bool = True, seconds: float = 15) -> PassResult:
        self.now += timedelta(seconds=seconds)
        pods = self.kube.records(ready=ready, at=self.now)
        return await self.scaler.reconcile(self.spec, OWNER, pods, self.meetings, None, 1)

    def condition(self, ctype: str) -> dict[str, Any]:
        return next(c for c in self.statuses[-1]["conditions"] if c["type"] == ctype)

    def reasons(self) -> list[str]:
        return [r for r, _, _ in self.events]


async def test_new_pool_gets_its_minimum_with_a_port_each() -> None:
    w = World(minBridges=2)
    result = await w.run(ready=False)
    assert result.bridges_after == 2
    assert sorted(s["spec"]["ports"][0]["nodePort"] for s in w.kube.services.values()) == [
        30000,
        30001,
    ]
    for name, pod in w.kube.pods.items():
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        port = w.kube.services[name]["spec"]["ports"][0]["nodePort"]
        assert env["JVB_PORT"] == str(port)
    assert w.condition("BridgesProvisioned")["status"] == "True"
    # the index has not caught up: the next pass does not create them again
    again = await w.scaler.reconcile(w.spec, OWNER, [], [], None, 1)
    assert again.bridges_after == 2 and len(w.kube.pods) == 2


async def test_port_allocated_elsewhere_is_skipped() -> None:
    w = World(minBridges=1)
    w.kube.allocated_elsewhere = {30000}
    await w.run(ready=False)
    [svc] = w.kube.services.values()
    assert svc["spec"]["ports"][0]["nodePort"] == 30001


async def test_missing_account_secret_creates_nothing_and_says_why() -> None:
    w = World(minBridges=2)
    w.kube.secrets.clear()
    await w.run()
    await w.run()
    assert w.kube.pods == {}
    cond = w.condition("BridgesProvisioned")
    assert (cond["status"], cond["reason"]) == ("False", "SecretNotFound")
    assert "spec.jitsi.authSecret: Secret ns/jitsi-jvb-secret does not exist" in cond["message"]
    assert w.reasons().count("SecretNotFound") == 1  # one event, not one per pass
    w.kube.secrets["jitsi-jvb-secret"] = {"JVB_AUTH_USER", "JVB_AUTH_PASSWORD"}
    await w.run()
    assert len(w.kube.pods) == 2
    assert w.condition("BridgesProvisioned")["status"] == "True"


async def test_pod_the_apiserver_refuses_is_reported_in_its_words() -> None:
    w = World(minBridges=1)
    w.kube.refuse_pods = KubeError(
        "Invalid", 'Pod "pool-jvb-x" is invalid: spec.containers[0].image: Required value', 422
    )
    await w.run()
    cond = w.condition("BridgesProvisioned")
    assert (cond["status"], cond["reason"]) == ("False", "Invalid")
    assert "spec.containers[0].image: Required value" in cond["message"]
    assert w.kube.services == {}  # the port it took is given back


async def test_scale_down_drains_the_least_loaded_and_removes_it_when_empty() -> None:
    w = World(minBridges=3)
    await w.run(ready=False)
    a, b, c = sorted(w.kube.pods)
    w.prom.loads = {a: 10, b: 0, c: 12}
    w.colibri.loads = dict(w.prom.loads)
    w.spec = w.spec.model_copy(update={"min_bridges": 1})
    result = await w.run()
    assert f"DrainStarted {b}" in result.actions
    assert w.colibri.drain[b] is True
    assert w.kube.pods[b]["metadata"]["labels"]["meetscale.io/draining"] == "true"
    result = await w.run()  # empty by Prometheus and by the bridge itself: it goes
    assert f"BridgeRemoved {b}" in result.actions
    assert b not in w.kube.pods and b not in w.kube.services
    assert "BridgeRemoved" in w.reasons()


async def test_drained_bridge_still_hosting_is_not_removed() -> None:
    w = World(minBridges=2)
    await w.run(ready=False)
    a, b = sorted(w.kube.pods)
    w.prom.loads = {a: 10, b: 0}
    w.colibri.loads = {a: 10, b: 3}  # Prometheus lags: the bridge still has three
    w.spec = w.spec.model_copy(update={"min_bridges": 1})
    await w.run()
    result = await w.run()
    assert b in w.kube.pods and not any(x.startswith("BridgeRemoved") for x in result.actions)


async def test_without_prometheus_nothing_is_drained_or_removed() -> None:
    w = World(minBridges=3)
    await w.run(ready=False)
    w.prom.down = True
    w.spec = w.spec.model_copy(update={"min_bridges": 1})
    for _ in range(3):
        result = await w.run()
        assert not any(a.startswith(("DrainStarted", "BridgeRemoved")) for a in result.actions)
    cond = w.condition("PrometheusUnavailable")
    assert (cond["status"], cond["reason"]) == ("True", "ConnectionError")


async def test_template_edit_replaces_one_bridge_at_a_time() -> None:
    w = World(minBridges=2)
    await w.run(ready=False)
    old = set(w.kube.pods)
    w.prom.loads = dict.fromkeys(old, 30)
    w.colibri.loads = dict(w.prom.loads)
    w.spec = BridgePoolSpec.model_validate(
        {**w.spec.model_dump(by_alias=True), "jitsi": {**JITSI, "breweryMuc": "jvbbrewery2"}}
    )
    result = await w.run()
    drained = [a for a in result.actions if a.startswith("DrainStarted")]
    created = [a for a in result.actions if a.startswith("BridgeCreated")]
    assert len(drained) == 1 and len(created) == 1
    again = await w.run()
    assert not any(a.startswith("DrainStarted") for a in again.actions)  # one at a time


@pytest.mark.parametrize(
    ("loads", "expected"),
    [({"x": 0}, True), ({"x": 250}, False)],
    ids=["empty-goes", "busy-stays"],
)
async def test_removal_follows_the_bridge_s_own_count(
    loads: dict[str, int], expected: bool
) -> None:
    w = World(minBridges=2)
    await w.run(ready=False)
    a, b = sorted(w.kube.pods)
    w.prom.loads = {a: 50, b: 0}
    w.colibri.loads = {a: 50, b: loads["x"]}
    w.spec = w.spec.model_copy(update={"min_bridges": 1})
    await w.run()
    await w.run()
    assert (b not in w.kube.pods) is expected


async def test_meeting_status_shows_its_conference_and_unbooked_rooms_are_counted() -> None:
    w = World(minBridges=2)
    await w.run(ready=False)
    a, b = sorted(w.kube.pods)
    w.meetings = [meeting("giao-ban", 120, -5)]
    w.prom.loads = {a: 70, b: 60}
    w.colibri.rooms = {a: {"so-y-te-giao-ban": 50, "hop-rieng": 20}, b: {"so-y-te-giao-ban": 60}}
    await w.run()
    key, status = w.meeting_writes[-1]
    assert key == "so-y-te/giao-ban"
    assert status["room"] == "so-y-te-giao-ban"
    conf = status["conference"]
    assert (conf["participants"], conf["peakParticipants"]) == (110, 110)
    assert conf["bridges"] == [a, b]
    assert conf["openedAt"] == (w.now).isoformat().replace("+00:00", "Z")
    pool = w.statuses[-1]
    assert (pool["unbookedConferences"], pool["unbookedParticipants"]) == (1, 20)

    # fewer now, the peak stays; then the room empties: closed
    w.meetings = [meeting("giao-ban", 120, -5, conference=conf)]
    w.colibri.rooms = {a: {}, b: {"so-y-te-giao-ban": 30}}
    await w.run(seconds=60)
    conf2 = w.meeting_writes[-1][1]["conference"]
    assert (conf2["participants"], conf2["peakParticipants"], conf2["bridges"]) == (30, 110, [b])
    w.meetings = [meeting("giao-ban", 120, -5, conference=conf2)]
    w.colibri.rooms = {a: {}, b: {}}
    await w.run()
    conf3 = w.meeting_writes[-1][1]["conference"]
    assert (
        conf3["participants"] == 0 and conf3["closedAt"] and conf3["openedAt"] == conf["openedAt"]
    )
