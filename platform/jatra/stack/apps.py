"""The Jatra processes the local stack runs: the HTTP API and the workers.

The API runs in one of two modes. All-in-one (the default): API replicas, each serving every service, share
the API port. Split (`jatra up --split`): one process per HTTP service (`jatra serve auth` ...) on a port of
its own, behind nginx (:mod:`jatra.stack.gateway`), as compose and Kubernetes deploy them.
"""

from __future__ import annotations

import sys

from jatra.gateway.routes import SERVICES
from jatra.stack import sockets
from jatra.stack.base import StackContext
from jatra.stack.ports import MAX_API_REPLICAS, api_replica
from jatra.stack.procs import http_ok, http_text
from jatra.stack.supervisor import Supervised


class JatraProcess(Supervised):
    """``jatra serve all`` or ``jatra worker NAME``; each serves /metrics and /health on its own port, and
    runs under supervisord, which brings it back if it dies."""

    #: seconds to answer /health: a dozen Python processes importing at once on two busy cores take ~40 s
    ready_timeout = 90.0

    def __init__(
        self, name: str, command: list[str], straight_to_postgres: bool = False, pgbouncer_database: str = ""
    ) -> None:
        self.name = name
        self.command = command
        self.process = name
        self.straight_to_postgres = straight_to_postgres
        #: a PgBouncer name of its own for the database (jatra.stack.sockets.PROVIDER_DATABASE)
        self.pgbouncer_database = pgbouncer_database

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.app(self.name)

    def argv(self, ctx: StackContext) -> list[str]:
        return [sys.executable, "-m", "jatra", *self.command, "--port", str(self.port(ctx))]

    def env(self, ctx: StackContext) -> dict[str, str]:
        env = {
            "JATRA_STATE_DIR": str(ctx.state_dir),
            "JATRA_PORT_BASE": str(ctx.ports.base),
            # no collector runs here: spans go to OTLP JSON files, which `jatra trace` reads
            "JATRA_TRACE_DIR": str(ctx.state_dir / "traces"),
        }
        if self.straight_to_postgres:  # the URL too: one exported in the shell must not send them elsewhere
            env["JATRA_DATABASE_VIA_PGBOUNCER"] = "false"
            env["JATRA_DATABASE_URL"] = sockets.database_url(ctx.state_dir, ctx.ports, via_pgbouncer=False)
        elif self.pgbouncer_database:
            env["JATRA_DATABASE_URL"] = sockets.database_url(
                ctx.state_dir, ctx.ports, via_pgbouncer=True, database=self.pgbouncer_database
            )
        return env

    def ready(self, ctx: StackContext) -> bool:
        return http_ok(f"http://127.0.0.1:{self.port(ctx)}/health")


class Reaper(JatraProcess):
    """Ready once a pass has ended: the first gives every sellable journey its synced marker, without which
    holds are refused (jatra.inventory.resync), so a stack that says ready takes holds."""

    def __init__(self) -> None:
        super().__init__("reaper", ["worker", "reaper"])

    def ready(self, ctx: StackContext) -> bool:
        metrics = http_text(f"http://127.0.0.1:{self.port(ctx)}/metrics") or ""
        return 'jatra_worker_last_success_timestamp_seconds{worker="reaper"}' in metrics


class ApiReplica(JatraProcess):
    """One API process, as one pod behind a Service: it shares the API port with the other replicas
    (SO_REUSEPORT, the kernel spreads connections) and serves /metrics on a port of its own, so Prometheus
    scrapes each replica and never a random one."""

    def __init__(self, n: int) -> None:
        super().__init__(api_replica(n), ["serve", "all"])
        self.process = "api"

    def argv(self, ctx: StackContext) -> list[str]:
        return [*super().argv(ctx), "--shared-port", str(ctx.ports.api)]

    def ready(self, ctx: StackContext) -> bool:
        return super().ready(ctx) and http_ok(f"http://127.0.0.1:{ctx.ports.api}/health")


def service_processes() -> list[Supervised]:
    """Split mode's HTTP services, one process each (`jatra serve auth` ...), on their own ports."""
    return [JatraProcess(service, ["serve", service]) for service in SERVICES]


def jatra_processes(replicas: int, split: bool = False) -> list[Supervised]:
    """What `jatra up` runs: the API (all-in-one replicas, or the split services) and the workers."""
    api = service_processes() if split else [ApiReplica(n) for n in range(1, replicas + 1)]
    return [*api, *workers()]


def programs(replicas: int = MAX_API_REPLICAS) -> list[Supervised]:
    """Every program supervisord knows (none starts until asked): both modes' API processes, the workers."""
    return [*(ApiReplica(n) for n in range(1, replicas + 1)), *service_processes(), *workers()]


#: The booking path's two consumers go straight to Postgres (``straight_to_postgres``), where their
#: statements are prepared once per connection, instead of through PgBouncer 1.18 (Debian's), which keeps
#: nothing prepared in transaction pooling, so Postgres planned each of their statements every time. Their
#: pools are small and bounded (``db_pool=4``, and as many for the ORM's rare paths), unlike the API
#: replicas'. Measured in rushes at 20 arrivals/s: Postgres 6.5 -> 5.5-5.8 ms and PgBouncer 1.2 -> 0.8 ms of
#: CPU per confirmed booking (bench/results/direct-consumers/). Compose and Helm send them through their
#: PgBouncer, as every other process.
def workers() -> list[Supervised]:
    return [
        JatraProcess("timetable", ["worker", "timetable"]),
        Reaper(),
        JatraProcess(
            "payment-provider",
            ["serve", "payment-provider"],
            pgbouncer_database=sockets.PROVIDER_DATABASE,
        ),
        JatraProcess("outbox", ["worker", "outbox"]),
        JatraProcess("payments", ["worker", "payments"], straight_to_postgres=True),
        JatraProcess("reconciler", ["worker", "reconciler"]),
        JatraProcess("notifications", ["worker", "notifications"], straight_to_postgres=True),
        JatraProcess("alert-receiver", ["serve", "alert-receiver"]),
        JatraProcess("archive", ["worker", "archive"]),
        JatraProcess("logship", ["worker", "logship"]),
        JatraProcess("backup", ["worker", "backup"]),
    ]
