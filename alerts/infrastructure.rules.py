"""Infrastructure: targets down, engines down or near their limits, processes that keep dying.

Three groups. RabbitMQ and the scrape targets are watched alike everywhere. The local stack watches
Postgres, PgBouncer and Redis through their exporters and counts restarts with supervisord's listener; a
cluster has none of these (the chart deploys no exporter, and CloudNativePG runs Postgres and PgBouncer), so
the chart's variants of those alerts read CloudNativePG's own exporters, kube-state-metrics and Jatra's
readiness probes instead. RedisMemoryHigh has no variant: nothing in a cluster that the chart requires
exports Redis's memory (helm/README.md says what covers it).
"""

from jatra.observability import exporters as x
from jatra.observability.promql import sel
from jatra.observability.rules import CLUSTER, LOCAL, Alert, Group
from jatra.telemetry import catalogue as c

RABBITMQ_UP = sel(x.UP, 'job="rabbitmq"')
JATRA_UP = sel(x.UP, 'job="jatra"', 'environment!=""')
#: the targets Jatra's on-call answers for: its processes (job="jatra" locally, in compose and in the chart's
#: PodMonitors) and its stack's exporters and servers, whose silence blinds an engine's alerts (PostgresDown
#: reads pg_up, which a dead exporter stops sending). Not RabbitMQ's two jobs: its own endpoint down is
#: RabbitMQ down, paged once by RabbitMQDown. Not every target of a shared Prometheus either: only those with
#: an environment, which Jatra's scrape configurations and PodMonitors add (another team's "redis" has none).
WATCHED_UP = sel(
    x.UP,
    'job=~"jatra|postgres|pgbouncer|redis|node|supervisor|prometheus|alertmanager"',
    'environment!=""',
)

#: a Deployment's pod (<deployment>-<pod-template-hash>-<suffix>) -> its Deployment, here the Pooler's name
POOLER = '"pooler", "$1", "pod", "(.+)-[a-z0-9]{5,10}-[a-z0-9]{5}"'
#: the chart's Jatra pods and the process each runs (the main container's endpoint; the archive and logship
#: sidecars' endpoints are labelled with their own names), to name a restarting container's process
JATRA_PODS = "group by (namespace, pod, environment, process) ({})".format(
    sel(x.UP, 'job="jatra"', 'process!~"archive|logship"')
)
RESTARTS = f"increase({sel(x.KSM_RESTARTS)}[15m]) or increase({sel(x.KSM_INIT_RESTARTS)}[15m])"
PGBOUNCER_READY = sel(x.KSM_CONTAINER_READY, 'container="pgbouncer"')
POSTGRES_READY = sel(x.KSM_CONTAINER_READY, 'container="postgres"')
#: a CloudNativePG instance pod (<cluster>-<serial>) -> its Cluster
INSTANCE = '"cluster", "$1", "pod", "(.+)-[0-9]+"'
#: how long a Cluster whose instance series are all gone is still known by name (its page keeps its labels)
CNPG_MEMORY = "6h"
CNPG_SEEN = f"last_over_time({sel(x.CNPG_UP)}[{CNPG_MEMORY}])"
#: per namespace and environment, where the chart's Jatra pods run
JATRA_NAMESPACES = f"group by (namespace, environment) ({JATRA_UP})"


def none_in_jatra_namespace(series: str, seen: str = "") -> str:
    """Jatra's namespaces with no ``series`` at all (``seen``: and with this, which says the exporter looks
    at the namespace): every pod of the thing is gone, so its own metrics cannot say it is down."""
    where = JATRA_NAMESPACES
    if seen:
        where = f"({where} and on (namespace) group by (namespace) ({seen}))"
    return f"({where} unless on (namespace) group by (namespace) ({series}))"


MAX_CONNECTIONS = sel(x.CNPG_SETTING, 'name="max_connections"')
REDIS_REACHED = sel(c.DEPENDENCY_UP, 'dependency="redis"')
#: a Jatra process here reaches Postgres: a Cluster gone from the namespace is not Jatra's outage (one
#: replaced by another, a major upgrade by import, a restore into a new Cluster)
POSTGRES_REACHED = "max by (namespace) ({}) == 1".format(sel(c.DEPENDENCY_UP, 'dependency="postgres"'))

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
                "RabbitMQDown",
                # or no RabbitMQ target at all where Jatra runs (in a cluster, every broker pod gone or
                # never scheduled: the monitor then has no target, so no up == 0 either)
                f"max by (environment) ({RABBITMQ_UP}) == 0 or (group by (environment) ({JATRA_UP})"
                f" unless on (environment) group by (environment) ({RABBITMQ_UP}))",
                "1m",
                "page",
                "RabbitMQ does not answer",
                "Prometheus cannot reach RabbitMQ in {{ $labels.environment }}: bookings are still accepted "
                "and wait in the outbox, but none is paid or notified until it is back.",
                "jatra-queues",
                {"engine": "rabbitmq"},
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
        ),
    ),
    Group(
        "jatra-infrastructure-local",
        (
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
        where=LOCAL,
    ),
    Group(
        "jatra-infrastructure-cluster",
        (
            Alert(
                "PostgresDown",
                # or, where Jatra runs and kube-state-metrics looks, every instance pod gone or not
                # ready, so no cnpg_collector_up is left to read 0: per Cluster scraped in the last 6
                # hours (the same labels as the first half, so the page does not resolve and fire again
                # when the last series goes), else per namespace; in both, not while a Jatra process
                # there reaches Postgres (a Cluster deleted on purpose). Healthy pods that nothing
                # scrapes are a monitoring gap, not an outage: quiet.
                x.in_jatra_namespace(f"max by (namespace, cluster) ({sel(x.CNPG_UP)})")
                + " == 0 or "
                + x.in_jatra_namespace(
                    f"group by (namespace, cluster) ({CNPG_SEEN})"
                    f" unless on (namespace, cluster) group by (namespace, cluster) ({sel(x.CNPG_UP)})"
                    f" unless on (namespace, cluster) max by (namespace, cluster)"
                    f" (label_replace({POSTGRES_READY}, {INSTANCE})) == 1"
                    f" unless on (namespace) {POSTGRES_REACHED}"
                    f" and on (namespace) group by (namespace) ({sel(x.KSM_CONTAINER_READY)})"
                )
                + f" or ({none_in_jatra_namespace(CNPG_SEEN, seen=sel(x.KSM_CONTAINER_READY))}"
                + f" unless on (namespace) max by (namespace) ({POSTGRES_READY}) == 1"
                + f" unless on (namespace) {POSTGRES_REACHED})",
                "1m",
                "page",
                "Postgres does not answer",
                "{{ if $labels.cluster }}No instance of the CloudNativePG cluster {{ $labels.cluster }} "
                "({{ $labels.namespace }}, {{ $labels.environment }}) reaches its Postgres{{ else }}No "
                "CloudNativePG instance is scraped or ready in {{ $labels.namespace }} "
                "({{ $labels.environment }}), nor was in 6 hours: every instance pod is gone or not "
                "ready{{ end }}: no booking "
                "can be taken or settled.",
                "jatra-infrastructure",
                {"engine": "postgres"},
            ),
            Alert(
                "PgBouncerDown",
                # or none at all where kube-state-metrics sees Jatra's namespace (every Pooler pod gone,
                # or pending unscheduled: such a pod has no container status)
                x.in_jatra_namespace(
                    f"max by (namespace, pooler) (label_replace({PGBOUNCER_READY}, {POOLER}))"
                )
                + " == 0 or "
                + none_in_jatra_namespace(PGBOUNCER_READY, seen=sel(x.KSM_CONTAINER_READY)),
                "1m",
                "page",
                "PgBouncer does not answer",
                "{{ if $labels.pooler }}No PgBouncer pod of the Pooler {{ $labels.pooler }} "
                "({{ $labels.namespace }}, {{ $labels.environment }}) is ready{{ else }}No PgBouncer pod "
                "runs in {{ $labels.namespace }} ({{ $labels.environment }}){{ end }}: the services reach "
                "Postgres only through it, so no booking can be taken or settled.",
                "jatra-infrastructure",
                {"engine": "postgres"},
            ),
            Alert(
                "RedisDown",
                f"max by (environment) ({REDIS_REACHED}) == 0",
                "1m",
                "page",
                "Redis does not answer",
                "No Jatra process in {{ $labels.environment }} reaches Redis (their readiness checks fail): "
                "no seat can be held (searches fall back to Postgres).",
                "jatra-infrastructure",
                {"engine": "redis"},
            ),
            Alert(
                "PostgresConnectionsNearLimit",
                x.in_jatra_namespace(
                    f"sum by (namespace, pod) ({sel(x.CNPG_BACKENDS)}) / on (namespace, pod) "
                    f"max by (namespace, pod) ({MAX_CONNECTIONS})"
                )
                + " > 0.8",
                "5m",
                "page",
                "Postgres uses {{ $value | humanizePercentage }} of its connections",
                "The CloudNativePG instance {{ $labels.pod }} ({{ $labels.namespace }}, "
                "{{ $labels.environment }}) has {{ $value | humanizePercentage }} of max_connections open "
                "for 5 minutes: new connections will soon be refused.",
                "jatra-infrastructure",
                {"engine": "postgres"},
            ),
            Alert(
                "PgBouncerClientsWaiting",
                x.in_jatra_namespace(
                    f"max by (namespace) ({sel(x.CNPG_PGB_MAXWAIT)} + {sel(x.CNPG_PGB_MAXWAIT_US)} / 1e6)"
                )
                + " > 1",
                "2m",
                "page",
                "Clients wait {{ $value | humanizeDuration }} for a database connection",
                "A client of PgBouncer in {{ $labels.namespace }} ({{ $labels.environment }}) has waited "
                "{{ $value | humanizeDuration }} for a server connection, for 2 minutes: every server "
                "connection is busy (slow queries, or transactions held open).",
                "jatra-infrastructure",
                {"engine": "postgres"},
            ),
            Alert(
                "JatraProcessRestarting",
                f"sum by (environment, namespace, pod, container, process) (({RESTARTS}) "
                f"* on (namespace, pod) group_left (environment, process) {JATRA_PODS}) > 3",
                "0m",
                "page",
                "{{ $labels.process }} restarted {{ $value }} times in 15 minutes",
                "The container {{ $labels.container }} of the {{ $labels.process }} pod {{ $labels.pod }} "
                "({{ $labels.namespace }}, {{ $labels.environment }}) keeps dying and being restarted by "
                "the kubelet: a crash loop.",
                "jatra-autoscaling",
            ),
        ),
        where=CLUSTER,
    ),
]
