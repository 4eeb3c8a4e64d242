#!/usr/bin/env bash
# Runs the browser test and copies the screenshots it took into docs/screenshots/, the images of
# "Reviewing a run" in docs/operations.md and of docs/requests.md: what the docs show is what the
# test saw and asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
shots=(01-launchpad-dry-run 02-dry-run-succeeded 03-candidate-report 07-guard-failed
  15-open-request-listed 16-erasure-run-report)
.venv/bin/python -m pytest tests/browser -q -p no:cacheprovider
mkdir -p docs/screenshots
for name in "${shots[@]}"; do
  cp "test-artifacts/browser/$name.png" "docs/screenshots/$name.png"
done
echo "docs/screenshots: ${shots[*]}"
