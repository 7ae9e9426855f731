"""Records: logs reaching Elasticsearch, the auditors' archive, the database backups.

The backups are the local stack's `jatra worker backup` (pgBackRest) there, and CloudNativePG's in a
cluster, where the chart does not deploy that worker: its two alerts have a group of each.
"""

from jatra.observability import exporters as x
from jatra.observability.promql import rose, sel
from jatra.observability.rules import CLUSTER, LOCAL, Alert, Group
from jatra.telemetry import catalogue as c

REJECTED = sel(c.LOGSHIP_EVENTS, 'outcome="rejected"')
FAILED_SEGMENTS = sel(c.ARCHIVE_SEGMENTS, 'outcome="failed"')
LOST = sel(c.LOG_FILES_LOST)
BACKED_UP = sel(c.BACKUP_LAST_SUCCESS, 'kind=~"full|incremental"')
WAL_UPLOADED = sel(c.BACKUP_LAST_SUCCESS, 'kind="wal"')
#: rows written to the database in 15 minutes: WAL must be moving into the repository meanwhile
JATRA_DB = 'datname="jatra"'
WRITES = (
    f"sum by (environment) (increase({sel(x.PG_TUP_INSERTED, JATRA_DB)}[15m])"
    f" + increase({sel(x.PG_TUP_UPDATED, JATRA_DB)}[15m]))"
)
#: a cluster's newest backup: the Barman Cloud plugin's when it runs them, else CloudNativePG's own (in-core
#: Barman Cloud or volume snapshots; 0 until the first backup completes)
CNPG_BACKED_UP = (
    f"max by (namespace) ({sel(x.BARMAN_LAST_BACKUP)}) or max by (namespace) ({sel(x.CNPG_LAST_BACKUP)})"
)
#: the chart's default schedule is daily (backup.scheduledBackup.schedule): a day, and two hours to finish
CNPG_BACKUP_AGE = 26 * 3600
CNPG_WRITES = (
    f"sum by (namespace) (increase({sel(x.CNPG_TUP_INSERTED, JATRA_DB)}[15m])"
    f" + increase({sel(x.CNPG_TUP_UPDATED, JATRA_DB)}[15m]))"
)

groups = [
    Group(
        "jatra-records",
        (
            Alert(
                "LogShippingLagging",
                f"max by (environment) ({sel(c.LOGSHIP_LAG_SECONDS)}) > 300",
                "10m",
                "ticket",
                "Kibana is {{ $value | humanizeDuration }} behind the logs",
                "The oldest log event not yet in Elasticsearch ({{ $labels.environment }}) is {{ $value | "
                "humanizeDuration }} old: searches in Kibana miss everything since. Nothing is lost (the "
                "files are the buffer); Elasticsearch is down, refusing (429) or the shipper stopped.",
                "jatra-telemetry",
            ),
            Alert(
                "LogEventsRejected",
                f"sum by (environment) (increase({REJECTED}[30m])) > 0",
                "0m",
                "ticket",
                "Elasticsearch refused {{ $value }} log events",
                "{{ $value }} log events in {{ $labels.environment }} were refused by Elasticsearch in 30 "
                "minutes (a mapping conflict, usually a field logged with a new type) and set aside with "
                "the reason under the shipper's state directory: they are not in Kibana.",
                "jatra-telemetry",
            ),
            Alert(
                "ArchiveLagging",
                f"max by (environment) ({sel(c.ARCHIVE_LAG_SECONDS)}) > 1800",
                "5m",
                "ticket",
                "The audit archive is {{ $value | humanizeDuration }} behind",
                "The oldest log event not yet sealed into the audit archive ({{ $labels.environment }}) is "
                "{{ $value | humanizeDuration }} old: the object store is refusing or the archiver stopped. "
                "The events wait in the log files; they are lost if those rotate away first.",
                "jatra-records",
            ),
            Alert(
                "LogFilesLost",
                # rose: also a count whose first scrape is already 1 (the series starts at 0 in the same
                # pass as the loss, and a reader restarted after an hour has no earlier sample)
                rose(LOST, "1h", "environment", "reader", "source"),
                "0m",
                "ticket",
                "{{ $labels.source }}'s log rotated away before the {{ $labels.reader }} reader finished it",
                "In {{ $labels.environment }}, a log file of {{ $labels.source }} rotated out of reach in "
                "the last hour before the {{ $labels.reader }} worker had read it to the end: its rest is "
                "missing from Elasticsearch (logship) or from the auditors' archive (archive), for good. "
                "The reader was behind for longer than the rotated generations last.",
                "jatra-records",
            ),
            Alert(
                "ArchiveSegmentsFailing",
                f"sum by (environment) (increase({FAILED_SEGMENTS}[15m])) > 3",
                "0m",
                "ticket",
                "{{ $value }} archive segments failed to seal in 15 minutes",
                "Uploading archive segments or their signed manifests keeps failing in "
                "{{ $labels.environment }}: each is retried from the same log offsets, so nothing is "
                "archived twice, but nothing new is archived either.",
                "jatra-records",
            ),
        ),
    ),
    Group(
        "jatra-records-local",
        (
            Alert(
                "BackupTooOld",
                f"time() - max by (environment) ({BACKED_UP}) > 3 * 3600",
                "15m",
                "ticket",
                "The newest database backup is {{ $value | humanizeDuration }} old",
                "No full or incremental backup of {{ $labels.environment }} has completed for {{ $value | "
                "humanizeDuration }} (one is due every hour): a restore would replay every WAL segment "
                "since, slowly, and a gap in the WAL would lose everything after it.",
                "jatra-records",
            ),
            Alert(
                "WALArchivingStalled",
                f"(time() - max by (environment) ({WAL_UPLOADED}) > 900) and on (environment) ({WRITES} > 0)",
                "5m",
                "page",
                "No WAL reached the backup repository for {{ $value | humanizeDuration }}",
                "Postgres in {{ $labels.environment }} is writing but no WAL segment has reached the backup "
                "repository for {{ $value | humanizeDuration }}: every commit since is in no backup (the "
                "recovery point is that old), and the segments pile up on the database's disk.",
                "jatra-records",
            ),
        ),
        where=LOCAL,
    ),
    Group(
        "jatra-records-cluster",
        (
            Alert(
                "BackupTooOld",
                x.in_jatra_namespace(f"time() - ({CNPG_BACKED_UP})") + f" > {CNPG_BACKUP_AGE}",
                "15m",
                "ticket",
                "The newest database backup is {{ $value | humanizeDuration }} old",
                "No backup of the CloudNativePG cluster in {{ $labels.namespace }} ({{ $labels.environment "
                "}}) has completed for {{ $value | humanizeDuration }} (the chart schedules one a day): a "
                "restore would replay every WAL segment since, slowly, and a gap in the WAL would lose "
                "everything after it.",
                "jatra-records",
            ),
            Alert(
                "WALArchivingStalled",
                "("
                + x.in_jatra_namespace(f"time() - max by (namespace) ({sel(x.CNPG_LAST_ARCHIVED)})")
                + f" > 900) and on (namespace) ({CNPG_WRITES} > 0)",
                "5m",
                "page",
                "No WAL reached the backup repository for {{ $value | humanizeDuration }}",
                "The primary of the CloudNativePG cluster in {{ $labels.namespace }} ({{ $labels.environment "
                "}}) is writing but has archived no WAL segment to the object store for {{ $value | "
                "humanizeDuration }}: every commit since is in no backup (the recovery point is that old), "
                "and the segments pile up on the instance's volume.",
                "jatra-records",
            ),
        ),
        where=CLUSTER,
    ),
]
