#!/usr/bin/env bash
# `make bench`: the standard rush against the local stack with telemetry fully on (100 % trace sampling,
# metrics, request logs) and off (no tracing, no request logs; metrics stay), interleaved ABBA-style over
# several rounds because this machine is shared and noisy, then the medians and their ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${BENCH_RATE:-10}
DURATION=${BENCH_DURATION:-60}
PASSENGERS=${BENCH_PASSENGERS:-300}
ROUNDS=${BENCH_ROUNDS:-2}
OUT=bench/results
mkdir -p "$OUT"
rm -f "$OUT"/rush-telemetry-*.json

run() {  # $1 = on|off, $2 = run number
  .venv/bin/jatra down --apps >/dev/null
  if [[ $1 == on ]]; then
    JATRA_TELEMETRY_ENABLED=true JATRA_TRACE_SAMPLE_RATIO=1.0 .venv/bin/jatra up >/dev/null
  else
    JATRA_TELEMETRY_ENABLED=false .venv/bin/jatra up >/dev/null
  fi
  .venv/bin/jatra rush --rate "$RATE" --duration "$DURATION" --passengers "$PASSENGERS" \
    --out "$OUT/rush-telemetry-$1-$2.json" | tail -1
}

.venv/bin/jatra seed >/dev/null
for round in $(seq 1 "$ROUNDS"); do  # on off off on, on off off on ...
  run on "$round-a"; run off "$round-a"; run off "$round-b"; run on "$round-b"
done
.venv/bin/python bench/overhead.py "$OUT"
