"""A PgBouncer exporter for the local stack, with the metric names of prometheus-community's
pgbouncer_exporter (which compose and Helm run), so one dashboard and one rule set serve both.

No packaged exporter works here: Debian's prometheus-pgbouncer-exporter 1.7 fails on PgBouncer 1.18
(``KeyError: 'total_requests'``), and PyPI's 2.1 pins a psycopg2 that no longer builds. This one asks
PgBouncer's admin console ``SHOW POOLS`` on every scrape (psycopg2: the console speaks only the simple
query protocol).

Run by the stack as ``python -m jatra.stack.pgbouncer_exporter --port P --pgbouncer-port Q``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

#: SHOW POOLS column -> (metric, help)
POOLS = {
    "cl_active": ("pgbouncer_pools_client_active_connections", "Clients linked to a server connection."),
    "cl_waiting": ("pgbouncer_pools_client_waiting_connections", "Clients waiting for a server connection."),
    "sv_active": ("pgbouncer_pools_server_active_connections", "Server connections linked to a client."),
    "sv_idle": ("pgbouncer_pools_server_idle_connections", "Server connections idle and ready."),
}


class PgBouncerCollector(Collector):
    def __init__(self, host: str, port: int, user: str) -> None:
        self.dsn = {"host": host, "port": port, "user": user, "dbname": "pgbouncer", "connect_timeout": 2}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("pgbouncer_up", "1 if PgBouncer's admin console answered.")
        families = {
            col: GaugeMetricFamily(name, doc, labels=["database", "user"])
            for col, (name, doc) in POOLS.items()
        }
        maxwait = GaugeMetricFamily(
            "pgbouncer_pools_client_maxwait_seconds",
            "Longest a client has waited.",
            labels=["database", "user"],
        )
        try:
            rows = self._pools()
        except psycopg2.Error:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for row in rows:
            labels = [str(row["database"]), str(row["user"])]
            for column, family in families.items():
                family.add_metric(labels, float(row[column]))
            maxwait.add_metric(labels, float(row["maxwait"]) + float(row.get("maxwait_us", 0)) / 1e6)
        yield from families.values()
        yield maxwait

    def _pools(self) -> list[dict[str, Any]]:
        conn = psycopg2.connect(**self.dsn)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute("SHOW POOLS")
                names = [d[0] for d in cursor.description or ()]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pgbouncer-port", type=int, required=True)
    parser.add_argument("--pgbouncer-host", default="127.0.0.1")
    parser.add_argument("--user", default="postgres")
    args = parser.parse_args()
    REGISTRY.register(PgBouncerCollector(args.pgbouncer_host, args.pgbouncer_port, args.user))
    start_http_server(args.port, addr="127.0.0.1")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
