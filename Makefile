# hybridir — two commands: `make reproduce` (the cpu-profile pipeline) and `make test` (lint + tests).
# `make reproduce PROFILE=smoke|cpu|sampling|full`; `make lab [LAB_PROFILE=cpu]`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= cpu
LAB_PROFILE ?= cpu
LAB_ARGS ?=  # e.g. LAB_ARGS="--ip 0.0.0.0 --port 8890 --no-browser" for a remote machine
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# Use the shared read-only LAReQA copy when it sits beside the project (CI and developer machines).
SHARED_LAREQA := $(abspath ../shared/data/lareqa)
ifneq ($(wildcard $(SHARED_LAREQA)/xquad-r/en.json),)
export HYBRIDIR_DATA_DIR ?= $(SHARED_LAREQA)
endif
# Offline by default (the bundled e5 copy); `full` needs the hub (LaBSE / XLM-R, MIRACL), so it may reach it.
ifeq ($(PROFILE),full)
export HF_HUB_OFFLINE ?= 0
else
export HF_HUB_OFFLINE ?= 1
endif
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv browser test lint pytest reproduce results readme smoke lab data bench gpu-check gpu-results clean

# The venv is rebuilt only when pyproject.toml changes: the stamp makes repeated calls quick.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[research,notebooks,dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (hybridir)" >/dev/null
	touch $(STAMP)

venv: $(STAMP)

# The report's browser test drives Debian's chromium through playwright (playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing chromium (Debian package) for the report's browser test"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

lint: $(STAMP)
	$(VENV)/bin/ruff check hybridir_utils tests notebooks examples scripts
	$(VENV)/bin/ruff format --check hybridir_utils tests notebooks examples scripts

pytest: $(STAMP) browser
	$(VENV)/bin/pytest

test: lint pytest

reproduce: $(STAMP)
	$(PY) -m hybridir_utils.pipeline --profile $(PROFILE)

# Rewrite RESULTS.md's generated sections (and the README's three-line answer) from results/*/*.csv; a test fails
# when one is stale. `make readme` is the former name.
results: $(STAMP)
	$(PY) -m hybridir_utils.report answer --profile cpu --write
	$(PY) -m hybridir_utils.report answer --short --write
	$(PY) -m hybridir_utils.report answer --profile domains --write
	$(PY) -m hybridir_utils.report answer --profile gpu --write
	$(PY) -m hybridir_utils.report confirmation --write
	if [ -d results/confirm-science ]; then $(PY) -m hybridir_utils.report confirmation --profile confirm-science --write; fi
	for p in sampling wiseft-test science cpu-mlqa-dev sampling-mlqa-dev; do \
	  if [ -d results/$$p ]; then $(PY) -m hybridir_utils.report answer --profile $$p --write || exit 1; fi; done

readme: results

# The GPU device check: the `gpu` profile (PROFILE=gpu-extra for the second one) -> results/<profile>/*.csv.
gpu-check: $(STAMP)
	PROFILE=$(if $(filter gpu%,$(PROFILE)),$(PROFILE),gpu) bash scripts/gpu_check.sh

# The CPU's part of a GPU run: ARCHIVE=<the folder gpu-check packed> -> notebooks 04-05 and the report.
gpu-results: $(STAMP)
	ARCHIVE=$(ARCHIVE) PROFILE=$(if $(filter gpu%,$(PROFILE)),$(PROFILE),gpu) bash scripts/gpu_results.sh

smoke: $(STAMP)
	$(PY) -m hybridir_utils.pipeline --profile smoke

# The notebooks with the LAB_PROFILE parameters injected (copies in build/<profile>/lab/), writing under build/.
lab: $(STAMP)
	$(PY) -m hybridir_utils.pipeline.lab --profile $(LAB_PROFILE) $(LAB_ARGS)

data: $(STAMP)
	$(PY) -c "from hybridir_utils.data import ensure_data; ensure_data()"

# A benchmark against plain sentence-transformers: BENCH=eval (default), throughput or sampler; BENCH_ARGS its options.
bench: $(STAMP)
	$(PY) -m hybridir_utils.bench $(or $(BENCH),eval) $(BENCH_ARGS)

clean:
	rm -rf build .pytest_cache .ruff_cache
