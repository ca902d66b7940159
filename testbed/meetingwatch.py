"""A watch of every Meeting in a process of its own (no GIL shared with the process that
creates them), for the benchmarks: each change of a Meeting's (phase, reason) with the
time it was received and the Meeting's creationTimestamp."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["WATCHER", "Watcher"]

# A watch of all Meetings in a process of its own: one JSON line per change of a Meeting's
# (phase, reason), with the time it was received. Resumes from the last resourceVersion,
# relists when that is too old.
WATCHER = """
import json, sys, time
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
api = client.CustomObjectsApi()
out = sys.stdout
seen = {}
def emit(obj):
    meta = obj.get("metadata", {})
    key = meta.get("namespace", "") + "/" + meta.get("name", "")
    st = obj.get("status") or {}
    now = (st.get("phase") or "Pending", st.get("reason"))
    if seen.get(key) != now:
        seen[key] = now
        out.write(json.dumps([time.time(), key, now[0], now[1],
                              meta.get("creationTimestamp")]) + "\\n")
rv = None
while True:
    if rv is None:
        listing = api.list_cluster_custom_object("meetscale.io", "v1alpha1", "meetings")
        for obj in listing["items"]:
            emit(obj)
        rv = listing["metadata"]["resourceVersion"]
        out.write(json.dumps([time.time(), "-", "READY", None, None]) + "\\n"); out.flush()
    try:
        for ev in watch.Watch().stream(
            api.list_cluster_custom_object, "meetscale.io", "v1alpha1", "meetings",
            resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=300,
        ):
            obj = ev["object"]
            if ev["type"] == "ERROR":
                rv = None
                break
            rv = obj.get("metadata", {}).get("resourceVersion", rv)
            if ev["type"] != "BOOKMARK":
                emit(obj)
                out.flush()
    except client.ApiException as e:
        if e.status == 410:
            rv = None
"""


class Watcher:
    """WATCHER above in its own process, writing into ``out``; ``lines()`` parses what it
    wrote so far."""

    def __init__(self, kubeconfig: Path, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WATCHER, str(kubeconfig)],
            stdout=out.open("wb"),
            stderr=(out.parent / "watcher.err").open("wb"),
        )
        deadline = time.monotonic() + 60
        while "READY" not in out.read_text(errors="replace"):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the Meeting watcher did not start within 60 s")
            time.sleep(0.2)
        self._offset = 0
        self._lines: list[list[Any]] = []

    def lines(self) -> list[list[Any]]:
        """[time, key, phase, reason, creationTimestamp] in order received (so far)."""
        with self.out.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        for raw in data[:end].splitlines():
            row = json.loads(raw)
            if row[1] != "-":
                self._lines.append(row)
        return self._lines

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def first_seen(self) -> dict[str, dict[str, float]]:
        """key -> phase -> the first time it was seen."""
        seen: dict[str, dict[str, float]] = {}
        for when, key, phase, _reason, _created in self.lines():
            seen.setdefault(key, {}).setdefault(phase, when)
        return seen
