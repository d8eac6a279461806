# Every target is idempotent: `.venv` is (re)built only when pyproject.toml changes, and the
# package reinstalled (which compiles the native text core in place) when setup.py or
# detectors/_native.pyx does.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo demo-scan test lint bench clean

$(STAMP): pyproject.toml setup.py detectors/_native.pyx
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
	scripts/ensure-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile

bench: setup
	$(BIN)/python benchmarks/text.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build detectors/_native.c detectors/_native.*.so
