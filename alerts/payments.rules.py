"""Payments: an open breaker, failing payments, bookings stuck between 202 and a final state."""

from jatra.observability.promql import rate, rose, sel, sum_by
from jatra.observability.rules import Alert, Group
from jatra.telemetry import catalogue as c

FAILED = sum_by(rate(c.PAYMENT_ATTEMPTS, 'outcome=~"declined|error|timeout"', window="10m"), "environment")
ALL = sum_by(rate(c.PAYMENT_ATTEMPTS, 'outcome!="short_circuited"', window="10m"), "environment")
#: a breaker's trial calls: it half-opens only when a call arrives after its reset time
TRIALS = sel(c.BREAKER_TRANSITIONS, 'to_state="half-opened"')

groups = [
    Group(
        "jatra-payments",
        (
            Alert(
                "CircuitBreakerOpen",
                # not closed at any point in 5 minutes (open, or half-open on a trial call that failed), and
                # a trial call made in the last 15: purgatory changes state only on a call, so a breaker
                # no call reaches stays open after its target recovered, and that alone is not an outage
                f"min by (environment, target) (min_over_time({sel(c.BREAKER_STATE)}[5m])) >= 1"
                f" and on (environment, target) {rose(TRIALS, '15m', 'environment', 'target')}",
                "0m",
                "page",
                "The circuit breaker to {{ $labels.target }} has not closed for 5 minutes",
                "Calls to {{ $labels.target }} ({{ $labels.environment }}) failed so often that its breaker "
                "opened and every trial call since has failed too (5 minutes). For the payment provider, "
                "payments wait within their retry budget, then fail with nothing charged; for an SMS or "
                "e-mail channel, notifications are retried and then dead-lettered. It resolves on a "
                "successful trial call, or 15 minutes after the last failed one when no call reaches the "
                "target.",
                "jatra-breakers",
            ),
            Alert(
                "PaymentFailureRateHigh",
                f"{FAILED} / clamp_min({ALL}, 1e-9) > 0.2 and {ALL} > 0.05",
                "10m",
                "page",
                "{{ $value | humanizePercentage }} of payment attempts fail",
                "Over 10 minutes, {{ $value | humanizePercentage }} of calls to the payment provider in "
                "{{ $labels.environment }} were declined, failed or timed out.",
                "jatra-bookings",
            ),
            Alert(
                "BookingsStuckInPayment",
                f"max by (environment) ({sel(c.BOOKINGS_STUCK)}) > 0",
                "10m",
                "page",
                "{{ $value }} bookings have waited more than 2 minutes for payment",
                "{{ $value }} accepted bookings in {{ $labels.environment }} are still PAYMENT_PENDING or "
                "PAYMENT_PROCESSING two minutes after their 202, for 10 minutes: the payment path is broken "
                "somewhere between the outbox and the provider. The reconciler settles them after the hold "
                "time; passengers are waiting now.",
                "jatra-bookings",
            ),
        ),
    ),
]
