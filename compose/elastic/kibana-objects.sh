#!/bin/bash
# One-shot job of the logs layer, once Kibana is healthy: load the generated saved objects (the data view,
# the saved searches and the dashboard: logging/generated/kibana/saved-objects.ndjson, from `jatra gen`)
# through Kibana's import API, replacing earlier copies. Fails unless Kibana reports every object imported.
set -euo pipefail

kibana="${KIBANA_URL:-http://kibana:5601}"
secrets="${SECRETS_DIR:-/run/secrets}"  # overridden by the tests only
objects="${OBJECTS_FILE:-/objects/saved-objects.ndjson}"
elastic_password="$(cat "${secrets}/elastic_password")"

answer="$(curl --fail-with-body --silent --show-error \
    --user "elastic:${elastic_password}" --header 'kbn-xsrf: true' \
    --request POST "${kibana}/api/saved_objects/_import?overwrite=true" \
    --form "file=@${objects}")"
echo "$answer"
case "$answer" in
    *'"success":true'*) echo "kibana-objects: imported" ;;
    *) echo "kibana-objects: the import did not succeed" >&2; exit 1 ;;
esac
