# omono-xero-sync: every command a user or CI needs. Run `make help`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9
AIRFLOW_PORT ?= 8080
export PYTHONPATH := $(CURDIR)

.PHONY: help venv test test-unit test-integration lint emulator demo connect disconnect reset airflow bench soak clean reconcile

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

venv: $(VENV)/.installed  ## create .venv with the pinned dependencies (requirements.txt + requirements.lock)

$(VENV)/.installed: requirements.txt requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || { $(BIN)/python -m ensurepip >/dev/null 2>&1; $(BIN)/python -m pip install -q "uv==$(UV_VERSION)"; }
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.txt -c requirements.lock
	touch $@

TEST_WORKERS ?= auto
test: venv  ## run every test (unit and integration), one pytest-xdist worker per core (TEST_WORKERS=1: one process)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

test-unit: venv  ## fast tests only: no database, no network
	$(BIN)/pytest -m unit

test-integration: venv  ## tests on the real Xero emulator over HTTP (and PostgreSQL)
	$(BIN)/pytest -m integration

SOAK_MINUTES ?= 30
soak: venv  ## randomized histories with faults for SOAK_MINUTES (default 30), then a report (docs/RELIABILITY.md)
	SOAK_MINUTES=$(SOAK_MINUTES) $(BIN)/python -m tests.histories.soak

lint: venv  ## ruff, including the Airflow 3 rules
	$(BIN)/ruff check .

emulator: venv  ## run the Xero emulator on 127.0.0.1:8765, keeping its data in .run/xero-emulator
	$(BIN)/python -m include.xero_emulator --port 8765 --data-dir .run/xero-emulator

clean:  ## remove the virtual environment and local run data
	rm -rf $(VENV) .run .pytest_cache .ruff_cache

demo: venv  ## the main job: demo data, local Xero emulator, one sync run (Sync Now), readable summary
	$(BIN)/python -m include.commands.demo

connect: venv  ## obtain and store the first Xero refresh token for the Airflow connection xero_default
	$(BIN)/python -m include.commands.connect

airflow: venv  ## run Airflow (UI on http://localhost:$(AIRFLOW_PORT), metadata in PostgreSQL) on the demo's data and emulator
	exec $(BIN)/python -m include.commands.demo --serve --airflow-port $(AIRFLOW_PORT)

reconcile: venv  ## compare Xero with Omono now (FROM=YYYY-MM-DD TO=YYYY-MM-DD, default this month and last)
	$(BIN)/python -m include.commands.reconcile $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO))

bench: venv  ## every speed figure beside its goal (docs/BENCHMARKS.md): 10k/100k/1M syncs, a busy organisation, Xero's real limits, a backlog over days (hours; BENCH_ONLY=… for one)
	$(BIN)/python -m tests.bench.bench_sync

disconnect: venv  ## forget the Xero tokens; every synced record stays synced (reconnect with make connect)
	$(BIN)/python -m include.omono_xero_sync.lifecycle disconnect

reset: venv  ## forget what was synced so everything is sent again: make reset CONFIRM="<organisation name>"
	$(BIN)/python -m include.omono_xero_sync.lifecycle reset --confirm "$(CONFIRM)"
