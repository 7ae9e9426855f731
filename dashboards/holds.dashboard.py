"""Seat holds: how passengers compete for seats, how long the hold script takes, what is held now."""

from jatra.observability.panels import dashboard, q, timeseries
from jatra.observability.promql import ENV, max_by, quantile, rate, sel, sum_by
from jatra.telemetry import catalogue as c

CONFLICTED = sum_by(rate(c.HOLD_OUTCOMES, ENV, 'outcome="conflicted"'), "class")
ATTEMPTS = sum_by(rate(c.HOLD_ATTEMPTS, ENV), "class")

dashboard = dashboard(
    "jatra-holds",
    "Jatra / Seat holds",
    "Hold attempts and their outcomes by class, how holds end, the hold script's latency, live holds.",
    [
        (
            "Attempts and outcomes",
            [
                timeseries(
                    "Hold attempts per second by class",
                    "Requests to hold seats that reached the hold script, by seat class.",
                    "ops",
                    q(sum_by(rate(c.HOLD_ATTEMPTS, ENV), "class"), "{{class}}"),
                ),
                timeseries(
                    "Hold outcomes per second",
                    "acquired: the seats are held; conflicted: another passenger holds or bought one of them "
                    "(409); limited: the account is at its seat or hold limit on that journey; resyncing: "
                    "Redis does not know the journey's sales yet (503, until the reaper restores them).",
                    "ops",
                    q(sum_by(rate(c.HOLD_OUTCOMES, ENV), "outcome"), "{{outcome}}"),
                    stacked=True,
                ),
                timeseries(
                    "Conflicted share of attempts by class",
                    "Share of attempts that lost the seat to someone else: contention on popular trains.",
                    "percentunit",
                    q(f"{CONFLICTED} / clamp_min({ATTEMPTS}, 1e-9)", "{{class}}"),
                ),
                timeseries(
                    "Holds ended per second by reason",
                    "converted: booked and paid; released: given back; expired: their time ran out; lost: "
                    "Redis lost them (a restart) and the reaper ended them.",
                    "ops",
                    q(sum_by(rate(c.HOLD_ENDED, ENV), "reason"), "{{reason}}"),
                    stacked=True,
                ),
                timeseries(
                    "Journeys restored into Redis",
                    "Journeys whose sold legs the reaper wrote back from Postgres, with the marker without "
                    "which holds on them are refused: sweep (its check of every sellable journey: at start, "
                    "hourly, after Redis lost its data), asked (a hold refused for want of the marker), "
                    "restart (another Redis server answers: the last minutes' sales marked again).",
                    "short",
                    q(sum_by(f"increase({sel(c.JOURNEYS_RESYNCED, ENV)}[5m])", "trigger"), "{{trigger}}"),
                ),
            ],
        ),
        (
            "Hold script and live holds",
            [
                timeseries(
                    "Hold script latency",
                    "p50 and p99 of one Lua script call in Redis, by script (hold, release, extend, sell); "
                    "exemplars link to traces.",
                    "s",
                    q(quantile(0.99, c.HOLD_SCRIPT_DURATION, ENV, by=("script",)), "p99 {{script}}"),
                    q(quantile(0.5, c.HOLD_SCRIPT_DURATION, ENV, by=("script",)), "p50 {{script}}"),
                    exemplars=True,
                ),
                timeseries(
                    "Live holds and held seats by class",
                    "Holds not yet expired, and the seats in them, as the reaper last counted (every 15 s).",
                    "short",
                    q(max_by(sel(c.HOLDS_LIVE, ENV), "class"), "holds {{class}}"),
                    q(max_by(sel(c.SEATS_HELD, ENV), "class"), "seats {{class}}"),
                ),
                timeseries(
                    "Hold extensions per second by class",
                    "Passengers asking for more time to pay.",
                    "ops",
                    q(sum_by(rate(c.HOLD_EXTENDED, ENV), "class"), "{{class}}"),
                ),
            ],
        ),
    ],
)
