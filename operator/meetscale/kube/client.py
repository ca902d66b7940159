"""Kubernetes API client set-up, done once at start-up."""

from __future__ import annotations

import kubernetes


def load_api_client() -> kubernetes.client.ApiClient:
    """In-cluster credentials when running in a pod, else the current kubeconfig."""
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    return kubernetes.client.ApiClient()
