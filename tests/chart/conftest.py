"""Offline chart checks: helm lint/template (Helm 4 and 3) and schema validation; no cluster."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import helm

CI_VALUES = sorted((helm.CHART / "ci").glob("*-values.yaml"))
HELM_VERSIONS = (helm.HELM4.version, helm.HELM3.version)

Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def helm4() -> Path:
    return helm.ensure_helm(helm.HELM4.version)


@pytest.fixture(scope="session", params=HELM_VERSIONS)
def any_helm(request: pytest.FixtureRequest) -> Path:
    return helm.ensure_helm(request.param)


@cache
def _render(binary: Path, values: tuple[Path, ...], sets: tuple[str, ...], kube_version: str | None) -> str:
    return helm.template(binary, values_files=values, set_values=sets, kube_version=kube_version)


@pytest.fixture(scope="session")
def render(helm4: Path) -> Render:
    """Rendered documents (Helm 4) for values files and --set pairs; cached per arguments."""

    def run(
        *values: Path | str, sets: tuple[str, ...] = (), kube_version: str | None = None
    ) -> list[dict[str, Any]]:
        files = tuple(helm.CHART / "ci" / v if isinstance(v, str) else v for v in values)
        text = _render(helm4, files, sets, kube_version)
        return [d for d in yaml.safe_load_all(text) if d]

    return run


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = find(docs, kind)
    return doc
