"""Process helpers shared by the control plane and Prometheus: free ports, child processes
that die with their parent, termination, RSS measurement and HTTP polling."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_libc = ctypes.CDLL(None, use_errno=True)  # loaded here, not in the forked child


def _die_with_parent(parent_pid: int):
    """preexec_fn: ask the kernel to SIGKILL the child when the parent goes away."""
    prctl = _libc.prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork() and prctl(): then we were re-parented.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def spawn(
    argv: Sequence[str],
    log_path: Path,
    *,
    die_with_parent: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen:
    """Start argv in its own session with stdout+stderr appended to log_path.

    With die_with_parent, the child gets PR_SET_PDEATHSIG=SIGKILL: it is killed when the
    thread that started it exits (so start children from a long-lived thread, e.g. the main
    thread). Without it, the child outlives us (used by the detached `up` supervisor).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # prctl must run in the child; only async-signal-safe work happens there.
            preexec_fn=_die_with_parent(os.getpid()) if die_with_parent else None,  # noqa: PLW1509
            env=env,
            cwd=cwd,
            close_fds=True,
        )


def pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pid_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [p.decode(errors="replace") for p in raw.split(b"\0") if p]


def terminate(procs: Iterable[subprocess.Popen], grace: float = 5.0) -> None:
    """SIGTERM every process (whole session), wait up to grace seconds, then SIGKILL; reap."""
    procs = [p for p in procs if p is not None]
    for p in procs:
        if p.poll() is None:
            _signal_group(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        remaining = max(0.0, deadline - time.monotonic())
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=remaining)
    for p in procs:
        if p.poll() is None:
            _signal_group(p.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)


def terminate_pids(pids: Iterable[int], grace: float = 5.0) -> None:
    """Like terminate() for processes that are not our children (e.g. from a state file)."""
    pids = [p for p in pids if p and pid_alive(p)]
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if pid_alive(pid):
            _signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group led by pid (our children are session leaders), else pid."""
    try:
        os.killpg(pid, sig)
        return
    except OSError as e:
        if e.errno not in (errno.ESRCH, errno.EPERM):
            raise
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def rss_bytes(pid: int) -> int:
    """Resident set size of pid in bytes (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tail(path: Path, lines: int = 20) -> str:
    """Last lines of a log file, or a note if it does not exist."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError as e:
        return f"<no log: {e}>"
    return "\n".join(data.splitlines()[-lines:])


def opener(ssl_context: ssl.SSLContext | None = None) -> urllib.request.OpenerDirector:
    """A urllib opener that ignores *_proxy variables: everything here is on 127.0.0.0/8,
    which urllib would otherwise send to a configured proxy."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if ssl_context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
    return urllib.request.build_opener(*handlers)


def http_get(
    url: str,
    *,
    timeout: float = 2.0,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[int, str]:
    """GET url; returns (status, body). Status 0 means the connection failed."""
    try:
        with opener(ssl_context).open(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (OSError, urllib.error.URLError):
        return 0, ""
