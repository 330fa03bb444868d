"""ClusterEcrPullSecret fan-out, ServiceAccount patching, drift repair and adoption, on the real
apiserver with the controller-manager (garbage collection) and the AWS emulator."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.harness import dockerconfig
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.kube import Kube, wait_for
from tests.harness.operator_process import OperatorProcess
from tests.integration.conftest import StartOperator

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
WEST = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
ADDED = "ecr.pullsecrets.dev/image-pull-secrets"


class Fleet:
    """Namespaces with one random prefix, an operator watching only them, and cleanup."""

    def __init__(self, kube: Kube, start_operator: StartOperator) -> None:
        self.kube = kube
        self.prefix = f"fan-{uuid.uuid4().hex[:5]}"
        self.namespaces: list[str] = []
        self.resources: list[str] = []
        self._start = start_operator
        self.operator: OperatorProcess | None = None

    def namespace(self, suffix: str, labels: dict[str, str] | None = None) -> str:
        name = f"{self.prefix}-{suffix}"
        self.kube.create_namespace(name, labels)
        self.namespaces.append(name)
        return name

    def start(self) -> OperatorProcess:
        self.operator = self._start(namespaces=[f"{self.prefix}-*"])
        return self.operator

    def ceps(self, spec: dict[str, Any], name: str | None = None) -> str:
        name = name or f"{self.prefix}-pull"
        scoped = {"namespaces": {"include": [f"{self.prefix}-*"]}, **spec}
        self.kube.create_ceps(name, scoped)
        self.resources.append(name)
        return name

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.kube.get_secret(namespace, name)

    def close(self) -> None:
        for name in self.resources:
            if self.kube.ceps_exists(name):
                self.kube.delete_ceps(name)
        for name in self.namespaces:
            self.kube.delete_namespace(name)


@pytest.fixture
def fleet(kube: Kube, start_operator: StartOperator) -> Iterator[Fleet]:
    fleet = Fleet(kube, start_operator)
    yield fleet
    fleet.close()


def present(fleet: Fleet, name: str) -> Callable[[str], bool]:
    return lambda ns: fleet.secret(ns, name) is not None


def test_selector_and_globs_choose_namespaces(fleet: Fleet, kube: Kube, aws: AwsEmulator) -> None:
    team_a = fleet.namespace("team-a", {"ecr": "yes"})
    team_b = fleet.namespace("team-b", {"ecr": "yes"})
    unlabelled = fleet.namespace("team-c")
    excluded = fleet.namespace("sandbox", {"ecr": "yes"})
    ignored = fleet.namespace("team-d", {"ecr": "yes"})
    kube.annotate_namespace(ignored, {"ecr.pullsecrets.dev/ignore": "true"})
    fleet.start()

    name = fleet.ceps(
        {
            "registries": [EAST, WEST],
            "secretName": "ecr",
            "namespaceSelector": {"matchLabels": {"ecr": "yes"}},
            "namespaces": {"include": [f"{fleet.prefix}-*"], "exclude": [f"{fleet.prefix}-sandbox"]},
        }
    )
    wait_for("Secrets in team-a and team-b", lambda: all(map(present(fleet, "ecr"), [team_a, team_b])))
    status = wait_for(
        "counts", lambda: (s := kube.get_ceps(name).get("status", {})).get("readyNamespaces") == 2 and s
    )
    assert status["targetNamespaces"] == 2
    assert not any(map(present(fleet, "ecr"), [unlabelled, excluded, ignored]))
    assert aws.calls("GetAuthorizationToken", service="ecr") == 2  # one per region, not per namespace
    secret_a, secret_b = fleet.secret(team_a, "ecr"), fleet.secret(team_b, "ecr")
    assert secret_a is not None
    assert secret_b is not None
    assert secret_a["data"] == secret_b["data"]
    assert set(dockerconfig.auths(secret_a)) == {EAST, WEST}
    [owner] = secret_a["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("ClusterEcrPullSecret", name)


def test_new_namespace_served_within_2s_and_relabel_out_of_scope(
    fleet: Fleet, kube: Kube, aws: AwsEmulator
) -> None:
    first = fleet.namespace("one", {"ecr": "yes"})
    fleet.start()
    fleet.ceps(
        {"registries": [EAST], "secretName": "ecr", "namespaceSelector": {"matchLabels": {"ecr": "yes"}}}
    )
    wait_for("the first Secret", lambda: present(fleet, "ecr")(first))

    started = time.monotonic()
    later = fleet.namespace("later", {"ecr": "yes"})
    wait_for("the new namespace's Secret", lambda: present(fleet, "ecr")(later), timeout=2)
    print(f"new namespace served in {time.monotonic() - started:.2f}s")
    assert aws.calls("GetAuthorizationToken", service="ecr") == 1

    kube.label_namespace(later, {"ecr": None})
    wait_for(
        "the Secret to go when the namespace leaves scope",
        lambda: not present(fleet, "ecr")(later),
        timeout=5,
    )
    kube.label_namespace(later, {"ecr": "yes"})
    wait_for("the Secret back", lambda: present(fleet, "ecr")(later), timeout=2)

    kube.annotate_namespace(later, {"ecr.pullsecrets.dev/ignore": "true"})
    wait_for("opt-out to remove the Secret", lambda: not present(fleet, "ecr")(later), timeout=5)
    assert present(fleet, "ecr")(first)


def test_deleted_and_edited_secrets_are_restored_within_2s(
    fleet: Fleet, kube: Kube, aws: AwsEmulator
) -> None:
    ns = fleet.namespace("drift")
    fleet.start()
    fleet.ceps({"registries": [EAST], "secretName": "ecr"})
    original = wait_for("the Secret", lambda: fleet.secret(ns, "ecr"))

    kube.core.delete_namespaced_secret("ecr", ns)
    started = time.monotonic()
    restored = wait_for(
        "the deleted Secret to come back",
        lambda: (s := fleet.secret(ns, "ecr")) and s["metadata"]["uid"] != original["metadata"]["uid"] and s,
        timeout=2,
    )
    print(f"deleted Secret restored in {time.monotonic() - started:.2f}s")
    assert restored["data"] == original["data"]

    tampered = base64.b64encode(b'{"auths": {}}').decode()
    kube.core.patch_namespaced_secret("ecr", ns, {"data": {".dockerconfigjson": tampered}})
    started = time.monotonic()
    wait_for(
        "the edited Secret to be repaired",
        lambda: (s := fleet.secret(ns, "ecr")) and s["data"] == original["data"],
        timeout=2,
    )
    print(f"edited Secret repaired in {time.monotonic() - started:.2f}s")
    assert fleet.secret(ns, "ecr")["metadata"]["uid"] == restored["metadata"]["uid"]  # type: ignore[index]
    assert aws.calls("GetAuthorizationToken", service="ecr") == 1  # repaired from the tokens held


def test_service_accounts_patched_by_name_selector_and_all(fleet: Fleet, kube: Kube) -> None:
    ns = fleet.namespace("accounts")
    for sa, labels in (("builder", {"pull": "ecr"}), ("runner", {}), ("other", {})):
        kube.core.create_namespaced_service_account(
            ns, {"metadata": {"name": sa, "labels": labels}, "imagePullSecrets": [{"name": "theirs"}]}
        )
    fleet.start()
    scopes: dict[str, dict[str, Any]] = {
        "by-name": {"names": ["runner"]},
        "by-label": {"selector": {"matchLabels": {"pull": "ecr"}}},
        "everyone": {"all": True},
    }
    for secret, scope in scopes.items():
        spec = {"registries": [EAST], "secretName": secret, "serviceAccounts": scope}
        fleet.ceps(spec, name=f"{fleet.prefix}-{secret}")
    by_name = f"{fleet.prefix}-by-name"

    def pull_secrets(sa: str) -> list[str]:
        return [ref["name"] for ref in kube.service_account(ns, sa).get("imagePullSecrets") or []]

    wanted = {
        "builder": ["by-label", "everyone", "theirs"],
        "runner": ["by-name", "everyone", "theirs"],
        "other": ["everyone", "theirs"],
        "default": ["everyone"],
    }
    # Three resources patch the same accounts, each write conditional on the resourceVersion it
    # saw: a loser of that race writes again after the next watch event. Wait for the end state.
    wait_for(
        "ServiceAccounts patched",
        lambda: all(sorted(pull_secrets(sa)) == want for sa, want in wanted.items()),
        timeout=20,
    )
    assert pull_secrets("builder")[0] == "theirs"  # others' entries untouched, first as they were

    kube.core.create_namespaced_service_account(
        ns, {"metadata": {"name": "later", "labels": {"pull": "ecr"}}}
    )
    wait_for(
        "a later ServiceAccount patched", lambda: sorted(pull_secrets("later")) == ["by-label", "everyone"]
    )
    assert all(
        len(pull_secrets(sa)) == len(set(pull_secrets(sa))) for sa in ("builder", "runner", "other", "later")
    )

    everyone_uid = kube.get_ceps(f"{fleet.prefix}-everyone")["metadata"]["uid"]
    kube.delete_ceps(by_name)
    wait_for("the resource gone (finalizer released)", lambda: not kube.ceps_exists(by_name), timeout=10)

    def runner() -> tuple[list[str], str | None]:
        account = kube.service_account(ns, "runner")
        names = sorted(ref["name"] for ref in account.get("imagePullSecrets") or [])
        return names, (account["metadata"].get("annotations") or {}).get(ADDED)

    # The finalizer goes only after the entry is removed (one patch: list and annotation together).
    assert runner() == (["everyone", "theirs"], f"everyone@{everyone_uid}")


def test_fail_never_touches_a_foreign_secret_and_adopt_takes_it_over(
    fleet: Fleet, kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    foreign = {"name": "ecr", "labels": {"team": "a"}, "annotations": {"note": "hand-made"}}
    auths = base64.b64encode(b'{"auths": {}}').decode()
    kube.core.create_namespaced_secret(
        namespace,
        {"metadata": foreign, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": auths}},
    )
    start_operator()
    kube.create_eps(namespace, "app", {"registries": [EAST], "secretName": "ecr"})
    ready = wait_for(
        "a conflict", lambda: (c := kube.condition(namespace, "app")).get("status") == "False" and c
    )
    assert ready["reason"] == "SecretConflict"
    assert "secretPolicy: Adopt" in ready["message"]
    assert kube.get_secret(namespace, "ecr")["data"][".dockerconfigjson"] == auths  # type: ignore[index]
    assert "SecretConflict" in {e["reason"] for e in kube.events(namespace)}

    kube.patch_eps(namespace, "app", {"spec": {"secretPolicy": "Adopt"}})
    kube.wait_ready(namespace, "app", timeout=10)
    adopted = kube.get_secret(namespace, "ecr")
    assert adopted is not None
    assert set(dockerconfig.auths(adopted)) == {EAST}
    assert adopted["metadata"]["labels"]["team"] == "a"
    assert adopted["metadata"]["annotations"]["note"] == "hand-made"
    assert adopted["metadata"]["ownerReferences"][0]["name"] == "app"


def test_two_resources_on_one_secret_name_are_reported_not_fought_over(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.create_eps(namespace, "first", {"registries": [EAST], "secretName": "shared"})
    kube.wait_ready(namespace, "first")
    kube.create_eps(
        namespace, "second", {"registries": [WEST], "secretName": "shared", "secretPolicy": "Adopt"}
    )
    ready = wait_for(
        "the later one to report",
        lambda: (c := kube.condition(namespace, "second")).get("status") == "False" and c,
    )
    assert ready["reason"] == "SecretConflict"
    assert "EcrPullSecret first" in ready["message"]
    version = kube.get_secret(namespace, "shared")["metadata"]["resourceVersion"]  # type: ignore[index]
    time.sleep(3)
    secret = kube.get_secret(namespace, "shared")
    assert secret is not None
    assert secret["metadata"]["resourceVersion"] == version  # nobody is fighting over it
    assert set(dockerconfig.auths(secret)) == {EAST}


def test_500_namespaces(kube: Kube, start_operator: StartOperator, aws: AwsEmulator) -> None:
    prefix = f"many-{uuid.uuid4().hex[:5]}"
    names = [f"{prefix}-{i:03d}" for i in range(500)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(kube.create_namespace, names))
    try:
        start_operator(namespaces=[f"{prefix}-*"])
        started = time.monotonic()
        kube.create_ceps(prefix, {"registries": [EAST, WEST], "namespaces": {"include": [f"{prefix}-*"]}})
        status = wait_for(
            "500 namespaces ready",
            lambda: (s := kube.get_ceps(prefix).get("status", {})).get("readyNamespaces") == 500 and s,
            timeout=120,
            interval=0.5,
        )
        elapsed = time.monotonic() - started
        print(f"500 namespaces Ready in {elapsed:.1f}s; token calls {aws.calls('GetAuthorizationToken')}")
        assert status["targetNamespaces"] == 500
        assert aws.calls("GetAuthorizationToken", service="ecr") == 2  # one per region
        secrets = kube.core.list_secret_for_all_namespaces(
            label_selector="app.kubernetes.io/managed-by=ecr-pull-secret-operator", _preload_content=False
        )
        mine = [s for s in json.loads(secrets.data)["items"] if s["metadata"]["namespace"].startswith(prefix)]
        assert len(mine) == 500
    finally:
        if kube.ceps_exists(prefix):
            kube.delete_ceps(prefix)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(kube.delete_namespace, names))
