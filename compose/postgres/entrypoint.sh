#!/bin/sh
# Entrypoint of the compose Postgres: the official image's, once pgBackRest's S3 secret key is in the
# environment (the archive command inherits it from Postgres). The secret is mounted by the storage layer
# only; without it the archive command never pushes (see archive-wal.sh).
set -eu
if [ -r /run/secrets/s3_jatra_secret_key ]; then
    PGBACKREST_REPO1_S3_KEY_SECRET="$(cat /run/secrets/s3_jatra_secret_key)"
    export PGBACKREST_REPO1_S3_KEY_SECRET
fi
exec docker-entrypoint.sh "$@"
