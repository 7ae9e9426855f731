#!/usr/bin/env bash
# A: the stand-in indexes every log event (as make bench); B: its flood stage at 1,000 documents, so it
# stops indexing within seconds (the shipper gets 429s and backs off; logs stay on disk)
set -u
cd "$(dirname "$0")/../../.."; mkdir -p "${OUT:-/tmp/standin}"
DAY=${FIRST:-13}
for run in A1 B1 B2 A2; do
  .venv/bin/jatra down >/dev/null
  JATRA_TELEMETRY_ENABLED=true JATRA_TRACE_SAMPLE_RATIO=0.1 .venv/bin/jatra up >/dev/null 2>&1
  if [[ $run == B* ]]; then
    curl -s -XPOST localhost:17090/_standin/faults -H 'content-type: application/json' -d '{"max_docs": 1000}' >/dev/null
  fi
  (.venv/bin/python bench/results/standin-held/cpu_windows.py 9 > ${OUT:-/tmp/standin}/cpu-$run.txt 2>&1 &)
  echo "== $run day $DAY"
  .venv/bin/jatra rush --rate 50 --duration 90 --passengers 400 --first-day $DAY --out ${OUT:-/tmp/standin}/rush-$run.json | sed -n 2p
  curl -s localhost:17090/_standin/faults; echo
  DAY=$((DAY + 3))
done
