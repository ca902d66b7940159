"""Provisioning for what happens, on the real control plane: a confidential Meeting runs
only on its confidential pool (its bridges isolated by a NetworkPolicy), a short-notice
Meeting the pool cannot take is Queued `PoolFull` with the time it would fit, and a
Meeting whose room stays empty releases its bridges once its join grace is over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from meetscale.decide.scale.params import BookedTerm
from testbed.bridges import BridgeHarness
from tests.integration.test_pool_support import POOL, pool_doc, wait_for

pytestmark = pytest.mark.cluster
pytest_plugins = ["tests.integration.test_pool_support"]  # fixtures: agency, bridges, kube


def meeting_doc(
    namespace: str, name: str, participants: int, start: datetime, **spec: object
) -> dict:
    return {
        "apiVersion": "meetscale.io/v1alpha1",
        "kind": "Meeting",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "title": name,
            "start": start.replace(microsecond=0).isoformat(),
            "durationMinutes": 60,
            "participants": participants,
            "pool": POOL,
            **spec,
        },
    }


def status_of(control_plane, namespace: str, name: str) -> dict:
    out = control_plane.kubectl("get", "meeting", name, "-n", namespace, "-o", "yaml").stdout
    return dict(yaml.safe_load(out).get("status") or {})


def meeting_events(control_plane, namespace: str, name: str) -> list[dict]:
    out = control_plane.kubectl(
        "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}",
        "-o", "yaml",
    ).stdout  # fmt: skip
    return list(yaml.safe_load(out).get("items") or [])


def now() -> datetime:
    return datetime.now(UTC)


def test_a_confidential_meeting_runs_only_on_the_confidential_pool(
    control_plane, agency, operator, prometheus, bridges, kube, tmp_path: Path
):
    ns = agency
    kube.apply(pool_doc(ns, prometheus.url, minBridges=1, maxBridges=3))
    mat = pool_doc(ns, prometheus.url, minBridges=1, maxBridges=2, confidential=True)
    mat["metadata"]["name"] = "mat"
    kube.apply(mat)
    wait_for(bridges.bridges, what="a shared bridge")

    # On the shared pool a confidential Meeting is refused at apply time, saying why
    with pytest.raises(AssertionError) as refused:
        kube.apply(meeting_doc(ns, "lost", 40, now(), confidential=True))
    assert "spec.confidential: true, but BridgePool" in str(refused.value)
    assert "is shared" in str(refused.value)

    with BridgeHarness(
        control_plane.kubeconfig,
        ns,
        [prometheus.targets_file],
        log_dir=tmp_path / "mat-bridges",
        capacity=100,
        pool="mat",
    ) as secret:
        own = next(iter(wait_for(secret.bridges, what="a confidential bridge")))
        kube.apply(meeting_doc(ns, "hop-mat", 40, now(), confidential=True, pool="mat"))
        wait_for(
            lambda: status_of(control_plane, ns, "hop-mat").get("phase") in ("Admitted", "Running"),
            what="admitted on the confidential pool",
        )
        room = f"{ns}-hop-mat"
        assert secret.set_conference(own, "c1", 35, room=room) == 201
        conf = wait_for(
            lambda: (
                (c := status_of(control_plane, ns, "hop-mat").get("conference") or {}).get(
                    "participants"
                )
                == 35
                and c
            ),
            timeout=30,
            what="its conference seen on the confidential bridge",
        )
        assert conf["bridges"] == [own]
        assert status_of(control_plane, ns, "hop-mat")["pool"] == "mat"

        # the confidential pool's bridges are isolated; the shared pool's are not
        policy = control_plane.kubectl(
            "get", "networkpolicy", "mat-bridges", "-n", ns, "-o", "yaml"
        ).stdout
        spec = yaml.safe_load(policy)["spec"]
        assert spec["podSelector"] == {"matchLabels": {"meetscale.io/pool": "mat"}}
        assert spec["ingress"][0] == {"ports": [{"protocol": "UDP"}]}
        listed = control_plane.kubectl("get", "networkpolicy", "-n", ns, "-o", "name").stdout
        assert listed.split() == ["networkpolicy.networking.k8s.io/mat-bridges"]
        mat_status = yaml.safe_load(
            control_plane.kubectl("get", "bridgepool", "mat", "-n", ns, "-o", "yaml").stdout
        )["status"]
        isolated = {c["type"]: c for c in mat_status["conditions"]}["Isolated"]
        assert (isolated["status"], isolated["reason"]) == ("True", "NetworkPolicyApplied")
        assert "Isolated" not in kube.conditions()


def test_a_short_notice_meeting_at_a_full_pool_is_queued_with_the_time_it_would_fit(
    control_plane, agency, operator, prometheus, bridges, kube
):
    ns = agency
    kube.apply(pool_doc(ns, prometheus.url, minBridges=3, maxBridges=3))
    up = sorted(wait_for(lambda: len(bridges.bridges()) == 3 and bridges.bridges()))
    # three meetings running, one per bridge, 60 of 100 each
    for i, pod in enumerate(up):
        kube.apply(meeting_doc(ns, f"lop-{i}", 60, now() - timedelta(minutes=1)))
        wait_for(
            lambda i=i: status_of(control_plane, ns, f"lop-{i}").get("phase") == "Running",
            what=f"lop-{i} running",
        )
        assert bridges.set_conference(pod, f"c{i}", 60, room=f"{ns}-lop-{i}") == 201
    wait_for(
        lambda: all(
            (status_of(control_plane, ns, f"lop-{i}").get("conference") or {}).get("participants")
            == 60
            for i in range(3)
        ),
        timeout=30,
        what="the three conferences seen",
    )
    # 80 more now: 260 of the pool's 300 in all, but Jicofo puts a conference whole on one
    # bridge, and no bridge has 80 free: it would overload one
    kube.apply(meeting_doc(ns, "hop-dot-xuat", 80, now()))
    status = wait_for(
        lambda: (s := status_of(control_plane, ns, "hop-dot-xuat")).get("reason") and s,
        what="decided",
    )
    assert (status["phase"], status["reason"]) == ("Queued", "PoolFull")
    assert "80 more participants" in status["message"]
    when = datetime.fromisoformat(status["message"].split("it would fit from ")[1].split()[0])
    assert now() < when <= now() + timedelta(hours=4)
    announced = wait_for(
        lambda: [
            e
            for e in meeting_events(control_plane, ns, "hop-dot-xuat")
            if e["reason"] == "PoolFull"
        ],
        timeout=15,
        what="a PoolFull event on the Meeting",
    )
    assert announced[0]["type"] == "Warning"


def test_a_meeting_whose_room_stays_empty_releases_its_bridges(
    control_plane, agency, operator, prometheus, bridges, kube
):
    ns = agency
    # a join grace of 40 s instead of 10 min, so that the test waits less
    doc = pool_doc(ns, prometheus.url, minBridges=1, maxBridges=5, joinGraceSeconds=40)
    kube.apply(doc)
    wait_for(lambda: len(bridges.bridges()) == 1, what="the pool's first bridge")
    # 250 booked, started now: for 40 s it holds 3 bridges (people may still come), then,
    # nobody having come, it keeps only what an empty room can grow by
    start = now()
    kube.apply(meeting_doc(ns, "phong-trong", 250, start))
    # created at its start, it waits at the door until the pool has grown for it
    wait_for(lambda: kube.replicas() >= 3, timeout=40, what="bridges for the booking")
    wait_for(
        lambda: status_of(control_plane, ns, "phong-trong").get("phase") == "Running",
        timeout=30,
        what="admitted once the bridges are up",
    )
    # nobody came: its bridges go (one more than minBridges stays for unbooked meetings:
    # created at its start, this one counts as one) once the join grace is over and the
    # booked floor has forgotten the need it had (``booked.stabilization``), give or
    # take a minute of passes, drains and Pod deletions
    memory = BookedTerm().stabilization
    deadline = start + timedelta(seconds=40) + memory + timedelta(seconds=60)
    wait_for(
        lambda: kube.replicas() <= 2 and not kube.draining(),
        timeout=(deadline - now()).total_seconds(),
        what="the empty room's bridges released",
    )
    assert status_of(control_plane, ns, "phong-trong")["phase"] == "Running"
    assert kube.status()["bookedParticipants"] <= 5  # the empty room's growth floor
