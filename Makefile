# chiso: the commands a user runs. `make demo` and `make test` work from a fresh clone: they install what
# is missing first (apt packages when root, uv, both virtual environments), then do their work.
SHELL := /bin/bash
PY := .venv/bin/python
CHISO := .venv/bin/chiso

.PHONY: install demo test test-fast lint stop status bench manifest clean

install: .venv/.installed .venv-superset/.installed .chiso/.system-packages

# System packages: PostgreSQL server binaries, Debian's Chromium for the browser tests, fonts with Vietnamese.
.chiso/.system-packages: scripts/install-system.sh
	@bash scripts/install-system.sh
	@mkdir -p .chiso && touch $@

.venv/.installed: requirements/main.txt pyproject.toml
	@bash scripts/install-venv.sh .venv requirements/main.txt
	@uv pip install --quiet --python .venv/bin/python --no-deps -e .
	@touch $@

.venv-superset/.installed: requirements/superset.txt superset/translations/vi/LC_MESSAGES/messages.po scripts/install-superset-translations.py
	@bash scripts/install-venv.sh .venv-superset requirements/superset.txt
	@.venv-superset/bin/python scripts/install-superset-translations.py
	@touch $@

demo: install
	@$(CHISO) demo

test: install
	@$(PY) -m ruff check ingestion dags tests bench
	@$(PY) -m pytest tests

test-fast: install
	@$(PY) -m pytest tests/unit

lint: install
	@$(PY) -m ruff check ingestion dags tests bench
	@cd dbt_project && ../.venv/bin/sqlfluff lint models

stop:
	@if [ -x $(CHISO) ]; then $(CHISO) down; fi

status: install
	@$(CHISO) status

bench: install
	@$(PY) -m bench.bench_dossiers
	@$(PY) -m bench.bench_warehouse
	@$(PY) -m bench.bench_peak

manifest: install
	@$(PY) -c "from ingestion.transform import compile_manifest; compile_manifest()"

clean: stop
	rm -rf .chiso dbt_project/target dbt_project/logs test-artifacts
