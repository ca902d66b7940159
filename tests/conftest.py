"""Shared fixtures. The control-plane fixtures live in tests/conftest_cluster.py."""

pytest_plugins = ["tests.conftest_cluster"]
