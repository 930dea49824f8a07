#!/usr/bin/env bash
# System packages chiso needs: PostgreSQL server binaries (for the private warehouse when no
# CHISO_WAREHOUSE_URL is set), Redis (the Celery broker when CHISO_AIRFLOW_EXECUTOR=celery), Debian's
# Chromium (browser tests; Playwright cannot download browsers here) and fonts with Vietnamese glyphs.
# Installs only what is missing; needs root for apt.
set -euo pipefail
missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -d /usr/share/fonts/truetype/noto ] || missing+=(fonts-noto-core)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]} (install them with apt as root, then re-run)" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
