"""The environment of a benchmark: a private control plane with an audit log, the AWS emulator
(in this process or its own), the CRDs, the operator running as a real subprocess under its own
ServiceAccount (the chart's RBAC, so the audit log tells its writes apart from ours), bulk API
helpers and the counting of the operator's writes in the audit log.

All times are `time.monotonic()` in this process; all figures are counts and ratios from one run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from kubernetes import client, config
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.binaries import ensure_binaries
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import CLUSTER_PLURAL, GROUP, PLURAL, VERSION, Kube
from tests.harness.operator_process import OperatorProcess
from tests.harness.process import ManagedProcess

from bench.table import WORKERS, bulk, cores, say

ROOT = Path(__file__).resolve().parents[1]
CRDS = ROOT / "deploy" / "crds"
MANIFESTS = ROOT / "deploy" / "manifests"
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=ecr-pull-secret-operator"
EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
# Time-compressed like the integration tests: the production binary with its floors lowered.
# No registry answers for the hosts the benchmarks name: verification off.
FAST = ("--min-renewal-interval", "1s", "--backoff-base", "1s", "--backoff-cap", "4s", "--no-verify")
# Timestamps in the operator's log, for reading where time went.
LOG_ARGS = ("--log-format", "full")
ALLOW_ALL: dict[str, Any] = {
    "operatorIdentity": {"namespaces": ["*"]},
    "assumeRoles": [{"namespaces": ["*"], "roleArns": ["arn:aws:iam::*:role/*"]}],
}
SECRET_WRITE_VERBS = frozenset({"create", "update", "patch"})


def api_client(kubeconfig: Path, pool: int = 32) -> client.ApiClient:
    """A client whose connection pool fits our thread pools (the default keeps 10)."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = pool
    return client.ApiClient(configuration)


def drain(response: Any) -> None:
    """Reads a `_preload_content=False` response to its end and returns its connection to the pool.
    Left unread, the connection stays with the response and the next call opens a new TLS
    connection: about 8 ms of this process's CPU per call, three times the API server's."""
    response.read()
    response.release_conn()


def eps_body(name: str, spec: Mapping[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EcrPullSecret",
        "metadata": {"name": name, **meta},
        "spec": dict(spec),
    }


class RemoteAws:
    """The AWS emulator in a process of its own (`python -m tests.harness.aws_emulator`), driven
    through its HTTP control API (`/_emulator/calls`, `/_emulator/token-lifetime`). In-process,
    the emulator's request threads wait for this process's GIL whenever the watches here are busy,
    and then count a backlog of calls in one burst; in a process of its own it counts each call
    when it arrives. Offers the parts of AwsEmulator the benchmarks use."""

    def __init__(self, workdir: Path, token_lifetime: float) -> None:
        self._lifetime = token_lifetime
        self._log = workdir / "aws-emulator.log"
        argv = [
            sys.executable,
            "-m",
            "tests.harness.aws_emulator",
            "--port",
            "0",
            "--token-lifetime",
            str(token_lifetime),
        ]
        self._process = ManagedProcess("aws-emulator", argv, self._log)
        self.endpoint_url = ""

    def __enter__(self) -> RemoteAws:
        self._process.start()
        deadline = time.monotonic() + 60
        while not self.endpoint_url:
            lines = self._log.read_text().splitlines() if self._log.exists() else []
            self.endpoint_url = next((line.strip() for line in lines if line.startswith("http://")), "")
            if not self._process.running or time.monotonic() > deadline:
                raise self._process.error("did not print its endpoint")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.stop()

    def env(self, static_credentials: bool = True) -> dict[str, str]:
        env = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if static_credentials:
            env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        return env

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        url = f"{self.endpoint_url}/_emulator/{path}"  # our own loopback endpoint
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            payload = response.read()
        return json.loads(payload) if payload else None

    def call_counts(self) -> dict[tuple[str, str], int]:
        report = self._request("GET", "calls")
        return {(c["service"], c["action"]): int(c["count"]) for c in report["calls"]}

    def calls(self, action: str | None = None, service: str | None = None) -> int:
        return sum(
            n
            for (svc, act), n in self.call_counts().items()
            if (action is None or act == action) and (service is None or svc == service)
        )

    @property
    def token_lifetime(self) -> float:
        return self._lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: float) -> None:
        self._request("POST", "token-lifetime", {"seconds": seconds})
        self._lifetime = seconds


class Env:
    """Control plane (audit log on) + AWS emulator + CRDs + an operator identity; a context manager.

    The work dir is removed on success unless `keep`; on failure its path is printed.
    """

    OPERATOR_NAMESPACE = "ecr-pull-secret-operator"
    OPERATOR_ACCOUNT = "ecr-pull-secret-operator"

    def __init__(
        self, name: str, *, token_lifetime: float = 12 * 3600.0, keep: bool = False, remote_aws: bool = False
    ) -> None:
        self.name = name
        self.keep = keep
        self.workdir = Path(tempfile.mkdtemp(prefix=f"ecr-bench-{name}-"))
        self.control_plane = ControlPlane(self.workdir / "controlplane", audit_log=True)
        self.aws: Any = (
            RemoteAws(self.workdir, token_lifetime)
            if remote_aws
            else AwsEmulator(token_lifetime=token_lifetime)
        )
        self.operators: list[OperatorProcess] = []
        self._stack = contextlib.ExitStack()
        self.kube: Kube
        self.api: client.ApiClient
        self.core: client.CoreV1Api
        self.custom: client.CustomObjectsApi
        self.operator_user = f"system:serviceaccount:{self.OPERATOR_NAMESPACE}:{self.OPERATOR_ACCOUNT}"
        self.operator_kubeconfig: Path

    def __enter__(self) -> Env:
        say(f"{self.name}: work dir {self.workdir}, {cores()} cores, load {os.getloadavg()}")
        try:
            binaries = ensure_binaries()
            started = time.monotonic()
            self._stack.enter_context(self.control_plane)
            self._stack.enter_context(self.aws)
            self.kube = Kube(self.control_plane.kubeconfig, binaries / "kubectl")
            self.kube.kubectl("apply", "--server-side", "-f", str(CRDS))
            self.kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
            self.api = api_client(self.control_plane.kubeconfig)
            self.core = client.CoreV1Api(self.api)
            self.custom = client.CustomObjectsApi(self.api)
            self.operator_kubeconfig = self._operator_identity()
            say(f"control plane, emulator, CRDs and operator RBAC ready in {time.monotonic() - started:.1f}s")
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for operator in self.operators:
            operator.stop()
        self._stack.close()
        if exc_type is None and not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            say(f"kept {self.workdir} (operator logs, audit log)")

    def _operator_identity(self) -> Path:
        """The chart's ServiceAccount, ClusterRole and binding (as rendered in deploy/manifests), and
        a kubeconfig with a token of that ServiceAccount: the operator runs with exactly its RBAC."""
        wanted = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
        docs = [
            doc
            for path in (MANIFESTS / "namespace.yaml", MANIFESTS / "operator.yaml")
            for doc in yaml.safe_load_all(path.read_text())
            if doc and doc.get("kind") in wanted
        ]
        self.kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
        request: Any = {"spec": {"expirationSeconds": 48 * 3600}}
        response: Any = self.core.create_namespaced_service_account_token(
            self.OPERATOR_ACCOUNT, self.OPERATOR_NAMESPACE, request
        )
        return self.control_plane.kubeconfig_for_token(str(response.status.token), name="operator")

    def operator(
        self,
        *,
        args: Sequence[str] = (),
        policy: Mapping[str, Any] = ALLOW_ALL,
        start: bool = True,
    ) -> OperatorProcess:
        """The operator, cluster-wide (as the chart deploys it), with the time-compressed floors."""
        index = len(self.operators)
        policy_file = self.workdir / f"policy-{index}.yaml"
        policy_file.write_text(yaml.safe_dump(dict(policy)))
        env = {**self.aws.env(), "KUBECONFIG": str(self.operator_kubeconfig)}
        process = OperatorProcess(
            self.workdir / f"operator-{index}.log",
            env,
            ["--policy", str(policy_file), *FAST, *LOG_ARGS, *args],
            verbose=False,  # as deployed: kopf's DEBUG lines cost CPU per event
        )
        self.operators.append(process)
        if start:
            started = time.monotonic()
            process.start()
            say(f"operator {index} live in {time.monotonic() - started:.1f}s (pid {pid(process)})")
        return process

    def start_clocked(self, process: OperatorProcess, on_spawn: Callable[[], None] | None = None) -> Clocked:
        """Starts `process` with the clock at its spawn: `OperatorProcess.start()` (which returns once
        the liveness endpoint answers) runs in a thread, and `on_spawn` runs here as soon as the
        process exists, before its liveness answers."""
        failed: list[BaseException] = []

        def start() -> None:
            try:
                process.start()
            except BaseException as error:
                failed.append(error)

        thread = threading.Thread(target=start, name="operator-start", daemon=True)
        spawned = time.monotonic()
        thread.start()
        while process._proc is None and thread.is_alive():  # the harness's Popen: we only read it
            time.sleep(0.001)
        if on_spawn is not None and not failed:
            on_spawn()
        thread.join()
        if failed:
            raise failed[0]
        live = time.monotonic()
        index = self.operators.index(process)
        say(f"operator {index} live {live - spawned:.1f}s after its spawn (pid {pid(process)})")
        return Clocked(spawned, live)

    # -- bulk API helpers -------------------------------------------------------------------

    def create_namespaces(self, names: Sequence[str], workers: int = WORKERS) -> float:
        def create(name: str) -> None:
            body: Any = {"metadata": {"name": name}}
            drain(self.core.create_namespace(body, _preload_content=False))

        return bulk(create, names, workers, f"created {len(names)} namespaces")

    def create_eps(self, namespace: str, name: str, spec: Mapping[str, Any], **meta: Any) -> None:
        drain(
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, eps_body(name, spec, **meta), _preload_content=False
            )
        )

    def create_eps_bulk(
        self, names: Sequence[str], name: str, spec: Mapping[str, Any], workers: int = WORKERS
    ) -> float:
        """One EcrPullSecret `name` in each of the namespaces `names`."""
        return bulk(
            lambda ns: self.create_eps(ns, name, spec), names, workers, f"created {len(names)} EcrPullSecrets"
        )

    def create_ceps(self, name: str, spec: Mapping[str, Any]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClusterEcrPullSecret",
            "metadata": {"name": name},
            "spec": dict(spec),
        }
        drain(
            self.custom.create_cluster_custom_object(
                GROUP, VERSION, CLUSTER_PLURAL, body, _preload_content=False
            )
        )

    def managed_secrets(self) -> list[dict[str, Any]]:
        response: Any = self.core.list_secret_for_all_namespaces(
            label_selector=MANAGED_SELECTOR, _preload_content=False
        )
        items: list[dict[str, Any]] = json.loads(response.data)["items"]
        return items

    # -- counting ---------------------------------------------------------------------------

    def audit_lines(self) -> int:
        """A mark in the audit log: events after it are the ones `operator_writes(since=mark)` counts."""
        return len(self.control_plane.audit_events())

    def operator_writes(self, since: int = 0, exclude_namespaces: Iterable[str] = ()) -> Counter[str]:
        """The operator's create/update/patch requests on Secrets after `since`, by verb (and 'failed')."""
        excluded = set(exclude_namespaces)
        counts: Counter[str] = Counter()
        for event in self.control_plane.audit_events()[since:]:
            if (
                event.user == self.operator_user
                and event.resource == "secrets"
                and not event.subresource
                and event.verb in SECRET_WRITE_VERBS
                and event.namespace not in excluded
            ):
                counts[event.verb] += 1
                if event.code >= 400:
                    counts["failed"] += 1
        return counts

    def operator_writes_by_kind(
        self, since: int = 0, namespaces: Callable[[str], bool] = lambda _: True
    ) -> Counter[str]:
        """Every write request of the operator after `since` in the namespaces `namespaces` admits,
        by `verb resource[/subresource]` (Secrets, status patches, finalizers, Events...)."""
        return Counter(
            f"{e.verb} {e.resource}{'/' + e.subresource if e.subresource else ''}"
            for e in self.control_plane.audit_events()[since:]
            if e.user == self.operator_user and e.is_write and namespaces(e.namespace)
        )

    def operator_writes_until(self, since: int, until: float) -> Counter[str]:
        """The operator's writes after `since` that the API server received at or before `until`
        (time.time()) and took (status below 400), by kind: what a clock that ended then holds."""
        return Counter(
            f"{e.verb} {e.resource}{'/' + e.subresource if e.subresource else ''}"
            for e in self.control_plane.audit_events()[since:]
            if e.user == self.operator_user and e.is_write and e.code < 400 and _received(e.raw) <= until
        )


def _received(raw: Mapping[str, Any]) -> float:
    stamp = str(raw.get("requestReceivedTimestamp") or "")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else float("inf")


@dataclass(frozen=True)
class Clocked:
    """When an operator process was spawned and when its liveness endpoint first answered."""

    spawned: float
    live: float


def pid(operator: OperatorProcess) -> int:
    proc = operator._proc  # the harness keeps the Popen; we only read its pid
    assert proc is not None, "operator not running"
    return proc.pid


def total_writes(counts: Mapping[str, int]) -> int:
    return sum(n for verb, n in counts.items() if verb in SECRET_WRITE_VERBS)


def kinds(counts: Mapping[str, int]) -> str:
    """Write counts as the rows print them: `2000 create secrets, 2000 patch ecrpullsecrets/status`."""
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"
