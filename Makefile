# hybridir — two commands: `make reproduce` (the cpu-profile pipeline) and `make test` (lint + tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= cpu

# Use the shared read-only LAReQA copy when it sits beside the project (CI and developer machines).
SHARED_LAREQA := $(abspath ../shared/data/lareqa)
ifneq ($(wildcard $(SHARED_LAREQA)/xquad-r/en.json),)
export HYBRIDIR_DATA_DIR ?= $(SHARED_LAREQA)
endif
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv test lint pytest reproduce readme smoke lab data bench clean

# The venv is rebuilt only when pyproject.toml changes: the stamp makes repeated calls quick.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[notebooks,dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (hybridir)" >/dev/null
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check hybridir_utils tests notebooks
	$(VENV)/bin/ruff format --check hybridir_utils tests notebooks

pytest: $(STAMP)
	$(VENV)/bin/pytest

test: lint pytest

reproduce: $(STAMP)
	$(PY) -m hybridir_utils.pipeline --profile $(PROFILE)

# Rewrite the README's results section from results/cpu/*.csv (a test fails when it is stale).
readme: $(STAMP)
	$(PY) -m hybridir_utils.answer --profile cpu --write

smoke: $(STAMP)
	$(PY) -m hybridir_utils.pipeline --profile smoke

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

data: $(STAMP)
	$(PY) -c "from hybridir_utils.data import ensure_data; ensure_data()"

clean:
	rm -rf build .pytest_cache .ruff_cache
