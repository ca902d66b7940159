"""The decision core: pure functions, data and `now` in, a plan out.

Nothing here imports Kopf, Kubernetes, aiohttp, Prometheus or does I/O (an
import-linter contract in pyproject.toml enforces it). The live operator and
the capacity simulator call the same functions.
"""
