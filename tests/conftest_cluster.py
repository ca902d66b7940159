"""pytest plugin: a real local Kubernetes control plane and Prometheus for `cluster` tests.

Use from tests/conftest.py with  pytest_plugins = ["tests.conftest_cluster"]
(or on the command line: -p tests.conftest_cluster).

Fixtures
  control_plane  (session)  -> Cluster: .kubeconfig, .bin_dir, .server,
                             .kubectl(*args, input=None, check=True, as_user=None, as_groups=(),
                                      timeout=60) -> CompletedProcess[str],
                             .api_client() -> kubernetes.client.ApiClient (admin), .env()
  namespace      (function) -> str: a fresh namespace `t-<hex>` whose `default`
                             ServiceAccount exists; deleted (and waited for, >= 5 s)
                             afterwards; at session end no ValidatingWebhookConfiguration
                             (nor Mutating...) named meetscale* may remain
  prometheus     (session)  -> testbed.Prometheus with scrape_interval 1s: .url,
                             .targets_file, .set_targets([...]), .query(expr), .wait_for(expr)

Environment
  MEETSCALE_KUBECONFIG  reuse that cluster (e.g. from `python -m testbed up`) instead of
                        starting one; nothing is stopped at the end
  MEETSCALE_BUILD=1     build the binaries (testbed/build.sh) if they are not cached
  CI=true               same, and a missing/failed build fails instead of skipping
  MEETSCALE_NAMESPACE_WAIT=session  wait for deleted namespaces once at session end
                        instead of after each test (saves >= 5 s per test)

Tests using these fixtures get the `cluster` marker automatically, so `-m "not cluster"`
deselects them; nothing is started unless a test asks for a fixture.

Under pytest-xdist (`make test` runs 2 workers) each worker is a session of its own: its own
control plane (free ports, its own loopback pod CIDR, testbed.podcidr) and Prometheus.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from testbed import binaries
from testbed.controlplane import ControlPlane
from testbed.prometheus import Prometheus

CLUSTER_FIXTURES = frozenset(
    {"control_plane", "namespace", "prometheus", "_meetscale_session_checks"}
)
WEBHOOK_PREFIX = "meetscale"
COLD_BUILD_HINT = "~10 min cold on 2 cores"
NAMESPACE_DELETE_TIMEOUT = 60.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cluster: needs the local Kubernetes control plane (testbed: etcd, kube-apiserver, "
        "kube-controller-manager, kube-scheduler, kwok)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


class Cluster:
    """Handle on a running cluster: a kubeconfig plus the binaries to talk to it."""

    def __init__(
        self,
        kubeconfig: Path,
        bin_dir: Path | None,
        control_plane: ControlPlane | None = None,
    ) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.bin_dir = bin_dir
        self.control_plane = control_plane  # None when reusing MEETSCALE_KUBECONFIG

    @property
    def kubectl_path(self) -> str:
        if self.bin_dir is not None:
            return str(self.bin_dir / "kubectl")
        found = shutil.which("kubectl")
        if not found:
            pytest.fail("no kubectl: neither the testbed binaries nor kubectl on PATH")
        return found

    @property
    def server(self) -> str:
        return self.kubectl(
            "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"
        ).stdout

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        as_user: str | None = None,
        as_groups: Sequence[str] = (),
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl with the admin kubeconfig; as_user/as_groups impersonate (--as)."""
        # A discovery cache per cluster: ~/.kube/cache is keyed by host:port, and ports of
        # short-lived test clusters get reused.
        cache = self.kubeconfig.parent / ".kube-cache"
        argv = [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={cache}"]
        if as_user:
            argv.append(f"--as={as_user}")
        argv += [f"--as-group={g}" for g in as_groups]
        argv += list(args)
        r = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and r.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}"
            )
        return r

    def api_client(self):
        """A kubernetes.client.ApiClient authenticated as the admin."""
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=cfg)
        cfg.proxy = None  # the apiserver is on 127.0.0.1: ignore *_proxy from the environment
        return client.ApiClient(cfg)

    def env(self, **extra: str) -> dict[str, str]:
        """os.environ with KUBECONFIG pointing at this cluster (for spawning the operator)."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), **extra}


def _bin_dir() -> Path:
    """The cached binaries; builds only with CI=true or MEETSCALE_BUILD=1; else skips."""
    ci = _truthy("CI")
    if ci or _truthy("MEETSCALE_BUILD"):
        try:
            return binaries.find_bin_dir(allow_build=True)
        except (subprocess.CalledProcessError, binaries.BinariesMissing) as e:
            pytest.fail(f"building the test bed binaries failed: {e}", pytrace=False)
    try:
        return binaries.find_bin_dir()
    except binaries.BinariesMissing as e:
        msg = (
            f"{e}; run `make testbed` (builds Kubernetes binaries from the Go module proxy, "
            f"{COLD_BUILD_HINT}) or set MEETSCALE_BUILD=1"
        )
        if ci:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[Cluster]:
    reuse = os.environ.get("MEETSCALE_KUBECONFIG")
    if reuse:
        yield Cluster(Path(reuse), binaries.cached_bin_dir())
        return
    bin_dir = _bin_dir()
    cp = ControlPlane(bin_dir=bin_dir)
    try:
        cp.start()
        cp.wait_ready(180)
    except BaseException:
        cp.stop()
        raise
    try:
        yield Cluster(cp.kubeconfig, bin_dir, cp)
    finally:
        cp.stop()


def _delete_namespace(cluster: Cluster, name: str) -> None:
    """Start deleting a namespace. Its pods are force-deleted (grace 0; finalizers still
    apply) so the namespace controller's wait for graceful pod termination is skipped;
    the namespace is already Terminating, so nothing can recreate them."""
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
    cluster.kubectl(
        "delete", "pods", "--all", "-n", name, "--grace-period=0", "--force", "--wait=false",
        check=False,
    )  # fmt: skip


def _wait_namespaces_gone(cluster: Cluster, names: list[str], timeout: float) -> None:
    """Fail unless every namespace is gone within timeout (the controller needs >= 5 s)."""
    if not names:
        return
    r = cluster.kubectl(
        "wait", "--for=delete", *(f"namespace/{n}" for n in names), f"--timeout={timeout:.0f}s",
        check=False, timeout=timeout + 30,
    )  # fmt: skip
    if r.returncode != 0 and "NotFound" not in r.stderr:
        left = cluster.kubectl("get", "namespace", *names, "-o", "yaml", check=False).stdout
        pytest.fail(f"namespaces not deleted within {timeout:.0f}s:\n{r.stderr}\n{left}")


@pytest.fixture(scope="session")
def _meetscale_session_checks(control_plane: Cluster) -> Iterator[list[str]]:
    """At session end: deferred namespaces are gone, and no
    (Validating|Mutating)WebhookConfiguration named meetscale* is left."""
    deferred: list[str] = []
    yield deferred
    _wait_namespaces_gone(control_plane, deferred, NAMESPACE_DELETE_TIMEOUT)
    leftovers = []
    for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        names = control_plane.kubectl("get", kind, "-o", "name").stdout.split()
        leftovers += [n for n in names if n.split("/", 1)[1].startswith(WEBHOOK_PREFIX)]
    assert not leftovers, f"webhook configurations left behind: {leftovers}"


@pytest.fixture
def namespace(control_plane: Cluster, _meetscale_session_checks: list[str]) -> Iterator[str]:
    """A fresh namespace t-<hex> with its `default` ServiceAccount; deleted afterwards and
    waited for (>= 5 s: the namespace controller's fixed grace). With
    MEETSCALE_NAMESPACE_WAIT=session the wait for all of them happens once at session end."""
    name = f"t-{secrets.token_hex(4)}"
    control_plane.kubectl("create", "namespace", name)
    # Pods are rejected until the ServiceAccount controller created `default`.
    deadline = time.monotonic() + 30
    while control_plane.kubectl("get", "sa", "default", "-n", name, check=False).returncode:
        if time.monotonic() > deadline:
            pytest.fail(f"ServiceAccount default not created in namespace {name} within 30s")
        time.sleep(0.2)
    yield name
    _delete_namespace(control_plane, name)
    if os.environ.get("MEETSCALE_NAMESPACE_WAIT") == "session":
        _meetscale_session_checks.append(name)
    else:
        _wait_namespaces_gone(control_plane, [name], NAMESPACE_DELETE_TIMEOUT)


@pytest.fixture(scope="session")
def prometheus() -> Iterator[Prometheus]:
    if not (os.access("/usr/bin/prometheus", os.X_OK) and os.access("/usr/bin/promtool", os.X_OK)):
        msg = "prometheus is not installed: apt-get install -y --no-install-recommends prometheus"
        if _truthy("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    prom = Prometheus(scrape_interval="1s")
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()
