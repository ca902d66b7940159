"""API writes (idempotent) and API client set-up. The only place that talks to the apiserver
besides Kopf itself."""
