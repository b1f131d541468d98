# Tidings — every command a developer or CI needs. `make help` lists them.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
SCALE  ?= 1000000
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install run test lint format typecheck pytest bench bench-import bench-upsert bench-purge bench-quick bench-crash bench-restart bench-dkim clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install Tidings with its dev tools

run: $(STAMP) ## serve on 127.0.0.1:8000 (first org on first start); a LAN relay: TIDINGS_OUTBOUND_ALLOW=192.168.1.25 make run
	$(BIN)/tidings serve --bootstrap

test: lint typecheck pytest ## everything CI checks: lint, types, the whole test suite

lint: $(STAMP) ## ruff check, ruff format --check, and the import contracts (pyproject.toml)
	$(BIN)/ruff check --no-cache src tests bench
	$(BIN)/ruff format --no-cache --check src tests bench
	$(BIN)/lint-imports --no-cache

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

typecheck: $(STAMP) ## mypy --strict on src/
	$(BIN)/mypy src

# With PostgreSQL, the suite runs as two pytest processes side by side, one core each: the
# PostgreSQL half (every test parametrised [postgresql], and the schemathesis run) and the
# rest on SQLite, whose log is printed after. Either failing fails the target.
PG_HALF := postgresql or test_openapi_conformance
pytest: $(STAMP) ## the pytest suite (PostgreSQL too when TIDINGS_TEST_DATABASE_URL is set)
	@if [ -z "$$TIDINGS_TEST_DATABASE_URL" ]; then exec $(BIN)/pytest; fi; \
	log=$$(mktemp); \
	env -u TIDINGS_TEST_DATABASE_URL $(BIN)/pytest -k "not ($(PG_HALF))" >"$$log" 2>&1 & lite=$$!; \
	$(BIN)/pytest -k "$(PG_HALF)"; pg=$$?; \
	wait $$lite; sqlite=$$?; \
	echo; echo "--- the SQLite half ---"; cat "$$log"; rm -f "$$log"; \
	echo "PostgreSQL half: exit $$pg; SQLite half: exit $$sqlite"; \
	[ $$pg -eq 0 ] && [ $$sqlite -eq 0 ]

bench-import: $(STAMP) ## CSV import of 100k and 1M rows: time and peak RSS, SQLite then PostgreSQL
	$(BIN)/python bench/import_csv.py --rows 1000000
	$(BIN)/python bench/import_csv.py --rows 1000000 --postgres

bench-upsert: $(STAMP) ## bulk upsert latency (500 and 10,000 rows per request), SQLite then PostgreSQL
	$(BIN)/python bench/upsert_latency.py
	$(BIN)/python bench/upsert_latency.py --postgres

bench-purge: $(STAMP) ## retention purge of 1,000,000 expired messages while sending, SQLite then PostgreSQL
	$(BIN)/python bench/purge.py
	$(BIN)/python bench/purge.py --postgres

bench: $(STAMP) ## every scenario at SCALE (default 1000000: tens of minutes); table + bench/results/
	$(BIN)/python bench/run.py --scale $(SCALE) $(BENCH_ARGS)

bench-quick: $(STAMP) ## 50,000 emails through the dispatcher to smtp-sink (installs postfix if missing)
	$(BIN)/python bench/quick.py

bench-dkim: $(STAMP) ## DKIM signatures per second on one core, RSA 2048 and Ed25519, 3 KB messages
	$(BIN)/python bench/dkim_micro.py

bench-crash: $(STAMP) ## 100,000 emails by two workers on PostgreSQL, one SIGKILLed every 5 s: time, lost, duplicates
	$(BIN)/python bench/crash.py --scale 100000 --kill-every 5

bench-restart: $(STAMP) ## 50,000 emails by two workers on a throwaway PostgreSQL restarted 3 times: delay, lost
	$(BIN)/python bench/restart.py --scale 50000 --restarts 3 --down 1

clean: ## remove the virtualenv, caches and ./var
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
