"""Pinned placement on the real control plane (BridgePool `placement.mode: Pinned`): each
bridge Pod reports a release of its own, the operator pins a booked Meeting's conference to
the bridge where it fits best through Jicofo's REST API (the test bed's Jicofo, which
selects bridges as Jicofo does) and holds that bridge out of Jicofo's selection meanwhile,
the conference opens there rather than where Jicofo alone would put it, and the pin and the
hold end once the conference is open; a Meeting larger than a bridge gets bridges started
for it that share a release of their own (a spanning group), held, its conference pinned to
them."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from meetscale.decide.scale.groups import group_release
from meetscale.models.labels import GROUP_LABEL
from testbed.jicofo import TestJicofo
from tests.integration.test_pool_provisioning import meeting_doc, status_of
from tests.integration.test_pool_support import POOL, pool_doc, wait_for

pytestmark = pytest.mark.cluster
pytest_plugins = ["tests.integration.test_pool_support"]  # fixtures: agency, bridges, kube

MUC = "muc.meet.jitsi"


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/colibri/stats", timeout=5) as resp:
        return dict(json.loads(resp.read()))


def pool_events(control_plane, namespace: str, reason: str) -> list[str]:
    out = control_plane.kubectl(
        "get", "events", "-n", namespace, "--field-selector",
        f"involvedObject.name={POOL},reason={reason}", "-o", "yaml",
    ).stdout  # fmt: skip
    return [e["message"] for e in yaml.safe_load(out).get("items") or []]


def pins_condition(kube, meeting: str) -> dict[str, Any]:
    """The pool's ConferencesPinned condition, once it names ``meeting``."""
    return dict(
        wait_for(
            lambda: (
                (c := kube.conditions().get("ConferencesPinned")) and meeting in c["message"] and c
            ),
            timeout=30,
            what=f"the pool's ConferencesPinned condition naming {meeting}",
        )
    )


def test_a_booked_conference_opens_on_the_bridge_the_operator_pinned(
    control_plane, agency, operator, prometheus, bridges, kube
):
    ns = agency
    now = datetime.now(UTC)
    with TestJicofo() as jicofo:
        placement = {"mode": "Pinned", "jicofoUrl": jicofo.url}
        kube.apply(pool_doc(ns, prometheus.url, minBridges=2, maxBridges=2, placement=placement))
        x, y = sorted(wait_for(lambda: len(bridges.bridges()) == 2 and bridges.bridges()))
        # each bridge reports its Pod's name as its release, so a version names one bridge
        versions = {pod: f"{stats(bridges.url(pod))['version']}-{pod}" for pod in (x, y)}
        assert {stats(bridges.url(pod)).get("release") for pod in (x, y)} == {x, y}

        # a booked 80 has begun: pinned (to the oldest of two empty bridges), it opens there
        # through Jicofo with 10 joined; then 30 join a room nobody booked, on the other one
        kube.apply(meeting_doc(ns, "dang-hop", 80, now - timedelta(minutes=1)))
        first = f"{ns}-dang-hop@{MUC}"
        wait_for(lambda: jicofo.pinned().get(first), timeout=45, what="the running one's pin")
        a = jicofo.open(bridges, first, 10, "c-dang")
        (b,) = {x, y} - {a}
        wait_for(lambda: first not in jicofo.pinned(), timeout=30, what="its pin removed")
        wait_for(lambda: not stats(bridges.url(a))["drain"], timeout=30, what="a released")
        assert bridges.set_conference(b, "c-tu-do", 30, room="phong-tu-do") == 201
        wait_for(
            lambda: (
                (status_of(control_plane, ns, "dang-hop").get("conference") or {}).get(
                    "participants"
                )
                == 10
            ),
            timeout=30,
            what="the running meeting's conference seen",
        )

        # a booked 50 whose first joiners may come in a minute (10 min before its start)
        kube.apply(meeting_doc(ns, "giao-ban", 50, now + timedelta(minutes=11)))
        room = f"{ns}-giao-ban@{MUC}"
        pinned = wait_for(lambda: jicofo.pinned().get(room), timeout=45, what="the pin")
        # b will carry 30 + 50; a the running meeting's 80 (it counts at its size, not at
        # the 10 who joined), which leaves no room for 50 with the declaration margin
        assert pinned == versions[b]
        assert any(room in m and b in m for m in pool_events(control_plane, ns, "ConferencePinned"))
        cond = pins_condition(kube, "giao-ban")
        assert (cond["status"], cond["reason"]) == ("True", "PinsApplied")
        assert f"{ns}/giao-ban on {b}" in cond["message"]

        # b is held (drain mode) while the pin waits: a room nobody pinned goes to a
        wait_for(lambda: stats(bridges.url(b))["drain"], timeout=30, what="b held")
        assert not stats(bridges.url(a))["drain"]
        loads = {pod: stats(bridges.url(pod)) for pod in (a, b)}
        assert jicofo.select(loads, f"unpinned@{MUC}") == a
        # the pinned one opens on b all the same (draining is only a preference among the
        # bridges of its version), though a is the least loaded
        assert jicofo.open(bridges, room, 4, "c-giao-ban") == b

        # once its conference is open, the pin is taken back (Jicofo keeps it on b) and b
        # goes back into Jicofo's selection
        wait_for(lambda: room not in jicofo.pinned(), timeout=30, what="the pin removed")
        assert ("POST", "/pin/remove", {"conferenceId": room}) in jicofo.requests
        wait_for(lambda: not stats(bridges.url(b))["drain"], timeout=30, what="b released")


def test_a_meeting_larger_than_a_bridge_gets_bridges_that_share_a_release(
    control_plane, agency, operator, prometheus, bridges, kube
):
    ns = agency
    with TestJicofo() as jicofo:
        placement = {"mode": "Pinned", "jicofoUrl": jicofo.url}
        kube.apply(pool_doc(ns, prometheus.url, minBridges=1, maxBridges=4, placement=placement))
        (own,) = wait_for(lambda: len(bridges.bridges()) == 1 and bridges.bridges())
        # a room nobody booked on the pool's own bridge: it stays while the group comes (an
        # idle one would be drained once the group's bridges are up: they count)
        assert bridges.set_conference(own, "c-tu-do", 10, room="phong-tu-do") == 201
        # a 150 on bridges of 100 whose first joiners may come now (10 min before its start):
        # with the declaration margin (195) a group of two bridges is started for it (the
        # pool's lead time, 1 min, before that), with one release of their own
        kube.apply(meeting_doc(ns, "tap-huan", 150, datetime.now(UTC) + timedelta(minutes=10)))
        group = group_release(f"{ns}/tap-huan")

        def grouped() -> list[str]:
            out = control_plane.kubectl(
                "get", "pods", "-n", ns, "-l", f"{GROUP_LABEL}={group}", "-o", "name"
            ).stdout.split()
            return sorted(name.removeprefix("pod/") for name in out)

        members = wait_for(
            lambda: len(m := grouped()) == 2 and set(m) <= set(bridges.bridges()) and m,
            timeout=60,
            what="the group's two bridges up",
        )
        assert own not in members
        assert {stats(bridges.url(p)).get("release") for p in members} == {group}
        # both held (nothing unpinned goes there), the conference pinned to the group's release
        wait_for(
            lambda: all(stats(bridges.url(p))["drain"] for p in members), timeout=30, what="held"
        )
        room = f"{ns}-tap-huan@{MUC}"
        version = f"{stats(bridges.url(members[0]))['version']}-{group}"
        assert wait_for(lambda: jicofo.pinned().get(room), timeout=45, what="the pin") == version
        cond = pins_condition(kube, "tap-huan")
        assert f"{ns}/tap-huan on group {group}" in cond["message"]
        assert any(
            f"open on the bridges of group {group}" in m
            for m in pool_events(control_plane, ns, "ConferencePinned")
        )
        loads = {p: stats(bridges.url(p)) for p in [own, *members]}
        assert jicofo.select(loads, f"unpinned@{MUC}") == own
        assert jicofo.open(bridges, room, 4, "c-tap-huan") in members


def test_an_unreachable_jicofo_is_reported(control_plane, agency, operator, prometheus, kube):
    ns = agency
    placement = {"mode": "Pinned", "jicofoUrl": "http://127.0.0.1:9"}
    kube.apply(pool_doc(ns, prometheus.url, minBridges=0, maxBridges=3, placement=placement))
    start = datetime.now(UTC) + timedelta(hours=2)
    kube.apply(meeting_doc(ns, "hop-nho", 90, start))
    wait_for(
        lambda: status_of(control_plane, ns, "hop-nho").get("phase") == "Admitted",
        what="the meeting",
    )
    # nothing answers at jicofoUrl: the pool says so, and conferences open where Jicofo chooses
    cond = wait_for(
        lambda: (c := kube.conditions().get("ConferencesPinned")) and c["status"] == "False" and c,
        timeout=30,
        what="JicofoUnreachable",
    )
    assert cond["reason"] == "JicofoUnreachable"
    assert pool_events(control_plane, ns, "JicofoUnreachable")
