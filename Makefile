# Pullthrough: `make help` lists the targets. Every target installs what it needs itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
export BUILD_PYTHON := $(abspath $(PY))

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

demo: system venv ## run the whole system locally: sandbox up, deploy -> reconcile -> warm -> report, rotations
	$(PY) -m sandbox.demo

test: system venv lint house types template pytest ## every check: ruff, house rules, mypy --strict, sam validate --lint, cfn-lint, pytest

pr: test ## the gate before a pull request (same as test)

lint: venv ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv ## ruff format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

house: venv ## the house rules of docs/ARCHITECTURE.md: sizes, handler shape, deferred imports, one publish, no copies
	$(PY) tools/house.py

types: venv ## mypy --strict on the library
	$(BIN)/mypy

template: venv ## sam validate --lint and cfn-lint on template.yaml and the member template (templates/member.yaml)
	$(PY) tools/member_template.py --check
	$(BIN)/sam validate --lint --template template.yaml --region $(AWS_DEFAULT_REGION)
	$(BIN)/sam validate --lint --template templates/member.yaml --region $(AWS_DEFAULT_REGION)
	$(BIN)/cfn-lint template.yaml templates/member.yaml

pytest: venv ## the test suite (unit, integration on the sandbox, template)
	$(BIN)/pytest -n 2 --dist loadfile -q

mutants: system venv ## mutation testing of the promise-holding modules, by hand (slow; MODULES="redaction registry", JOBS=2)
	$(PY) tools/mutants.py $(MODULES) --jobs $(or $(JOBS),1)

bench: system venv ## performance figures and ratios (not part of test)
	$(PY) -m bench

build: venv ## sam build (makefile build method; no local Python 3.13 or Docker needed)
	$(BIN)/sam build --template template.yaml

schema: venv ## regenerate config/pullthrough.schema.json and docs/cli/*.schema.json from their models
	$(PY) -m pullthrough.config --schema > config/pullthrough.schema.json
	$(PY) -c 'from pullthrough.cli.documents import main; main(["docs/cli"])'

system: ## Debian packages: the CNCF distribution registry, skopeo and containerd (real clients; apt-get when missing)
	@command -v docker-registry >/dev/null && command -v skopeo >/dev/null && command -v containerd >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq docker-registry skopeo containerd >/dev/null; }

venv: $(VENV)/.stamp ## the virtualenv with pinned dev dependencies and the library installed editable
$(VENV)/.stamp: requirements-dev.txt layers/pullthrough/pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e layers/pullthrough
	touch $@

clean: ## remove the venv, build output and caches
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache

.PHONY: help demo test pr lint house format types template pytest mutants bench build schema system venv clean
