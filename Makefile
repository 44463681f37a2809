# Two commands do all the set-up: `make run` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench install install-dev lint clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "crmsim needs Python >= 3.11; run make PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# setuptools tells every editable install of a remapped package (configs/ -> crmsim.configs) to
# beware of same-named folders: information only, and not for the user of `make run`.
QUIET_BUILD := PYTHONWARNINGS="ignore:Editable installation"

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: set up .venv and run the main job: every CRM framework on the default market, 20 seeds
## each, compared with the transactional baseline (verdict table + results/compare_policies/...)
run: $(VENV)/.installed
	$(BIN)/crmsim run -m experiment=compare_policies

## test: set up .venv with the dev extra and run the test suite, one worker per core
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n auto

## bench: speed and memory of the engine at 10^5 and 10^6 people against the one-Agent-per-customer
## Mesa reference (~2 min; benchmarks/README.md). Options: make bench ARGS="--large" or ARGS="--smoke"
bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks $(ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check crmsim tests

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
