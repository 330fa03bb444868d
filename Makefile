# Everything a developer or CI needs; `make test` is what .ci/run calls.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: all venv lint unit integration test binaries registry-tools dev-up dev-down demo clean

# Feature areas add their own targets here (chart checks, image build, benchmarks).
include $(wildcard hack/make/*.mk)

all: test

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Builds kube-apiserver, kube-controller-manager, kubectl and etcd from their Go modules once per
# version (cached outside the repo), or takes them from $KUBEBUILDER_ASSETS.
binaries: venv
	$(BIN)/python -m tests.harness.binaries

# The registry tests run the CNCF distribution registry and skopeo, from Debian packages: installed
# here when missing and we are root with apt-get (CI); elsewhere install them once yourself.
registry-tools:
	@command -v docker-registry >/dev/null && command -v skopeo >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends docker-registry skopeo >/dev/null; \
	  else echo "registry-tools: not root with apt-get; install docker-registry and skopeo yourself" >&2; fi; }

unit: venv
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

integration: venv binaries registry-tools
	$(BIN)/pytest -q tests/integration $(PYTEST_ARGS)

test: lint binaries registry-tools
	$(BIN)/pytest tests $(PYTEST_ARGS)

dev-up: venv binaries
	$(BIN)/python -m tests.harness.devenv up

dev-down: venv
	$(BIN)/python -m tests.harness.devenv down

demo: venv binaries
	$(BIN)/python -m tests.harness.demo

clean: dev-down
	rm -rf $(VENV) .dev .pytest_cache .mypy_cache .ruff_cache
