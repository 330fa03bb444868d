# Example alerts (deploy/prometheus/): promtool's syntax check and rule unit tests. Opt-in (not part
# of `make test`, whose unit tests already check the rule file names only defined metrics):
# promtool is built once from its Go module (a few minutes), then cached in .dev/tools.
.PHONY: alerts-check

PROMTOOL_VERSION ?= v0.316.0
PROMTOOL := $(CURDIR)/.dev/tools/promtool-$(PROMTOOL_VERSION)

$(PROMTOOL):
	mkdir -p $(@D)/build
	GOBIN=$(@D)/build go install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
	mv $(@D)/build/promtool $@

alerts-check: venv $(PROMTOOL)
	mkdir -p .dev/prometheus
	$(BIN)/python -c 'import sys, yaml; rule = yaml.safe_load(open(sys.argv[1])); \
	  yaml.safe_dump({"groups": rule["spec"]["groups"]}, sys.stdout, sort_keys=False)' \
	  deploy/prometheus/ecr-pull-secrets.rules.yaml > .dev/prometheus/ecr-pull-secrets.rules.yaml
	cp hack/prometheus/alerts.test.yaml .dev/prometheus/
	$(PROMTOOL) check rules .dev/prometheus/ecr-pull-secrets.rules.yaml
	$(PROMTOOL) test rules .dev/prometheus/alerts.test.yaml
