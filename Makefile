# Everything a developer or CI needs; `make test` is what .ci/run calls.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: all venv lint unit integration test binaries dev-up dev-down demo clean

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

unit: venv
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

integration: venv binaries
	$(BIN)/pytest -q tests/integration $(PYTEST_ARGS)

test: lint binaries
	$(BIN)/pytest tests $(PYTEST_ARGS)

dev-up: venv binaries
	$(BIN)/python -m tests.harness.devenv up

dev-down: venv
	$(BIN)/python -m tests.harness.devenv down

demo: venv binaries
	$(BIN)/python -m tests.harness.demo

clean: dev-down
	rm -rf $(VENV) .dev .pytest_cache .mypy_cache .ruff_cache
