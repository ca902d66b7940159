"""meetscale's local test bed: a real Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok) and Prometheus, on 127.0.0.1, no Docker.

CLI: python -m testbed up|down|status|env  (see testbed/__main__.py).
"""

from .binaries import BinariesMissing, cached_bin_dir, find_bin_dir
from .controlplane import ControlPlane, ControlPlaneError
from .prometheus import Prometheus, PrometheusError

__all__ = [
    "BinariesMissing",
    "ControlPlane",
    "ControlPlaneError",
    "Prometheus",
    "PrometheusError",
    "cached_bin_dir",
    "find_bin_dir",
]
