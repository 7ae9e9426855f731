#!/usr/bin/env bash
# A: JATRA_GC_FREEZE=false; B: the default (frozen after warm-up). 90 s at 50 arrivals/s, telemetry 0.1,
# each run on a stack started anew, A B B A
set -u
cd /work/main
DAY=31
mkdir -p /tmp/gcab
for run in A1 B1 B2 A2; do
  .venv/bin/jatra down >/dev/null
  freeze=true; [[ $run == A* ]] && freeze=false
  JATRA_GC_FREEZE=$freeze JATRA_TELEMETRY_ENABLED=true JATRA_TRACE_SAMPLE_RATIO=0.1 .venv/bin/jatra up >/dev/null 2>&1
  .venv/bin/python /tmp/gcscrape.py /tmp/gcab/$run-0.json
  echo "== $run (freeze $freeze) day $DAY"
  .venv/bin/jatra rush --rate 50 --duration 90 --passengers 400 --first-day $DAY --out /tmp/gcab/rush-$run.json | sed -n 2p
  .venv/bin/python /tmp/gcscrape.py /tmp/gcab/$run-1.json
  .venv/bin/python /tmp/gcscrape.py diff /tmp/gcab/$run-0.json /tmp/gcab/$run-1.json
  DAY=$((DAY + 3))
done
