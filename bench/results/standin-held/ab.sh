#!/usr/bin/env bash
# A: the stand-in indexes every log event (as make bench); B: its flood stage at 1,000 documents, so it
# stops indexing within seconds (the shipper gets 429s and backs off; logs stay on disk)
set -u
cd /work/main
DAY=${FIRST:-13}
for run in A1 B1 B2 A2; do
  .venv/bin/jatra down >/dev/null
  JATRA_TELEMETRY_ENABLED=true JATRA_TRACE_SAMPLE_RATIO=0.1 .venv/bin/jatra up >/dev/null 2>&1
  if [[ $run == B* ]]; then
    curl -s -XPOST localhost:17090/_standin/faults -H 'content-type: application/json' -d '{"max_docs": 1000}' >/dev/null
  fi
  (.venv/bin/python /tmp/idlecpu.py 9 > /tmp/warm/ab-$run.cpu.txt 2>&1 &)
  echo "== $run day $DAY"
  .venv/bin/jatra rush --rate 50 --duration 90 --passengers 400 --first-day $DAY --out /tmp/warm/ab-$run.json | sed -n 2p
  curl -s localhost:17090/_standin/faults; echo
  DAY=$((DAY + 3))
done
