# Superset image: the pinned Superset environment, chiso's config and dashboard assets.
FROM python:3.11-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 SUPERSET_CONFIG_PATH=/opt/chiso/superset/superset_config.py
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/* \
    && pip install uv && useradd --create-home superset
WORKDIR /opt/chiso
COPY requirements/superset.txt requirements/superset.txt
RUN uv pip install --system --compile-bytecode -r requirements/superset.txt gunicorn
COPY superset superset
USER superset
CMD ["gunicorn", "-w", "4", "-b", "0.0.0.0:8088", "--timeout", "120", "superset.app:create_app()"]
