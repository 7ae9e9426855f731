#!/bin/sh
# One-shot job of the storage layer, once MinIO is healthy (it runs the mc of the MinIO image):
# - the auditors' archive bucket and the backup bucket, both created with Object Lock (it cannot be turned on
#   later; the archive worker refuses a bucket without it). The archive puts every object under COMPLIANCE
#   retention itself; the backup bucket has no default retention, so pgBackRest's expiry can delete what
#   its retention no longer needs (deletes leave delete markers: the versions stay until a lifecycle rule
#   removes them);
# - the `jatra` user (the archive and backup workers, and Postgres's WAL archiving), with a policy on those
#   two buckets only (jatra-buckets.json): the root credentials stay in this job and MinIO.
# Idempotent: it runs on every `up`.
set -eu

secrets="${SECRETS_DIR:-/run/secrets}"  # overridden by the tests only
endpoint="${MINIO_URL:-https://minio:9000}"
policy="${POLICY_FILE:-/setup/jatra-buckets.json}"
buckets="jatra-audit jatra-backups"

# mc trusts the certificates in its configuration directory (MC_CONFIG_DIR is /tmp/.mc in the image)
config="${MC_CONFIG_DIR:-${HOME}/.mc}"
mkdir -p "${config}/certs/CAs"
cp "${secrets}/minio_tls_cert" "${config}/certs/CAs/jatra-minio.crt"

root_user="$(cat "${secrets}/minio_root_user")"
root_password="$(cat "${secrets}/minio_root_password")"
jatra_secret="$(cat "${secrets}/s3_jatra_secret_key")"

mc alias set jatra "${endpoint}" "${root_user}" "${root_password}" > /dev/null
for bucket in ${buckets}; do
    mc mb --ignore-existing --with-lock "jatra/${bucket}"
done

mc admin policy create jatra jatra-buckets "${policy}"
mc admin user add jatra jatra "${jatra_secret}"
# attaching an attached policy is an error to mc: attach, then check that it is attached
mc admin policy attach jatra jatra-buckets --user jatra > /dev/null 2>&1 || true
mc admin user info jatra jatra | grep -q jatra-buckets

echo "minio-setup: buckets ${buckets} (Object Lock) and the user jatra are ready"
