"""The local control plane behaves like a cluster where the operator relies on it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.harness.controlplane import ControlPlane

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    # Not the shared session control plane: these tests restart the apiserver.
    with ControlPlane(tmp_path_factory.mktemp("own-controlplane"), audit_log=True) as cp:
        yield cp


@pytest.fixture
def api(own_control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(config_file=str(own_control_plane.kubeconfig)) as api_client:
        yield api_client


@pytest.fixture
def ns(api: client.ApiClient) -> str:
    name = f"test-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f}s")
        time.sleep(0.5)


def gone(read: Callable[[], object]) -> Callable[[], bool]:
    def check() -> bool:
        try:
            read()
        except ApiException as err:
            if err.status == 404:
                return True
            raise
        return False

    return check


def test_deleting_an_owner_garbage_collects_its_dependents(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    assert owner.metadata is not None
    assert owner.metadata.uid
    reference = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    core.create_namespaced_config_map(
        ns,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dependent", owner_references=[reference])),
    )

    core.delete_namespaced_config_map("owner", ns)

    eventually(gone(lambda: core.read_namespaced_config_map("dependent", ns)), "garbage collection")


def service_account_token(core: client.CoreV1Api, ns: str, audiences: list[str]) -> str:
    spec = client.V1TokenRequestSpec(audiences=audiences, expiration_seconds=600)
    request = client.AuthenticationV1TokenRequest(spec=spec)
    status = core.create_namespaced_service_account_token("default", ns, request).status
    assert status is not None
    assert status.token
    return status.token


def test_token_request_yields_a_working_service_account_kubeconfig(
    own_control_plane: ControlPlane, api: client.ApiClient, ns: str
) -> None:
    core = client.CoreV1Api(api)
    # The ServiceAccount controller creates "default" asynchronously after the namespace.
    eventually(lambda: bool(core.list_namespaced_service_account(ns).items), "default ServiceAccount")

    # No audiences: the apiserver's own, so the token authenticates against it.
    kubeconfig = own_control_plane.kubeconfig_for_token(service_account_token(core, ns, []), "sa")
    with config.new_client_from_config(config_file=str(kubeconfig)) as as_sa:
        review = client.AuthenticationV1Api(as_sa).create_self_subject_review(client.V1SelfSubjectReview())
    assert review.status is not None
    assert review.status.user_info is not None
    assert review.status.user_info.username == f"system:serviceaccount:{ns}:default"

    # A token minted for STS must be refused by the apiserver.
    sts_token = service_account_token(core, ns, ["sts.amazonaws.com"])
    kubeconfig = own_control_plane.kubeconfig_for_token(sts_token, "sts")
    with (
        config.new_client_from_config(config_file=str(kubeconfig)) as as_sts,
        pytest.raises(ApiException) as refused,
    ):
        client.AuthenticationV1Api(as_sts).create_self_subject_review(client.V1SelfSubjectReview())
    assert refused.value.status == 401


def test_namespace_deletion_finishes(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))

    core.delete_namespace(ns)

    eventually(gone(lambda: core.read_namespace(ns)), "namespace deletion")


def test_audit_log_attributes_writes_to_users(
    own_control_plane: ControlPlane, api: client.ApiClient, ns: str
) -> None:
    client.CoreV1Api(api).create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name="audited"), string_data={"k": "v"})
    )

    def creates() -> list[tuple[str, str, int]]:
        return [
            (e.user, e.verb, e.code)
            for e in own_control_plane.audit_events()
            if e.is_write and e.resource == "secrets" and e.namespace == ns and e.name == "audited"
        ]

    eventually(lambda: bool(creates()), "audit event", timeout=10)
    assert creates() == [("admin", "create", 201)]
    # Built-in resources outside the policy stay out of the log.
    assert not [e for e in own_control_plane.audit_events() if e.resource == "namespaces"]


def test_apiserver_restart_keeps_state(own_control_plane: ControlPlane, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    name = f"restart-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    own_control_plane.restart_apiserver()

    metadata = core.read_namespace(name).metadata
    assert metadata is not None
    assert metadata.name == name
