"""meetscale.bridgesim: the `meetscale jvb-sim` command line and its process."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from meetscale.bridgesim import cli as bridgesim_cli

# ---------------------------------------------------------------------- CLI


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bridgesim_cli.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    ("argv", "attr", "value"),
    [
        ([], "host", "127.0.0.1"),
        ([], "port", 8080),
        ([], "capacity", 300),
        ([], "exit_after", 6 * 3600.0),
        ([], "shutting_down_delay", 0.0),
        (["--port", "0"], "port", 0),
        (["--capacity", "50"], "capacity", 50),
        (["--name", "jvb-7"], "name", "jvb-7"),
        (["--drain"], "drain", True),
    ],
    ids=["host", "port", "capacity", "exit-after", "delay", "port-0", "cap", "name", "drain"],
)
def test_cli_arguments(argv: list[str], attr: str, value: object) -> None:
    assert getattr(_parse(argv), attr) == value


@pytest.mark.parametrize(
    "argv",
    [["--port", "70000"], ["--capacity", "0"], ["--exit-after", "-1"]],
    ids=["port-range", "capacity-zero", "negative-exit-after"],
)
def test_cli_rejects(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _parse(argv)


class Proc:
    def __init__(self, proc: subprocess.Popen[str], base: str) -> None:
        self.proc = proc
        self.base = base

    def request(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        return status, (json.loads(raw) if raw.strip().startswith(b"{") else raw)


@contextmanager
def jvb_sim_process(*args: str) -> Iterator[Proc]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "meetscale", "jvb-sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on 127.0.0.1:"), (first, proc.stderr)
        port = int(first.rsplit(":", 1)[1])
        assert port > 0
        yield Proc(proc, f"http://127.0.0.1:{port}")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_cli_process_exits_by_itself_after_graceful_shutdown() -> None:
    with jvb_sim_process("--capacity", "4", "--name", "jvb-test") as p:
        assert p.request("PUT", "/sim/conferences/a", {"participants": 5})[0] == 201
        status, stats = p.request("GET", "/colibri/stats")
        assert status == 200 and stats["stress_level"] == pytest.approx(1.25)
        assert p.request("POST", "/colibri/shutdown", {"graceful-shutdown": True})[0] == 200
        time.sleep(0.3)
        assert p.proc.poll() is None, "must keep running while a conference is live"
        assert p.request("DELETE", "/sim/conferences/a")[0] == 200
        assert p.proc.wait(timeout=10) == 0
        _, stderr = p.proc.communicate(timeout=5)
        assert "[jvb-test] graceful shutdown started" in stderr
        assert "[jvb-test] conference a ended" in stderr


def test_cli_sigterm_exits_like_the_jvb() -> None:
    with jvb_sim_process() as p:
        assert p.request("GET", "/about/health")[0] == 200
        p.proc.send_signal(signal.SIGTERM)
        assert p.proc.wait(timeout=10) == 128 + signal.SIGTERM


def test_cli_exit_after_and_scenario(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("- {at_seconds: 0, conference: demo, participants: 7}\n")
    with jvb_sim_process("--exit-after", "1.5", "--scenario", str(scenario)) as p:
        deadline = time.monotonic() + 1.0
        state: Any = {}
        while time.monotonic() < deadline and not state.get("conferences"):
            state = p.request("GET", "/sim/state")[1]
            time.sleep(0.05)
        assert state["conferences"] == {"demo": 7}
        assert p.proc.wait(timeout=10) == 0


def test_cli_bad_scenario_exits_2(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.json"
    scenario.write_text('{"not": "a list"}')
    result = subprocess.run(
        [sys.executable, "-m", "meetscale", "jvb-sim", "--port", "0", "--scenario", str(scenario)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "bad scenario" in result.stderr
    assert result.stdout == ""
