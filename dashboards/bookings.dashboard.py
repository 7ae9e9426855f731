"""Bookings and payments: the funnel from 202 to a ticket, the payment provider, reconciliation."""

from jatra.observability.panels import dashboard, q, timeseries
from jatra.observability.promql import ENV, max_by, quantile, rate, sel, sum_by
from jatra.telemetry import catalogue as c

dashboard = dashboard(
    "jatra-bookings",
    "Jatra / Bookings and payments",
    "State transitions of bookings, payment outcomes and provider latency, reconciliation, idempotency, "
    "tickets and notifications.",
    [
        (
            "The funnel",
            [
                timeseries(
                    "Bookings accepted per second by payment method",
                    "202 answers to POST /bookings: each is a promise that the booking reaches a final "
                    "state.",
                    "ops",
                    q(sum_by(rate(c.BOOKINGS_CREATED, ENV), "method"), "{{method}}"),
                ),
                timeseries(
                    "State transitions per second",
                    "Every booking state change, from -> to; CONFIRMED should follow PAYMENT_PROCESSING.",
                    "ops",
                    q(
                        sum_by(rate(c.BOOKING_TRANSITIONS, ENV), "from_state", "to_state"),
                        "{{from_state}} -> {{to_state}}",
                    ),
                ),
                timeseries(
                    "Time from 202 to a final state",
                    "p50 and p99 of how long an accepted booking waits for CONFIRMED, PAYMENT_FAILED or "
                    "EXPIRED (the settle-time SLO: 99 % within 30 s).",
                    "s",
                    q(quantile(0.99, c.BOOKING_SETTLED, ENV, by=("state",)), "p99 {{state}}"),
                    q(quantile(0.5, c.BOOKING_SETTLED, ENV, by=("state",)), "p50 {{state}}"),
                    exemplars=True,
                ),
                timeseries(
                    "Long polls for a booking's outcome",
                    "Reads with ?wait= by how they ended (rung: woken when the payment settled; timeout: "
                    "answered unsettled at the limit; already: settled when asked), and how many wait now "
                    "(each holds a request, not a database connection). Timeouts rising with a flat rung "
                    "rate mean payments are slow or the settle doorbell (Redis pub/sub) is not heard.",
                    "short",
                    q(sum_by(rate(c.BOOKING_WAITS, ENV), "outcome"), "{{outcome}} /s"),
                    q(sum_by(sel(c.BOOKING_WAITING, ENV)), "waiting now"),
                ),
                timeseries(
                    "Bookings stuck in payment",
                    "Bookings still in PAYMENT_PENDING or PAYMENT_PROCESSING two minutes after their 202.",
                    "short",
                    q(max_by(sel(c.BOOKINGS_STUCK, ENV)), "stuck"),
                ),
            ],
        ),
        (
            "Payments",
            [
                timeseries(
                    "Payment attempts per second by outcome",
                    "Calls to the provider: captured, declined, error, timeout, and short_circuited (the "
                    "breaker refused the call).",
                    "ops",
                    q(sum_by(rate(c.PAYMENT_ATTEMPTS, ENV), "outcome"), "{{outcome}}"),
                    stacked=True,
                ),
                timeseries(
                    "Provider latency",
                    "p50 and p99 of one call to the payment provider; exemplars link to traces.",
                    "s",
                    q(quantile(0.99, c.PAYMENT_DURATION, ENV), "p99"),
                    q(quantile(0.5, c.PAYMENT_DURATION, ENV), "p50"),
                    exemplars=True,
                ),
                timeseries(
                    "Reconciliations and refunds per second",
                    "Stuck bookings the reconciler settled by asking the provider (confirmed, failed, "
                    "refunded), and refunds the payment worker made (cancellations, and money taken for a "
                    "booking that ended without a ticket): refunded, voided, none, refused.",
                    "ops",
                    q(sum_by(rate(c.RECONCILIATIONS, ENV), "action"), "{{action}}"),
                    q(sum_by(rate(c.REFUNDS, ENV), "outcome"), "refund {{outcome}}"),
                ),
                timeseries(
                    "Idempotency keys per second by outcome",
                    "new (the work done, its answer stored), replays (a retry sent while the first ran "
                    "waits for it, then replays), mismatches (same key, other body: 422) and in_flight (a "
                    "key an older version left running: 409, during a rolling deploy).",
                    "ops",
                    q(sum_by(rate(c.IDEMPOTENCY, ENV), "outcome"), "{{outcome}}"),
                ),
            ],
        ),
        (
            "Tickets and notifications",
            [
                timeseries(
                    "E-ticket PDFs per second",
                    "Who asked for a ticket PDF (api, notifications) and whether it was cached, rendered or "
                    "waited for another process's render.",
                    "ops",
                    q(sum_by(rate(c.TICKETS_PDF, ENV), "by", "outcome"), "{{by}} {{outcome}}"),
                ),
                timeseries(
                    "Notifications per second",
                    "SMS and e-mail by outcome: sent, failed, duplicate (a redelivered event, not sent "
                    "again).",
                    "ops",
                    q(
                        sum_by(rate(c.NOTIFICATIONS_SENT, ENV), "channel", "outcome"),
                        "{{channel}} {{outcome}}",
                    ),
                ),
            ],
        ),
    ],
)
