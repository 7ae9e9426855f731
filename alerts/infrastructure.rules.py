"""Infrastructure: targets down, engines down or near their limits, processes that keep dying."""

from jatra.observability import exporters as x
from jatra.observability.promql import sel
from jatra.observability.rules import Alert, Group
from jatra.telemetry import catalogue as c

RABBITMQ_UP = sel(x.UP, 'job="rabbitmq"')
#: the targets Jatra's on-call answers for: its processes (job="jatra" locally, in compose and in the chart's
#: PodMonitors) and its stack's exporters and servers, whose silence blinds an engine's alerts (PostgresDown
#: reads pg_up, which a dead exporter stops sending). Not RabbitMQ's two jobs: its own endpoint down is
#: RabbitMQ down, paged once by RabbitMQDown. Not every target of a shared Prometheus either.
WATCHED_UP = sel(x.UP, 'job=~"jatra|postgres|pgbouncer|redis|node|supervisor|prometheus|alertmanager"')

groups = [
    Group(
        "jatra-infrastructure",
        (
            Alert(
                "TargetDown",
                f"{WATCHED_UP} == 0",
                "2m",
                "page",
                "Prometheus cannot scrape {{ $labels.job }}{{ with $labels.process }} {{ . }}{{ end }} at "
                "{{ $labels.instance }}",
                "The {{ $labels.job }} target {{ $labels.instance }}{{ with $labels.process }} ({{ . }}){{ "
                "end }} "
                "in {{ $labels.environment }} has not answered a scrape for 2 minutes: it is down, or its "
                "panels and alerts are blind.",
                "jatra-telemetry",
            ),
            Alert(
                "PostgresDown",
                f"max by (environment) ({sel(x.PG_UP)}) == 0",
                "1m",
                "page",
                "Postgres does not answer",
                "The postgres exporter in {{ $labels.environment }} cannot reach Postgres: no booking can "
                "be taken or settled.",
                "jatra-infrastructure",
                {"engine": "postgres"},
            ),
            Alert(
                "RedisDown",
                f"max by (environment) ({sel(x.REDIS_UP)}) == 0",
                "1m",
                "page",
                "Redis does not answer",
                "The redis exporter in {{ $labels.environment }} cannot reach Redis: no seat can be held "
                "(searches fall back to Postgres).",
                "jatra-infrastructure",
                {"engine": "redis"},
            ),
            Alert(
                "PgBouncerDown",
                f"max by (environment) ({sel(x.PGB_UP)}) == 0",
                "1m",
                "page",
                "PgBouncer does not answer",
                "The pgbouncer exporter in {{ $labels.environment }} cannot reach PgBouncer: the services "
                "reach Postgres only through it, so no booking can be taken or settled.",
                "jatra-infrastructure",
                {"engine": "postgres"},
            ),
            Alert(
                "RabbitMQDown",
                f"max by (environment) ({RABBITMQ_UP}) == 0",
                "1m",
                "page",
                "RabbitMQ does not answer",
                "Prometheus cannot reach RabbitMQ in {{ $labels.environment }}: bookings are still accepted "
                "and wait in the outbox, but none is paid or notified until it is back.",
                "jatra-queues",
                {"engine": "rabbitmq"},
            ),
            Alert(
                "PostgresConnectionsNearLimit",
                f"sum by (environment) ({sel(x.PG_CONNECTIONS)}) "
                f"/ max by (environment) ({sel(x.PG_MAX_CONNECTIONS)}) > 0.8",
                "5m",
                "page",
                "Postgres uses {{ $value | humanizePercentage }} of its connections",
                "Postgres in {{ $labels.environment }} has {{ $value | humanizePercentage }} of "
                "max_connections open for 5 minutes: new connections will soon be refused.",
                "jatra-infrastructure",
                {"engine": "postgres"},
            ),
            Alert(
                "PgBouncerClientsWaiting",
                f"max by (environment) ({sel(x.PGB_MAXWAIT)}) > 1",
                "2m",
                "page",
                "Clients wait {{ $value | humanizeDuration }} for a database connection",
                "A client of PgBouncer in {{ $labels.environment }} has waited {{ $value | "
                "humanizeDuration }} "
                "for a server connection, for 2 minutes: every server connection is busy (slow queries, or "
                "transactions held open).",
                "jatra-infrastructure",
                {"engine": "postgres"},
            ),
            Alert(
                "RedisMemoryHigh",
                f"max by (environment) ({sel(x.REDIS_MEMORY)}) "
                f"/ max by (environment) ({sel(x.REDIS_MEMORY_MAX)} > 0) > 0.9",
                "5m",
                "ticket",
                "Redis uses {{ $value | humanizePercentage }} of its maxmemory",
                "Redis in {{ $labels.environment }} is at {{ $value | humanizePercentage }} of maxmemory: "
                "past it, writes (new holds) are refused.",
                "jatra-infrastructure",
                {"engine": "redis"},
            ),
            Alert(
                "RabbitMQMemoryAlarm",
                f"max by (environment) ({sel(x.RABBIT_MEMORY_ALARM)}) == 1",
                "1m",
                "page",
                "RabbitMQ blocks publishers: memory alarm",
                "RabbitMQ in {{ $labels.environment }} is past its memory watermark and blocks every "
                "publisher: the outbox stops publishing until it clears.",
                "jatra-infrastructure",
                {"engine": "rabbitmq"},
            ),
            Alert(
                "RabbitMQDiskAlarm",
                f"max by (environment) ({sel(x.RABBIT_DISK_ALARM)}) == 1",
                "1m",
                "page",
                "RabbitMQ blocks publishers: disk alarm",
                "RabbitMQ in {{ $labels.environment }} is below its free-disk limit and blocks every "
                "publisher.",
                "jatra-infrastructure",
                {"engine": "rabbitmq"},
            ),
            Alert(
                "JatraProcessRestarting",
                f"sum by (environment, process) (increase({sel(c.PROCESS_RESTARTS)}[15m])) > 3",
                "0m",
                "page",
                "{{ $labels.process }} restarted {{ $value }} times in 15 minutes",
                "The {{ $labels.process }} process in {{ $labels.environment }} keeps dying and being "
                "restarted: a crash loop.",
                "jatra-autoscaling",
            ),
        ),
    ),
]
