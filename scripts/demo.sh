#!/usr/bin/env bash
# Quick start: install, emulate AWS on 127.0.0.1, seed demo data, run the job once, then serve
# the Dagster UI on http://127.0.0.1:3000 with that run in its history. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-env.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
exec .venv/bin/cleanup-pipeline local "$@"
