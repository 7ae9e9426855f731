#!/bin/sh
# Make the compose stack's secrets (`make compose-secrets`): random passwords and keys, a certificate for MinIO,
# and the files derived from them, in DIR (default: compose/secrets/, which git ignores). The compose files read
# them from there (JATRA_COMPOSE_SECRETS names another directory) as compose secrets, never from the files.
#
# A secret that exists is kept: Postgres, RabbitMQ and Elasticsearch keep the passwords they were first
# started with, in their volumes (to change one, see README.md). The derived files (PgBouncer's user list,
# RabbitMQ's default user) are rewritten from the secrets every time. Needs openssl 1.1.1 or later.
#
# The directory is 0700; the files are 0644, because a file secret is bind-mounted into the container as it
# is on the host and each image reads it as its own user.
set -eu

dir="${1:-$(dirname "$0")/secrets}"
mkdir -p "${dir}"
chmod 0700 "${dir}"

# a random hex password (hex: safe in URLs, JSON bodies and configuration files), unless one exists
password() {
    if [ ! -s "${dir}/$1" ]; then
        printf '%s' "$(openssl rand -hex 24)" > "${dir}/$1"
    fi
}

# an Ed25519 private key in PKCS#8 PEM, unless one exists
ed25519() {
    if [ ! -s "${dir}/$1" ]; then
        openssl genpkey -algorithm ed25519 -out "${dir}/$1" 2> /dev/null
    fi
}

for name in \
    postgres_superuser_password postgres_jatra_password postgres_exporter_password \
    pgbouncer_exporter_password rabbitmq_password jwt_secret grafana_admin_password \
    elastic_password kibana_system_password logship_es_password grafana_es_password \
    minio_root_password s3_jatra_secret_key; do
    password "${name}"
done
if [ ! -s "${dir}/minio_root_user" ]; then
    printf '%s' "jatra-root" > "${dir}/minio_root_user"
fi

# the e-ticket key (bookings and notifications) and the archive's manifest-signing key
ed25519 ticket_signing_key.pem
ed25519 archive_signing_key.pem

# MinIO's TLS certificate: self-signed, so it is also the CA the clients trust (pgBackRest, the minio client,
# mc); it names the compose service and localhost (MinIO's own health check)
if [ ! -s "${dir}/minio_tls.crt" ] || [ ! -s "${dir}/minio_tls.key" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -subj "/CN=jatra compose minio" \
        -addext "subjectAltName=DNS:minio,DNS:localhost,IP:127.0.0.1" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -keyout "${dir}/minio_tls.key" -out "${dir}/minio_tls.crt" 2> /dev/null
fi

# derived: PgBouncer's users (plain passwords: PgBouncer needs them to log in to Postgres with SCRAM)
printf '"jatra" "%s"\n"pgbouncer_exporter" "%s"\n' \
    "$(cat "${dir}/postgres_jatra_password")" "$(cat "${dir}/pgbouncer_exporter_password")" \
    > "${dir}/pgbouncer_userlist.txt"
# derived: RabbitMQ's default user, created at its first start (a conf.d file, after the image's defaults)
printf 'default_user = jatra\ndefault_pass = %s\n' "$(cat "${dir}/rabbitmq_password")" > "${dir}/rabbitmq.conf"

chmod 0644 "${dir}"/*
echo "compose secrets in ${dir}"
