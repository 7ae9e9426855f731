"""Circuit breakers: the state of each target over time, its transitions, the calls it refused."""

from jatra.observability.panels import dashboard, q, stat, timeseries
from jatra.observability.promql import ENV, rate, sel, sum_by
from jatra.telemetry import catalogue as c

dashboard = dashboard(
    "jatra-breakers",
    "Jatra / Circuit breakers",
    "Every circuit breaker (payment provider, SMS and e-mail channels): state, transitions, refused calls.",
    [
        (
            "Breakers",
            [
                stat(
                    "State now",
                    "0 closed (calls go through), 1 half-open (a trial call), 2 open (calls refused at "
                    "once).",
                    "none",
                    q(f"max by (target) ({sel(c.BREAKER_STATE, ENV)})", "{{target}}"),
                ),
                timeseries(
                    "State over time",
                    "0 closed, 1 half-open, 2 open, per target and process.",
                    "none",
                    q(sel(c.BREAKER_STATE, ENV), "{{target}} ({{process}})"),
                    min_value=None,
                ),
                timeseries(
                    "Transitions per second",
                    "Breaker state changes by target and new state: opened means the target kept failing.",
                    "ops",
                    q(
                        sum_by(rate(c.BREAKER_TRANSITIONS, ENV), "target", "to_state"),
                        "{{target}} {{to_state}}",
                    ),
                ),
                timeseries(
                    "Payment calls short-circuited per second",
                    "Calls to the payment provider the open breaker refused without trying (they are retried "
                    "within the payment's budget).",
                    "ops",
                    q(sum_by(rate(c.PAYMENT_ATTEMPTS, ENV, 'outcome="short_circuited"')), "short-circuited"),
                ),
            ],
        ),
    ],
)
