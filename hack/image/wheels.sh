#!/usr/bin/env bash
# Fills hack/image/wheelhouse/ with wheels for every runtime dependency pinned in constraints.txt,
# plus setuptools (the project's build backend), built or downloaded on this machine, so that the
# Dockerfile can build with --build-arg PIP_NO_INDEX=1 where no package index is reachable.
# The wheels match this machine's platform and Python: build for the same (linux, CPython 3.11).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=hack/image/wheelhouse
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "the image runs Python 3.11"'
find "$OUT" -name '*.whl' -delete
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$OUT" \
  --constraint constraints.txt . 'setuptools>=75'
# The project's own wheel is always built from source inside the image.
rm -f "$OUT"/ecr_pull_secret_operator-*.whl
echo "[wheels] $(find "$OUT" -name '*.whl' | wc -l) wheels in $OUT" >&2
