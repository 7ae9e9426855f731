"""Queues: RabbitMQ per queue, the transactional outbox, the dead letters, what the workers consume."""

from jatra.observability import exporters as x
from jatra.observability.panels import dashboard, q, timeseries
from jatra.observability.promql import ENV, max_by, rate, sel, sum_by
from jatra.telemetry import catalogue as c

dashboard = dashboard(
    "jatra-queues",
    "Jatra / Queues",
    "RabbitMQ depth, rates, unacked and consumers per queue; dead letters; the outbox's lag and backlog.",
    [
        (
            "RabbitMQ",
            [
                timeseries(
                    "Messages ready per queue",
                    "Messages waiting for a consumer: a backlog that grows means the workers fall behind.",
                    "short",
                    q(sum_by(sel(x.RABBIT_READY, ENV), "queue"), "{{queue}}"),
                ),
                timeseries(
                    "Messages unacked per queue",
                    "Messages delivered and being worked on (bounded by each consumer's prefetch).",
                    "short",
                    q(sum_by(sel(x.RABBIT_UNACKED, ENV), "queue"), "{{queue}}"),
                ),
                timeseries(
                    "Consumers per queue",
                    "Consumers attached: 0 on payments.requests or notifications means nothing drains it.",
                    "short",
                    q(sum_by(sel(x.RABBIT_CONSUMERS, ENV), "queue"), "{{queue}}"),
                ),
                timeseries(
                    "Published and delivered per second",
                    "Messages the broker received from publishers, and delivered to consumers.",
                    "ops",
                    q(sum_by(rate(x.RABBIT_RECEIVED, ENV)), "published"),
                    q(sum_by(rate(x.RABBIT_DELIVERED, ENV)), "delivered"),
                ),
            ],
        ),
        (
            "Outbox and dead letters",
            [
                timeseries(
                    "Outbox lag and backlog",
                    "Age of the oldest message not yet published (s) and how many wait in Postgres: both "
                    "grow "
                    "while RabbitMQ is down, and nothing is lost.",
                    "s",
                    q(max_by(sel(c.OUTBOX_LAG, ENV)), "lag (s)"),
                    q(max_by(sel(c.OUTBOX_PENDING, ENV)), "pending"),
                ),
                timeseries(
                    "Dead letters per queue",
                    "Messages in a dead-letter queue: a payment request or event that could not be handled, "
                    "with its reason in the x-jatra-reason header.",
                    "short",
                    q(max_by(sel(c.DLQ_DEPTH, ENV), "queue"), "{{queue}}"),
                ),
                timeseries(
                    "Consumed per second by outcome",
                    "What the workers did with each delivery: ack, retry (requeued), dead_letter.",
                    "ops",
                    q(sum_by(rate(c.AMQP_CONSUMED, ENV), "queue", "outcome"), "{{queue}} {{outcome}}"),
                ),
                timeseries(
                    "Outbox relay passes per second, by what started them",
                    "notify: a commit rang (NOTIFY); idle_poll: the relay's safety-net timeout; poll: its "
                    "LISTEN session is down and it polls (listening = relays holding one, see the outbox "
                    "runbook); backlog: the last pass was a full batch.",
                    "ops",
                    q(sum_by(rate(c.OUTBOX_WAKEUPS, ENV), "cause"), "{{cause}}"),
                    q(sum_by(sel(c.OUTBOX_LISTENING, ENV)), "relays listening"),
                ),
                timeseries(
                    "Published by the outbox per second",
                    "Messages the relay published with a broker confirm, by exchange; and the rows it "
                    "deleted past their retention, by table: sent outbox rows older than "
                    "JATRA_OUTBOX_RETENTION_S (over a day, about what it published three days before) and"
                    " expired idempotency keys (about the bookings of the day before), and refresh tokens"
                    " expired over JATRA_REFRESH_RETENTION_S ago (the logins and rotations of two weeks"
                    " before).",
                    "ops",
                    q(sum_by(rate(c.OUTBOX_PUBLISHED, ENV), "exchange"), "{{exchange}}"),
                    q(sum_by(rate(c.RETENTION_PRUNED, ENV), "table"), "pruned: {{table}}"),
                ),
            ],
        ),
    ],
)
