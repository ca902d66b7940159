"""`kubectl meetscale slots` against the live province: what it reads from the cluster is
what the operator decided (the windows step around the admitted Meetings, a Queued one
holds nothing), and the same objects saved with `kubectl get -o yaml` give the same
answer from files."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta, timezone

import yaml

from tests.integration.province import province  # noqa: F401 (a fixture)

ICT = timezone(timedelta(hours=7))


def run(env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), env=env, cwd=env["WORK"], capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def meeting(name: str, start: datetime, minutes: int, participants: int) -> dict:
    return {
        "apiVersion": "meetscale.io/v1alpha1",
        "kind": "Meeting",
        "metadata": {"name": name, "namespace": "so-y-te"},
        "spec": {
            "title": name,
            "start": start.isoformat(),
            "durationMinutes": minutes,
            "participants": participants,
        },
    }


def test_slots_from_the_cluster_and_from_files(province):  # noqa: F811
    env = province
    day = (datetime.now(UTC).astimezone(ICT) + timedelta(days=2)).date()
    at = lambda h, m: datetime(day.year, day.month, day.day, h, m, tzinfo=ICT)  # noqa: E731
    docs = [
        meeting("giao-ban", at(8, 0), 90, 250),  # admitted: holds [07:50, 09:30)
        meeting("hoi-thao", at(8, 0), 60, 300),  # queued: 550 > 500, holds nothing
    ]
    r = subprocess.run(
        ["kubectl", "apply", "-f", "-"], input=yaml.safe_dump_all(docs), env=env,
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    for name, phase in (("giao-ban", "Admitted"), ("hoi-thao", "Queued")):
        r = run(env, "kubectl", "wait", f"meeting/{name}", "-n", "so-y-te",
                f"--for=jsonpath={{.status.phase}}={phase}", "--timeout=60s")  # fmt: skip
        assert r.returncode == 0, r.stderr
    ask = ["--agency", "so-y-te", "--participants", "300", "--minutes", "90",
           "--on", day.isoformat(), "--from", "06:00", "--to", "12:00", "-o", "json"]  # fmt: skip
    live = run(env, "kubectl", "meetscale", "slots", *ask)
    assert live.returncode == 0, live.stderr
    got = json.loads(live.stdout)
    assert got["displayName"] == "Sở Y tế"
    assert got["reservations"] == 1  # the Queued one holds nothing
    assert [(w["first"][11:16], w["last"][11:16]) for w in got["windows"]] == [
        ("06:00", "06:20"),
        ("09:40", "11:55"),
    ]
    (gap,) = got["gaps"]
    assert (gap["first"][11:16], gap["last"][11:16], gap["reason"]) == (
        "06:25",
        "09:35",
        "QuotaExceeded",
    )
    assert "requested 300, booked 250, limit 500" in gap["message"]
    # The queued Meeting's own message names the first of those starts after its own.
    message = run(env, "kubectl", "get", "meeting", "hoi-thao", "-n", "so-y-te",
                  "-o", "jsonpath={.status.message}").stdout  # fmt: skip
    assert message.endswith(f"is {day.isoformat()}T09:40:00+07:00"), message

    saved = run(env, "kubectl", "get", "namespaces,agencyquotas,meetings,bridgepools", "-A",
                "-o", "yaml")  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    path = f"{env['WORK']}/province.yaml"
    with open(path, "w", encoding="utf-8") as f:
        f.write(saved.stdout)
    offline = run(env, "meetscale", "slots", *ask, "-f", path, "--now", got["now"])
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout) == got
