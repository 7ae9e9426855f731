"""Metrics of the exporters next to Jatra, named once, like Jatra's own catalogue.

A dashboard or rule may use a metric only from the catalogue or from here; the test of the generated
files checks that, and that the local stack's exporters really serve every name below (all but
kube-state-metrics, CloudNativePG and its Barman Cloud plugin, which run only in a cluster: their panels
and rules are checked with promtool series).

In a cluster only some of these exist (:data:`IN_CLUSTER`), and some of Jatra's own metrics do not
(:data:`LOCAL_ONLY`): a test fails if the Helm chart's PrometheusRule reads any other.
"""

from __future__ import annotations

from jatra.observability.promql import External
from jatra.telemetry import catalogue as c

PROMETHEUS, POSTGRES, PGBOUNCER, REDIS, RABBITMQ, NODE, KSM = (
    "prometheus", "postgres", "pgbouncer", "redis", "rabbitmq", "node", "kube-state-metrics",
)  # fmt: skip
CNPG, CNPG_POOLER, BARMAN_CLOUD = "cloudnative-pg", "cloudnative-pg-pooler", "barman-cloud-plugin"

UP = External("up", PROMETHEUS)
SCRAPE_DURATION = External("scrape_duration_seconds", PROMETHEUS)

PG_UP = External("pg_up", POSTGRES)
PG_CONNECTIONS = External("pg_stat_activity_count", POSTGRES)
PG_MAX_CONNECTIONS = External("pg_settings_max_connections", POSTGRES)
PG_COMMITS = External("pg_stat_database_xact_commit", POSTGRES, "counter")
PG_ROLLBACKS = External("pg_stat_database_xact_rollback", POSTGRES, "counter")
PG_DEADLOCKS = External("pg_stat_database_deadlocks", POSTGRES, "counter")
PG_TUP_INSERTED = External("pg_stat_database_tup_inserted", POSTGRES, "counter")
PG_TUP_UPDATED = External("pg_stat_database_tup_updated", POSTGRES, "counter")

PGB_UP = External("pgbouncer_up", PGBOUNCER)
PGB_CLIENTS_ACTIVE = External("pgbouncer_pools_client_active_connections", PGBOUNCER)
PGB_CLIENTS_WAITING = External("pgbouncer_pools_client_waiting_connections", PGBOUNCER)
PGB_SERVERS_ACTIVE = External("pgbouncer_pools_server_active_connections", PGBOUNCER)
PGB_SERVERS_IDLE = External("pgbouncer_pools_server_idle_connections", PGBOUNCER)
PGB_MAXWAIT = External("pgbouncer_pools_client_maxwait_seconds", PGBOUNCER)

REDIS_UP = External("redis_up", REDIS)
REDIS_MEMORY = External("redis_memory_used_bytes", REDIS)
REDIS_MEMORY_MAX = External("redis_memory_max_bytes", REDIS)
REDIS_CLIENTS = External("redis_connected_clients", REDIS)
REDIS_COMMANDS = External("redis_commands_processed_total", REDIS, "counter")

RABBIT_READY = External("rabbitmq_detailed_queue_messages_ready", RABBITMQ)
RABBIT_UNACKED = External("rabbitmq_detailed_queue_messages_unacked", RABBITMQ)
RABBIT_CONSUMERS = External("rabbitmq_detailed_queue_consumers", RABBITMQ)
RABBIT_RECEIVED = External("rabbitmq_global_messages_received_total", RABBITMQ, "counter")
RABBIT_DELIVERED = External("rabbitmq_global_messages_delivered_total", RABBITMQ, "counter")
RABBIT_DEAD_LETTERED = External(
    "rabbitmq_global_messages_dead_lettered_delivery_limit_total", RABBITMQ, "counter"
)
RABBIT_MEMORY = External("rabbitmq_process_resident_memory_bytes", RABBITMQ)
RABBIT_MEMORY_LIMIT = External("rabbitmq_resident_memory_limit_bytes", RABBITMQ)
RABBIT_MEMORY_ALARM = External("rabbitmq_alarms_memory_used_watermark", RABBITMQ)
RABBIT_DISK_ALARM = External("rabbitmq_alarms_free_disk_space_watermark", RABBITMQ)
RABBIT_CONNECTIONS = External("rabbitmq_connections", RABBITMQ)

NODE_CPU = External("node_cpu_seconds_total", NODE, "counter")
NODE_MEMORY_AVAILABLE = External("node_memory_MemAvailable_bytes", NODE)
NODE_MEMORY_TOTAL = External("node_memory_MemTotal_bytes", NODE)
NODE_FS_AVAILABLE = External("node_filesystem_avail_bytes", NODE)
NODE_LOAD1 = External("node_load1", NODE)

HPA_CURRENT = External("kube_horizontalpodautoscaler_status_current_replicas", KSM)
HPA_DESIRED = External("kube_horizontalpodautoscaler_status_desired_replicas", KSM)
HPA_MIN = External("kube_horizontalpodautoscaler_spec_min_replicas", KSM)
HPA_MAX = External("kube_horizontalpodautoscaler_spec_max_replicas", KSM)
HPA_TARGET = External("kube_horizontalpodautoscaler_spec_target_metric", KSM)
HPA_TARGET_NOW = External("kube_horizontalpodautoscaler_status_target_metric", KSM)

# kube-state-metrics v2, pod metrics (labels namespace, pod, container, uid); init containers include the
# chart's native sidecars (archive, logship):
# https://github.com/kubernetes/kube-state-metrics/blob/main/docs/metrics/workload/pod-metrics.md
KSM_RESTARTS = External("kube_pod_container_status_restarts_total", KSM, "counter")
KSM_INIT_RESTARTS = External("kube_pod_init_container_status_restarts_total", KSM, "counter")
KSM_CONTAINER_READY = External("kube_pod_container_status_ready", KSM)

# CloudNativePG's exporter in every instance pod (port 9187; the PodMonitor adds namespace and pod):
# https://cloudnative-pg.io/documentation/current/monitoring/ ("Predefined set of metrics")
CNPG_UP = External("cnpg_collector_up", CNPG)  # label cluster
#: deprecated since 1.26 but served for in-core Barman Cloud and volume snapshots; 0 until the first backup
CNPG_LAST_BACKUP = External("cnpg_collector_last_available_backup_timestamp", CNPG)
# ... and its default queries (the cnpg-default-monitoring ConfigMap, "Default set of metrics" on the same
# page: config/manager/default-monitoring.yaml), named cnpg_<query>_<column>, labelled by their LABEL columns
CNPG_BACKENDS = External("cnpg_backends_total", CNPG)  # datname, usename, application_name, state
CNPG_SETTING = External("cnpg_pg_settings_setting", CNPG)  # name (integer, real and bool settings)
#: pg_stat_archiver.last_archived_time as a Unix time (-1: never); primary only (its predicate query)
CNPG_LAST_ARCHIVED = External("cnpg_pg_stat_archiver_last_archived_time", CNPG)
CNPG_TUP_INSERTED = External("cnpg_pg_stat_database_tup_inserted", CNPG, "counter")  # datname
CNPG_TUP_UPDATED = External("cnpg_pg_stat_database_tup_updated", CNPG, "counter")  # datname

# the PgBouncer exporter of a CloudNativePG Pooler's pods (port 9127; container "pgbouncer"):
# https://cloudnative-pg.io/documentation/current/connection_pooling/ ("Monitoring")
CNPG_PGB_MAXWAIT = External("cnpg_pgbouncer_pools_maxwait", CNPG_POOLER)  # database, user; whole seconds
CNPG_PGB_MAXWAIT_US = External("cnpg_pgbouncer_pools_maxwait_us", CNPG_POOLER)  # its microseconds

# the Barman Cloud plugin (backup.scheduledBackup.method "plugin"), through the instance's exporter:
# https://cloudnative-pg.io/plugin-barman-cloud/docs/observability
BARMAN_LAST_BACKUP = External("barman_cloud_cloudnative_pg_io_last_available_backup_timestamp", BARMAN_CLOUD)

#: the exporters whose metrics a cluster that meets the chart's prerequisites (helm/README.md) has:
#: Prometheus's own ``up``, kube-state-metrics, CloudNativePG (instances, Pooler, Barman Cloud plugin) and
#: RabbitMQ's built-in plugin. Not postgres_exporter, pgbouncer_exporter, redis_exporter or node_exporter:
#: only the local stack runs them (the chart deploys no exporter).
IN_CLUSTER = frozenset({PROMETHEUS, KSM, CNPG, CNPG_POOLER, BARMAN_CLOUD, RABBITMQ})
#: Jatra's metrics that no process of the chart records, and what records them on the local stack
LOCAL_ONLY = {
    c.PROCESS_RESTARTS.name: "supervisord's event listener (jatra.stack.events); the kubelet restarts pods",
    c.BACKUP_LAST_SUCCESS.name: "`jatra worker backup` (pgBackRest); CloudNativePG backs the cluster up",
    c.BACKUP_DURATION.name: "`jatra worker backup` (pgBackRest); CloudNativePG backs the cluster up",
}


def in_jatra_namespace(expr: str) -> str:
    """``expr`` (by ``namespace``) only in the namespaces where the chart's Jatra pods run, with their
    ``environment``: a cluster's engine series (CloudNativePG, kube-state-metrics) have no environment,
    which Alertmanager groups and inhibits by, and may come from other applications' namespaces. ``job``
    and ``environment`` come from the chart's PodMonitors, ``namespace`` from the Prometheus Operator (and
    from kube-state-metrics' own labels)."""
    jatra = f'group by (namespace, environment) ({UP.name}{{job="jatra"}})'
    return f"({expr}) * on (namespace) group_left (environment) {jatra}"


#: every external metric, for the tests (``name -> exporter``)
ALL = {m.name: m.exporter for m in list(globals().values()) if isinstance(m, External)}
