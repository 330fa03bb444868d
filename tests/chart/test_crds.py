"""The chart's CRDs are templates (so `helm upgrade` upgrades them) behind crds.enabled, kept on
uninstall with crds.keep, and say exactly what deploy/crds/ says. On a real API server:
tests/integration/test_chart_lifecycle.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.chart.conftest import Render, find
from tests.harness import helm

KEEP = "helm.sh/resource-policy"
STALE_HINT = "run `make chart-sync` (hack/render-manifests.sh) and commit the result"


def _ours(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d
        for d in find(docs, "CustomResourceDefinition")
        if d["spec"]["group"] == "ecr.pullsecrets.dev"
    }


def _deploy_crds() -> dict[str, dict[str, Any]]:
    docs = [yaml.safe_load(p.read_text()) for p in sorted(helm.DEPLOY_CRDS.glob("*.yaml"))]
    return {d["metadata"]["name"]: d for d in docs}


def test_templates_are_deploy_crds_made_into_templates() -> None:
    """templates/crds/ is what `make chart-sync` makes of deploy/crds/ today."""
    wanted = {p.name: helm.crd_template(p.name, p.read_text()) for p in helm.DEPLOY_CRDS.glob("*.yaml")}
    present = {p.name: p.read_text() for p in helm.CRD_TEMPLATES.glob("*.yaml")}
    assert sorted(present) == sorted(wanted), STALE_HINT
    assert [n for n in wanted if present[n] != wanted[n]] == [], STALE_HINT
    assert not (helm.CHART / "crds").exists(), "crds/ is never upgraded by Helm: the CRDs are templates"


def test_rendered_crds_are_deploy_crds_plus_helm_metadata(render: Render) -> None:
    rendered, original = _ours(render()), _deploy_crds()
    assert sorted(rendered) == sorted(original)
    for name, crd in rendered.items():
        meta = crd["metadata"]
        assert meta["annotations"] == {KEEP: "keep"}
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        stripped = copy.deepcopy(crd)
        del stripped["metadata"]["annotations"]
        added = set(meta["labels"]) - set(original[name]["metadata"]["labels"])
        assert added == {
            "helm.sh/chart",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/component",
            "app.kubernetes.io/part-of",
            "app.kubernetes.io/managed-by",
        }
        for label in added:
            del stripped["metadata"]["labels"][label]
        assert stripped == original[name], f"{name}: the chart's CRD differs from deploy/crds/"


def test_deploy_manifests_carry_the_crds_without_helm_metadata() -> None:
    docs = [d for d in yaml.safe_load_all((helm.MANIFESTS / "crds.yaml").read_text()) if d]
    assert {d["metadata"]["name"]: d for d in docs} == _deploy_crds()
    operator = (helm.MANIFESTS / "operator.yaml").read_text()
    assert "kind: CustomResourceDefinition" not in operator
    assert KEEP not in operator


@pytest.mark.parametrize(
    ("sets", "crds", "kept"),
    [
        ((), 2, True),
        (("crds.keep=false",), 2, False),
        (("crds.enabled=false",), 0, False),
        (("crds.enabled=false", "ha.enabled=true"), 0, False),
    ],
)
def test_crds_enabled_and_keep(render: Render, sets: tuple[str, ...], crds: int, kept: bool) -> None:
    docs = render(sets=sets)
    ours = _ours(docs)
    assert len(ours) == crds
    assert all((KEEP in (d["metadata"].get("annotations") or {})) == kept for d in ours.values())
    if "ha.enabled=true" in sets:  # kopf's peering CRDs follow ha.createPeeringCRDs, not crds.*
        assert len(find(docs, "CustomResourceDefinition")) == 2
