"""A throwaway Prometheus (Debian's /usr/bin/prometheus) on 127.0.0.1.

    prom = Prometheus(scrape_interval="1s", static_targets={"operator": ["127.0.0.1:9100"]})
    prom.start()                                   # promtool check, start, wait for /-/ready
    prom.set_targets([{"targets": ["127.1.0.5:8080"], "labels": {"pod": "jvb-0"}}])
    prom.query('up{job="jitsi-videobridge"}')
    prom.stop()

The `jitsi-videobridge` job discovers its targets from a file_sd JSON file (`targets_file`),
which set_targets() rewrites atomically; Prometheus picks changes up via inotify.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from . import _proc

VIDEOBRIDGE_JOB = "jitsi-videobridge"
_MARKER = ".meetscale-testbed"


class PrometheusError(RuntimeError):
    pass


class Prometheus:
    """scrape_configs: extra raw Prometheus scrape_config dicts. file_sd_path: where the
    videobridge SD file lives (default <workdir>/targets/jitsi-videobridge.json).
    static_targets: {job_name: ["host:port", ...]} for extra static jobs (e.g. the operator's
    own /metrics)."""

    def __init__(
        self,
        workdir: str | os.PathLike | None = None,
        scrape_configs: Iterable[Mapping] | None = None,
        file_sd_path: str | os.PathLike | None = None,
        scrape_interval: str = "15s",
        *,
        static_targets: Mapping[str, Iterable[str]] | None = None,
        die_with_parent: bool = True,
        binary: str = "/usr/bin/prometheus",
        promtool: str = "/usr/bin/promtool",
        keep_workdir: bool | None = None,
    ) -> None:
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix="meetscale-prom-")
        self.workdir = Path(workdir).resolve()
        self.scrape_configs = [dict(c) for c in scrape_configs or ()]
        self.static_targets = {job: list(t) for job, t in (static_targets or {}).items()}
        self.targets_file = (
            Path(file_sd_path).resolve()
            if file_sd_path
            else self.workdir / "targets" / f"{VIDEOBRIDGE_JOB}.json"
        )
        self.scrape_interval = scrape_interval
        self.die_with_parent = die_with_parent
        self.binary = binary
        self.promtool = promtool
        if keep_workdir is None:
            keep_workdir = os.environ.get("MEETSCALE_KEEP_WORKDIR") == "1"
        self.keep_workdir = keep_workdir
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise PrometheusError("not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.workdir / "prometheus.yml"

    @property
    def log_file(self) -> Path:
        return self.workdir / "prometheus.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def __enter__(self) -> Prometheus:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def config(self) -> dict:
        jobs: list[dict] = [
            {
                "job_name": VIDEOBRIDGE_JOB,
                "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "5s"}],
            }
        ]
        for job, targets in self.static_targets.items():
            jobs.append({"job_name": job, "static_configs": [{"targets": list(targets)}]})
        jobs.extend(self.scrape_configs)
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": jobs,
        }

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.config_file, yaml.safe_dump(self.config(), sort_keys=False))
        if not self.targets_file.exists():
            self.set_targets([])
        return self.config_file

    def check_config(self) -> None:
        r = subprocess.run(
            [self.promtool, "check", "config", str(self.config_file)],
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode != 0:
            raise PrometheusError(
                f"promtool check config {self.config_file} failed:\n{r.stdout}{r.stderr}"
            )

    def start(self, timeout: float = 30.0) -> None:
        if self.proc is not None:
            raise PrometheusError("already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / _MARKER).write_text(str(os.getpid()))
        self.write_config()
        self.check_config()
        self.port = _proc.free_port()
        argv = [
            self.binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]
        self.log_file.write_text("# " + " ".join(argv) + "\n")
        self.proc = _proc.spawn(
            argv, self.log_file, die_with_parent=self.die_with_parent, cwd=self.workdir
        )
        deadline = time.monotonic() + timeout
        while _proc.http_get(self.url + "/-/ready")[0] != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = (
                    f"exited with code {self.proc.returncode}"
                    if self.proc.poll() is not None
                    else f"not ready after {timeout:.0f}s"
                )
                log = _proc.tail(self.log_file)
                self.stop()
                raise PrometheusError(f"prometheus {why}\n--- {self.log_file}:\n{log}")
            time.sleep(0.1)

    def set_targets(self, groups: Iterable[Mapping]) -> None:
        """Replace the videobridge targets, e.g.
        [{"targets": ["127.1.0.5:8080"], "labels": {"pod": "jvb-0", "namespace": "ns"}}]."""
        groups = [
            {"targets": list(g["targets"]), "labels": dict(g.get("labels") or {})} for g in groups
        ]
        self.targets_file.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.targets_file, json.dumps(groups, indent=1))

    def reload(self) -> None:
        """Rewrite the config (after changing scrape_configs/static_targets) and reload."""
        self.write_config()
        self.check_config()
        r = _post(self.url + "/-/reload")
        if r != 200:
            raise PrometheusError(f"reload failed: HTTP {r}")

    def query(self, expr: str) -> list[dict]:
        """Instant query; returns data.result (list of {metric, value})."""
        status, body = _proc.http_get(
            self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=5
        )
        if status != 200:
            raise PrometheusError(f"query {expr!r} failed: HTTP {status} {body[:500]}")
        return json.loads(body)["data"]["result"]

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[dict]:
        """Poll an instant query until it returns a non-empty result."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise PrometheusError(f"query {expr!r} still empty after {timeout:.0f}s")
            time.sleep(0.25)

    def active_targets(self) -> list[dict]:
        status, body = _proc.http_get(self.url + "/api/v1/targets?state=active", timeout=5)
        if status != 200:
            raise PrometheusError(f"/api/v1/targets: HTTP {status}")
        return json.loads(body)["data"]["activeTargets"]

    def stop(self) -> None:
        if self.proc is not None:
            _proc.terminate([self.proc], grace=5.0)
            self.proc = None
        if not self.keep_workdir and (self.workdir / _MARKER).exists():
            shutil.rmtree(self.workdir, ignore_errors=True)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _post(url: str) -> int:
    try:
        with _proc.opener().open(urllib.request.Request(url, method="POST"), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0
