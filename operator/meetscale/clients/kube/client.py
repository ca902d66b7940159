"""Kubernetes API client set-up, done once at start-up."""

from __future__ import annotations

import kubernetes


def load_configuration() -> kubernetes.client.Configuration:
    """In-cluster credentials when running in a pod, else the current kubeconfig."""
    cfg = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    return cfg


def load_api_client() -> kubernetes.client.ApiClient:
    return kubernetes.client.ApiClient(load_configuration())
