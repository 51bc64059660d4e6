# Targets are named for what people type. Everything runs from the project's own .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k egg -x"`.
PYTEST_ARGS ?=

.PHONY: install run test unit lint format crds check-generated bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	@$(BIN)/stellarstack panel --help >/dev/null 2>&1 || { \
	  echo "make run: this version has no panel yet (see README, 'Status')"; exit 1; }
	$(BIN)/stellarstack panel

# The whole suite. pytest exits 5 when nothing was collected; that is a failure here too,
# because a suite that runs nothing proves nothing.
test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy crds/stellarstack operator/stellarstack nodeproxy/stellarstack panel/stellarstack
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

crds: $(STAMP)
	$(BIN)/stellarstack crds --write crds

check-generated: $(STAMP)
	$(BIN)/stellarstack crds --check crds

bench: $(STAMP)
	@set -e; for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Local Kubernetes test cluster (make cluster, cluster-down, images) lives in its own file.
-include hack/cluster.mk
