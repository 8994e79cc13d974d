# One target per habit. Every target creates the virtual environment first when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint typecheck unit demo run bench chaos package clean browser

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "pip<26.3"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	# The `nexus` operator CLI (pyproject [project.scripts]); compat mode puts the project root on sys.path.
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

# The console's browser tests drive Debian's Chromium (Playwright's own browser download is not used).
CHROMIUM := /usr/bin/chromium

browser:
	test -x $(CHROMIUM) || (apt-get update && apt-get install -y chromium)

# Three workers on two cores: most tests wait on local stacks and servers, so a third worker cut the
# suite from 540 s to 463 s on this machine, both runs green. The package tests share them too (their
# package is built once per run, tests/package/conftest.py): run on their own after the others, they
# held the second core idle for 36 s.
# node-tools: axe-core for the console's accessibility checks; browser: Chromium for its journeys.
unit: venv node-tools browser
	$(BIN)/pytest -q -n 3

# The package tests run what check-package runs (cfn-lint before and after the SAM transform, and
# asl-validator on both definitions, tests/package/test_linters.py), on the package they build.
test: lint typecheck unit

# Local mode (localaws/run.py), in the foreground: HTTP API on NEXUS_PORT (8000), embedded AWS on NEXUS_AWS_PORT (5000).
run: venv
	$(BIN)/python -m localaws.run

# The end-to-end demo (localaws/demo/): starts local mode, deploys through the HTTP API, checks, stops.
demo: venv
	$(BIN)/python -m localaws.demo

bench: venv
	$(BIN)/python -m bench.run

# The reliability scenarios under NEXUS_LOCAL_FAULTS (bench/chaos/), written to RELIABILITY.md.
chaos: venv
	$(BIN)/python -m bench.chaos

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache

# The cloud template (infra/package.py): build/sam.json + build/deployment.zip from `chalice package`
# merged with infra/merge-template.json, then checked. See the README for deploying it.
PACKAGE_STAGE ?= dev
NODE_STAMP := node_modules/.installed

.PHONY: node-tools lint-template check-package

# asl-validator, pinned exactly in package.json / package-lock.json (node_modules/ is git-ignored).
node-tools: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

package: venv
	$(BIN)/python -m infra.package --stage $(PACKAGE_STAGE)

# No --ignore-checks: the packaged template lints clean (errors and warnings alike), before and after
# the SAM transform (what CloudFormation deploys; localaws/template.py applies it as local mode does).
lint-template: package node-tools
	$(BIN)/cfn-lint build/sam.json
	$(BIN)/python -m localaws.template --template build/sam.json --out build/transformed.json
	$(BIN)/cfn-lint build/transformed.json
	node_modules/.bin/asl-validator --json-path statemachine/deployment.asl.json --json-path statemachine/rollout.asl.json

check-package: lint-template
