"""Infrastructure: Postgres, PgBouncer, Redis and RabbitMQ from their exporters, and the node."""

from jatra.observability import exporters as x
from jatra.observability.panels import dashboard, q, stat, timeseries
from jatra.observability.promql import ENV, rate, sel, sum_by

BUSY = sum_by(rate(x.NODE_CPU, ENV, 'mode!="idle"'), "mode")

dashboard = dashboard(
    "jatra-infrastructure",
    "Jatra / Infrastructure",
    "The engines under Jatra, from their own exporters: Postgres, PgBouncer, Redis, RabbitMQ, the node.",
    [
        (
            "Up",
            [
                stat(
                    "Engines up",
                    "1 when the engine's exporter reaches it: Postgres, PgBouncer, Redis.",
                    "none",
                    q(f"max({sel(x.PG_UP, ENV)})", "postgres"),
                    q(f"max({sel(x.PGB_UP, ENV)})", "pgbouncer"),
                    q(f"max({sel(x.REDIS_UP, ENV)})", "redis"),
                ),
                stat(
                    "Scrape targets up",
                    "Targets Prometheus reached on its last scrape, per job.",
                    "none",
                    q(sum_by(sel(x.UP, ENV), "job"), "{{job}}"),
                ),
            ],
        ),
        (
            "Postgres and PgBouncer",
            [
                timeseries(
                    "Postgres connections by state against the limit",
                    "Server connections by state (active, idle, idle in transaction) and max_connections.",
                    "short",
                    q(sum_by(sel(x.PG_CONNECTIONS, ENV), "state"), "{{state}}"),
                    q(f"max({sel(x.PG_MAX_CONNECTIONS, ENV)})", "max_connections"),
                ),
                timeseries(
                    "Postgres transactions per second",
                    "Commits and rollbacks in the jatra database; deadlocks should stay at 0.",
                    "ops",
                    q(sum_by(rate(x.PG_COMMITS, ENV, 'datname="jatra"')), "commits"),
                    q(sum_by(rate(x.PG_ROLLBACKS, ENV, 'datname="jatra"')), "rollbacks"),
                    q(sum_by(rate(x.PG_DEADLOCKS, ENV, 'datname="jatra"')), "deadlocks"),
                ),
                timeseries(
                    "PgBouncer clients: active and waiting",
                    "Clients linked to a server connection, and clients waiting for one (they should not "
                    "wait).",
                    "short",
                    q(sum_by(sel(x.PGB_CLIENTS_ACTIVE, ENV, 'database="jatra"')), "active"),
                    q(sum_by(sel(x.PGB_CLIENTS_WAITING, ENV, 'database="jatra"')), "waiting"),
                ),
                timeseries(
                    "PgBouncer server connections and longest wait",
                    "Server connections in use and idle; the longest a client has waited (s).",
                    "short",
                    q(sum_by(sel(x.PGB_SERVERS_ACTIVE, ENV, 'database="jatra"')), "server active"),
                    q(sum_by(sel(x.PGB_SERVERS_IDLE, ENV, 'database="jatra"')), "server idle"),
                    q(f"max({sel(x.PGB_MAXWAIT, ENV)})", "longest wait (s)"),
                ),
            ],
        ),
        (
            "Redis and RabbitMQ",
            [
                timeseries(
                    "Redis memory, clients, commands",
                    "Memory used (bytes), against maxmemory when one is set.",
                    "bytes",
                    q(sum_by(sel(x.REDIS_MEMORY, ENV)), "used"),
                    q(f"max({sel(x.REDIS_MEMORY_MAX, ENV)}) > 0", "maxmemory"),
                ),
                timeseries(
                    "Redis commands per second and clients",
                    "Commands Redis processed, and connected clients.",
                    "short",
                    q(sum_by(rate(x.REDIS_COMMANDS, ENV)), "commands/s"),
                    q(sum_by(sel(x.REDIS_CLIENTS, ENV)), "clients"),
                ),
                timeseries(
                    "RabbitMQ memory against its watermark",
                    "Resident memory of the broker and the limit at which it blocks publishers.",
                    "bytes",
                    q(sum_by(sel(x.RABBIT_MEMORY, ENV)), "resident"),
                    q(sum_by(sel(x.RABBIT_MEMORY_LIMIT, ENV)), "limit"),
                ),
                timeseries(
                    "RabbitMQ alarms and connections",
                    "Memory and disk alarms (1 = publishers blocked) and client connections.",
                    "short",
                    q(sum_by(sel(x.RABBIT_MEMORY_ALARM, ENV)), "memory alarm"),
                    q(sum_by(sel(x.RABBIT_DISK_ALARM, ENV)), "disk alarm"),
                    q(sum_by(sel(x.RABBIT_CONNECTIONS, ENV)), "connections"),
                ),
            ],
        ),
        (
            "Node",
            [
                timeseries(
                    "CPU busy",
                    "Share of the machine's CPU time not idle, per mode.",
                    "percentunit",
                    q(f"{BUSY} / scalar(count(count by (cpu) ({sel(x.NODE_CPU, ENV)})))", "{{mode}}"),
                    stacked=True,
                ),
                timeseries(
                    "Memory and disk available",
                    "Memory available to new work and free space on each filesystem.",
                    "bytes",
                    q(sum_by(sel(x.NODE_MEMORY_AVAILABLE, ENV)), "memory available"),
                    q(sum_by(sel(x.NODE_MEMORY_TOTAL, ENV)), "memory total"),
                    q(
                        sum_by(sel(x.NODE_FS_AVAILABLE, ENV, 'fstype!~"tmpfs|overlay"'), "mountpoint"),
                        "disk {{mountpoint}}",
                    ),
                ),
            ],
        ),
    ],
)
