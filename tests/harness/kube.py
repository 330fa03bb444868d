"""Plain-dict access to the test cluster, for assertions (the tests' view, not the operator's)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP, VERSION, PLURAL = "ecr.pullsecrets.dev", "v1alpha1", "ecrpullsecrets"
CLUSTER_PLURAL = "clusterecrpullsecrets"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.1) -> T:
    """Polls until `probe` returns something truthy; fails with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Kube:
    def __init__(self, kubeconfig: Path, kubectl: Path) -> None:
        self.kubeconfig = kubeconfig
        self._kubectl = kubectl
        self.api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self._kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def create_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        self.core.create_namespace({"metadata": {"name": name, "labels": dict(labels or {})}})

    def delete_namespace(self, name: str) -> None:
        self.core.delete_namespace(name)

    # -- EcrPullSecrets --------------------------------------------------------------------

    def create_eps(self, namespace: str, name: str, spec: Mapping[str, Any], **meta: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "EcrPullSecret",
            "metadata": {"name": name, **meta},
            "spec": dict(spec),
        }
        return _json(self.custom.create_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, body)

    def get_eps(self, namespace: str, name: str) -> dict[str, Any]:
        return _json(self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)

    def patch_eps(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return _json(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            dict(patch),
            _content_type="application/merge-patch+json",
        )

    def list_eps(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = _json(self.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL)[
            "items"
        ]
        return items

    # -- ClusterEcrPullSecrets ---------------------------------------------------------------

    def create_ceps(self, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterEcrPullSecret",
                "metadata": {"name": name}, "spec": dict(spec)}  # fmt: skip
        return _json(self.custom.create_cluster_custom_object, GROUP, VERSION, CLUSTER_PLURAL, body)

    def get_ceps(self, name: str) -> dict[str, Any]:
        return _json(self.custom.get_cluster_custom_object, GROUP, VERSION, CLUSTER_PLURAL, name)

    def patch_ceps(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return _json(self.custom.patch_cluster_custom_object, GROUP, VERSION, CLUSTER_PLURAL, name,
                     dict(patch), _content_type="application/merge-patch+json")  # fmt: skip

    def delete_ceps(self, name: str) -> None:
        self.custom.delete_cluster_custom_object(GROUP, VERSION, CLUSTER_PLURAL, name)

    def eps_exists(self, namespace: str, name: str) -> bool:
        try:
            self.get_eps(namespace, name)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def ceps_exists(self, name: str) -> bool:
        try:
            self.get_ceps(name)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def label_namespace(self, name: str, labels: Mapping[str, str | None]) -> None:
        self.core.patch_namespace(name, {"metadata": {"labels": dict(labels)}})

    def annotate_namespace(self, name: str, annotations: Mapping[str, str | None]) -> None:
        self.core.patch_namespace(name, {"metadata": {"annotations": dict(annotations)}})

    def service_account(self, namespace: str, name: str) -> dict[str, Any]:
        return _json(self.core.read_namespaced_service_account, name, namespace)

    def delete_eps(self, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def condition(self, namespace: str, name: str, type_: str = "Ready") -> dict[str, Any]:
        conditions = self.get_eps(namespace, name).get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == type_), {})

    def wait_ready(self, namespace: str, name: str, timeout: float = 10.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            body = self.get_eps(namespace, name)
            conditions = body.get("status", {}).get("conditions", [])
            ok = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            return body if ok else None

        return wait_for(f"EcrPullSecret {namespace}/{name} to be Ready", ready, timeout)

    # -- Secrets and Events ----------------------------------------------------------------

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return _json(self.core.read_namespaced_secret, name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def events(self, namespace: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = _json(self.core.list_namespaced_event, namespace)["items"]
        return items


def _json(call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    response = call(*args, _preload_content=False, **kwargs)
    result: dict[str, Any] = json.loads(response.data)
    return result
