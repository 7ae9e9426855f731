"""Database backups: pgBackRest into the S3 backup bucket, with WAL archiving for point-in-time recovery,
the backup worker (``jatra worker backup``) and the restore drill (``jatra restore --drill``).

The local stack configures pgBackRest and Postgres's WAL archiving (:mod:`jatra.stack.pgbackrest`). The
files here, one job each: :mod:`.repository` (running pgBackRest, reading what the repository holds),
:mod:`.take` (one backup, with its metrics, log events and span), :mod:`.schedule` (the worker iteration),
:mod:`.listing` (``jatra backup list``), :mod:`.scratch` (a throwaway Postgres restored from the
repository), :mod:`.verify` (row counts and invariants of a copy against the live database), :mod:`.drill`
(the restore drill and its report) and :mod:`.commands` (the click commands).
"""
