# Airflow image for a deployment: the pinned main environment plus the project's code.
FROM python:3.11-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 AIRFLOW_HOME=/opt/airflow PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/* \
    && pip install uv && useradd --create-home --uid 50000 airflow
WORKDIR /opt/chiso
COPY requirements/main.txt requirements/main.txt
RUN uv pip install --system --compile-bytecode -r requirements/main.txt
COPY pyproject.toml README.md ./
COPY ingestion ingestion
COPY dags dags
COPY dbt_project dbt_project
COPY expectations expectations
RUN uv pip install --system --no-deps -e . && chown -R airflow /opt/chiso
USER airflow
