"""The exporters of the local stack: redis, postgres, node, and a PgBouncer exporter of our own."""

from __future__ import annotations

import sys

from jatra.stack.base import Server, StackContext
from jatra.stack.procs import find_binary, http_ok


class _Exporter(Server):
    binary = ""
    package = ""

    def exporter_args(self, ctx: StackContext) -> list[str]:
        return []

    def argv(self, ctx: StackContext) -> list[str]:
        return [
            find_binary([self.binary], self.package),
            f"--web.listen-address=127.0.0.1:{self.port(ctx)}",
            *self.exporter_args(ctx),
        ]

    def ready(self, ctx: StackContext) -> bool:
        return http_ok(f"http://127.0.0.1:{self.port(ctx)}/metrics", timeout=2)


class RedisExporter(_Exporter):
    name = "redis-exporter"
    binary = package = "prometheus-redis-exporter"

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.redis_exporter

    def exporter_args(self, ctx: StackContext) -> list[str]:
        return [f"--redis.addr=redis://127.0.0.1:{ctx.ports.redis}"]


class PostgresExporter(_Exporter):
    name = "postgres-exporter"
    binary = package = "prometheus-postgres-exporter"

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.postgres_exporter

    def env(self, ctx: StackContext) -> dict[str, str]:
        dsn = f"postgresql://postgres@127.0.0.1:{ctx.ports.postgres}/jatra?sslmode=disable"
        return {"DATA_SOURCE_NAME": dsn}


class NodeExporter(_Exporter):
    name = "node-exporter"
    binary = package = "prometheus-node-exporter"

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.node_exporter

    def exporter_args(self, ctx: StackContext) -> list[str]:
        return ["--collector.disable-defaults", *(f"--collector.{c}" for c in NODE_COLLECTORS)]


NODE_COLLECTORS = (
    "cpu",
    "meminfo",
    "loadavg",
    "diskstats",
    "filesystem",
    "netdev",
    "pressure",
    "stat",
    "vmstat",
)


class PgBouncerExporter(Server):
    """prometheus-community's metric names, served by :mod:`jatra.stack.pgbouncer_exporter` (see why)."""

    name = "pgbouncer-exporter"

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.pgbouncer_exporter

    def argv(self, ctx: StackContext) -> list[str]:
        return [sys.executable, "-m", "jatra.stack.pgbouncer_exporter", "--port", str(self.port(ctx)),
                "--pgbouncer-port", str(ctx.ports.pgbouncer)]  # fmt: skip

    def ready(self, ctx: StackContext) -> bool:
        return http_ok(f"http://127.0.0.1:{self.port(ctx)}/metrics", timeout=2)
