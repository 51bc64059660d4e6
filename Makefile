# Targets are named for what people type. Everything runs from the project's own .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k egg -x"`.
PYTEST_ARGS ?=
# The panel's web UI (see `ui:` below).
UI_DIR := panel/ui
UI_BUILD := panel/stellarstack/panel/web/ui
UI_STAMP := $(UI_BUILD)/index.html
UI_MODULES := $(UI_DIR)/node_modules/.package-lock.json
UI_SOURCES := $(shell find $(UI_DIR)/src -type f 2>/dev/null) \
	$(wildcard $(UI_DIR)/index.html $(UI_DIR)/*.config.* $(UI_DIR)/tsconfig*.json $(UI_DIR)/package.json)
UI_NPM_MISSING := echo "== ui: npm is not installed, so the web UI is not built" \
	"(needs Node.js 18+ and npm; Debian: apt-get install nodejs npm)"

.PHONY: install lock run test unit e2e lint format crds check-generated bench clean image migration \
	ui ui-client lint-ui test-ui

# Every Python package, runtime and development, comes from requirements.lock: exact versions
# with hashes, resolved for every platform Python 3.11+ runs on. `make lock` is the only thing
# that changes it (commit the result on its own). The installer, uv, is itself pinned there:
# the bootstrap takes its exact version and hashes from the lock before uv syncs the rest.
LOCK := requirements.lock
UV := $(BIN)/uv
UV_PIP := $(UV) pip --quiet
LOCK_COMMAND := $(UV) pip compile pyproject.toml --group pyproject.toml:dev --universal \
	--python-version 3.11 --generate-hashes --custom-compile-command "make lock" --quiet

install: $(STAMP) $(UI_STAMP)

$(STAMP): pyproject.toml $(LOCK)
	@echo "== install: .venv with the dependencies locked in $(LOCK)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@awk '/^uv==/ {keep = 1} keep {print} keep && !/\\$$/ {exit}' $(LOCK) > $(VENV)/uv-bootstrap.txt
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
	  -r $(VENV)/uv-bootstrap.txt
	@$(UV_PIP) sync --python $(BIN)/python --require-hashes $(LOCK)
	@# `python -m venv` seeds setuptools and uv's sync keeps seed packages; nothing locks it.
	@if ! grep -q '^setuptools==' $(LOCK); then $(UV_PIP) uninstall --python $(BIN)/python setuptools; fi
	@$(UV_PIP) install --python $(BIN)/python --no-deps --no-build-isolation -e .
	@touch $(STAMP)
	@echo "== install: done ($$(grep -c '==' $(LOCK)) locked packages)"

# Re-resolve every dependency from pyproject.toml into requirements.lock (a deliberate step).
lock:
	@test -x $(UV) || $(MAKE) install
	$(LOCK_COMMAND) -o $(LOCK)

# The panel on http://localhost:8000 with SQLite and, where Docker answers, a local node
# (state in .stellarstack/). The Python install, the web UI build and the toy image (so the toy
# example blueprint can start a real server at once) are independent: they run side by side.
run:
	@$(MAKE) --no-print-directory -j3 $(STAMP) $(UI_STAMP) toy-image
	@echo "== run: starting the panel and its local node (Ctrl+C stops both)"
	$(BIN)/stellarstack panel local

.PHONY: toy-image
toy-image:
	@if ! docker info >/dev/null 2>&1; then \
	  echo "== run: no Docker engine answers; the panel starts without a local node"; \
	elif ! command -v busybox >/dev/null 2>&1; then \
	  echo "== run: busybox is not installed (Debian busybox-static); no toy image"; \
	else \
	  echo "== run: building the toy game server image (localhost/stellarstack/toy:1)"; \
	  bash hack/images/build.sh toy >/dev/null 2>&1 || echo "== run: the toy image could not be built"; \
	fi

# The whole suite. pytest exits 5 when nothing was collected; that stays a failure here,
# because a suite that runs nothing proves nothing, and it says so.
test: $(STAMP) $(UI_STAMP)
	@status=0; $(BIN)/pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: no test ran (pytest exit 5); failing"; fi; \
	exit $$status

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

# The whole system on the test cluster: every example applied, run by the real operator process
# (`make cluster`, `make images` and `make image` first; `make test` runs these too).
e2e: $(STAMP)
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

lint: $(STAMP) lint-ui
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy crds/stellarstack operator/stellarstack nodeproxy/stellarstack panel/stellarstack
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The panel's web UI (panel/ui, docs/panel-ui.md): built into the Python package, which serves
# it and ships it in the wheel and the image. `install`, `run`, `test` and `image` rebuild it
# when its sources or its lock changed, and do nothing otherwise. It needs Node.js 18 or newer
# and npm (Debian: nodejs npm); without them it is skipped with a warning and the panel says
# on its pages that the UI is not built (variables at the top).
ui: $(UI_STAMP)

$(UI_MODULES): $(UI_DIR)/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then exit 0; fi; \
	echo "== ui: installing the locked packages (npm ci)"; \
	cd $(UI_DIR) && npm_config_update_notifier=false npm ci --no-audit --no-fund --loglevel=error

$(UI_STAMP): $(UI_MODULES) $(UI_SOURCES)
	@if ! command -v npm >/dev/null 2>&1; then $(UI_NPM_MISSING); exit 0; fi; \
	echo "== ui: building the web UI into $(UI_BUILD)"; \
	cd $(UI_DIR) && npm run --silent build >/dev/null

# The UI's API client from the panel's OpenAPI document: after changing any route or schema,
# run this and commit panel/ui/openapi.json and panel/ui/src/api/schema.d.ts (a test fails
# while they differ from the code).
ui-client: $(STAMP) $(UI_MODULES)
	$(BIN)/python -m stellarstack.panel.web.uiclient $(UI_DIR)/openapi.json
	cd $(UI_DIR) && npm run --silent generate

lint-ui: $(UI_MODULES)
	@if ! command -v npm >/dev/null 2>&1; then echo "== lint-ui: npm is not installed; UI not linted"; exit 0; fi; \
	cd $(UI_DIR) && npx tsc -b && npx eslint . && npx prettier --check .

test-ui: $(UI_MODULES)
	cd $(UI_DIR) && npx vitest run

# The CRDs live twice: in crds/ (`stellarstack crds`, kubectl apply) and in the Helm chart.
CRD_DIRS := crds charts/stellarstack/crds

crds: $(STAMP)
	@set -e; for dir in $(CRD_DIRS); do $(BIN)/stellarstack crds --write $$dir; done

check-generated: $(STAMP)
	@set -e; for dir in $(CRD_DIRS); do $(BIN)/stellarstack crds --check $$dir; done

# A new panel migration from what the models add (`make migration MESSAGE="add widgets"`).
migration: $(STAMP)
	$(BIN)/python -m stellarstack.panel.db.migrate $(MESSAGE)
	$(BIN)/ruff format --quiet panel/stellarstack/panel/db/migrations
	$(BIN)/ruff check --quiet --fix panel/stellarstack/panel/db/migrations

bench: $(STAMP)
	@set -e; for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script; done

# The StellarStack image (images/stellarstack/Dockerfile), tagged with the project version and
# `dev`. Its build context holds only wheels made here: the project's, and the runtime subset of
# requirements.lock (the lock's versions, checked against its hashes), so the build needs no
# Python package index, only the Debian mirror for Python itself. When the
# local test cluster runs, the image is imported into its containerd as well.
IMAGE_NAME ?= localhost/stellarstack/stellarstack
BASE_IMAGE ?= localhost/stellarstack/debian:bookworm
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
IMAGE_CONTEXT := build/image
ARCH := $(shell uname -m)
# Wheels for Debian bookworm's Python 3.11 and glibc 2.36, whatever the build host runs.
WHEEL_GLIBC := 2_5 2_12 2_17 2_24 2_26 2_27 2_28 2_31 2_34 2_35 2_36
CLUSTER_DIR ?= $(or $(STELLARSTACK_CLUSTER_DIR),$(or $(STELLARSTACK_CACHE),$(HOME)/.cache/stellarstack)/cluster)
CLUSTER_CONTAINERD := $(CLUSTER_DIR)/run/containerd/containerd.sock

image: $(STAMP) $(UI_STAMP)
	@set -e; start=$$(date +%s); \
	rm -rf $(IMAGE_CONTEXT); mkdir -p $(IMAGE_CONTEXT)/wheels; \
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation -w $(IMAGE_CONTEXT)/wheels .; \
	$(UV_PIP) compile pyproject.toml --python-version 3.11 --python-platform $(ARCH)-manylinux_2_36 \
	  -c $(LOCK) --generate-hashes --no-header --no-annotate -o $(IMAGE_CONTEXT)/runtime.txt; \
	$(BIN)/pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
	  --only-binary=:all: --python-version 3.11 --implementation cp \
	  $(foreach glibc,$(WHEEL_GLIBC),--platform manylinux_$(glibc)_$(ARCH)) \
	  -d $(IMAGE_CONTEXT)/wheels -r $(IMAGE_CONTEXT)/runtime.txt; \
	docker build --quiet --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	  -f images/stellarstack/Dockerfile -t $(IMAGE_NAME):$(VERSION) -t $(IMAGE_NAME):dev \
	  $(IMAGE_CONTEXT) >/dev/null; \
	echo "image: built $(IMAGE_NAME):$(VERSION) and :dev in $$(( $$(date +%s) - start ))s," \
	  "$$(docker image inspect -f '{{.Size}}' $(IMAGE_NAME):dev | awk '{printf "%d MB", $$1/1e6}')"; \
	if [ -S $(CLUSTER_CONTAINERD) ] && ctr --address $(CLUSTER_CONTAINERD) version >/dev/null 2>&1; then \
	  docker save $(IMAGE_NAME):$(VERSION) $(IMAGE_NAME):dev \
	    | ctr --address $(CLUSTER_CONTAINERD) -n k8s.io images import - >/dev/null; \
	  id=$$(docker image inspect -f '{{.Id}}' $(IMAGE_NAME):dev); \
	  mkdir -p $(CLUSTER_DIR)/images-loaded; \
	  for tag in $(IMAGE_NAME):$(VERSION) $(IMAGE_NAME):dev; do \
	    echo $$id > $(CLUSTER_DIR)/images-loaded/$$(echo $$tag | tr '/:' '__'); done; \
	  echo "image: imported into the local cluster's containerd"; \
	else \
	  echo "image: the local cluster is not up (make cluster); not imported into its containerd"; \
	fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Local Kubernetes test cluster (make cluster, cluster-down, images) lives in its own file.
-include hack/cluster.mk
