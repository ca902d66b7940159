"""meetscale: capacity operator for a shared Jitsi conferencing system on Kubernetes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meetscale")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+local"

GROUP = "meetscale.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
