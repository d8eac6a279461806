# Every target is idempotent: `.venv` is (re)built only when pyproject.toml changes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo demo-scan test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/leakwarden demo

demo-scan: setup
	$(BIN)/leakwarden scan examples/discord-export.json -c examples/config.toml --format table; \
	  rc=$$?; test $$rc -le 1

test: setup
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile

bench: setup
	$(BIN)/python benchmarks/text.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
