"""Conferences seen per Meeting, on the real control plane: the bridges' `GET /debug` lists
each conference with its room's MUC JID; the operator matches it to its Meeting and shows
it in the Meeting's status (participants now and at peak, the bridges hosting it, when it
opened and closed); a conference of no Meeting counts as unbooked in the pool's status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from tests.integration.test_pool_support import pool_doc, wait_for

pytestmark = pytest.mark.cluster
pytest_plugins = ["tests.integration.test_pool_support"]  # fixtures: bridges, kube


def meeting_doc(namespace: str, name: str, participants: int) -> dict:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    return {
        "apiVersion": "meetscale.io/v1alpha1",
        "kind": "Meeting",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "title": "Giao ban",
            "start": start.isoformat(),
            "durationMinutes": 60,
            "participants": participants,
            "pool": "pool",
        },
    }


def status_of(control_plane, namespace: str, name: str) -> dict:
    out = control_plane.kubectl("get", "meeting", name, "-n", namespace, "-o", "yaml").stdout
    return dict(yaml.safe_load(out).get("status") or {})


def test_meeting_status_shows_what_its_conference_is(
    control_plane, agency, operator, prometheus, bridges, kube
):
    ns = agency
    kube.apply(pool_doc(ns, prometheus.url, minBridges=2, maxBridges=4))
    a, b = sorted(wait_for(lambda: len(bridges.bridges()) == 2 and bridges.bridges()))
    kube.apply(meeting_doc(ns, "giao-ban", 80))
    wait_for(
        lambda: status_of(control_plane, ns, "giao-ban").get("phase") in ("Admitted", "Running"),
        what="admitted",
    )
    room = f"{ns}-giao-ban"
    # Jicofo spread it over two bridges; someone also opened a room nobody booked.
    assert bridges.set_conference(a, "c1", 30, room=room) == 201
    assert bridges.set_conference(b, "c2", 25, room=room) == 201
    assert bridges.set_conference(b, "c3", 7, room="phong-hop-rieng") == 201

    def seen() -> dict:
        conf = status_of(control_plane, ns, "giao-ban").get("conference") or {}
        return conf if conf.get("participants") == 55 else {}

    conf = wait_for(seen, timeout=30, what="conference in the Meeting's status")
    assert sorted(conf["bridges"]) == [a, b]
    assert conf["peakParticipants"] == 55 and conf["openedAt"] and not conf.get("closedAt")
    assert status_of(control_plane, ns, "giao-ban")["room"] == room
    pool = wait_for(
        lambda: (s := kube.status()).get("unbookedConferences") == 1 and s,
        timeout=30,
        what="the unbooked room counted",
    )
    assert pool["unbookedParticipants"] == 7
    printed = control_plane.kubectl("get", "meeting", "giao-ban", "-n", ns).stdout
    assert "JOINED" in printed and "55" in printed

    # Everyone leaves: the conference is closed, its peak kept.
    bridges.set_conference(a, "c1", 0, room=room)
    bridges.set_conference(b, "c2", 0, room=room)
    closed = wait_for(
        lambda: (
            (c := status_of(control_plane, ns, "giao-ban").get("conference") or {}).get("closedAt")
            and c
        ),
        timeout=60,
        what="conference closed",
    )
    assert (closed["participants"], closed["peakParticipants"]) == (0, 55)
