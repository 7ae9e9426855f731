#!/usr/bin/env bash
# `make bench`: the standard rush against the local stack with telemetry fully on (100 % trace sampling,
# metrics, request logs) and off (no tracing, no request logs; metrics stay), interleaved ABBA-style over
# several rounds because this machine is shared and noisy, then the medians and their ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${BENCH_RATE:-20}  # above what this 2-core machine sustains, so the throughput ratio means something
DURATION=${BENCH_DURATION:-60}
PASSENGERS=${BENCH_PASSENGERS:-300}
ROUNDS=${BENCH_ROUNDS:-2}
OUT=bench/results
mkdir -p "$OUT"
rm -f "$OUT"/rush-telemetry-*.json

WINDOW=${BENCH_FIRST_DAY:-1}  # first travel window; later runs move on by 3 days each
run() {  # $1 = on|off, $2 = run number; every run books its own 3-day window, so each starts unsold
  .venv/bin/jatra down --apps >/dev/null
  if [[ $1 == on ]]; then
    JATRA_TELEMETRY_ENABLED=true JATRA_TRACE_SAMPLE_RATIO=1.0 .venv/bin/jatra up >/dev/null
  else
    JATRA_TELEMETRY_ENABLED=false .venv/bin/jatra up >/dev/null
  fi
  .venv/bin/jatra rush --rate "$RATE" --duration "$DURATION" --passengers "$PASSENGERS" \
    --first-day "$WINDOW" --out "$OUT/rush-telemetry-$1-$2.json" | tail -1
  WINDOW=$((WINDOW + 3))
}

.venv/bin/jatra seed --days $((WINDOW + ROUNDS * 12 + 3)) >/dev/null  # a 3-day window per run, 4 a round
for round in $(seq 1 "$ROUNDS"); do  # on off off on, on off off on ...
  run on "$round-a"; run off "$round-a"; run off "$round-b"; run on "$round-b"
done
.venv/bin/python bench/overhead.py "$OUT"
