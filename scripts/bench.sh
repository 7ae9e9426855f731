#!/usr/bin/env bash
# `make bench`: the standard rush against the local stack twice, telemetry fully on (100 % trace sampling,
# metrics, request logs) and then off (no tracing, no request logs; metrics stay), and the ratios between them.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${BENCH_RATE:-10}
DURATION=${BENCH_DURATION:-60}
PASSENGERS=${BENCH_PASSENGERS:-300}
OUT=bench/results
mkdir -p "$OUT"

run() {  # $1 = on|off
  .venv/bin/jatra down --apps >/dev/null
  if [[ $1 == on ]]; then
    JATRA_TELEMETRY_ENABLED=true JATRA_TRACE_SAMPLE_RATIO=1.0 .venv/bin/jatra up >/dev/null
  else
    JATRA_TELEMETRY_ENABLED=false .venv/bin/jatra up >/dev/null
  fi
  .venv/bin/jatra seed >/dev/null
  .venv/bin/jatra rush --rate "$RATE" --duration "$DURATION" --passengers "$PASSENGERS" --out "$OUT/rush-telemetry-$1.json"
}

run on
run off
.venv/bin/python - "$OUT" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
on, off = (json.loads((out / f"rush-telemetry-{m}.json").read_text()) for m in ("on", "off"))
def p99(r, step="book"): return r["latency"].get(step, {}).get("p99_ms", 0)
result = {
    "scenario": on["options"],
    "confirmed_per_minute": {"on": on["confirmed_per_minute"], "off": off["confirmed_per_minute"]},
    "book_p99_ms": {"on": p99(on), "off": p99(off)},
    "throughput_ratio_on_over_off": round(on["confirmed_per_minute"] / max(off["confirmed_per_minute"], 1e-9), 3),
    "book_p99_ratio_on_over_off": round(p99(on) / max(p99(off), 1e-9), 3),
    "invariants_ok": on["invariants_ok"] and off["invariants_ok"],
}
(out / "observability-overhead.json").write_text(json.dumps(result, indent=2))
print(json.dumps(result, indent=2))
PY
