#!/usr/bin/env bash
# Writes deploy/crds/ from tests/harness/crds.py (the one source of both CRD schemas), copies it
# into the chart's crds/ and renders deploy/manifests/ (a kustomize base) from the chart with
# default values. `make chart-sync` runs this; tests fail when any of these drifts.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
"$python" -m tests.harness.crds
exec "$python" -m tests.harness.helm sync
