# The interface people remember. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
# The repo's venv runs on the Python AWS MWAA runs for its Airflow (3.12); the EC2 agent and the
# Spark job are also tested on the hosts' and EMR 7's 3.9. scripts/find-python.sh says how to
# get one that is missing.
PYTHON312 ?= $(shell bash scripts/find-python.sh 3.12)
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# checkov pins termcolor<2.4 and Airflow 3.3 needs >=3: it lives in a venv of its own.
CHECKOV_VERSION := 3.3.30
CHECKOV := $(TOOLS)/checkov/bin/checkov
TEMPLATES := $(wildcard infra/cloudformation/*.yaml)
export UV_COMPILE_BYTECODE := 1
export UV_PYTHON_DOWNLOADS := never
export SPARK_LOCAL_IP := 127.0.0.1

.PHONY: help install run test lint unit integration docs analyses metrics erase report screenshots bench \
	clean airflow manifest mwaa-bundle agent-wheel deploy destroy

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock | $(UV)
	@test -n "$(PYTHON312)" || { echo "make: Python 3.12 is needed for .venv (see above)" >&2; exit 1; }
	$(UV) sync --locked --python $(PYTHON312)
	@touch $@

# uv, not pip, installs it: pip took 49 s to resolve and install checkov's ~100 packages, uv 2 s.
$(CHECKOV): | $(UV)
	$(UV) venv --quiet --python $(PYTHON) $(TOOLS)/checkov
	$(UV) pip install --quiet --python $(TOOLS)/checkov/bin/python checkov==$(CHECKOV_VERSION)

install: $(STAMP) $(CHECKOV) ## Install uv, the locked environment (bytecode compiled); check Java, PostgreSQL, Chromium and Graphviz
	@bash scripts/check-java.sh
	@bash scripts/check-postgres.sh
	@bash scripts/check-chromium.sh
	@bash scripts/check-graphviz.sh

run: install ## Run the whole pipeline locally on the seeded demo (ARGS="--web access.log" for your logs)
	$(BIN)/python -m local.run $(value ARGS)

lint: install ## ruff, mypy, the layer contracts (import-linter), sqlfluff on the dbt models, cfn-lint and checkov on infra/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PYTHONPATH=spark $(BIN)/lint-imports
	$(BIN)/sqlfluff lint dbt_project/models dbt_project/macros dbt_project/analyses
	$(BIN)/cfn-lint $(TEMPLATES)
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation -d infra/cloudformation

unit: install ## Fast unit tests only
	$(BIN)/pytest -m "not integration"

# Test files run in two worker processes (pytest-xdist), a file's tests in one of them: most
# integration tests wait on a server or a subprocess for much of their time.
PYTEST_WORKERS ?= 2
PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile

integration: install ## Integration tests (moto, local Spark, dbt on DuckDB, PostgreSQL and fakesnow)
	$(BIN)/pytest $(PARALLEL) -m integration

# `make test` runs the lint beside the tests: on a clean clone mypy alone keeps one core busy
# for ~80 s, while the tests waited for it with the other core idle. Its output is shown at
# the end; either failing fails the target.
LINT_LOG := .local/lint.log

test: install ## Everything: lint (beside the tests), unit and integration tests, end-to-end pipeline (PYTEST_WORKERS=1: one process)
	@mkdir -p $(dir $(LINT_LOG))
	@$(MAKE) --no-print-directory lint > $(LINT_LOG) 2>&1 & lint=$$!; trap 'kill $$lint 2>/dev/null' INT TERM; \
	$(BIN)/pytest $(PARALLEL); tests=$$?; \
	if wait $$lint; then echo "make lint (beside the tests): passed"; \
	else cat $(LINT_LOG); echo "make lint (beside the tests): FAILED, above" >&2; exit 1; fi; \
	exit $$tests

airflow: install ## Start a local Airflow (API server, scheduler, DAG processor, triggerer) on the local stack
	$(BIN)/python -m local.airflow_runner

manifest: install ## Build the dbt manifest Cosmos renders the DAG from (dbt parse)
	cd dbt_project && DBT_PROFILES_DIR=. ../$(BIN)/dbt parse --quiet

mwaa-bundle: manifest ## Build dist/mwaa: DAGs, requirements.txt, startup script (ENV=prod|dev WAREHOUSE=snowflake|redshift WEB_FORMAT='...')
	$(BIN)/python -m infra.mwaa_bundle --env $(or $(ENV),prod) --warehouse $(or $(WAREHOUSE),snowflake) $(if $(WEB_FORMAT),--web-format "$$WEB_FORMAT")

agent-wheel: $(UV) ## Build the EC2 agent's wheel (boto3 its only dependency) into dist/agent
	$(UV) build --package shoplogs-agent --wheel --out-dir dist/agent

deploy: manifest ## Deploy the stacks and artifacts to AWS (ENV=dev|prod; DRY_RUN=1 prints the change sets only)
	$(BIN)/python -m infra.deploy deploy --env $(or $(ENV),$(error set ENV=dev or ENV=prod)) $(if $(DRY_RUN),--dry-run)

destroy: install ## Empty and delete what deploy created for ENV, or only STACK=<stack> (refuses anything without the project's tags)
	$(BIN)/python -m infra.deploy destroy --env $(or $(ENV),$(error set ENV=dev or ENV=prod)) $(if $(STACK),--stack $(STACK))

docs: install ## Serve the docs site the last run published on a free port, building it if needed (REBUILD=1: build it again)
	$(BIN)/python -m local.docs_site $(if $(REBUILD),--rebuild)

analyses: install ## Run dbt_project/analyses/ on the current warehouse (the local DuckDB after make run) and print each answer
	$(BIN)/python -m local.analyses

erase: install ## Erase one customer's personal data from every zone and the warehouse: CUSTOMER=<customer id> (BY=<who asked>)
	@test -n "$(CUSTOMER)" || { echo "make erase: give the customer id, e.g. make erase CUSTOMER=C00042"; exit 2; }
	$(BIN)/python -m orchestration.erasure --customer "$(CUSTOMER)" $(if $(BY),--requested-by "$(BY)")

metrics: install ## Answer the semantic layer's saved queries (MetricFlow) on the current warehouse, as `make analyses` (Q=<saved query> for one)
	$(BIN)/python -m local.metrics $(Q)

report: install ## Serve the latest run report (make run publishes it) on a free port
	$(BIN)/python -m local.report_site

screenshots: install ## Retake the README's pictures of the docs site and the run report (after make run)
	$(BIN)/python -m local.screenshots

bench: install ## Measure stage timings (the demo, a larger demo, a 10,000-line access log) and Spark vs DuckDB on 1M web lines (SPARK_LINES=…); writes bench/results.json
	$(BIN)/python -m local.bench --scale 4 --out bench/results.json $(if $(SPARK_LINES),--spark-lines $(SPARK_LINES))

clean: ## Stop the warm Spark session; remove local run state (.local), dist/, dbt target; keeps the installed environment
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m orchestration.runners.spark_session stop .local/spark-session; fi
	rm -rf .local dist dbt_project/target dbt_project/logs
