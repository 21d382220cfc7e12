# mirrorcap: developer entry points. `make demo` and `make test` work on a fresh machine with Python 3.11+.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
STAMP := $(VENV)/.installed

CHECKOV_VENV := .venv-checkov
CFNLINT_VENV := .venv-cfnlint
ASL_TOOLS := tools/asl
LAYER_PINS := layers/mirrorcap/requirements.txt
# Where the code lives, for the linters and the type checker.
LINT_PATHS := layers functions tools tests bench scripts
TYPECHECK_PATHS := layers/mirrorcap/mirrorcap tools/mirrorcap_tools

.PHONY: demo test unit lint typecheck asl cfnlint validate build scan bench clean

# The layer's pins are constraints for the whole venv, so tests run against the pydantic, powertools and
# numpy the Lambda layer ships, not whatever the dev extras would resolve to. pip refuses extras in a
# constraints file (`aws-lambda-powertools[tracer]==...`), hence the copy without them.
$(STAMP): pyproject.toml layers/mirrorcap/pyproject.toml $(LAYER_PINS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	sed -e 's/\[[^]]*\]//' $(LAYER_PINS) > $(VENV)/layer-constraints.txt
	$(VENV)/bin/pip install --quiet -c $(VENV)/layer-constraints.txt -e layers/mirrorcap -e '.[dev]'
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

## unit: the fast tier, well under a minute: models, pure logic, steps with faked AWS adapters, the ASL's
## structure, the layer's shape, and the IAM check on the template (not its cross-check with offline runs)
unit: $(STAMP)
	$(VENV)/bin/python -m pytest tests/unit tests/iam --ignore=tests/iam/test_calls_match_offline_runs.py

## lint: ruff's checks and its formatting, without changing anything
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

## typecheck: mypy (with boto3's type stubs) over the layer package and the tools
typecheck: $(STAMP)
	$(VENV)/bin/mypy $(TYPECHECK_PATHS)

$(ASL_TOOLS)/node_modules/.package-lock.json: $(ASL_TOOLS)/package.json $(ASL_TOOLS)/package-lock.json
	npm ci --prefix $(ASL_TOOLS) --no-audit --no-fund
	touch $@

## asl: asl-validator (pinned in tools/asl/package.json) over the definition with its substitutions filled in
asl: $(STAMP) $(ASL_TOOLS)/node_modules/.package-lock.json
	$(VENV)/bin/python $(ASL_TOOLS)/render_definition.py > $(ASL_TOOLS)/node_modules/capture.asl.rendered.json
	$(ASL_TOOLS)/node_modules/.bin/asl-validator --json-path $(ASL_TOOLS)/node_modules/capture.asl.rendered.json

# cfn-lint 1.53.3 is the last release that applies the SAM transform itself (later ones lint SAM resources
# against SAM's schema instead); its aws-sam-translator is pinned with it.
$(CFNLINT_VENV)/bin/cfn-lint:
	$(PYTHON) -m venv $(CFNLINT_VENV)
	$(CFNLINT_VENV)/bin/pip install --quiet --upgrade pip
	$(CFNLINT_VENV)/bin/pip install --quiet 'cfn-lint==1.53.3' 'aws-sam-translator==1.115.0'

## cfnlint: cfn-lint over template.yaml, then over its SAM expansion (where it also checks IAM action names)
cfnlint: $(CFNLINT_VENV)/bin/cfn-lint
	$(CFNLINT_VENV)/bin/cfn-lint template.yaml
	$(CFNLINT_VENV)/bin/python tools/cfnlint/expand_template.py template.yaml $(CFNLINT_VENV)/template.expanded.json
	$(CFNLINT_VENV)/bin/cfn-lint $(CFNLINT_VENV)/template.expanded.json

## validate: SAM's own template checks, in a venv of their own (aws-sam-cli pins its own pydantic)
validate: $(SAM_VENV)/bin/sam
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1

$(CHECKOV_VENV)/bin/checkov:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov==3.3.30'

## scan: checkov over the template; each skipped check has its reason in .checkov.yaml
scan: $(CHECKOV_VENV)/bin/checkov
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml

## build: sam build without Docker and without the Lambda runtime's Python (see build-* targets below)
build: $(SAM_VENV)/bin/sam
	$(SAM_VENV)/bin/sam build

## bench: every benchmark at its full sizes (minutes; the capture-loss one needs root)
bench: $(STAMP)
	@# As an installed package would be: compiled once (an editable install under PYTHONDONTWRITEBYTECODE
	@# recompiles every module at every start, which the timed runs would count).
	$(VENV)/bin/python -m compileall -q layers/mirrorcap/mirrorcap tools/mirrorcap_tools
	$(VENV)/bin/python bench/run_all.py

## bench-smoke: every benchmark at its smoke size (seconds), failing on wrong counts or lost packets; CI runs it
.PHONY: bench-smoke
bench-smoke: $(STAMP)
	$(VENV)/bin/python bench/run_all.py --smoke

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(CFNLINT_VENV) $(ASL_TOOLS)/node_modules .aws-sam demo-output .pytest_cache

# --- sam build: BuildMethod makefile (ContextPath .) --------------------------------------------------
# SAM runs these from the resource's CodeUri with ARTIFACTS_DIR set. Wheels are fetched for the Lambda
# platform, so neither Docker nor the Lambda runtime's Python is needed on the build machine.
LAMBDA_PYTHON_VERSION := 3.13
# The python3.13 runtime is Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels run there. Only cp313
# wheels can match, so ignoring the build Python's own version in Requires-Python checks is safe (pip 23
# checks it against the running interpreter, not --python-version).
LAMBDA_PLATFORMS := --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64
BUILD_PYTHON ?= python3

build-MirrorcapLayer:
	$(BUILD_PYTHON) -m pip install --quiet --disable-pip-version-check --target "$(ARTIFACTS_DIR)/python" \
		$(LAMBDA_PLATFORMS) --implementation cp --python-version $(LAMBDA_PYTHON_VERSION) \
		--only-binary=:all: --ignore-requires-python -r requirements.txt
	cp -R mirrorcap "$(ARTIFACTS_DIR)/python/"
	find "$(ARTIFACTS_DIR)/python" -name __pycache__ -type d -prune -exec rm -rf {} +

FUNCTIONS := ResolveRequestFunction FanOutFunction LockSourceFunction LaunchCollectorFunction CheckCollectorReadyFunction \
	CreateMirrorSessionFunction StartCaptureFunction RenewUploadGrantFunction CollectCaptureFunction TeardownCaptureFunction \
	ReportCaptureFunction SweepOrphansFunction
$(addprefix build-,$(FUNCTIONS)):
	cp app.py "$(ARTIFACTS_DIR)/"

# --- make e2e: the opt-in test against a real AWS account (docs/e2e.md). Never in CI: it deploys and pays. ---
## e2e: deploy, capture a throwaway instance for 60 s, check, delete it all (make e2e SUBNET_ID=subnet-... [AWS_REGION=..] [AWS_PROFILE=..] [E2E_ARGS="--keep-stack"])
E2E_FLAGS = --subnet-id "$(SUBNET_ID)" $(if $(AWS_REGION),--region "$(AWS_REGION)") \
	$(if $(AWS_PROFILE),--profile "$(AWS_PROFILE)") $(E2E_ARGS)
.PHONY: e2e
e2e: $(STAMP)
	@# Refuse (no subnet, no credentials, a stack that is not ours) before installing the SAM CLI.
	$(VENV)/bin/python -m mirrorcap_tools.e2e --preflight $(E2E_FLAGS)
	$(MAKE) --no-print-directory $(SAM_VENV)/bin/sam
	$(VENV)/bin/python -m mirrorcap_tools.e2e --sam $(SAM_VENV)/bin/sam $(E2E_FLAGS)
