# movie-lake: every target creates .venv from the lock when it is missing, so a fresh clone
# needs only python3 (3.11) and java (17). Settings come from the environment (README).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DBT_PROFILES_DIR ?= $(CURDIR)
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYTHONPATH := $(CURDIR)

.PHONY: help venv lock demo test lint raw trusted ingest docs bench package deploy clean sample

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv (pinned in the lock) installs the locked stack in about half pip's time; pip does it
	@# where uv cannot reach the package index (uv reads no pip.conf).
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode \
	    -c requirements.lock -e '.[dev]' \
	  || $(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install the locked stack (reused when up to date)

lock: ## re-resolve pyproject.toml into requirements.lock (needs the package index)
	rm -rf /tmp/movie-lake-lock && $(PYTHON) -m venv /tmp/movie-lake-lock
	/tmp/movie-lake-lock/bin/pip install --quiet -e '.[dev]'
	{ echo "# Pinned versions of every package, direct and transitive (pip constraints)."; \
	  echo "# Install: pip install -c requirements.lock -e '.[dev]'   (make venv does this)"; \
	  echo "# Refresh: make lock (resolves pyproject.toml afresh in a scratch venv)"; \
	  /tmp/movie-lake-lock/bin/pip freeze --exclude-editable; } > requirements.lock

demo: $(STAMP) ## run the whole pipeline on the bundled sample data into ./lake
	$(BIN)/python scripts/demo.py

# make test: every test on TEST_WORKERS pytest-xdist processes; tests sharing a session fixture
# (Spark, a dbt build, a demo run) stay on one worker (tests/conftest.py says which).
TEST_WORKERS ?= 2
.PHONY: test-fast

test: $(STAMP) lint ## ruff, then the whole test suite (what CI runs)
	$(BIN)/pytest -q -n $(TEST_WORKERS)

test-fast: $(STAMP) ## the tests not marked slow (no Spark, dbt, moto server, end to end)
	$(BIN)/pytest -q -m "not slow"

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

raw: $(STAMP) ## land the CSVs (MOVIES_CSV, SERIES_CSV) and TMDB data (needs a key) in raw for RUN_DATE
	@$(BIN)/python -m ingestion settings --require-tmdb-key > /dev/null
	$(BIN)/python -m ingestion csv
	$(BIN)/python -m ingestion tmdb

trusted: $(STAMP) ## run the PySpark trusted job (raw -> trusted) for RUN_DATE (FULL_REFRESH=1: rebuild all)
	$(BIN)/python -m spark.trusted_job $(if $(FULL_REFRESH),--full-refresh)

ingest: raw trusted ## land raw (CSV and TMDB) and run the trusted job: dbt run works after it

sample: $(STAMP) ## regenerate the committed sample CSVs (deterministic)
	$(BIN)/python -m ingestion.sample_data --rows 3000 --series-rows 1200 --out data/sample

clean: ## remove the local lake, dbt output, caches and .venv
	rm -rf lake target logs dbt_packages .pytest_cache .ruff_cache spark-warehouse metastore_db derby.log build dist *.egg-info $(VENV)

# ---- AWS deployment (cloudformation/, deploy/; docs/deploy-aws.md) ----
AWS_ENV ?= dev
AWS_ARCH ?= x86_64

package: $(STAMP) ## build the Lambda zip, Glue bundle and dbt bundle under build/aws/ (from the lock)
	$(BIN)/python -m deploy.package --arch $(AWS_ARCH)

deploy: package ## deploy the stacks to AWS (needs credentials and AWS_REGION; AWS_ENV=dev)
	$(BIN)/python -m deploy.deploy --env $(AWS_ENV) $(if $(ALERT_EMAIL),--alert-email $(ALERT_EMAIL))

# -- benchmark ---------------------------------------------------------------------------------
bench: $(STAMP) ## measure each stage beside its baseline at full size -> bench/results/ (minutes)
	$(BIN)/python -m bench.run

# -- dbt: the refined layer (dbt_project.yml, dbt_project/; dbt_project/README.md) -------------
DBT_TARGET ?= local
DOCS_PORT ?= 8080
.PHONY: refined

# dbt runs under the lake's per-day lock (scripts/dbt_locked.py): a second build of the same
# RUN_DATE exits 4 ("another run holds this day"); LOCK_WAIT_SECONDS makes it wait instead.
refined: $(STAMP) ## dbt build on DBT_TARGET (local: DuckDB in the lake), incremental: RUN_DATE's snapshot date
	$(BIN)/python -m scripts.dbt_locked build --target $(DBT_TARGET)
	@test "$(DBT_TARGET)" != local || $(BIN)/python scripts/refined_summary.py

.PHONY: athena-check
athena-check: $(STAMP) ## offline: the Athena SQL run on DuckDB vs the DuckDB build, trusted DDL vs parquet (LAKE_URI)
	$(BIN)/python scripts/athena_check.py

docs: $(STAMP) ## generate the dbt docs site and serve it on 127.0.0.1 (port DOCS_PORT, default 8080)
	$(BIN)/dbt docs generate --target $(DBT_TARGET)
	$(BIN)/dbt docs serve --target $(DBT_TARGET) --host 127.0.0.1 --port $(DOCS_PORT) --no-browser

# -- dashboard over the refined DuckDB file (dashboard/; README) --------------------------------
DASHBOARD_PORT ?= 8501
.PHONY: dashboard

dashboard: $(STAMP) ## serve the Streamlit dashboard over the refined DuckDB file on 127.0.0.1 (port DASHBOARD_PORT, default 8501)
	$(BIN)/python -m dashboard --port $(DASHBOARD_PORT)
