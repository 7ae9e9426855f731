"""What every local server knows about itself: how to prepare, start, probe and stop."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from jatra.stack.ports import Ports


@dataclass(frozen=True, slots=True)
class StackContext:
    state_dir: Path
    ports: Ports
    api_replicas: int = 1
    #: the `environment` label on every scraped series
    environment: str = "dev"
    #: where Prometheus loads rules from (default: the committed alerts/generated)
    rules_dir: Path | None = None

    def data(self, name: str) -> Path:
        return self.state_dir / "data" / name

    def log(self, name: str) -> Path:
        return self.state_dir / "log" / f"{name}.log"

    def conf(self, name: str) -> Path:
        return self.state_dir / "conf" / name


class Server:
    """A server process of the local stack. Subclasses fill in argv/prepare/ready."""

    name: str = ""
    #: run the process as this user when we are root (Postgres and PgBouncer refuse root)
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    ready_timeout: float = 30.0
    #: seconds between the stop signal and SIGKILL
    stop_timeout: float = 20.0
    #: CPU priority (nice, in its own session as well): 0, or 19 for a stand-in of what production runs on
    #: other machines, off the request path, so that it takes only the CPU the platform leaves
    nice: int = 0

    def port(self, ctx: StackContext) -> int:
        raise NotImplementedError

    def url(self, ctx: StackContext) -> str:
        return f"127.0.0.1:{self.port(ctx)}"

    def prepare(self, ctx: StackContext) -> None:
        """Create data directories and config files; safe to call on every start."""

    def argv(self, ctx: StackContext) -> list[str]:
        raise NotImplementedError

    def env(self, ctx: StackContext) -> dict[str, str]:
        return {}

    def ready(self, ctx: StackContext) -> bool:
        raise NotImplementedError

    def after_start(self, ctx: StackContext) -> None:
        """One-off setup once the server answers (roles, databases)."""

    def extra_pids(self, ctx: StackContext) -> list[int]:
        """PIDs the server forks that outlive the one we spawned (RabbitMQ's beam and epmd)."""
        return []
