# The two commands a newcomer needs: `make run` (the main job on the local stack) and `make test`.
# Everything they need is installed by this file: a virtualenv from requirements-dev.txt and Azurite
# from package-lock.json. Both are safe to re-run, and to run after an interrupted run.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
NODE_STAMP := node_modules/.installed-$(shell cat package-lock.json | sha1sum | cut -c1-12)

.PHONY: setup browser run test lint format bench soak infra-check clean

setup: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@rm -f node_modules/.installed-* && touch $@

## make browser: headless Chromium from Debian's packages, for the report rendering test.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (Debian package) for the report rendering test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

## make run: start Azurite and tenantsim on free loopback ports, seed the tenant, run the main job once.
## The demo opts in to redemption reset in enforce mode (a deployment's explicit choice, with its own grant).
DEMO_ENV := LIFECYCLE_RESET_ENABLED=true LIFECYCLE_RESET_MODE=enforce
run: setup
	@echo "make run: Azurite and tenantsim on loopback, then every job once; the log goes to .lifecycle/logs/"
	@$(DEMO_ENV) $(BIN)/python -m tenantsim.stack -- $(BIN)/python -m lifecycle demo

## make test: lint, then the whole suite (unit, tenantsim, integration on Azurite + tenantsim, functions, e2e).
## Four pytest-xdist workers, each with its own Azurite and tenantsim; a test file stays on one worker (its
## module fixtures are built once). Most tests wait on those local servers, so four workers keep two cores
## busy: 6 to 8 minutes where one process took 15.5. TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 4
test: setup browser lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

## make bench: every benchmark of the README's performance section, one JSON line per result (also written to
## reports/bench-results.jsonl; `python -m bench table reports/bench-results.jsonl --readme README.md` rewrites
## the README's figures from it).
bench: setup
	$(BIN)/python -m bench run

## make soak: the chaos soak (every fault kind, then the invariants), one JSON line; SIZE=small for a CI-sized
## run (120 tickets, 800 guests, about two minutes). The full size is heavy: it waits for /tmp/bench.lock.
SIZE ?= full
SEED ?= 1
soak: setup
ifeq ($(SIZE),small)
	$(BIN)/python -m tests.chaos.soak --tickets 120 --guests 800 --seed $(SEED)
else
	flock /tmp/bench.lock $(BIN)/python -m tests.chaos.soak --tickets 5000 --guests 20000 --seed $(SEED)
endif

## make infra-check: parse and scan the Bicep with checkov (in its own virtualenv; also run by the test suite).
infra-check:
	infra/check

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf .stack .pytest_cache .ruff_cache .lifecycle
