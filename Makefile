# The two commands: `make demo` serves a working demo, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOME_DIR ?= .veil
OPA_VERSION := v1.22.2
# Outside the clone, so that CI's fresh clones reuse the built binary.
TOOLS := $(HOME)/.cache/veil/bin

.PHONY: demo test lint install bench clean

# The server's `veil` mounts the remote commands of the client distribution in clients/python.
$(BIN)/veil: pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e './clients/python[pandas,arrow]'
	touch $(BIN)/veil

install: $(BIN)/veil

# The real OPA binary the Rego unit tests run under, built from the Go module proxy.
$(TOOLS)/opa:
	GOBIN=$(TOOLS) go install github.com/open-policy-agent/opa@$(OPA_VERSION)

demo: install
	$(BIN)/veil demo --home $(HOME_DIR)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

test: lint $(TOOLS)/opa
	VEIL_TOOLS=$(TOOLS) scripts/ops-tools
	scripts/browser
	PATH="$(TOOLS):$$PATH" scripts/with-postgres $(BIN)/pytest -q -p no:cacheprovider -n auto --dist loadfile

# Not part of the tests: the benchmark figures in the README and docs/benchmarks.md, about an hour.
bench: install $(TOOLS)/opa
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	PATH="$(TOOLS):$$PATH" scripts/bench

clean:
	rm -rf $(VENV) $(HOME_DIR) *.egg-info
