# Airflow image of the deployment: exactly the pinned main environment (requirements/main.txt, the file
# `make install` syncs .venv from) plus the chiso package, its DAGs, dbt project, GX suites and dashboards.
# Build from the repository root: docker compose -f docker/compose.yaml build
FROM python:3.11-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 AIRFLOW_HOME=/opt/airflow
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/* \
    && pip install uv==0.13.9 && useradd --create-home --uid 50000 airflow
WORKDIR /opt/chiso
COPY requirements/main.txt requirements/main.txt
# Bytecode compiled at build time: imports without .pyc are several times slower (GX ~45 s).
RUN uv pip install --system --compile-bytecode -r requirements/main.txt
COPY pyproject.toml README.md ./
COPY ingestion ingestion
COPY dags dags
COPY dbt_project dbt_project
COPY expectations expectations
COPY superset superset
COPY docker/superset_import.py docker/superset_import.py
# The project itself without dependencies: every dependency is pinned in requirements/main.txt above.
# /opt/airflow is the volume of Airflow's home, logs and chiso's state; created here so the volume is the
# airflow user's. dbt writes its logs beside the project, so the project is the airflow user's too.
RUN uv pip install --system --no-deps -e . \
    && mkdir -p /opt/airflow/logs /opt/airflow/chiso && chown -R airflow /opt/airflow /opt/chiso
USER airflow
