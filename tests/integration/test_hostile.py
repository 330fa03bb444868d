"""Hostile specs that got past admission (stored under an older, looser CRD) reach the operator:
each ends Ready=False with a stable reason and a Warning Event naming the field, can be deleted in
seconds, and nothing the operator does leaves the resource's namespace. The operator runs as a
ServiceAccount bound to cluster-admin, so RBAC would not have stopped it: the audit log shows it
stopped itself. A canary in another namespace keeps renewing the whole time.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import dockerconfig
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube, wait_for
from tests.hostile_specs import CASES, EPS, HostileSpec
from tests.integration.conftest import CRDS, StartOperator

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
CRD_FILE = CRDS / "ecr.pullsecrets.dev_ecrpullsecrets.yaml"
# What a resource the operator cannot serve says; anything else is a bug or a traceback loop.
STABLE_REASONS = {"InvalidSpec", "AuthUnresolved", "AuthNotAllowed"}
VICTIM_ROLE = "arn:aws:iam::444444444444:role/victim"
NAMESPACED_CASES = [case for case in CASES if case.kind == EPS]


def loose_crd() -> dict[str, Any]:
    """The EcrPullSecret CRD as an early release might have had it: spec is anything."""
    crd: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
    loose = copy.deepcopy(crd)
    (version,) = loose["spec"]["versions"]
    version["schema"]["openAPIV3Schema"]["properties"]["spec"] = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    return loose


def admitted(kube: Kube, namespace: str, spec: dict[str, Any]) -> bool:
    manifest = {
        "apiVersion": "ecr.pullsecrets.dev/v1alpha1",
        "kind": "EcrPullSecret",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": spec,
    }
    result = kube.kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
    return result.returncode == 0


@contextmanager
def crd_before_the_upgrade(kube: Kube, namespace: str) -> Iterator[None]:
    """Swaps in the loose CRD, and the real one back afterwards; each swap is waited for by
    asking the API server whether it now admits a hostile spec."""
    probe = {"registries": [EAST], "renewBefore": "1s"}
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump(loose_crd()))
    try:
        wait_for("the loose CRD to be served", lambda: admitted(kube, namespace, probe), timeout=30)
        yield
    finally:
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
        wait_for("the real CRD to be back", lambda: not admitted(kube, namespace, probe), timeout=30)


@pytest.fixture
def other_namespaces(kube: Kube) -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:5]
    canary, victim = f"canary-{suffix}", f"victim-{suffix}"
    for name in (canary, victim):
        kube.create_namespace(name)
    yield canary, victim
    for name in (canary, victim):
        kube.delete_namespace(name)


@pytest.fixture
def operator_identity(kube: Kube, control_plane: ControlPlane, namespace: str) -> Iterator[tuple[str, Path]]:
    """A ServiceAccount bound to cluster-admin: only the operator's own code limits it."""
    name = f"hostile-operator-{uuid.uuid4().hex[:5]}"
    kube.core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(binding))
    token = kube.core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    yield f"system:serviceaccount:{namespace}:{name}", control_plane.kubeconfig_for_token(token, name=name)
    kube.kubectl("delete", "clusterrolebinding", name, "--ignore-not-found")


def victim_objects(kube: Kube, victim: str) -> None:
    """What a hostile spec would like to reach: an IRSA ServiceAccount and static keys."""
    kube.core.create_namespaced_service_account(
        victim, {"metadata": {"name": "victim", "annotations": {"eks.amazonaws.com/role-arn": VICTIM_ROLE}}}
    )
    kube.core.create_namespaced_secret(
        victim,
        {
            "metadata": {"name": "aws-keys"},
            "stringData": {"AWS_ACCESS_KEY_ID": "AKIAVICTIM", "AWS_SECRET_ACCESS_KEY": "victim-secret"},
        },
    )


def aimed_at(victim: str, case: HostileSpec) -> HostileSpec:
    """The case with its path attacks pointed at the victim namespace of this run."""
    text = yaml.safe_dump(case.spec).replace("/other/", f"/{victim}/")
    return HostileSpec(case.id, case.kind, yaml.safe_load(text), case.field)


def status_writable(kube: Kube, namespace: str, name: str) -> bool:
    """A value stored under the loose CRD with a type that today's CEL rules cannot evaluate makes
    the API server refuse every write to the object, status included: then the Event is the verdict."""
    result = kube.kubectl(
        *("patch", "ecrpullsecret", name, "-n", namespace, "--subresource=status", "--type=merge"),
        *("-p", '{"status": {"secretName": "probe"}}', "--dry-run=server"),
        check=False,
    )
    return result.returncode == 0


def readiness(kube: Kube, namespace: str) -> dict[str, dict[str, Any]]:
    """Each resource's stable Ready=False verdict, or {} (none yet, or no status can be written)."""
    found = {}
    for item in kube.list_eps():
        if item["metadata"]["namespace"] == namespace:
            conditions = (item.get("status") or {}).get("conditions") or []
            ready = next((c for c in conditions if c["type"] == "Ready"), {})
            stable = ready.get("status") == "False" and ready.get("reason") in STABLE_REASONS
            found[item["metadata"]["name"]] = ready if stable else {}
    return found


def warnings(kube: Kube, namespace: str) -> dict[str, list[str]]:
    """Warning Event messages with a stable reason, by object name."""
    found: dict[str, list[str]] = {}
    for event in kube.events(namespace):
        if event["type"] == "Warning" and event["reason"] in STABLE_REASONS:
            found.setdefault(event["involvedObject"]["name"], []).append(event["message"])
    return found


def test_hostile_specs_stored_before_the_upgrade_stay_in_their_namespace(
    *,
    kube: Kube,
    control_plane: ControlPlane,
    namespace: str,
    other_namespaces: tuple[str, str],
    operator_identity: tuple[str, Path],
    start_operator: StartOperator,
    aws: AwsEmulator,
) -> None:
    canary, victim = other_namespaces
    user, kubeconfig = operator_identity
    victim_objects(kube, victim)
    aws.token_lifetime = 15  # the canary renews every ~10 s
    start_operator(namespaces=[namespace, canary], env={"KUBECONFIG": str(kubeconfig)})

    kube.create_eps(canary, "canary", {"registries": [EAST]})
    kube.wait_ready(canary, "canary", timeout=15)
    kube.create_eps(namespace, "finalized", {"registries": [EAST], "serviceAccounts": {"names": ["default"]}})
    wait_for(
        "the pull Secret on the default ServiceAccount",
        lambda: (
            {"name": "finalized"}
            in (kube.service_account(namespace, "default").get("imagePullSecrets") or [])
        ),
        timeout=15,
    )
    started = time.time()

    cases = [aimed_at(victim, case) for case in NAMESPACED_CASES]
    with crd_before_the_upgrade(kube, namespace):
        for i, case in enumerate(cases):
            kube.create_eps(namespace, f"hostile-{i}", case.spec)
        # A spec that was fine, broken afterwards: its finalizer must still come off.
        kube.patch_eps(
            namespace, "finalized", {"spec": {"serviceAccounts": {"selector": {"matchLabels": "app=web"}}}}
        )
    restored = time.time()

    # Every case gets a stable verdict, within seconds, and says which field is wrong: a Warning
    # Event always, and Ready=False wherever the API server still lets status be written.
    names = {f"hostile-{i}": case for i, case in enumerate(cases)}

    def judged() -> dict[str, dict[str, Any]] | None:
        said = warnings(kube, namespace)
        if not all(name in said for name in names):
            return None
        verdicts = {name: ready for name, ready in readiness(kube, namespace).items() if name in names}
        pending = [name for name in names if not verdicts.get(name)]
        # No Ready=False yet is a verdict only where the API server refuses to write status.
        return None if any(status_writable(kube, namespace, name) for name in pending) else verdicts

    verdicts = wait_for("a verdict on every hostile resource", judged, timeout=30, interval=0.5)
    print(
        f"{len(cases)} hostile resources judged {time.time() - started:.1f}s after the first was stored, "
        f"{time.time() - restored:.1f}s after the real CRD was back"
    )
    said = warnings(kube, namespace)
    unnamed = {
        case.id: said[name] for name, case in names.items() if not any(case.field in m for m in said[name])
    }
    assert not unnamed, unnamed
    wrong = {
        names[name].id: (ready["reason"], ready["message"])
        for name, ready in verdicts.items()
        if ready and (ready["reason"] != "InvalidSpec" or names[name].field not in ready["message"])
    }
    assert not wrong, wrong
    silent = [name for name, ready in verdicts.items() if not ready]
    print(f"{len(silent)} of {len(names)} stored specs make the object unwritable: Event only")
    assert wait_for("finalized to be judged", lambda: "finalized" in warnings(kube, namespace))

    # Deletion completes in seconds, the broken one's finalizer included.
    deleting = time.monotonic()
    for name in [f"hostile-{i}" for i in range(len(cases))] + ["finalized"]:
        kube.delete_eps(namespace, name)
    wait_for(
        "every hostile resource to be gone",
        lambda: (
            not any(kube.eps_exists(namespace, f"hostile-{i}") for i in range(len(cases)))
            and not kube.eps_exists(namespace, "finalized")
        ),
        timeout=15,
        interval=0.5,
    )
    print(f"{len(cases) + 1} resources deleted in {time.monotonic() - deleting:.1f}s")
    assert {"name": "finalized"} not in (
        kube.service_account(namespace, "default").get("imagePullSecrets") or []
    )

    # The canary renewed on schedule all along: two more tokens, none of them ever seen expired.
    seen: set[str] = set()

    def canary_renewed_twice() -> bool:
        secret = kube.get_secret(canary, "canary")
        assert secret is not None
        [password] = dockerconfig.passwords(secret)
        assert aws.issued_tokens()[password] > time.time(), "the canary holds an expired token"
        seen.add(password)
        return len(seen) >= 3

    wait_for("two canary renewals", canary_renewed_twice, timeout=40, interval=0.25)
    assert kube.condition(canary, "canary")["status"] == "True"

    # Nothing the operator asked for lay outside the two namespaces it serves.
    requests = [e for e in control_plane.audit_events() if e.user == user]
    assert any(e.resource == "secrets" and e.namespace == canary for e in requests), "the audit log sees it"
    outside = sorted(
        {f"{e.verb} {e.resource}/{e.subresource} {e.namespace}/{e.name}" for e in requests if e.namespace}
        - {
            f"{e.verb} {e.resource}/{e.subresource} {e.namespace}/{e.name}"
            for e in requests
            if e.namespace in (namespace, canary)
        }
    )
    assert not outside, outside
    assert not [e for e in requests if e.subresource == "token"], "no TokenRequest for anyone"


def test_a_namespace_beyond_its_chain_quota_waits_for_room(
    kube: Kube, namespace: str, start_operator: StartOperator, aws: AwsEmulator
) -> None:
    """With room for one credential chain per namespace, a second chain is refused with
    QuotaExceeded, before any AWS call, until the first resource goes."""
    start_operator(args=["--max-chains-per-namespace", "1"])

    def chained(role: str) -> dict[str, Any]:
        return {
            "registries": [EAST],
            "auth": {"roleChain": [{"roleArn": f"arn:aws:iam::123456789012:role/{role}"}]},
        }

    kube.create_eps(namespace, "first", chained("first"))
    kube.wait_ready(namespace, "first", timeout=15)
    kube.create_eps(namespace, "second", chained("second"))
    refused = wait_for(
        "QuotaExceeded",
        lambda: (c := kube.condition(namespace, "second")).get("reason") == "QuotaExceeded" and c,
    )
    assert refused["status"] == "False"
    assert "--max-chains-per-namespace" in refused["message"]
    assert not aws.requests("AssumeRole") or all(
        r["RoleArn"] != "arn:aws:iam::123456789012:role/second" for r in aws.requests("AssumeRole")
    ), "a refused chain makes no AWS call"

    kube.delete_eps(namespace, "first")
    kube.wait_ready(namespace, "second", timeout=20)  # retried after its backoff, with room now
