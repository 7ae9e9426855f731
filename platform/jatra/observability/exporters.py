"""Metrics of the exporters next to Jatra, named once, like Jatra's own catalogue.

A dashboard or rule may use a metric only from the catalogue or from here; the test of the generated
files checks that, and that the local stack's exporters really serve every name below (all but
kube-state-metrics, which runs only in a cluster: its panels are checked with promtool series).
"""

from __future__ import annotations

from jatra.observability.promql import External

PROMETHEUS, POSTGRES, PGBOUNCER, REDIS, RABBITMQ, NODE, KSM = (
    "prometheus", "postgres", "pgbouncer", "redis", "rabbitmq", "node", "kube-state-metrics",
)  # fmt: skip

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

#: every external metric, for the tests (``name -> exporter``)
ALL = {m.name: m.exporter for m in list(globals().values()) if isinstance(m, External)}
