#!/usr/bin/env bash
# RUNS="A1 B1 B2 A2" RATE=50 FIRST_DAY=31 OUT=/tmp/gcab bench/results/gc-freeze/ab.sh, from the repository
# root with the dev stack's database seeded far enough (`jatra seed --days N`). A* = JATRA_GC_FREEZE=false,
# B* = JATRA_GC_FREEZE=true; 90 s rushes, telemetry at 0.1, each on a stack started anew. The sets here:
# RUNS="A1 B1 B2 A2" RATE=50 FIRST_DAY=31, RUNS="B3 A3 A4 B4" RATE=50 FIRST_DAY=43,
# RUNS="L-A1 L-B1 L-B2 L-A2" RATE=20 FIRST_DAY=55 (the stack's default then froze; A/B set explicitly now).
# summary.json: each run's CPU ms a booking as bench/overhead.py counts it, its latencies, and the
# full collections of the API replicas and the two consumers (not the reaper's nor the relay's).
set -u
HERE=$(dirname "$0")
DAY=${FIRST_DAY:-31}
OUT=${OUT:-/tmp/gcab}
mkdir -p "$OUT"
for run in ${RUNS:-A1 B1 B2 A2}; do
  .venv/bin/jatra down >/dev/null
  freeze=true; [[ $run == A* || $run == L-A* ]] && freeze=false
  JATRA_GC_FREEZE=$freeze JATRA_TELEMETRY_ENABLED=true JATRA_TRACE_SAMPLE_RATIO=0.1 .venv/bin/jatra up >/dev/null 2>&1
  .venv/bin/python "$HERE/gc_scrape.py" "$OUT/$run-0.json"
  echo "== $run (freeze $freeze) day $DAY"
  .venv/bin/jatra rush --rate "${RATE:-50}" --duration 90 --passengers 400 --first-day "$DAY" \
    --out "$OUT/rush-$run.json" | sed -n 2p
  .venv/bin/python "$HERE/gc_scrape.py" "$OUT/$run-1.json"
  .venv/bin/python "$HERE/gc_scrape.py" diff "$OUT/$run-0.json" "$OUT/$run-1.json"
  DAY=$((DAY + 3))
done
