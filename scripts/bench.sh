#!/usr/bin/env bash
# `make bench`: the standard rush against the local stack for 5 minutes in three telemetry modes, with
# telemetry on and off interleaved (on off off on) because this machine is shared and noisy, then one run
# at 100 % trace sampling; bench/overhead.py writes bench/results/observability-overhead.json.
#   on   - the production default: tracing at the chart's sampling ratio, request logs, metrics
#   off  - no tracing, no request logs (metrics stay on)
#   full - every trace sampled
# BENCH_RATE is arrivals a second. The issue's target (6,000 confirmed a minute, ~110 arrivals/s) is beyond
# this 2-core machine, whose ceiling is ~4,100-4,400 a minute (100 arrivals/s, everything on one machine); the
# default, 50/s, is half the target rate, where the booking's p99 target is set, and a rate the machine
# sustains with telemetry on (61-70 % busy over a run with the sink, 68-80 % with osmem indexing; one run's
# first 75 s at 86 %, while its 3-day window is unsold and ~44 bookings a second are confirmed against
# ~39 and fewer later), so the on/off ratio measures telemetry rather than queueing.
# BENCH_LOG_STORE: sink (the default) or osmem. Production's Elasticsearch has nodes of its own; on this
# machine the stand-in's engine (osmem) indexing a rush's logs took 0.14-0.75 of a core, even at nice 19,
# until its flood stage (100,000 documents, ~165 s in with telemetry on) stopped it. With `sink` the
# gateway answers every bulk write item by item in Elasticsearch's shape and drops it: the shipper's
# whole cost stays measured, osmem's indexing does not. `osmem` is how every set before the twentieth
# stop was measured.
# BENCH_TRIES: seat maps a passenger looks at before leaving (`jatra rush --tries`), 3 by default from the
# twenty-first stop on: one whose train is full looks at the next most wanted one, as a real passenger
# does. Sets before it ran with 1 (a full train ended the trip, so a run's rate fell once the popular
# trains sold out); BENCH_TRIES=1 repeats that condition.
# See README "Eid rush".
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${BENCH_RATE:-50}
DURATION=${BENCH_DURATION:-300}
PASSENGERS=${BENCH_PASSENGERS:-400}
ROUNDS=${BENCH_ROUNDS:-1}
# the production default sampling ratio: the one number in the chart's values
SAMPLE=${BENCH_SAMPLE_RATIO:-$(sed -n 's/^ *JATRA_TRACE_SAMPLE_RATIO: "\(.*\)"/\1/p' helm/jatra/values.yaml)}
LOG_STORE=${BENCH_LOG_STORE:-sink}
TRIES=${BENCH_TRIES:-3}
case $LOG_STORE in sink | osmem) ;; *) echo "BENCH_LOG_STORE: sink or osmem, not '$LOG_STORE'" >&2; exit 2 ;; esac
OUT=${BENCH_OUT:-bench/results}
mkdir -p "$OUT"
rm -f "$OUT"/rush-telemetry-*

WINDOW=${BENCH_FIRST_DAY:-1}  # first travel window; each run books its own 3 days, so each starts unsold
run() {  # $1 = on|off|full, $2 = run name
  # the whole stack anew: each run starts from the same state (an empty Redis refilled by the reaper,
  # cold caches, and with BENCH_LOG_STORE=osmem an empty stand-in, whose CPU grows with what it holds)
  .venv/bin/jatra down >/dev/null
  case $1 in
    on) JATRA_TELEMETRY_ENABLED=true JATRA_TRACE_SAMPLE_RATIO=$SAMPLE .venv/bin/jatra up >/dev/null ;;
    off) JATRA_TELEMETRY_ENABLED=false .venv/bin/jatra up >/dev/null ;;
    full) JATRA_TELEMETRY_ENABLED=true JATRA_TRACE_SAMPLE_RATIO=1.0 .venv/bin/jatra up >/dev/null ;;
  esac
  if [ "$LOG_STORE" = sink ]; then
    .venv/bin/python -c 'import json, urllib.request as u; from jatra.settings import get_settings
answer = u.urlopen(u.Request(get_settings().elasticsearch + "/_standin/faults", data=b"{\"sink\": 1}",
    method="POST", headers={"Content-Type": "application/json"}), timeout=5)
assert json.load(answer)["sink"] == 1, "the stand-in did not become a sink"'
  fi
  echo "bench: $1 ($2), $RATE arrivals/s for ${DURATION}s, log store $LOG_STORE, tries $TRIES, travel days $WINDOW-$((WINDOW + 2))"
  .venv/bin/jatra rush --rate "$RATE" --duration "$DURATION" --passengers "$PASSENGERS" \
    --first-day "$WINDOW" --tries "$TRIES" --out "$OUT/rush-telemetry-$1-$2.json" | sed -n 2p
  WINDOW=$((WINDOW + 3))
}

.venv/bin/jatra seed --days $((WINDOW + ROUNDS * 12 + 6)) >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  run on "$round-a"; run off "$round-a"; run off "$round-b"; run on "$round-b"
done
run full 1
# the summary first: it needs only the reports, and a restart that fails must not lose it
.venv/bin/python bench/overhead.py "$OUT" "$SAMPLE" "$LOG_STORE"
.venv/bin/jatra down >/dev/null
.venv/bin/jatra up >/dev/null  # leave the stack as `jatra up` makes it
