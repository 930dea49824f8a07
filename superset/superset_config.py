"""Superset configuration for chiso, loaded through SUPERSET_CONFIG_PATH (set by ingestion/superset.py).

Everything machine- or secret-specific comes from the environment the launcher builds:
CHISO_SUPERSET_METADATA_URL (the metadata database) and CHISO_SUPERSET_SECRET_KEY.
Nothing here reaches outside 127.0.0.1: no examples, no map tiles, no telemetry pixel, no web fonts.
"""

import os

SQLALCHEMY_DATABASE_URI = os.environ["CHISO_SUPERSET_METADATA_URL"]
SECRET_KEY = os.environ["CHISO_SUPERSET_SECRET_KEY"]

APP_NAME = "chiso"

# Vietnamese by default. Superset 6.1 ships no "vi" catalogue: chiso's (superset/translations/vi, installed
# into the Superset venv by `make install`) covers the menus, the dashboard page and the list pages; every
# title, label and description of our dashboards is Vietnamese, and numbers and dates use the Vietnamese
# conventions below.
BABEL_DEFAULT_LOCALE = os.environ.get("CHISO_SUPERSET_LOCALE", "vi")
LANGUAGES = {"vi": {"flag": "vn", "name": "Tiếng Việt"}, "en": {"flag": "us", "name": "English"}}
D3_FORMAT = {"decimal": ",", "thousands": ".", "grouping": [3], "currency": ["", " ₫"]}
D3_TIME_FORMAT = {
    "dateTime": "%X %d/%m/%Y",
    "date": "%d/%m/%Y",
    "time": "%H:%M:%S",
    "periods": ["SA", "CH"],
    "days": ["Chủ nhật", "Thứ hai", "Thứ ba", "Thứ tư", "Thứ năm", "Thứ sáu", "Thứ bảy"],
    "shortDays": ["CN", "T2", "T3", "T4", "T5", "T6", "T7"],
    "months": [f"Tháng {m}" for m in range(1, 13)],
    "shortMonths": [f"Th{m}" for m in range(1, 13)],
}
CURRENCIES = ["VND"]

FEATURE_FLAGS = {
    "DASHBOARD_CROSS_FILTERS": True,  # click a bar or row to filter the other charts
    "DRILL_TO_DETAIL": True,
    "DRILL_BY": True,
    "ENABLE_TEMPLATE_PROCESSING": True,  # filter_values() in the "selected period" datasets
    "THUMBNAILS": False,  # would need a worker and a headless browser
    "ALERT_REPORTS": False,
    "GLOBAL_ASYNC_QUERIES": False,
    "EMBEDDED_SUPERSET": False,
}

# No external network: no Mapbox key, and a content security policy that allows only this server, so
# the browser fetches no map tiles, no telemetry pixel and no web font. (DECKGL_BASE_MAP keeps its
# default: the front end fails to start with an empty list.)
MAPBOX_API_KEY = ""
THEME_FONT_URL_ALLOWED_DOMAINS = []
_CSP = {
    "base-uri": ["'self'"],
    "default-src": ["'self'"],
    "img-src": ["'self'", "blob:", "data:"],
    "worker-src": ["'self'", "blob:"],
    "connect-src": ["'self'"],
    "object-src": "'none'",
    "style-src": ["'self'", "'unsafe-inline'"],
    "font-src": ["'self'", "data:"],
    # 'unsafe-eval': Superset's Handlebars chart (the daily-operations map, heat map and headline) compiles
    # its template in the browser with new Function(), which CSP blocks otherwise (apache/superset#25205:
    # "by design", the documented remedy). Scripts still load only from this server with a nonce.
    "script-src": ["'self'", "'strict-dynamic'", "'unsafe-eval'"],
}
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": _CSP,
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,  # served on http://127.0.0.1
    "session_cookie_secure": False,
}
TALISMAN_DEV_CONFIG = TALISMAN_CONFIG
CONTENT_SECURITY_POLICY_WARNING = False

# The daily-operations dashboard draws its heat map, commune map and headline cards with the Handlebars
# chart, whose HTML goes through Superset's sanitizer (HTML_SANITIZATION stays on). Allowed on top of its
# default schema: class and style attributes, the <style> element the chart's CSS arrives in, and the
# inline SVG of the map (paths drawn from the warehouse's commune shapes, coloured by class: no map tiles).
# Attribute names are hast property names (className, viewBox, ...); "data*" allows the data-* attributes
# the browser test reads.
HTML_SANITIZATION = True
HTML_SANITIZATION_SCHEMA_EXTENSIONS = {
    "tagNames": ["style", "svg", "path", "title"],
    "attributes": {
        "*": ["className", "style", "data*"],
        "svg": ["viewBox", "role", "preserveAspectRatio"],
        "path": ["d"],
    },
}

# CSRF stays on; the API client fetches a token from /api/v1/security/csrf_token/.
WTF_CSRF_ENABLED = True
# The session cookie is sent over HTTPS only when Superset is served behind TLS: set
# CHISO_SUPERSET_SECURE_COOKIES=true there (docs/runbook.md); on 127.0.0.1 over HTTP it must stay off.
SESSION_COOKIE_SECURE = os.environ.get("CHISO_SUPERSET_SECURE_COOKIES", "false").lower() == "true"
SESSION_COOKIE_SAMESITE = "Lax"


def _password_policy(password: str) -> None:
    """Every login's password (the users API, the UI, `chiso superset user add`): at least 12 characters
    of at least three kinds among lower case, upper case, digits and other characters."""
    from flask_appbuilder.exceptions import PasswordComplexityValidationError

    kinds = (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    if len(password) < 12 or sum(any(kind(c) for c in password) for kind in kinds) < 3:
        raise PasswordComplexityValidationError(
            "Mật khẩu cần ít nhất 12 ký tự, gồm ít nhất ba loại: chữ thường, chữ hoa, chữ số, ký hiệu"
            " (at least 12 characters of three kinds: lower case, upper case, digits, symbols)")


FAB_PASSWORD_COMPLEXITY_ENABLED = True
FAB_PASSWORD_COMPLEXITY_VALIDATOR = _password_policy
# Repeated logins to one account slow down: CHISO_SUPERSET_LOGIN_RATE_LIMIT tries per account and client
# address on the login endpoints (the form, and the API, which FAB leaves unlimited), then 429. Counted per
# account, so leaders logging in through one proxy at 07:00 do not lock each other out. The count lives in
# the rate-limit storage below: each gunicorn worker's memory here, Redis shared by every worker in the
# compose deployment (docker/superset_config.py).
RATELIMIT_ENABLED = True  # Superset turns Flask-Limiter on only with SUPERSET_ENV=production
# Superset's application-wide limit counts every request of an address (50 a second): a province's leaders
# behind one proxy, or one dashboard's static files and charts, would share it. Only logins are limited.
RATELIMIT_APPLICATION = "100000 per second"
AUTH_RATE_LIMITED = True
AUTH_RATE_LIMIT = os.environ.get("CHISO_SUPERSET_LOGIN_RATE_LIMIT", "10 per minute")


def RATELIMIT_KEY_FUNC() -> str:  # noqa: N802 (Flask-Limiter's setting)
    from flask import request

    body = request.get_json(silent=True) if request.is_json else None
    user = (body or {}).get("username") if isinstance(body, dict) else request.form.get("username")
    return f"{request.remote_addr}|{str(user or '').lower()}"


def FLASK_APP_MUTATOR(app) -> None:  # noqa: N802 (Superset's setting)
    """The API's login gets the form's limit (FAB limits the form's blueprint only)."""
    api = app.blueprints.get("SecurityApi")  # FAB's /api/v1/security/login and /refresh
    if AUTH_RATE_LIMITED and api is not None:
        app.appbuilder.sm.limiter.limit(AUTH_RATE_LIMIT, methods=["POST"])(api)

# One process, no Redis: in-memory rate-limit storage (quiet), small in-process caches.
RATELIMIT_STORAGE_URI = "memory://"
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}
EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}

# The warehouse connection is read-only; keep SQL Lab from writing.
PREVENT_UNSAFE_DB_CONNECTIONS = True
SQLLAB_CTAS_NO_LIMIT = False
ROW_LIMIT = 50000
