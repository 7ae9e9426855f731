"""Alertmanager: route by severity, group, and inhibit what follows from something already alerting.

- ``page`` goes to the on-call pager, ``ticket`` to the ticket queue; both are webhooks here (the local
  stack's receiver, `jatra alerts`); a deployment points them at PagerDuty, Opsgenie or a ticket system.
- Alerts are grouped per alert name, environment and the thing they are about (SLO, queue, target).
- Inhibition: a page silences the ticket of the same SLO; an engine that is down (Postgres, Redis,
  RabbitMQ) silences the alerts that depend on it (label ``engine``); a Jatra process whose target is
  down silences the alerts about the work it does (label ``process``).
"""

#: where the receivers post; `jatra up` rewrites this host for its own receiver on loopback
RECEIVER = "http://alert-receiver:9095"
#: the alerts that say an engine is down; the alerts labelled with that engine follow from them
ENGINE_DOWN = "PostgresDown|PgBouncerDown|RedisDown|RabbitMQDown"

config = {
    "route": {
        "receiver": "ticket",
        "group_by": ["alertname", "environment", "slo", "queue", "job", "process"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": [
            {"matchers": ['severity="page"'], "receiver": "page", "repeat_interval": "1h"},
            {"matchers": ['severity="ticket"'], "receiver": "ticket"},
        ],
    },
    "receivers": [
        {"name": "page", "webhook_configs": [{"url": f"{RECEIVER}/page", "send_resolved": True}]},
        {"name": "ticket", "webhook_configs": [{"url": f"{RECEIVER}/ticket", "send_resolved": True}]},
    ],
    "inhibit_rules": [
        {
            "source_matchers": ['alertname="SLOBurnRateFast"'],
            "target_matchers": ['alertname="SLOBurnRateSlow"'],
            "equal": ["environment", "slo"],
        },
        {
            "source_matchers": [f'alertname=~"{ENGINE_DOWN}"'],
            "target_matchers": ['engine=~".+"', f'alertname!~"{ENGINE_DOWN}"'],
            "equal": ["environment", "engine"],
        },
        {
            "source_matchers": ['alertname="TargetDown"', 'job="jatra"'],
            "target_matchers": ['alertname!="TargetDown"', 'process=~".+"'],
            "equal": ["environment", "process"],
        },
    ],
}
