"""Search, accounts and the background workers: the parts of Jatra around the booking path."""

from jatra.observability.panels import dashboard, q, timeseries
from jatra.observability.promql import ENV, max_by, quantile, rate, sel, sum_by
from jatra.telemetry import catalogue as c

dashboard = dashboard(
    "jatra-services",
    "Jatra / Search, accounts and workers",
    "The search cache, logins by OTP and token refreshes, the timetable, and every worker's loop.",
    [
        (
            "Search",
            [
                timeseries(
                    "Search cache lookups per second by result",
                    "hit: answered from Redis; miss: computed in Postgres; error: Redis failed and Postgres "
                    "answered.",
                    "ops",
                    q(sum_by(rate(c.SEARCH_CACHE_LOOKUPS, ENV), "result"), "{{result}}"),
                    stacked=True,
                ),
                timeseries(
                    "Search cache invalidations per second by reason",
                    "Cached days dropped because journeys or inventory changed.",
                    "ops",
                    q(sum_by(rate(c.SEARCH_CACHE_INVALIDATIONS, ENV), "reason"), "{{reason}}"),
                ),
                timeseries(
                    "Journeys per search",
                    "p50 and p99 of how many journeys a computed search returned.",
                    "short",
                    q(quantile(0.5, c.SEARCH_RESULTS, ENV), "p50"),
                    q(quantile(0.99, c.SEARCH_RESULTS, ENV), "p99"),
                ),
                timeseries(
                    "Journeys materialised per second",
                    "Journeys the timetable worker created as the horizon rolls forward.",
                    "ops",
                    q(sum_by(rate(c.JOURNEYS_MATERIALISED, ENV)), "journeys"),
                ),
            ],
        ),
        (
            "Accounts",
            [
                timeseries(
                    "One-time passwords per second by outcome",
                    "Codes sent by SMS, and requests refused by the per-phone limit.",
                    "ops",
                    q(sum_by(rate(c.OTP_REQUESTS, ENV), "outcome"), "{{outcome}}"),
                ),
                timeseries(
                    "Logins and refreshes per second by outcome",
                    "Logins by code (ok, wrong, expired, exhausted) and refresh-token rotations (ok, "
                    "reused: a "
                    "stolen token was presented and its family revoked).",
                    "ops",
                    q(sum_by(rate(c.LOGINS, ENV), "outcome"), "login {{outcome}}"),
                    q(sum_by(rate(c.REFRESHES, ENV), "outcome"), "refresh {{outcome}}"),
                ),
                timeseries(
                    "Access-token revocation checks per second, by where answered",
                    "memory: the process's list of logged-out logins, fed by a Redis subscription; "
                    "redis: the list was not live (starting, or its subscription lost or silent) and "
                    "the check asked Redis. live = processes answering from their list.",
                    "ops",
                    q(sum_by(rate(c.AUTH_REVOCATION_CHECKS, ENV), "answered"), "{{answered}}"),
                    q(sum_by(sel(c.AUTH_REVOCATIONS_LIVE, ENV)), "processes live"),
                ),
            ],
        ),
        (
            "Workers",
            [
                timeseries(
                    "Worker loop runs per second by outcome",
                    "Each background loop's iterations, ok or error, per worker.",
                    "ops",
                    q(sum_by(rate(c.WORKER_RUNS, ENV), "worker", "outcome"), "{{worker}} {{outcome}}"),
                ),
                timeseries(
                    "Seconds since each worker's last good run",
                    "Time since a worker last finished a loop without error (the reaper every 15 s, the "
                    "timetable every hour).",
                    "s",
                    q(f"time() - max by (worker) ({sel(c.WORKER_LAST_SUCCESS, ENV)})", "{{worker}}"),
                ),
                timeseries(
                    "Readiness of each dependency",
                    "1 when the process's last readiness probe of a dependency (db, redis, amqp) passed; "
                    "probes run when /ready is asked (Kubernetes asks every few seconds).",
                    "none",
                    q(
                        f"min by (process, dependency) ({sel(c.DEPENDENCY_UP, ENV)})",
                        "{{process}} {{dependency}}",
                    ),
                ),
                timeseries(
                    "Readiness probe duration",
                    "p99 of one probe of a dependency.",
                    "s",
                    q(quantile(0.99, c.DEPENDENCY_CHECK_DURATION, ENV, by=("dependency",)), "{{dependency}}"),
                ),
                timeseries(
                    "Garbage-collection pauses, p99 by generation",
                    "How long CPython's collections stop a process (its event loop answers nothing "
                    "meanwhile), over every Jatra process, in 15 min windows (a process makes a full "
                    "collection, generation 2, only a few times a minute or less). Each process's mean full "
                    "collection was 120-218 ms in rushes; JATRA_GC_FREEZE=true takes it to 3-47 ms, and its "
                    "one collection at start (0.3-0.7 s in a worker) counts here too.",
                    "s",
                    q(
                        quantile(0.99, c.GC_PAUSES, ENV, by=("generation",), window="15m"),
                        "generation {{generation}}",
                    ),
                ),
                timeseries(
                    "Time in garbage collection, by process",
                    "Seconds per second the replica of each process that collects most spent stopped by its "
                    "collections (0.01 = 1 % of its time); a heap that keeps growing shows here first.",
                    "percentunit",
                    q(max_by(rate(c.GC_PAUSES, ENV, suffix="_sum"), "process"), "{{process}}"),
                ),
                timeseries(
                    "Warm-ups at start, by part",
                    "Parts of the HTTP processes' warm-up before their first request, in the last hour: "
                    "pool connections opened, the seats service's train layouts read. A failed part leaves "
                    "the process serving cold (its first requests slower); the log's warmup.failed says why.",
                    "none",
                    q(
                        sum_by(f"increase({sel(c.WARMUP_PARTS, ENV)}[1h])", "part", "outcome"),
                        "{{part}} {{outcome}}",
                    ),
                ),
            ],
        ),
    ],
)
