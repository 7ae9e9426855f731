#!/bin/sh
# First start only (the official image runs /docker-entrypoint-initdb.d/ on an empty data directory): the
# application's role, which owns its database (it is no superuser: the migrations need none), the
# postgres exporter's role, and pg_stat_statements (loaded by the server's command line) in jatra. The
# passwords come from the compose secrets; psql reads them itself (\set with backticks), so they never
# appear on a command line; nor in pg_stat_statements, which would keep a CREATE ROLE's text (utility
# statements are not tracked here). A changed secret needs an ALTER ROLE (README.md), given with psql's
# \password so that only its SCRAM hash is sent.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'
SET pg_stat_statements.track_utility = off;
\set jatra_password `cat /run/secrets/postgres_jatra_password`
\set exporter_password `cat /run/secrets/postgres_exporter_password`
CREATE ROLE jatra LOGIN PASSWORD :'jatra_password';
CREATE DATABASE jatra OWNER jatra;
CREATE ROLE postgres_exporter LOGIN PASSWORD :'exporter_password';
GRANT pg_monitor TO postgres_exporter;
\connect jatra
CREATE EXTENSION pg_stat_statements;
SQL
