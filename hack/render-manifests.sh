#!/usr/bin/env bash
# Copies deploy/crds/ into the chart's crds/ and renders deploy/manifests/ (a kustomize base) from
# the chart with default values. `make chart-sync` runs this; tests/chart fails when either drifts.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m tests.harness.helm sync
