#!/usr/bin/env bash
# Installs the distribution's packages the test suite drives for real: a PostgreSQL server
# (run history on dagster-postgres) and Chromium with ChromeDriver (the browser test of the UI).
# Does nothing when they are already there.
set -euo pipefail
need=()
if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" > /dev/null; then
  need+=(postgresql)
fi
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  need+=(chromium chromium-driver)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo > /dev/null || {
    echo "system-packages: need root or sudo to install: ${need[*]}" >&2
    exit 1
  }
  sudo=(sudo)
fi
echo "system-packages: installing ${need[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
