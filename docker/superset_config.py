"""Superset configuration of the docker deployment (SUPERSET_CONFIG_PATH in docker/superset.Dockerfile).

It is chiso's superset/superset_config.py plus what several processes on several containers need: the
local setup runs one gunicorn and no Celery, so it keeps caches in memory and Alerts & Reports off. Here the
web workers, Superset's Celery worker and its beat share Redis (caches, rate limits, broker, results), and
Alerts & Reports are on, with e-mail through SMTP and screenshots from Debian's headless Chromium.
Every value comes from the environment that docker/compose.yaml passes (see docker/.env.example).
"""

import os
import runpy
from pathlib import Path

from celery.schedules import crontab

# The project's settings first (locale, formats, CSP, sanitizer, feature flags), then the overrides below.
_base = runpy.run_path(str(Path(__file__).resolve().parent.parent / "superset" / "superset_config.py"))
globals().update({name: value for name, value in _base.items() if name.isupper()})

_REDIS = os.environ["CHISO_SUPERSET_REDIS_URL"].rstrip("/")  # redis://:password@host:6379
# Redis databases: Airflow's Celery broker uses 0; Superset takes 1 (broker), 2 (results), 3 (caches).
RATELIMIT_STORAGE_URI = f"{_REDIS}/3"


def _cache(prefix: str, timeout: int) -> dict:
    return {"CACHE_TYPE": "RedisCache", "CACHE_DEFAULT_TIMEOUT": timeout, "CACHE_KEY_PREFIX": prefix,
            "CACHE_REDIS_URL": f"{_REDIS}/3"}


CACHE_CONFIG = _cache("superset_", 300)
DATA_CACHE_CONFIG = _cache("superset_data_", 300)
FILTER_STATE_CACHE_CONFIG = _cache("superset_filter_", 86400)
EXPLORE_FORM_DATA_CACHE_CONFIG = _cache("superset_explore_", 86400)


class CeleryConfig:
    broker_url = f"{_REDIS}/1"
    result_backend = f"{_REDIS}/2"
    imports = ("superset.sql_lab", "superset.tasks.scheduler", "superset.tasks.thumbnails", "superset.tasks.cache",
               "superset.tasks.slack")  # Superset 6.1's default list
    worker_prefetch_multiplier = 1
    task_acks_late = False
    beat_schedule = {  # Superset's defaults: the reports scheduler every minute, its log pruned nightly
        "reports.scheduler": {"task": "reports.scheduler", "schedule": crontab(minute="*", hour="*")},
        "reports.prune_log": {"task": "reports.prune_log", "schedule": crontab(minute=0, hour=0)},
    }


CELERY_CONFIG = CeleryConfig

FEATURE_FLAGS = {**FEATURE_FLAGS, "ALERT_REPORTS": True}  # noqa: F821 (from the project's config above)
ALERT_REPORTS_NOTIFICATION_DRY_RUN = False
# The worker renders charts through the web service inside the compose network; e-mails link to the
# address users know.
WEBDRIVER_BASEURL = os.environ.get("CHISO_SUPERSET_INTERNAL_URL", "http://superset:8088/")
WEBDRIVER_BASEURL_USER_FRIENDLY = os.environ.get("CHISO_SUPERSET_PUBLIC_URL", WEBDRIVER_BASEURL)
WEBDRIVER_TYPE = "chrome"
WEBDRIVER_OPTION_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
# Debian's chromium-driver (installed by the image); Selenium then looks for no driver download.
WEBDRIVER_CONFIGURATION = {
    "options": {"capabilities": {}, "preferences": {}},
    "service": {"executable_path": "/usr/bin/chromedriver", "log_output": "/dev/null", "service_args": [],
                "port": 0, "env": {}},
}

SMTP_HOST = os.environ.get("CHISO_SMTP_HOST", "localhost")
SMTP_PORT = int(os.environ.get("CHISO_SMTP_PORT", "25"))
SMTP_STARTTLS = os.environ.get("CHISO_SMTP_STARTTLS", "true").lower() == "true"
SMTP_SSL = False
SMTP_USER = os.environ.get("CHISO_SMTP_USER", "")
SMTP_PASSWORD = os.environ.get("CHISO_SMTP_PASSWORD", "")
SMTP_MAIL_FROM = os.environ.get("CHISO_SMTP_MAIL_FROM", "chiso@localhost")
