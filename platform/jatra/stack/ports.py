"""Loopback ports of the local stack: one base, fixed offsets, so two stacks never collide."""

from __future__ import annotations

from dataclasses import dataclass

# Offsets of the Jatra processes themselves, by name. Workers serve /metrics and /health on theirs; the HTTP
# services of split mode (auth ... bookings) serve their API there too, behind the gateway.
APP_OFFSETS: dict[str, int] = {
    "api": 0,
    "timetable": 1,
    "reaper": 2,
    "outbox": 3,
    "payments": 4,
    "reconciler": 5,
    "notifications": 6,
    "alert-receiver": 7,
    "payment-provider": 9,
    "logship": 12,
    "archive": 13,
    "backup": 14,
    "auth": 15,
    "catalog": 16,
    "seats": 17,
    "bookings": 18,
}
#: the gateway's own port (nginx, split mode); `jatra up --split` also puts it on the API port
GATEWAY_OFFSET = 19
#: API replica N (1-based) serves /metrics and /health on base + 60 + N; all share the API port
API_REPLICA_OFFSET = 60
MAX_API_REPLICAS = 9


def api_replica(n: int) -> str:
    return f"api-{n}"


@dataclass(frozen=True, slots=True)
class Ports:
    base: int

    @property
    def api(self) -> int:
        return self.base + APP_OFFSETS["api"]

    def app(self, name: str) -> int:
        """The port of a Jatra process by name; ``api-N`` is API replica N's own port."""
        if name.startswith("api-"):
            n = int(name.removeprefix("api-"))
            if not 1 <= n <= MAX_API_REPLICAS:
                raise ValueError(f"API replica {n} is out of range 1..{MAX_API_REPLICAS}")
            return self.base + API_REPLICA_OFFSET + n
        return self.base + APP_OFFSETS[name]

    @property
    def gateway(self) -> int:
        """The gateway of split mode (nginx): always here, and on the API port when `jatra up --split` ran."""
        return self.base + GATEWAY_OFFSET

    @property
    def supervisor_events(self) -> int:
        """/metrics of supervisord's event listener (restart counts of the Jatra processes)."""
        return self.base + 8

    @property
    def postgres(self) -> int:
        return self.base + 10

    @property
    def pgbouncer(self) -> int:
        return self.base + 11

    def database_url(self, via_pgbouncer: bool, database: str = "jatra") -> str:
        """The local stack's database as a process reaches it: through PgBouncer, or Postgres itself.
        ``database``: one of PgBouncer's names for it (each has its own server connections)."""
        port = self.pgbouncer if via_pgbouncer else self.postgres
        return f"postgresql+asyncpg://jatra@127.0.0.1:{port}/{database}"

    @property
    def redis(self) -> int:
        return self.base + 20

    @property
    def redis_cluster(self) -> int:
        """First of three cluster masters (tests only); their cluster bus ports are the next three."""
        return self.base + 21

    @property
    def amqp(self) -> int:
        return self.base + 30

    @property
    def rabbitmq_management(self) -> int:
        return self.base + 31

    @property
    def rabbitmq_prometheus(self) -> int:
        return self.base + 32

    @property
    def rabbitmq_dist(self) -> int:
        return self.base + 33

    @property
    def epmd(self) -> int:
        return self.base + 34

    @property
    def prometheus(self) -> int:
        return self.base + 40

    @property
    def alertmanager(self) -> int:
        return self.base + 41

    @property
    def redis_exporter(self) -> int:
        return self.base + 50

    @property
    def postgres_exporter(self) -> int:
        return self.base + 51

    @property
    def node_exporter(self) -> int:
        return self.base + 52

    @property
    def pgbouncer_exporter(self) -> int:
        return self.base + 53

    # SeaweedFS (the local S3 server) opens a port per component; every one is pinned here, so two stacks
    # never collide (its defaults put gRPC ports at +10000, where another stack's ports may be).
    @property
    def s3(self) -> int:
        """S3 over plain HTTP (the services, the archive, the tests)."""
        return self.base + 70

    @property
    def s3_tls(self) -> int:
        """S3 over HTTPS with the stack's self-signed certificate (pgBackRest speaks only HTTPS)."""
        return self.base + 71

    def seaweed(self, component: str) -> int:
        """SeaweedFS's internal ports: master, volume, filer, their gRPC ports, admin and metrics."""
        return self.base + 72 + SEAWEED_COMPONENTS.index(component)

    @property
    def elasticsearch(self) -> int:
        """The Elasticsearch endpoint of the local stack: the stand-in's gateway (see jatra.stack.elastic)."""
        return self.base + 90

    @property
    def osmem(self) -> int:
        """The in-memory OpenSearch-compatible engine behind the gateway; nothing else talks to it."""
        return self.base + 91


SEAWEED_COMPONENTS = (
    "master", "master-grpc", "volume", "volume-grpc", "filer", "filer-grpc", "s3-grpc", "admin", "admin-grpc",
    "metrics",
)  # fmt: skip
#: the highest offset any server of a stack uses
LAST_OFFSET = 91
