"""One typed settings object, read from ``JATRA_*`` environment variables.

Every field has a ``doc`` in its metadata: ``jatra config`` prints it next to the effective value, and
fields marked ``secret`` are masked there. Connection URLs default to the local stack that ``jatra up``
starts (see :mod:`jatra.stack.ports`), so a laptop needs no configuration at all.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, get_type_hints

from jatra.stack import sockets
from jatra.stack.ports import MAX_API_REPLICAS, Ports

PREFIX = "JATRA_"


def _doc(text: str, *, secret: bool = False, bounds: tuple[int, int] | None = None) -> dict[str, Any]:
    """Field metadata: what it does, whether `jatra config` masks it, and the range a value must be in."""
    return {"doc": text, "secret": secret, "bounds": bounds}


@dataclass(frozen=True, slots=True)
class Settings:
    """Effective configuration of one Jatra process."""

    environment: str = field(default="dev", metadata=_doc("Deployment environment (resource attribute)."))
    state_dir: Path = field(
        default=Path("var"), metadata=_doc("Where the local stack keeps data, logs and PIDs.")
    )
    port_base: int = field(
        default=17000, metadata=_doc("First loopback port of the local stack; every port is an offset.")
    )
    api_host: str = field(default="127.0.0.1", metadata=_doc("Address the HTTP API binds to."))
    forwarded_allow_ips: str = field(
        default="127.0.0.1",
        metadata=_doc(
            "Proxies (addresses, CIDRs or *, comma-separated) whose X-Forwarded-For names the client: the "
            "gateway, the ingress controller. Behind one not named here every client is the proxy's "
            "address, and the per-address login limit is one for everybody."
        ),
    )
    api_replicas: int = field(
        default=2,
        metadata=_doc(
            "API processes `jatra up` runs (like pods behind a Service): they share the API port "
            "(SO_REUSEPORT) and each serves /metrics on its own port. One per core is a good start.",
            bounds=(1, MAX_API_REPLICAS),
        ),
    )
    database_url: str = field(
        default="", metadata=_doc("SQLAlchemy URL the services use (default: PgBouncer of the local stack).")
    )
    database_admin_url: str = field(
        default="",
        metadata=_doc("URL for migrations and seeding, straight to Postgres (default: the local stack)."),
    )
    database_listen_url: str = field(
        default="",
        metadata=_doc(
            "URL of one session straight to Postgres for LISTEN (the outbox relay's wake-up: a transaction"
            " pooler cannot carry it). Default: the local stack's Postgres, or DATABASE_URL when it is not"
            " behind PgBouncer; with neither the relay polls.",
            secret=True,
        ),
    )
    database_pool_size: int = field(default=10, metadata=_doc("Connections per process in the pool."))
    database_via_pgbouncer: bool = field(
        default=True, metadata=_doc("Disable prepared-statement caches, as PgBouncer transaction mode needs.")
    )
    redis_url: str = field(default="", metadata=_doc("Redis URL (default: the local stack)."))
    amqp_url: str = field(default="", metadata=_doc("RabbitMQ URL (default: the local stack).", secret=True))
    dependency_timeout_s: float = field(
        default=1.0, metadata=_doc("Timeout of one readiness probe and of a Redis socket operation.")
    )
    http_header_timeout_s: float = field(
        default=10.0,
        metadata=_doc("Time a client has to send a request's line and headers before it gets 408."),
    )
    http_body_timeout_s: float = field(
        default=10.0, metadata=_doc("Longest pause allowed while a client sends a request body (then 408).")
    )
    http_cork: bool = field(
        default=True,
        metadata=_doc("Write each HTTP response's head and body in one send (jatra.infra.http_server)."),
    )
    dependency_probe_interval_s: float = field(
        default=15.0, metadata=_doc("How often each process probes its dependencies in the background.")
    )
    retry_after_s: int = field(
        default=2, metadata=_doc("Retry-After (seconds) sent with a 503 when a dependency fails.")
    )
    admission_new_limit: int = field(
        default=8,
        metadata=_doc(
            "Requests in flight in one API process past which a request that starts a trip (log in, "
            "search) is refused with 503 + Retry-After; a seat map or a hold is refused halfway from "
            "this to JATRA_ADMISSION_LIMIT. 0: the overall limit for all.",
            bounds=(0, 100_000),
        ),
    )
    admission_limit: int = field(
        default=32,
        metadata=_doc(
            "Requests in flight in one API process past which any request (a booking too) is refused "
            "with 503 + Retry-After; long polls are not counted. 0: no limit.",
            bounds=(0, 100_000),
        ),
    )
    admission_payment_delay_s: float = field(
        default=0.0,
        metadata=_doc(
            "New trips are refused while the oldest booking waiting for the payment worker is older than "
            "this (seconds; each API process reads it once a second). 0 (the default, for a stack whose "
            "payment worker may not run): the payments' backlog is not watched. The chart sets 60."
        ),
    )
    admission_standing_s: float = field(
        default=0.1,
        metadata=_doc(
            "How long the count must stay at a trip's limit before new trips, seat maps and holds are "
            "refused: a shorter burst is let through."
        ),
    )
    otlp_endpoint: str = field(
        default="", metadata=_doc("OTLP/HTTP endpoint for traces; empty means traces are not exported.")
    )
    trace_dir: str = field(
        default="",
        metadata=_doc(
            "Write spans as OTLP JSON lines here, one file per process (`jatra up` sets STATE_DIR/traces)."
        ),
    )
    trace_sample_ratio: float = field(
        default=1.0, metadata=_doc("Ratio of new traces sampled (parent-based: children follow the parent).")
    )
    telemetry_enabled: bool = field(
        default=True, metadata=_doc("Master switch for tracing and request logs (metrics stay on).")
    )
    log_level: str = field(default="INFO", metadata=_doc("Minimum level of emitted log events."))
    log_file: str = field(
        default="",
        metadata=_doc(
            "Also write the ECS JSON log to this file, rotated by renaming (.1, .2 ...), for a log shipper "
            "and the archiver to follow (containers; the local stack's supervisord writes the files itself)."
        ),
    )
    log_file_max_bytes: int = field(
        default=50 * 1024 * 1024, metadata=_doc("Size at which JATRA_LOG_FILE is rotated (5 are kept).")
    )
    search_cache_ttl_s: int = field(
        default=60, metadata=_doc("Upper bound on the age of a cached journey search.")
    )
    timetable_horizon_days: int = field(
        default=30, metadata=_doc("Days ahead for which journeys are materialised.")
    )
    timetable_interval_s: float = field(
        default=3600.0, metadata=_doc("How often the timetable worker rolls the horizon forward.")
    )
    timezone: str = field(default="Asia/Dhaka", metadata=_doc("Local time zone of timetables and dates."))
    jwt_secret: str = field(
        default="",
        metadata=_doc(
            "HMAC key for access tokens; empty: generated once into STATE_DIR/secrets.", secret=True
        ),
    )
    access_token_ttl_s: int = field(default=900, metadata=_doc("Lifetime of an access token (15 min)."))
    refresh_token_ttl_s: int = field(
        default=7 * 86400, metadata=_doc("Lifetime of a refresh token (7 days).")
    )
    refresh_retention_s: float = field(
        default=7 * 86400.0,
        metadata=_doc(
            "How long a refresh token is kept after it expired, before the outbox relay deletes it (until"
            " then a logout with it revokes its login; after, it answers 401 as an unknown token).",
            bounds=(0, 366 * 86400),
        ),
    )
    otp_ttl_s: int = field(default=300, metadata=_doc("Lifetime of a one-time password."))
    otp_max_attempts: int = field(default=5, metadata=_doc("Wrong OTP guesses before the code is burnt."))
    otp_per_phone_per_hour: int = field(
        default=5, metadata=_doc("OTPs one phone number may request per hour.")
    )
    otp_per_ip_per_minute: int = field(
        default=30, metadata=_doc("OTP requests one client IP may make per minute.")
    )
    notification_channel: str = field(
        default="mailbox",
        metadata=_doc("Where SMS/e-mail go: `mailbox` (files in STATE_DIR/mailbox) or `smtp`."),
    )
    smtp_host: str = field(default="127.0.0.1", metadata=_doc("SMTP server for e-mail (channel `smtp`)."))
    smtp_port: int = field(default=25, metadata=_doc("SMTP port."))
    smtp_sender: str = field(default="tickets@jatra.example", metadata=_doc("From address of e-mails."))
    hold_ttl_s: float = field(default=300, metadata=_doc("Lifetime of a seat hold."))
    hold_max_total_s: float = field(default=900, metadata=_doc("A hold can be extended up to this age."))
    hold_max_seats: int = field(
        default=4, metadata=_doc("Seats one account may hold on one journey (BR rule).")
    )
    hold_max_live: int = field(default=2, metadata=_doc("Live holds one account may have on one journey."))
    reaper_interval_s: float = field(default=15.0, metadata=_doc("How often the hold reaper reconciles."))
    outbox_interval_s: float = field(
        # 0.05 before: in A B B A rushes at 40 arrivals/s, 0.1 took the relay from 1.11-1.23 to 0.92 ms of
        # CPU a booking and RabbitMQ from 1.69-1.85 to 1.45-1.46, and the outcome's p50 from 38 to 75 ms
        # (bench/results/relay-interval/); a quiet relay still answers a ring at once
        default=0.1,
        metadata=_doc(
            "Pause between outbox relay passes while it cannot LISTEN (polling), and the shortest gap"
            " between passes while NOTIFY wakes it (so a busy relay publishes in batches)."
        ),
    )
    outbox_idle_poll_s: float = field(
        default=1.0,
        metadata=_doc("Longest pause between outbox relay passes while NOTIFY wakes it (a safety net)."),
    )
    outbox_retention_s: float = field(
        default=3 * 86400.0,
        metadata=_doc(
            "How long the relay keeps an outbox row after sending it (for looking into a message's"
            " history), before deleting it.",
            bounds=(60, 366 * 86400),
        ),
    )
    provider_url: str = field(
        default="", metadata=_doc("Payment provider base URL (default: the local simulator).")
    )
    provider_timeout_s: float = field(
        default=3.0, metadata=_doc("Timeout of one call to the payment provider.")
    )
    payment_retry_timeout_s: float = field(
        default=20.0, metadata=_doc("Total time the payment worker retries one charge before failing it.")
    )
    payments_prefetch: int = field(default=32, metadata=_doc("Payment requests one worker handles at once."))
    notifications_prefetch: int = field(
        default=8, metadata=_doc("Notification events one worker handles at once (each may render a PDF).")
    )
    gc_freeze: bool = field(
        default=False,
        metadata=_doc(
            "Once warmed up, each process moves what it holds from its start out of the garbage collector's"
            " full collections (gc.freeze): they then stop its event loop for 3-47 ms instead of 120-218,"
            " but rushes showed no gain in latency or CPU, so it is off (jatra.telemetry.gc_pauses)."
        ),
    )
    gc_young_threshold: int = field(
        default=10_000,
        metadata=_doc(
            "Container objects allocated, net of those freed, between two collections of the garbage"
            " collector's youngest generation; CPython's default is 700. Higher: fewer collections, each"
            " longer, and fewer objects of requests in flight carried into the older generations"
            " (jatra.telemetry.gc_pauses).",
            bounds=(100, 100_000),
        ),
    )
    worker_nice: int = field(
        default=0,
        metadata=_doc(
            "CPU priority (nice) the workers lower themselves to. 10 keeps the API's latency while they "
            "drain a backlog, but in a long rush it starved the payment worker into a backlog it never "
            "left: off by default (see the README).",
            bounds=(0, 19),
        ),
    )
    breaker_threshold: int = field(
        default=5, metadata=_doc("Consecutive failures that open a circuit breaker.")
    )
    breaker_reset_s: float = field(
        default=5.0, metadata=_doc("Time an open breaker waits before a trial call.")
    )
    reconcile_interval_s: float = field(
        default=10.0, metadata=_doc("How often stuck bookings are reconciled.")
    )
    # -- S3 (SeaweedFS locally, MinIO in compose and Kubernetes) --------------------------------------
    s3_endpoint: str = field(
        default="", metadata=_doc("S3 host:port (default: the local stack's SeaweedFS, plain HTTP).")
    )
    s3_secure: bool = field(default=False, metadata=_doc("Speak HTTPS to the S3 endpoint."))
    s3_access_key: str = field(default="jatra", metadata=_doc("S3 access key."))
    s3_secret_key: str = field(
        default="", metadata=_doc("S3 secret key (default: generated under STATE_DIR/secrets).", secret=True)
    )
    # -- logs to Elasticsearch -------------------------------------------------------------------------
    elasticsearch_url: str = field(
        default="", metadata=_doc("Elasticsearch URL (default: the local stack's stand-in).", secret=True)
    )
    log_dir: Path = field(
        default=Path(), metadata=_doc("Where the processes' ECS JSON logs are (default: STATE_DIR/log).")
    )
    logship_interval_s: float = field(
        default=1.0, metadata=_doc("How often the shipper looks for new log lines once it has caught up.")
    )
    logship_batch: int = field(
        default=1000, metadata=_doc("Log events per bulk request.", bounds=(1, 10_000))
    )
    logs_retention_days: int = field(
        default=30, metadata=_doc("Days Elasticsearch keeps logs (the ILM policy's delete phase).")
    )
    # -- the auditors' archive ---------------------------------------------------------------------------
    archive_bucket: str = field(default="jatra-audit", metadata=_doc("Object Lock bucket of the archive."))
    archive_retention_days: int = field(
        default=2557, metadata=_doc("COMPLIANCE retention of every archived object (default 7 years).")
    )
    archive_legal_hold: bool = field(
        default=False, metadata=_doc("Also put a legal hold on every archived object.")
    )
    archive_segment_bytes: int = field(
        default=8 * 1024 * 1024,
        metadata=_doc("Seal a segment when its uncompressed log lines reach this size."),
    )
    archive_segment_age_s: float = field(
        default=300.0, metadata=_doc("Seal a segment when its oldest line is this old.")
    )
    archive_signing_key: str = field(
        default="",
        metadata=_doc(
            "Ed25519 private key (PEM) that signs the archive manifests (default: generated under "
            "STATE_DIR/secrets; its public key is published in the bucket).",
            secret=True,
        ),
    )
    # -- database backups ----------------------------------------------------------------------------------
    backup_bucket: str = field(default="jatra-backups", metadata=_doc("Bucket of the database backups."))
    backup_repo_path: str = field(
        default="/pgbackrest",
        metadata=_doc("Where in the bucket pgBackRest keeps its repository (backups and archived WAL)."),
    )
    backup_retention_full: int = field(
        default=7,
        metadata=_doc(
            "Full backups kept; older ones expire with the differential, incremental and WAL that only "
            "they needed (with a full a day: a week of point-in-time recovery).",
            bounds=(1, 9999),
        ),
    )
    backup_full_interval_s: float = field(
        default=86400.0, metadata=_doc("The backup worker takes a full backup when the last is this old.")
    )
    backup_incr_interval_s: float = field(
        default=3600.0,
        metadata=_doc("...and an incremental one when the last backup of any kind is this old."),
    )
    backup_first_delay_s: float = field(
        default=120.0,
        metadata=_doc("With no full backup yet, the worker takes one this long after it starts."),
    )
    backup_check_interval_s: float = field(
        default=60.0, metadata=_doc("How often the backup worker reads the repository and exports its age.")
    )
    backup_drill_timeout_s: float = field(
        default=600.0,
        metadata=_doc("The restore drill fails when its copy is not restored and queryable by then."),
    )

    @property
    def ports(self) -> Ports:
        return Ports(self.port_base)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return sockets.database_url(self.state_dir, self.ports, self.database_via_pgbouncer)

    @property
    def db_listen_url(self) -> str:
        """Where a LISTEN session goes: never through PgBouncer; empty when there is nowhere to go."""
        if self.database_listen_url:
            return self.database_listen_url
        if self.database_url:
            return "" if self.database_via_pgbouncer else self.database_url
        return self.ports.database_url(via_pgbouncer=False)

    @property
    def db_admin_url(self) -> str:
        return self.database_admin_url or self.ports.database_url(via_pgbouncer=False)

    @property
    def redis(self) -> str:
        return self.redis_url or sockets.redis_url(self.state_dir, self.ports)

    @property
    def amqp(self) -> str:
        return self.amqp_url or f"amqp://guest:guest@127.0.0.1:{self.ports.amqp}/"

    @property
    def provider(self) -> str:
        return self.provider_url or f"http://127.0.0.1:{self.ports.app('payment-provider')}"

    @property
    def s3(self) -> str:
        return self.s3_endpoint or f"127.0.0.1:{self.ports.s3}"

    @property
    def elasticsearch(self) -> str:
        return self.elasticsearch_url or f"http://127.0.0.1:{self.ports.elasticsearch}"

    @property
    def logs(self) -> Path:
        return self.log_dir if str(self.log_dir) not in {"", "."} else self.state_dir / "log"

    @property
    def mailbox_dir(self) -> Path:
        return self.state_dir / "mailbox"

    def describe(self) -> list[tuple[str, str, str]]:
        """(environment variable, effective value with secrets masked, documentation) per field."""
        rows = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            shown = _mask(str(value)) if f.metadata.get("secret") else str(value)
            rows.append((PREFIX + f.name.upper(), shown, f.metadata.get("doc", "")))
        return rows


def _mask(value: str) -> str:
    if not value:
        return ""
    if "://" in value and "@" in value:
        scheme, rest = value.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return "***"


def _parse(raw: str, kind: Any) -> Any:
    if kind is bool:
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"expected a boolean, got {raw!r}")
    if kind is Path:
        return Path(raw)
    return kind(raw)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from the environment; a malformed value fails loudly with its variable name."""
    env = os.environ if environ is None else environ
    hints = get_type_hints(Settings)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        name = PREFIX + f.name.upper()
        if name in env:
            try:
                values[f.name] = _parse(env[name], hints[f.name])
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from exc
            bounds = f.metadata.get("bounds")
            if bounds and not bounds[0] <= values[f.name] <= bounds[1]:
                raise ValueError(f"{name} must be {bounds[0]}..{bounds[1]}, not {values[f.name]}")
    return Settings(**values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
