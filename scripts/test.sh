#!/usr/bin/env bash
# The whole test suite: lint, format check, then pytest (unit, moto, Dagster and CLI end to end),
# which lists the 30 slowest tests last.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-packages.sh
scripts/setup-env.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -n 2 --dist loadfile --durations=30 "$@"
