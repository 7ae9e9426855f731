#!/bin/bash
# One-shot job of the logs layer, once Elasticsearch is healthy: the users the other containers log in as,
# with their passwords from the compose secrets. Idempotent (it runs on every `up` and sets the same again).
# - kibana_system: Kibana's own user (built in; only its password is set here);
# - jatra_logship: the log shipper (JATRA_ELASTICSEARCH_URL). `jatra logs setup` (the worker runs it) installs
#   the index templates and the ILM policy, then it writes the logs-jatra.* data streams;
# - jatra_grafana: reads logs-jatra.* (Grafana's "Logs" data source).
# The passwords travel in JSON bodies: `make compose-secrets` makes them hex; one of your own must not hold
# a double quote or a backslash.
set -euo pipefail

es="${ELASTICSEARCH_URL:-http://elasticsearch:9200}"
secrets="${SECRETS_DIR:-/run/secrets}"  # overridden by the tests only
elastic_password="$(cat "${secrets}/elastic_password")"

secret() {
    local value
    value="$(cat "${secrets}/$1")"
    case "$value" in
        *'"'* | *'\'*) echo "secret $1 holds a double quote or a backslash" >&2; exit 1 ;;
    esac
    printf '%s' "$value"
}

call() {  # METHOD PATH BODY
    curl --fail-with-body --silent --show-error --user "elastic:${elastic_password}" \
        --header 'Content-Type: application/json' --request "$1" "${es}$2" --data "$3"
    echo
}

# assignments, so that `set -e` stops the job when a secret is refused
kibana_password="$(secret kibana_system_password)"
logship_password="$(secret logship_es_password)"
grafana_password="$(secret grafana_es_password)"

call POST /_security/user/kibana_system/_password "{\"password\":\"${kibana_password}\"}"

call PUT /_security/role/jatra_logship '{
  "cluster": ["monitor", "manage_index_templates", "manage_ilm"],
  "indices": [{"names": ["logs-jatra.*"],
               "privileges": ["create_doc", "auto_configure", "view_index_metadata", "monitor", "read"]}]
}'
call PUT /_security/user/jatra_logship \
    "{\"password\":\"${logship_password}\",\"roles\":[\"jatra_logship\"],\"full_name\":\"Jatra log shipper\"}"

call PUT /_security/role/jatra_logs_reader '{
  "indices": [{"names": ["logs-jatra.*"], "privileges": ["read", "view_index_metadata"]}]
}'
call PUT /_security/user/jatra_grafana \
    "{\"password\":\"${grafana_password}\",\"roles\":[\"jatra_logs_reader\"],\"full_name\":\"Grafana\"}"

echo "elasticsearch-setup: kibana_system, jatra_logship and jatra_grafana are ready"
