"""Loopback ports of the local stack: one base, fixed offsets, so two stacks never collide."""

from __future__ import annotations

from dataclasses import dataclass

# Offsets of the Jatra processes themselves, by name. Workers serve /metrics and /health on theirs.
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
}
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
    def supervisor_events(self) -> int:
        """/metrics of supervisord's event listener (restart counts of the Jatra processes)."""
        return self.base + 8

    @property
    def postgres(self) -> int:
        return self.base + 10

    @property
    def pgbouncer(self) -> int:
        return self.base + 11

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
