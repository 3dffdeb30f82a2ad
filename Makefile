# The two commands: `make demo` serves a working demo, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOME_DIR ?= .veil

.PHONY: demo test lint install clean

$(BIN)/veil: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/veil

install: $(BIN)/veil

demo: install
	$(BIN)/veil demo --home $(HOME_DIR)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	scripts/with-postgres $(BIN)/pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) $(HOME_DIR) *.egg-info
