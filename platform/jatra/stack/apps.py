"""The Jatra processes the local stack runs: the API (every service in one process) and the workers."""

from __future__ import annotations

import sys

from jatra.stack.base import Server, StackContext
from jatra.stack.procs import http_ok


class JatraProcess(Server):
    """``jatra serve all`` or ``jatra worker NAME``; each serves /metrics and /health on its own port."""

    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        self.command = command

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.app(self.name)

    def argv(self, ctx: StackContext) -> list[str]:
        return [sys.executable, "-m", "jatra", *self.command, "--port", str(self.port(ctx))]

    def env(self, ctx: StackContext) -> dict[str, str]:
        return {"JATRA_STATE_DIR": str(ctx.state_dir), "JATRA_PORT_BASE": str(ctx.ports.base)}

    def ready(self, ctx: StackContext) -> bool:
        return http_ok(f"http://127.0.0.1:{self.port(ctx)}/health")


def jatra_processes() -> list[Server]:
    return [
        JatraProcess("api", ["serve", "all"]),
        JatraProcess("timetable", ["worker", "timetable"]),
        JatraProcess("reaper", ["worker", "reaper"]),
        JatraProcess("payment-provider", ["serve", "payment-provider"]),
        JatraProcess("outbox", ["worker", "outbox"]),
        JatraProcess("payments", ["worker", "payments"]),
        JatraProcess("reconciler", ["worker", "reconciler"]),
        JatraProcess("notifications", ["worker", "notifications"]),
    ]
