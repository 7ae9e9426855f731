"""Grafana provisioning: the data sources and the dashboard provider, so a real Grafana loads everything.

Prometheus carries the exemplar link: an exemplar's ``trace_id`` opens the trace in the tracing data source
(Jaeger in compose). Elasticsearch serves the ECS logs (data streams ``logs-jatra.*``). The dashboards
are read from the folder the generated JSON is mounted at.
"""

from __future__ import annotations

from jatra.observability.rules import dump_yaml

SOURCE = "platform/jatra/observability/provisioning.py"
PROMETHEUS_URL = "http://prometheus:9090"
JAEGER_URL = "http://jaeger:16686"
ELASTICSEARCH_URL = "http://elasticsearch:9200"
DASHBOARDS_PATH = "/var/lib/grafana/dashboards/jatra"


def datasources() -> dict[str, object]:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": "prometheus",
                "type": "prometheus",
                "access": "proxy",
                "url": PROMETHEUS_URL,
                "isDefault": True,
                "jsonData": {
                    "httpMethod": "POST",
                    "exemplarTraceIdDestinations": [{"name": "trace_id", "datasourceUid": "jaeger"}],
                },
            },
            {"name": "Jaeger", "uid": "jaeger", "type": "jaeger", "access": "proxy", "url": JAEGER_URL},
            {
                "name": "Logs",
                "uid": "elasticsearch-logs",
                "type": "elasticsearch",
                "access": "proxy",
                "url": ELASTICSEARCH_URL,
                "jsonData": {
                    "index": "logs-jatra.*",
                    "timeField": "@timestamp",
                    "logMessageField": "message",
                    "logLevelField": "log.level",
                    "dataLinks": [
                        {"field": "trace.id", "datasourceUid": "jaeger", "url": "${__value.raw}"},
                    ],
                },
            },
        ],
    }


def dashboard_provider() -> dict[str, object]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "jatra",
                "folder": "Jatra",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "options": {"path": DASHBOARDS_PATH},
            }
        ],
    }


def files() -> dict[str, str]:
    return {
        "datasources.yml": dump_yaml(datasources(), SOURCE),
        "dashboards.yml": dump_yaml(dashboard_provider(), SOURCE),
    }
