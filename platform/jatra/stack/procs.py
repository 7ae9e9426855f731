"""Process helpers for the local stack: find binaries, spawn detached, probe readiness, stop by PID."""

from __future__ import annotations

import contextlib
import glob
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path


class StackError(RuntimeError):
    """A local server could not be prepared, started or stopped."""


class MissingBinaryError(StackError):
    """A server binary is not installed; the message names the package that provides it."""

    def __init__(self, binary: str, package: str) -> None:
        super().__init__(
            f"{binary} is not installed. Install it with: apt-get install -y {package}  "
            f"(or run `make bootstrap`, which installs every server the stack needs)"
        )
        self.binary = binary
        self.package = package


def find_binary(names: Sequence[str], package: str) -> str:
    """Return the first of ``names`` (a command or a glob of absolute paths) that exists."""
    for name in names:
        if name.startswith("/"):
            hits = sorted(glob.glob(name))
            if hits and os.access(hits[-1], os.X_OK):
                return hits[-1]
        elif found := shutil.which(name):
            return found
    raise MissingBinaryError(names[0].rsplit("/", 1)[-1], package)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return True


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """``count`` different loopback ports nobody listens on now: all held open at once while the kernel picks,
    so no two are the same (two calls of free_port in a row can be)."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def http_text(url: str, timeout: float = 0.5) -> str | None:
    """The body of a 2xx answer, or None."""
    with (
        contextlib.suppress(OSError, ValueError, http.client.HTTPException),  # a reply cut short too
        urllib.request.urlopen(url, timeout=timeout) as response,  # noqa: S310 - loopback URLs we build
    ):
        return response.read().decode() if 200 <= response.status < 300 else None
    return None


def http_ok(url: str, timeout: float = 0.5) -> bool:
    return http_text(url, timeout) is not None


def wait_until(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise StackError(f"{what} was not ready after {timeout:.0f}s{log_tail(log)}")


def log_tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return f"\n  last lines of {log}:\n    " + "\n    ".join(tail)


def spawn(argv: Sequence[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start a process in its own session, detached from ours, with stdout+stderr in ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    return proc.pid


def stop_pid(pid: int | None, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    """Signal a process, wait for it to exit, and SIGKILL it after ``timeout``."""
    if not pid_alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 5, f"process {pid} after SIGKILL")


def pids_naming(path: Path) -> list[int]:
    """PIDs of the processes whose command line names ``path`` or anything under it (read from /proc):
    the path followed by "/", the end of an argument or a character that ends a path in one ("-c" scripts,
    "--config=<path>/..."), so that ``.../drill/T-12`` does not find ``.../drill/T-123``."""
    named = re.compile(re.escape(str(path).encode()) + rb"(?=[/\0\s;'\"]|$)")
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if named.search(cmdline):
                found.append(int(proc.name))
    return found


def niced(argv: Sequence[str], nice: int) -> list[str]:
    """``argv`` run at CPU priority ``nice``, every thread of it (nice is per thread; new ones inherit it)."""
    return [find_binary(["nice"], "coreutils"), "-n", str(nice), *argv]


def set_autogroup_nice(pid: int, nice: int) -> bool:
    """Lower the CPU share of ``pid``'s autogroup; True if the kernel has autogroups and took it.

    With autogroups on (kernel.sched_autogroup_enabled, the default of most distributions), the scheduler
    shares the CPU fairly between sessions first, and a thread's own nice counts only within its session:
    a process started in its own session (as :func:`spawn` does) at nice 19 still gets a whole session's
    share. The session's nice is what counts between sessions.
    """
    try:
        Path(f"/proc/{pid}/autogroup").write_text(f"{nice}\n")
    except OSError:  # no autogroups in this kernel, or the process is gone
        return False
    return True


def as_user(user: str | None, argv: Sequence[str]) -> list[str]:
    """Prefix argv with runuser when the server refuses to run as root (Postgres, PgBouncer)."""
    if user is None or os.geteuid() != 0:
        return list(argv)
    return [find_binary(["runuser"], "util-linux"), "-u", user, "--", *argv]


def chown_tree(path: Path, user: str | None, group: str | None = None) -> None:
    """Give ``path`` and everything under it to ``user`` (and ``group``, by default the user's namesake)."""
    if user is None or os.geteuid() != 0:
        return
    shutil.chown(path, user, group or user)
    for child in path.rglob("*"):
        shutil.chown(child, user, group or user)
