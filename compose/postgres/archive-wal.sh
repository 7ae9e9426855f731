#!/bin/sh
# Postgres's archive_command: push one finished WAL segment ($1, Postgres's %p) to the pgBackRest repository.
# Until the storage layer's pgbackrest-stanza job has created the stanza and this switch file, WAL is not
# archived and Postgres recycles it, rather than keeping every segment while no repository exists (the local
# stack does the same: jatra.stack.pgbackrest). Once the switch is on, a failed push fails the command, and
# Postgres keeps the segment and tries again.
set -eu
[ -e /var/lib/pgbackrest/wal-archiving-on ] || exit 0
exec pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=jatra archive-push "$1"
