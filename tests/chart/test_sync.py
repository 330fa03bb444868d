"""Copies stay copies: the chart's files/ and deploy/manifests/ match their sources (the CRD
templates: tests/chart/test_crds.py); the chart's container arguments and environment are ones the
operator's CLI accepts."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pytest
import yaml

from ecr_pull_secrets import settings
from tests.chart.conftest import CI_VALUES, Render, only
from tests.harness import helm
from tests.harness.binaries import ensure_binaries

STALE = "run `make chart-sync` (hack/render-manifests.sh) and commit the result"
# Flags the chart passes that another change adds to the operator; drop an entry once it lands.
PENDING_FLAGS: dict[str, str] = {}


@pytest.mark.parametrize(("source", "copy"), helm.COPIES, ids=["prometheus-rules"])
def test_chart_copies_are_byte_identical(source: Path, copy: Path) -> None:
    """files/ is deploy/prometheus/: the chart ships, never forks, it."""
    originals = {p.name: p.read_bytes() for p in source.glob("*.yaml")}
    copies = {p.name: p.read_bytes() for p in copy.glob("*.yaml")}
    assert sorted(copies) == sorted(originals), STALE
    different = [name for name in originals if copies[name] != originals[name]]
    assert not different, f"{different} differ from {source.relative_to(helm.ROOT)}: {STALE}"


@pytest.mark.parametrize("directory", [helm.MANIFESTS, helm.ADMISSION], ids=["manifests", "admission"])
def test_deploy_manifests_are_the_chart_rendered_with_defaults(helm4: Path, directory: Path) -> None:
    wanted = (helm.render_manifests if directory == helm.MANIFESTS else helm.render_admission)(helm4)
    present = {p.name: p.read_text() for p in directory.glob("*.yaml")}
    assert sorted(present) == sorted(wanted), STALE
    stale = [name for name in wanted if present[name] != wanted[name]]
    assert not stale, f"deploy/{directory.name}/{stale} differ from the chart: {STALE}"


def test_deploy_manifests_build_with_kustomize() -> None:
    out = subprocess.run(
        [str(ensure_binaries() / "kubectl"), "kustomize", str(helm.MANIFESTS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    kinds = sorted({(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out) if d})
    assert ("Namespace", helm.MANIFESTS_NAMESPACE) in kinds
    assert ("CustomResourceDefinition", "ecrpullsecrets.ecr.pullsecrets.dev") in kinds
    assert ("Deployment", "ecr-pull-secret-operator") in kinds
    assert "managed-by: Helm" not in out
    assert "helm.sh/chart" not in out


@pytest.mark.parametrize("values", CI_VALUES, ids=[p.name.removesuffix("-values.yaml") for p in CI_VALUES])
def test_container_args_and_env_are_what_the_cli_reads(render: Render, values: Path) -> None:
    (container,) = only(render(values), "Deployment")["spec"]["template"]["spec"]["containers"]
    command, *args = container["args"]
    assert command == "run"
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    chart_settings = {k: v for k, v in env.items() if k.startswith(settings.ENV_PREFIX)}
    parser = argparse.ArgumentParser(exit_on_error=False)
    settings.add_arguments(parser, env=chart_settings)
    parsed, unknown = parser.parse_known_args(args)
    unknown_flags = {a.split("=", 1)[0] for a in unknown}
    assert unknown_flags <= set(PENDING_FLAGS), f"the operator does not know {unknown_flags}"
    # Every ECR_PULL_SECRETS_* variable the chart sets reaches a setting.
    defaults, _ = argparse.ArgumentParser(), None
    settings.add_arguments(defaults, env={})
    baseline = vars(defaults.parse_args([]))
    for name, value in chart_settings.items():
        key = name.removeprefix(settings.ENV_PREFIX).lower()
        parsed_value = vars(parsed)[key]
        assert str(parsed_value).lower() == value.lower(), (name, parsed_value, value)
        assert key in baseline, f"{name} is not an operator setting"
    if parsed.policy is not None:
        assert parsed.policy == "/etc/ecr-pull-secrets/policy.yaml"
