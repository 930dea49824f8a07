# Superset image of the deployment: exactly the pinned Superset environment (requirements/superset.txt, the
# file `make install` syncs .venv-superset from; gunicorn and celery are in it), chiso's Superset config and
# the deployment's additions (docker/superset_config.py: Redis, Celery, Alerts & Reports).
# Debian's Chromium and its driver take the screenshots of Alerts & Reports; fonts-noto-core has the
# Vietnamese glyphs.
FROM python:3.11-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 SUPERSET_HOME=/opt/superset \
    SUPERSET_CONFIG_PATH=/opt/chiso/docker/superset_config.py FLASK_APP=superset
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 chromium chromium-driver fonts-noto-core \
    && rm -rf /var/lib/apt/lists/* \
    && pip install uv==0.13.9 && useradd --create-home superset
WORKDIR /opt/chiso
COPY requirements/superset.txt requirements/superset.txt
RUN uv pip install --system --compile-bytecode -r requirements/superset.txt
COPY superset superset
COPY docker/superset_config.py docker/superset_config.py
RUN mkdir -p /opt/superset && chown superset /opt/superset
USER superset
