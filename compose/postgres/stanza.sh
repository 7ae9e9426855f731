#!/bin/sh
# The storage layer's pgbackrest-stanza job (as postgres, with Postgres's data directory and socket mounted):
# create the stanza in the MinIO repository, turn WAL archiving on (the switch archive-wal.sh looks for), then
# `pgbackrest check`: Postgres switches to a new WAL segment and the check waits until the repository has it,
# so the whole path (archive command, TLS to MinIO, credentials, bucket) is proven before any backup runs.
# Idempotent: stanza-create accepts an existing stanza of the same cluster.
set -eu
PGBACKREST_REPO1_S3_KEY_SECRET="$(cat /run/secrets/s3_jatra_secret_key)"
export PGBACKREST_REPO1_S3_KEY_SECRET
config=/etc/pgbackrest/pgbackrest.conf
pgbackrest --config="${config}" --stanza=jatra stanza-create
touch /var/lib/pgbackrest/wal-archiving-on
pgbackrest --config="${config}" --stanza=jatra check
echo "pgbackrest-stanza: stanza jatra ready, WAL archiving on and checked"
