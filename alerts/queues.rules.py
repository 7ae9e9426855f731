"""Queues: backlogs, consumers gone, dead letters, the outbox falling behind."""

from jatra.observability import exporters as x
from jatra.observability.promql import sel
from jatra.observability.rules import Alert, Group
from jatra.telemetry import catalogue as c

WORK_QUEUES = 'queue=~"payments.requests|notifications"'
#: the worker that drains each queue, as a `process` label (so a worker that is down inhibits this alert)
CONSUMER = (
    'label_replace(label_replace({expr}, "process", "payments", "queue", "payments.requests"), '
    '"process", "notifications", "queue", "notifications")'
)

groups = [
    Group(
        "jatra-queues",
        (
            Alert(
                "QueueBacklogGrowing",
                f"sum by (environment, queue) ({sel(x.RABBIT_READY, WORK_QUEUES)}) > 100 "
                f"and sum by (environment, queue) (deriv({sel(x.RABBIT_READY, WORK_QUEUES)}[10m])) > 0",
                "10m",
                "page",
                "{{ $labels.queue }} keeps growing",
                "{{ $value }} messages wait in {{ $labels.queue }} ({{ $labels.environment }}) and the "
                "backlog has grown for 10 minutes: its workers cannot keep up, and bookings wait for "
                "payment.",
                "jatra-queues",
            ),
            Alert(
                "QueueConsumersAbsent",
                CONSUMER.format(
                    expr=f"max by (environment, queue) ({sel(x.RABBIT_CONSUMERS, WORK_QUEUES)}) == 0"
                ),
                "5m",
                "page",
                "Nothing consumes {{ $labels.queue }}",
                "{{ $labels.queue }} ({{ $labels.environment }}) has had no consumer for 5 minutes: the "
                "{{ $labels.process }} worker is down or lost its broker connection. Messages are kept, "
                "not processed.",
                "jatra-queues",
            ),
            Alert(
                "DeadLettersPresent",
                f"max by (environment, queue) ({sel(c.DLQ_DEPTH)}) > 0",
                "5m",
                "ticket",
                "Messages wait in {{ $labels.queue }}",
                "{{ $value }} messages sit in the dead-letter queue {{ $labels.queue }} "
                "({{ $labels.environment }}): each is a payment request or event no worker could handle. "
                "Its reason is in the x-jatra-reason header when a worker dead-lettered it, in x-death when "
                "the broker did (after 5 deliveries).",
                "jatra-queues",
            ),
            Alert(
                "OutboxLagging",
                f"max by (environment) ({sel(c.OUTBOX_LAG)}) > 60",
                "5m",
                "page",
                "The outbox is {{ $value | humanizeDuration }} behind",
                "The oldest unpublished outbox message in {{ $labels.environment }} is "
                "{{ $value | humanizeDuration }} old: accepted bookings are not reaching the payment worker "
                "(RabbitMQ down, or the relay stopped). They are safe in Postgres.",
                "jatra-queues",
                {"engine": "rabbitmq"},
            ),
        ),
    ),
]
