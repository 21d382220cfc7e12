# mirrorcap: developer entry points. `make demo` and `make test` work on a fresh machine with Python 3.11+.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
STAMP := $(VENV)/.installed

.PHONY: demo test lint validate build bench clean

$(STAMP): pyproject.toml layers/mirrorcap/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e layers/mirrorcap -e '.[dev]'
	touch $(STAMP)

$(SAM_VENV)/bin/sam:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet 'aws-sam-cli==1.170.0'

## demo: run a whole alarm-triggered capture on emulated AWS (no account needed)
demo: $(STAMP)
	$(VENV)/bin/mirrorcap offline events/triggers/alarm.json --out demo-output

## test: run every test tier (capture tests need root; they skip with a reason otherwise)
test: $(STAMP)
	$(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check layers functions tools tests bench

## validate: SAM's own template checks, in a venv of their own (aws-sam-cli pins its own pydantic)
validate: $(SAM_VENV)/bin/sam
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1

## build: sam build without Docker and without the Lambda runtime's Python (see build-* targets below)
build: $(SAM_VENV)/bin/sam
	$(SAM_VENV)/bin/sam build

bench: $(STAMP)
	$(VENV)/bin/python bench/run_all.py

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam demo-output .pytest_cache
