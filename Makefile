# The two commands of the README's quick start: `make demo` and `make test`.
# Each creates .venv on first use, so a fresh machine with Python 3.11 is enough.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench vsix clean

$(BIN)/reqon: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/reqon

demo: $(BIN)/reqon
	$(BIN)/reqon demo

test: $(BIN)/reqon
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(BIN)/reqon
	$(BIN)/python -m bench

vsix:
	cd editors/vscode && npm ci && npm run package

clean:
	rm -rf $(VENV) .reqon-data dist
