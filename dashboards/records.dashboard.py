"""Records: the auditors' archive (sealed segments under Object Lock) and the database backups."""

from jatra.observability.panels import dashboard, q, stat, timeseries
from jatra.observability.promql import ENV, rate, sel, sum_by
from jatra.telemetry import catalogue as c

dashboard = dashboard(
    "jatra-records",
    "Jatra / Archive and backups",
    "The tamper-evident log archive (segments sealed, bytes, lag) and the database backups (age, duration).",
    [
        (
            "Audit archive",
            [
                timeseries(
                    "Events archived per second",
                    "Log events sealed into segments that are uploaded under Object Lock and listed in a "
                    "signed manifest.",
                    "ops",
                    q(sum_by(rate(c.ARCHIVE_EVENTS, ENV)), "archived"),
                ),
                timeseries(
                    "Segments per second by outcome",
                    "sealed: a segment and its signed manifest are stored; failed: the upload or the "
                    "manifest did not complete and will be retried from the same log offsets.",
                    "ops",
                    q(sum_by(rate(c.ARCHIVE_SEGMENTS, ENV), "outcome"), "{{outcome}}"),
                ),
                timeseries(
                    "Archive lag",
                    "Age of the oldest log event not yet in a sealed segment (s); bounded by the seal age "
                    "when healthy.",
                    "s",
                    q(f"max({sel(c.ARCHIVE_LAG_SECONDS, ENV)})", "lag"),
                ),
                timeseries(
                    "Archive bytes uploaded per second",
                    "Compressed bytes of sealed segments written to the archive bucket.",
                    "Bps",
                    q(sum_by(rate(c.ARCHIVE_BYTES, ENV)), "bytes"),
                ),
                stat(
                    "Log files lost since the readers started",
                    "Log files rotated out of reach before the archiver (archive) or the log shipper "
                    "(logship) read them to the end: their rest is missing there for good (LogFilesLost).",
                    "short",
                    q(f"sum by (reader) ({sel(c.LOG_FILES_LOST, ENV)})", "{{reader}}"),
                ),
                stat(
                    "Since the last seal",
                    "Time since the archiver last sealed a segment.",
                    "s",
                    q(f"time() - max({sel(c.ARCHIVE_LAST_SEAL, ENV)})"),
                ),
            ],
        ),
        (
            "Database backups",
            [
                stat(
                    "Age of the newest backup by kind",
                    "Time since the last successful backup of each kind (full, incremental, WAL archived).",
                    "s",
                    q(f"time() - max by (kind) ({sel(c.BACKUP_LAST_SUCCESS, ENV)})", "{{kind}}"),
                ),
                timeseries(
                    "Backup duration by kind",
                    "How long the last backup of each kind took.",
                    "s",
                    q(f"max by (kind) ({sel(c.BACKUP_DURATION, ENV)})", "{{kind}}"),
                ),
            ],
        ),
    ],
)
