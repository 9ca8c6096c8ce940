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
# As root on Debian/Ubuntu the set-up installs and starts what is missing (engine,
# debootstrap), saying what it installs first; STAGELAB_NO_INSTALL=1 refuses. Elsewhere it
# only prints the fix. One policy: stagelab.engine.may_install (asked when the recipe runs).
ENGINE_FIX = $$($(BIN)/python -c 'from stagelab.engine import may_install; print("--fix" if may_install() else "")')
# JupyterLab refuses to run as root without this (containers, CI machines, VMs).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
# Chromium for the browser test: likewise installed (Debian's package, apt, root) only in CI
# or when asked with CHROMIUM_FIX=1; otherwise a missing one stops `make test` with the fix.
CHROMIUM_FIX ?= $(if $(CI),1,)

# The second engine under test: Docker 28 (BuildKit, containerd image store) from Debian's
# forky packages, beside the system engine (tools/modern_engine.py). `make test` runs the
# integration tests and notebooks on it too when MODERN=1: the default as root on Linux.
MODERN_ENGINE := python3 tools/modern_engine.py
MODERN ?= $(if $(and $(filter 0,$(shell id -u)),$(filter Linux,$(shell uname -s))),1,0)

.PHONY: lab test unit integration browser chromium bases report clean engine setup help \
	engine-modern engine-modern-stop test-modern

help:
	@echo "make lab     set up and start JupyterLab on $(HOST):$(PORT) (notebooks/)"
	@echo "make test    set up, then unit, integration, notebook and browser tests"
	@echo "             (each alone: make unit | make integration | make browser)"
	@echo "make bases   prepare the base images of the active profile"
	@echo "make engine-modern       start Docker 28 beside the system engine (root, Linux)"
	@echo "make test-modern         integration tests + notebooks on it (engine-modern-stop stops it)"
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

PYTEST_UNIT = $(BIN)/python -m pytest -q tests/unit

unit: $(STAMP)
	$(PYTEST_UNIT)

chromium: $(STAMP)
	@PYTHON=$(BIN)/python bash tests/browser/ensure_chromium.sh $(if $(CHROMIUM_FIX),--install,)

# Integration tests and the notebooks (nbval) need the engine and the base images.
PYTEST_INTEGRATION = $(BIN)/python -m pytest -q -p no:cacheprovider --durations=15 tests/integration --nbval-lax notebooks/
PYTEST_BROWSER = $(BIN)/python -m pytest -q -p no:cacheprovider tests/browser
# make test runs the two engines' passes side by side and splits the work to keep CI under an
# hour on 2 cores. Both run the integration tests whose subject depends on the builder or the
# image store (BUILDER_TESTS). The modern pass (Docker 28, BuildKit, containerd store: what
# learners have) runs every notebook. The system pass (20.10, classic builder and store) runs
# the other integration tests, whose subject does not depend on the engine (ENGINE_FREE_TESTS;
# the modern pass takes two of them, ENGINE_FREE_MODERN, to balance the passes),
# and the notebooks whose lessons depend on the builder (02: which stages a build runs;
# 04: build arguments in the history, secret mounts; 06: stages per target; 07: the build
# cache; 09: cache and secret mounts). FULL_SYSTEM=1 / `make integration` and a plain
# `make test-modern` run everything on one engine.
BUILDER_TESTS = $(addprefix tests/integration/,test_build.py test_inspect.py test_commands.py \
	test_cleanup.py test_compare_cli.py test_workshop_doctor.py)
ENGINE_FREE_TESTS = $(addprefix tests/integration/,test_apps.py test_bases.py \
	test_exercises_engine.py test_modern_engine.py)
# Engine-free too, but run by the modern pass, so that the two passes end at about the same time
# (measured 2026-11-30: the system pass was the longer one by 16 min with these two on it).
ENGINE_FREE_MODERN = $(addprefix tests/integration/,test_challenge_papermill.py test_namespaces.py)
SYSTEM_NOTEBOOKS = $(addprefix notebooks/,02-multi-stage-go-to-scratch.ipynb \
	04-distroless-and-attack-surface.ipynb 06-one-dockerfile-many-targets.ipynb \
	07-build-cache-and-speed.ipynb 09-patterns-on-one-sheet.ipynb)
PYTEST_ = $(BIN)/python -m pytest -q -p no:cacheprovider --durations=15
PYTEST_SYSTEM = $(if $(filter 1,$(FULL_SYSTEM)),$(PYTEST_INTEGRATION),\
	$(PYTEST_) $(BUILDER_TESTS) $(ENGINE_FREE_TESTS) --nbval-lax $(SYSTEM_NOTEBOOKS))
# what `make test-modern` runs; make test passes the split one
PYTEST_MODERN = $(PYTEST_INTEGRATION)
PYTEST_MODERN_SPLIT = $(PYTEST_) $(BUILDER_TESTS) $(ENGINE_FREE_MODERN) --nbval-lax notebooks/

integration: bases
	$(PYTEST_INTEGRATION)

browser: bases chromium
	$(PYTEST_BROWSER)

engine-modern:
	@$(MODERN_ENGINE) start

engine-modern-stop:
	@$(MODERN_ENGINE) stop

# Start the modern engine, copy the system engine's stand-in bases over (docker save | load),
# prepare whatever is still missing on it, then the same integration tests and notebooks.
test-modern: $(STAMP)
	@$(MODERN_ENGINE) start
	@$(MODERN_ENGINE) copy-bases
	@echo "[test-modern] Docker 28 keeps running afterwards (its images stay): make engine-modern-stop stops it"
	@eval "$$($(MODERN_ENGINE) env)" && $(STAGELAB) bases prepare $(PROFILE_ARG) && \
	  $(STAGELAB) doctor --quick && $(PYTEST_MODERN)

# In the tests, the notebooks' exercise check cells check the reference solutions
# (notebooks/solutions/), not a learner's unsolved starter (`make lab` is not affected);
# STAGELAB_USE_SOLUTIONS=0 make test checks yours.
test integration test-modern: export STAGELAB_USE_SOLUTIONS ?= 1

# Runs one pass, timed; a failed pass is remembered and the next one runs all the same.
define PASS
t0=$$(date +%s); if $(2); then r=ok; else r=FAILED; failed="$$failed $(1)"; fi; \
echo "[make test] $(1): $$(( $$(date +%s) - t0 )) s ($$r)";
endef

# The modern pass runs beside the system-engine pass (MODERN_PARALLEL=1, the default): each
# engine has its own daemon, and the passes share no folder (the modern one gets its own cache
# and exercise folder), so they cannot see each other's images or files. Much of a pass is
# waiting (containers starting, npm, exports), so two passes on 2 cores take far less than
# twice one. Its log is printed when it ends. MODERN_PARALLEL=0 runs them one after the other.
MODERN_PARALLEL ?= 1
TEST_LOGS := .cache/test-logs
MODERN_CACHE := $(CURDIR)/.cache/modern-pass
MODERN_PASS = env STAGELAB_CACHE=$(MODERN_CACHE) STAGELAB_EXERCISES=$(MODERN_CACHE)/exercises \
	$(MAKE) --no-print-directory test-modern PYTEST_MODERN='$(PYTEST_MODERN_SPLIT)'

# In this order: seconds-fast unit tests first, then the system engine and the modern engine
# (MODERN=1), then the browser. Every pass runs; the exit status names the failed ones.
test: bases chromium
	@failed=""; mkdir -p $(TEST_LOGS); \
	$(call PASS,unit,$(PYTEST_UNIT)) \
	if [ "$(MODERN)" = 1 ] && [ "$(MODERN_PARALLEL)" = 1 ]; then \
	  ( $(call PASS,modern,$(MODERN_PASS)) [ "$$r" = ok ] ) > $(TEST_LOGS)/modern.log 2>&1 & modern=$$!; \
	  echo "[make test] modern: running beside the system engine's pass (log: $(TEST_LOGS)/modern.log)"; \
	fi; \
	$(call PASS,system-engine,$(PYTEST_SYSTEM)) \
	if [ -n "$${modern:-}" ]; then \
	  wait $$modern || failed="$$failed modern"; echo "[make test] ---- modern pass log ----"; \
	  cat $(TEST_LOGS)/modern.log; \
	elif [ "$(MODERN)" = 1 ]; then $(call PASS,modern,$(MODERN_PASS)) \
	else echo "[make test] modern: skipped (MODERN=0)"; fi; \
	$(call PASS,browser,$(PYTEST_BROWSER)) \
	if [ -n "$$failed" ]; then echo "[make test] failed passes:$$failed"; exit 1; fi

# The report site shows the reference solutions in the exercises' check cells;
# STAGELAB_USE_SOLUTIONS=0 make report checks your own exercises instead.
report: bases
	STAGELAB_USE_SOLUTIONS=$${STAGELAB_USE_SOLUTIONS:-1} $(STAGELAB) report

clean: $(STAMP)
	$(STAGELAB) clean
