"""The metric catalogue: every metric Jatra exports, defined once.

Services create their instruments from these specs (:mod:`jatra.telemetry.metrics`); dashboards and alert
rules import the same names, and a test checks that every name they use is served by a running process.
Names follow ``jatra_<area>_<thing>_<unit>``; counters end in ``_total``. Labels are bounded: never a user,
seat, hold or booking id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]

#: latency buckets around the 50 ms booking SLO
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None
    #: "jatra" when our code creates the instrument, "litestar" when Litestar's Prometheus plugin does
    owner: str = "jatra"
    #: every value of each label, when all are known in advance: the series are created at start, at 0,
    #: so a panel or an alert on a rare outcome shows 0 instead of "no data"
    known: tuple[tuple[str, ...], ...] = ()

    @property
    def series(self) -> tuple[str, ...]:
        """The sample names Prometheus stores for this metric (histograms expand to three)."""
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


CATALOGUE: dict[str, MetricSpec] = {}


def _spec(
    name: str,
    kind: Kind,
    help_: str,
    labels: tuple[str, ...] = (),
    buckets: tuple[float, ...] | None = None,
    owner: str = "jatra",
    known: tuple[tuple[str, ...], ...] = (),
) -> MetricSpec:
    if name in CATALOGUE:
        raise ValueError(f"metric {name} defined twice")
    if kind == "counter" and not name.endswith("_total"):
        raise ValueError(f"counter {name} must end in _total")
    if known and len(known) != len(labels):
        raise ValueError(f"{name}: known values for {len(known)} of {len(labels)} labels")
    spec = MetricSpec(name, kind, help_, labels, buckets, owner, known)
    CATALOGUE[name] = spec
    return spec


# -- process ----------------------------------------------------------------------------------------------
BUILD_INFO = _spec(
    "jatra_build_info", "gauge", "Always 1; labels carry the running version.", ("version", "environment")
)

PROCESS_RESTARTS = _spec(
    "jatra_process_restarts_total",
    "counter",
    "Restarts of a supervised Jatra process after it died (local stack: counted by supervisord's listener).",
    ("process",),
)

GC_PAUSES = _spec(
    "jatra_gc_pause_seconds",
    "histogram",
    "CPython's garbage collections by generation (0, 1, 2: 2 is the full one) and how long each stopped the"
    " process: its event loop answers nothing meanwhile (jatra.telemetry.gc_pauses).",
    ("generation",),
    (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    known=(("0", "1", "2"),),
)

# -- HTTP (created by Litestar's Prometheus plugin with prefix jatra_http) ---------------------------------
HTTP_PREFIX = "jatra_http"
HTTP_LABELS = ("method", "path", "status_code", "app_name", "service")
HTTP_REQUESTS = _spec(
    "jatra_http_requests_total", "counter", "HTTP requests by route template.", HTTP_LABELS, owner="litestar"
)
HTTP_DURATION = _spec(
    "jatra_http_request_duration_seconds",
    "histogram",
    "HTTP request latency by route template.",
    HTTP_LABELS,
    LATENCY_BUCKETS,
    owner="litestar",
)
HTTP_IN_PROGRESS = _spec(
    "jatra_http_requests_in_progress",
    "gauge",
    "HTTP requests being served.",
    ("method", "path", "status_code", "app_name", "service"),
    owner="litestar",
)
HTTP_ERRORS = _spec(
    "jatra_http_requests_error_total", "counter", "HTTP requests answered 5xx.", HTTP_LABELS, owner="litestar"
)

# -- admission control (jatra.infra.admission) --------------------------------------------------------------
ADMISSION_PHASES = ("new", "choosing", "continuing")
ADMISSION_SHED = _spec(
    "jatra_http_requests_shed_total",
    "counter",
    "Requests refused with 503 + Retry-After by admission control, by phase of the trip (new: log in, "
    "search; choosing: seat map, hold; continuing: booking, ticket, the rest) and reason (in_flight: this "
    "process had too many requests in flight; payment_backlog: payments are running behind).",
    ("phase", "reason"),
    known=(ADMISSION_PHASES, ("in_flight", "payment_backlog")),
)
ADMISSION_PAYMENT_DELAY = _spec(
    "jatra_http_admission_payment_delay_seconds",
    "gauge",
    "Age of the oldest booking waiting for the payment worker, as this API process last read it (once a "
    "second); new trips are refused while it is over JATRA_ADMISSION_PAYMENT_DELAY_S.",
)
ADMISSION_IN_FLIGHT = _spec(
    "jatra_http_admission_in_flight",
    "gauge",
    "Requests this process is working on, as admission control counts them (long polls excluded).",
)
ADMISSION_LIMIT = _spec(
    "jatra_http_admission_limit",
    "gauge",
    "In-flight requests past which a phase's requests are refused (0: admission control off).",
    ("phase",),
    known=(ADMISSION_PHASES,),
)

# -- dependencies -----------------------------------------------------------------------------------------
DEPENDENCY_UP = _spec(
    "jatra_dependency_up", "gauge", "1 if the last readiness probe of a dependency passed.", ("dependency",)
)
DEPENDENCY_CHECK_DURATION = _spec(
    "jatra_dependency_check_duration_seconds",
    "histogram",
    "Latency of readiness probes.",
    ("dependency",),
    LATENCY_BUCKETS,
)
WARMUP_PARTS = _spec(
    "jatra_warmup_parts_total",
    "counter",
    "Parts of a process's warm-up before its first request or message (jatra.infra.warmup), by part and"
    " outcome:"
    " ok, or failed (the part left cold).",
    ("part", "outcome"),
    known=(("db_connections", "statement_connections", "redis_connections", "seats"), ("ok", "failed")),
)

# -- catalog ----------------------------------------------------------------------------------------------
SEARCH_CACHE_LOOKUPS = _spec(
    "jatra_catalog_search_cache_lookups_total",
    "counter",
    "Journey-search cache lookups by result (hit, miss, error).",
    ("result",),
    known=(("hit", "miss", "error"),),
)
SEARCH_CACHE_INVALIDATIONS = _spec(
    "jatra_catalog_search_cache_invalidations_total",
    "counter",
    "Explicit invalidations of cached journey searches, by reason.",
    ("reason",),
    known=(("journeys_materialised", "reseed"),),
)
SEARCH_RESULTS = _spec(
    "jatra_catalog_search_results",
    "histogram",
    "Journeys returned per search.",
    (),
    (0, 1, 2, 4, 8, 16, 32),
)
JOURNEYS_MATERIALISED = _spec(
    "jatra_catalog_journeys_materialised_total",
    "counter",
    "Journeys created by the timetable worker as the booking horizon rolls forward.",
)

# -- workers ----------------------------------------------------------------------------------------------
WORKER_RUNS = _spec(
    "jatra_worker_runs_total", "counter", "Worker loop iterations by outcome.", ("worker", "outcome")
)
WORKER_LAST_SUCCESS = _spec(
    "jatra_worker_last_success_timestamp_seconds",
    "gauge",
    "Unix time of the last successful iteration of a worker loop.",
    ("worker",),
)

# -- auth -------------------------------------------------------------------------------------------------
OTP_REQUESTS = _spec(
    "jatra_auth_otp_requests_total",
    "counter",
    "OTP requests by outcome (sent, rate_limited).",
    ("outcome",),
    known=(("sent", "rate_limited"),),
)
LOGINS = _spec(
    "jatra_auth_logins_total",
    "counter",
    "OTP exchanges by outcome (ok, wrong, expired, exhausted).",
    ("outcome",),
    known=(("ok", "wrong", "expired", "exhausted"),),
)
REFRESHES = _spec(
    "jatra_auth_refreshes_total",
    "counter",
    "Refresh-token rotations by outcome (ok, reused, invalid, logout).",
    ("outcome",),
    known=(("ok", "invalid", "reused", "logout"),),
)
AUTH_REVOCATIONS_LIVE = _spec(
    "jatra_auth_revocation_list_live",
    "gauge",
    "1 while this process knows the logged-out logins from its subscription (no Redis read per request);"
    " 0 while it asks Redis on each request instead (starting, the subscription lost or silent), or"
    " before it has checked its first token (a worker never does).",
)
AUTH_REVOCATION_CHECKS = _spec(
    "jatra_auth_revocation_checks_total",
    "counter",
    "Access-token revocation checks by where they were answered: memory (the subscribed list), redis"
    " (the list not live).",
    ("answered",),
    known=(("memory", "redis"),),
)

# -- seats and holds --------------------------------------------------------------------------------------
HOLD_ATTEMPTS = _spec(
    "jatra_seats_hold_attempts_total",
    "counter",
    "Hold requests that reached the hold script, by class.",
    ("class",),
)
HOLD_OUTCOMES = _spec(
    "jatra_seats_hold_outcomes_total",
    "counter",
    "Hold requests by outcome (acquired, conflicted, limited, resyncing) and class.",
    ("outcome", "class"),
)
JOURNEYS_RESYNCED = _spec(
    "jatra_seats_journeys_resynced_total",
    "counter",
    "Journeys whose sold legs the reaper wrote back into Redis from Postgres, by what found them (sweep: "
    "its check of every sellable journey's marker; asked: a hold refused for want of one; restart: another "
    "Redis server answers, and the last minutes' sales are marked again).",
    ("trigger",),
)
HOLD_ENDED = _spec(
    "jatra_seats_holds_ended_total",
    "counter",
    "Holds that ended, by reason (released, expired, converted, lost) and class.",
    ("reason", "class"),
)
HOLD_EXTENDED = _spec(
    "jatra_seats_hold_extensions_total", "counter", "Holds extended by their owner, by class.", ("class",)
)
HOLD_SCRIPT_DURATION = _spec(
    "jatra_seats_hold_script_duration_seconds",
    "histogram",
    "Latency of one hold Lua script call (hold, release, sell, extend), round trip included.",
    ("script",),
    (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
HOLDS_LIVE = _spec("jatra_seats_holds_live", "gauge", "Live (unexpired) holds, by class.", ("class",))
SEATS_HELD = _spec("jatra_seats_held", "gauge", "Seats in live holds, by class.", ("class",))

# -- bookings, outbox, payments, notifications -------------------------------------------------------------
BOOKING_TRANSITIONS = _spec(
    "jatra_bookings_transitions_total",
    "counter",
    "Booking state transitions (the states of jatra.domain.booking_states).",
    ("from_state", "to_state"),
)
BOOKINGS_CREATED = _spec(
    "jatra_bookings_created_total", "counter", "Bookings accepted (202), by payment method.", ("method",)
)
BOOKING_WAITS = _spec(
    "jatra_booking_waits_total",
    "counter",
    "Reads of one booking by how a long poll (?wait=) ended: none (no wait asked), already (settled or not in"
    " payment when asked), rung (woken when its payment settled), timeout (answered unsettled at the limit).",
    ("outcome",),
    known=(("none", "already", "rung", "timeout"),),
)
BOOKING_WAITING = _spec(
    "jatra_booking_waiting",
    "gauge",
    "Long polls (?wait=) waiting now for a booking's payment to settle; each holds a request, not a database"
    " connection.",
)
IDEMPOTENCY = _spec(
    "jatra_bookings_idempotency_total",
    "counter",
    "Requests with an Idempotency-Key by what their key did: new (the work done and its answer stored),"
    " replayed, mismatch (another body: 422), in_flight (a key an older version holds: 409). A request"
    " refused for a reason of its own (the hold) stores nothing and is not counted here.",
    ("outcome",),
    known=(("new", "replayed", "in_flight", "mismatch"),),
)
OUTBOX_PUBLISHED = _spec(
    "jatra_outbox_published_total",
    "counter",
    "Outbox messages confirmed by the broker, by exchange.",
    ("exchange",),
)
OUTBOX_LAG = _spec(
    "jatra_outbox_lag_seconds", "gauge", "Age of the oldest unsent outbox message (0 when empty)."
)
OUTBOX_PENDING = _spec("jatra_outbox_pending", "gauge", "Unsent outbox messages.")
OUTBOX_LISTENING = _spec(
    "jatra_outbox_listening",
    "gauge",
    "1 while the outbox relay holds its LISTEN session (woken by NOTIFY), 0 while it polls instead.",
)
OUTBOX_WAKEUPS = _spec(
    "jatra_outbox_wakeups_total",
    "counter",
    "Why the outbox relay started a pass: notify (a commit rang), idle_poll (its safety-net timeout while"
    " listening), poll (not listening), backlog (the last pass was full).",
    ("cause",),
    known=(("notify", "idle_poll", "poll", "backlog"),),
)
RETENTION_PRUNED = _spec(
    "jatra_retention_pruned_total",
    "counter",
    "Rows the outbox relay deleted once past their retention, by table: outbox (sent, older than"
    " JATRA_OUTBOX_RETENTION_S), idempotency_keys (expired), refresh_tokens (expired longer than"
    " JATRA_REFRESH_RETENTION_S ago).",
    ("table",),
    known=(("outbox", "idempotency_keys", "refresh_tokens"),),
)
AMQP_CONSUMED = _spec(
    "jatra_amqp_consumed_total",
    "counter",
    "Messages consumed by outcome (ack, retry, dead_letter), by queue.",
    ("queue", "outcome"),
)
DLQ_DEPTH = _spec("jatra_amqp_dead_letters", "gauge", "Messages waiting in a dead-letter queue.", ("queue",))
PAYMENT_ATTEMPTS = _spec(
    "jatra_payments_attempts_total",
    "counter",
    "Calls to the payment provider by outcome (captured, declined, voided: the key was given up on "
    "before this charge arrived, error, timeout, short_circuited).",
    ("outcome",),
    known=(("captured", "declined", "voided", "error", "timeout", "short_circuited"),),
)
PAYMENT_DURATION = _spec(
    "jatra_payments_provider_duration_seconds",
    "histogram",
    "Latency of one call to the payment provider.",
    (),
    LATENCY_BUCKETS,
)
BREAKER_STATE = _spec(
    "jatra_circuit_breaker_state",
    "gauge",
    "Circuit breaker state per target: 0 closed, 1 half-open, 2 open.",
    ("target",),
)
BREAKER_TRANSITIONS = _spec(
    "jatra_circuit_breaker_transitions_total",
    "counter",
    "Circuit breaker state changes per target.",
    ("target", "to_state"),
)
REFUNDS = _spec(
    "jatra_payments_refunds_total",
    "counter",
    "Refund requests the payment worker carried out at the provider, by outcome: refunded (money back), "
    "voided (nothing was charged; a charge still on its way now takes nothing), none (nothing to refund: "
    "unknown to the provider, or declined), refused (a 4xx, logged).",
    ("outcome",),
    known=(("refunded", "voided", "none", "refused"),),
)
RECONCILIATIONS = _spec(
    "jatra_payments_reconciliations_total",
    "counter",
    "Stuck bookings resolved by reconciliation, by action (confirmed, failed, refunded).",
    ("action",),
    known=(("confirmed", "failed", "refunded"),),
)
TICKETS_PDF = _spec(
    "jatra_tickets_pdf_total",
    "counter",
    "E-ticket PDFs asked for, by who asked (api, notifications) and outcome (cached, rendered, waited: "
    "another process was rendering it).",
    ("by", "outcome"),
)
NOTIFICATIONS_SENT = _spec(
    "jatra_notifications_sent_total",
    "counter",
    "Notifications by channel (sms, email) and outcome (sent, failed, duplicate).",
    ("channel", "outcome"),
)
SETTLE_BUCKETS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
BOOKING_SETTLED = _spec(
    "jatra_bookings_settle_duration_seconds",
    "histogram",
    "Time from a booking's 202 to its final state (CONFIRMED, PAYMENT_FAILED, EXPIRED), by that state.",
    ("state",),
    SETTLE_BUCKETS,
)
BOOKINGS_STUCK = _spec(
    "jatra_bookings_stuck",
    "gauge",
    "Bookings still in payment two minutes or more after their 202 (the reconciler counts them each pass).",
)

# -- the telemetry pipeline itself -------------------------------------------------------------------------
LOG_EVENTS = _spec(
    "jatra_telemetry_log_events_total",
    "counter",
    "Log events this process emitted, by level (after redaction; every one is written to stdout).",
    ("level",),
)
SPANS = _spec(
    "jatra_telemetry_spans_total",
    "counter",
    "Sampled spans by outcome: ended (produced), exported (accepted by an exporter), failed (an exporter "
    "refused or could not be reached), dropped (the export queue was full).",
    ("outcome",),
    known=(("ended", "exported", "failed", "dropped"),),
)

LOG_FILES_LOST = _spec(
    "jatra_log_files_lost_total",
    "counter",
    "Log files a reader (logship, archive) had not finished when they were rotated out of reach: the "
    "unread rest of each is lost to Elasticsearch or to the archive. Counted once per file, by reader and "
    "source process.",
    ("reader", "source"),
)

# -- log shipping to Elasticsearch (jatra worker logship) ------------------------------------------------
LOGSHIP_EVENTS = _spec(
    "jatra_logship_events_total",
    "counter",
    "Log events by outcome: read (from the files), shipped (indexed), duplicate (already indexed: a resend "
    "after a restart), retried (Elasticsearch answered 429 or failed; sent again), rejected (refused for "
    "good, set aside with the reason).",
    ("outcome",),
    known=(("read", "shipped", "duplicate", "retried", "rejected"),),
)
LOGSHIP_LAG_SECONDS = _spec(
    "jatra_logship_lag_seconds",
    "gauge",
    "Age of the oldest log event not yet in Elasticsearch (0 when the shipper has caught up).",
)
LOGSHIP_LAG_BYTES = _spec(
    "jatra_logship_lag_bytes",
    "gauge",
    "Bytes written to the log files that the shipper has not shipped yet.",
)
LOGSHIP_BULK_DURATION = _spec(
    "jatra_logship_bulk_duration_seconds",
    "histogram",
    "Time of one bulk request to Elasticsearch, retries included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# -- the auditors' archive (jatra worker archive) ---------------------------------------------------------
ARCHIVE_EVENTS = _spec(
    "jatra_archive_events_total",
    "counter",
    "Log events sealed into archive segments that are uploaded and listed in a signed manifest.",
)
ARCHIVE_SEGMENTS = _spec(
    "jatra_archive_segments_total",
    "counter",
    "Archive segments by outcome: sealed (uploaded under Object Lock with a signed manifest), failed (the "
    "upload or the manifest did not complete; retried from the same log offsets).",
    ("outcome",),
    known=(("sealed", "failed"),),
)
ARCHIVE_BYTES = _spec(
    "jatra_archive_bytes_total",
    "counter",
    "Compressed bytes of sealed segments uploaded to the archive bucket.",
)
ARCHIVE_LAG_SECONDS = _spec(
    "jatra_archive_lag_seconds",
    "gauge",
    "Age of the oldest log event not yet in a sealed segment (bounded by the seal age when healthy).",
)
ARCHIVE_LAST_SEAL = _spec(
    "jatra_archive_last_seal_timestamp_seconds",
    "gauge",
    "Unix time of the last segment sealed into the archive.",
)

# -- database backups (jatra backup) ----------------------------------------------------------------------
BACKUP_LAST_SUCCESS = _spec(
    "jatra_backup_last_success_timestamp_seconds",
    "gauge",
    "Unix time the newest backup in the repository completed, by kind: full, incremental (pgBackRest's "
    "differential and incremental backups) and wal (upload of the newest archived WAL segment, which only "
    "moves while the database writes). Read from the repository by the backup worker.",
    ("kind",),
)
BACKUP_DURATION = _spec(
    "jatra_backup_duration_seconds",
    "gauge",
    "How long the newest backup in the repository took, by kind (full, incremental).",
    ("kind",),
)
