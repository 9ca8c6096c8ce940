# The whole set-up is two commands: `make lab` (learn) and `make test` (check).
# Each target is idempotent: the second run only re-checks and is fast.
SHELL := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAGELAB := $(BIN)/stagelab
STAMP  := $(VENV)/.installed
PORT   ?= 8888
HOST   := 127.0.0.1
PROFILE ?=
PROFILE_ARG := $(if $(PROFILE),--profile $(PROFILE),)
# In CI (CI is set) the set-up may install and start a Docker engine; elsewhere it
# only tells you how (see `stagelab doctor --fix`).
ENGINE_FIX := $(if $(CI),--fix,)
# JupyterLab refuses to run as root without this (containers, CI machines, VMs).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
# Chromium for the browser test: likewise installed (Debian's package, apt, root) only in CI
# or when asked with CHROMIUM_FIX=1; otherwise a missing one stops `make test` with the fix.
CHROMIUM_FIX ?= $(if $(CI),1,)

.PHONY: lab test unit integration browser chromium bases report clean engine setup help

help:
	@echo "make lab     set up and start JupyterLab on $(HOST):$(PORT) (notebooks/)"
	@echo "make test    set up, then unit, integration, notebook and browser tests"
	@echo "             (each alone: make unit | make integration | make browser)"
	@echo "make bases   prepare the base images of the active profile"
	@echo "make report  execute every notebook and write an HTML site under reports/"
	@echo "make clean   remove the lab's own images, containers and networks"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

engine: $(STAMP)
	@$(STAGELAB) doctor --quick $(ENGINE_FIX)

bases: engine
	@$(STAGELAB) bases prepare $(PROFILE_ARG)

lab: bases
	@if (exec 3<>/dev/tcp/$(HOST)/$(PORT)) 2>/dev/null; then \
	  echo "Port $(PORT) on $(HOST) is in use; run: make lab PORT=8890"; exit 1; fi
	@token=$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(16))'); \
	echo ""; echo "JupyterLab: http://$(HOST):$(PORT)/lab?token=$$token"; echo ""; \
	exec $(BIN)/jupyter lab --no-browser --ServerApp.ip=$(HOST) --ServerApp.port=$(PORT) \
	  --ServerApp.port_retries=0 --IdentityProvider.token=$$token $(ALLOW_ROOT) \
	  --ServerApp.root_dir=notebooks

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

chromium: $(STAMP)
	@PYTHON=$(BIN)/python bash tests/browser/ensure_chromium.sh $(if $(CHROMIUM_FIX),--install,)

# Integration tests and the notebooks (nbval) need the engine and the base images.
PYTEST_INTEGRATION = $(BIN)/python -m pytest -q -p no:cacheprovider tests/integration --nbval-lax notebooks/
PYTEST_BROWSER = $(BIN)/python -m pytest -q -p no:cacheprovider tests/browser

integration: bases
	$(PYTEST_INTEGRATION)

browser: bases chromium
	$(PYTEST_BROWSER)

# In this order: seconds-fast unit tests first, the browser last.
test: bases chromium unit
	$(PYTEST_INTEGRATION)
	$(PYTEST_BROWSER)

# The report site shows the reference solutions in the exercises' check cells;
# STAGELAB_USE_SOLUTIONS=0 make report checks your own exercises instead.
report: bases
	STAGELAB_USE_SOLUTIONS=$${STAGELAB_USE_SOLUTIONS:-1} $(STAGELAB) report

clean: $(STAMP)
	$(STAGELAB) clean
