"""A real, local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager).

Like controller-runtime's envtest, but with a controller manager, so that garbage collection,
namespace deletion and ServiceAccount/TokenRequest behave as in a cluster.  Nothing runs pods:
there is no scheduler and no kubelet.

    with ControlPlane(tmp_path) as cp:
        api = kubernetes.config.new_client_from_config(config_file=str(cp.kubeconfig))

Everything lives in the work dir: key material under ``pki/``, etcd data, one log per process
(``etcd.log``, ``kube-apiserver.log``, ``kube-controller-manager.log``), kubeconfigs and, with
``audit_log=True``, ``audit.log``.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml

from tests.harness import audit, pki
from tests.harness.binaries import ensure_binaries
from tests.harness.process import ManagedProcess, ProcessError

SERVICE_CIDR = "10.0.0.0/24"
# The first address of SERVICE_CIDR: the ClusterIP of the "kubernetes" Service.
KUBERNETES_SERVICE_IP = "10.0.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
)
_PORT_ATTEMPTS = 3
_T = TypeVar("_T")


def _free_port() -> int:
    # Racy by nature (another process may grab it before the binary binds); callers retry.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _retry_on_port_clash(start: Callable[[], _T]) -> _T:
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        try:
            return start()
        except ProcessError as err:
            if not err.address_in_use or attempt == _PORT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


class ControlPlane:
    """Starts etcd, kube-apiserver and kube-controller-manager on free loopback ports.

    Start-up and restart failures raise ``ProcessError`` naming the process, with its log tail.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        binaries: Path | None = None,
        audit_log: bool = False,
        ready_timeout: float = 90.0,
        extra_apiserver_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.ready_timeout = ready_timeout
        self._binaries = binaries
        self._audit = audit_log
        self._extra_apiserver_args = list(extra_apiserver_args)
        self._pki: pki.Pki | None = None
        self._etcd: ManagedProcess | None = None
        self._apiserver: ManagedProcess | None = None
        self._kcm: ManagedProcess | None = None
        self._port = 0
        self._ssl: ssl.SSLContext | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        if self._pki is not None:
            raise RuntimeError("ControlPlane.start() called twice")
        binaries = self._binaries or ensure_binaries()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._pki = pki.generate(self.workdir / "pki", KUBERNETES_SERVICE_IP)
        try:
            etcd_url = _retry_on_port_clash(lambda: self._start_etcd(binaries))
            _retry_on_port_clash(lambda: self._start_apiserver(binaries, etcd_url))
            self._write_kubeconfig(self.kubeconfig, self._cert_user(self._pki.admin))
            self._start_controller_manager(binaries)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops every process (their whole process groups); safe to call more than once."""
        for proc in (self._kcm, self._apiserver, self._etcd):
            if proc is not None:
                proc.stop()

    def restart_apiserver(self) -> None:
        """Stops kube-apiserver and starts it again on the same port, then waits until ready."""
        self.stop_apiserver()
        self.start_apiserver()

    def stop_apiserver(self) -> None:
        self._require(self._apiserver).stop()

    def start_apiserver(self) -> None:
        """Starts the stopped kube-apiserver again on its port and waits until it is ready."""
        apiserver = self._require(self._apiserver)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            apiserver.start()
            try:
                self._wait_apiserver_ready(apiserver)
                return
            except ProcessError as err:
                # The old socket can linger briefly; anything else is a real failure.
                if not err.address_in_use or time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests use ------------------------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self._port}"

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (client certificate in group system:masters)."""
        return self.workdir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self._require(self._pki).ca.cert

    @property
    def audit_log_path(self) -> Path:
        return self.workdir / "audit.log"

    def kubeconfig_for_token(self, token: str, name: str = "token") -> Path:
        """Writes ``kubeconfig-<name>`` authenticating with a bearer token, e.g. a ServiceAccount's."""
        return self._write_kubeconfig(self.workdir / f"kubeconfig-{name}", {"token": token})

    def audit_events(self) -> list[audit.AuditEvent]:
        """Audit events so far (one per request, Metadata level); needs ``audit_log=True``."""
        if not self._audit:
            raise RuntimeError("audit_events() needs ControlPlane(..., audit_log=True)")
        return audit.read_events(self.audit_log_path)

    # -- etcd ------------------------------------------------------------------------------

    def _start_etcd(self, binaries: Path) -> str:
        client, peer = f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"
        argv = [
            str(binaries / "etcd"),
            "--name=default",
            f"--data-dir={self.workdir / 'etcd-data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            # Test data is disposable; fsync dominates etcd latency on a busy disk.
            "--unsafe-no-fsync=true",
        ]
        self._etcd = self._replace(self._etcd, ManagedProcess("etcd", argv, self.workdir / "etcd.log"))
        self._etcd.start()
        self._wait_for("etcd /health", lambda: _etcd_healthy(client), [self._etcd])
        return client

    # -- kube-apiserver --------------------------------------------------------------------

    def _start_apiserver(self, binaries: Path, etcd_url: str) -> None:
        keys = self._require(self._pki)
        self._ssl = ssl.create_default_context(cafile=str(keys.ca.cert))
        self._ssl.load_cert_chain(str(keys.admin.cert), str(keys.admin.key))
        self._port = _free_port()
        argv = [
            str(binaries / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self._port}",
            # Loopback is not a valid Endpoints address, so nothing may try to publish it.
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            "--permit-address-sharing=true",
            # Otherwise SIGTERM waits up to --request-timeout (60s) for open watches to end.
            "--shutdown-send-retry-after=true",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={keys.apiserver.cert}",
            f"--tls-private-key-file={keys.apiserver.key}",
            f"--client-ca-file={keys.ca.cert}",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={keys.service_account_pub}",
            f"--service-account-signing-key-file={keys.service_account_key}",
            *self._audit_args(),
            *self._extra_apiserver_args,
        ]
        log = self.workdir / "kube-apiserver.log"
        self._apiserver = self._replace(self._apiserver, ManagedProcess("kube-apiserver", argv, log))
        self._apiserver.start()
        self._wait_apiserver_ready(self._apiserver)

    def _audit_args(self) -> list[str]:
        if not self._audit:
            return []
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(audit.policy(), sort_keys=False))
        # The log backend defaults to blocking mode: an event is on disk before the response is sent.
        return [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.audit_log_path}",
            "--audit-log-format=json",
            # 0 ("no limit" in the flag's help) rotates at 100 MB: lumberjack's default. A rotated
            # log loses the lines a reader counted up to (a benchmark at 10,000 resources read none).
            "--audit-log-maxsize=100000",
        ]

    def _wait_apiserver_ready(self, apiserver: ManagedProcess) -> None:
        self._wait_for("kube-apiserver /readyz", lambda: self._get("/readyz") == 200, [apiserver])

    def _get(self, path: str) -> int:
        conn = http.client.HTTPSConnection("127.0.0.1", self._port, context=self._ssl, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    # -- kube-controller-manager -----------------------------------------------------------

    def _start_controller_manager(self, binaries: Path) -> None:
        keys = self._require(self._pki)
        kubeconfig = self._write_kubeconfig(
            self.workdir / "kube-controller-manager.kubeconfig", self._cert_user(keys.controller_manager)
        )
        argv = [
            str(binaries / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            "--leader-elect=false",
            f"--controllers={','.join(CONTROLLERS)}",
            f"--service-account-private-key-file={keys.service_account_key}",
            f"--root-ca-file={keys.ca.cert}",
            # No serving endpoint: nothing scrapes it, and a fixed port would clash between workers.
            "--secure-port=0",
        ]
        self._kcm = ManagedProcess(
            "kube-controller-manager", argv, self.workdir / "kube-controller-manager.log"
        )
        self._kcm.start()
        procs = [self._require(self._apiserver), self._kcm]
        self._wait_for("namespace default", lambda: self._get("/api/v1/namespaces/default") == 200, procs)
        self._wait_for(
            "ServiceAccount default/default",
            lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default") == 200,
            procs,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _wait_for(self, what: str, check: Callable[[], bool], procs: Sequence[ManagedProcess]) -> None:
        """Polls ``check`` until true; fails fast, with the log tail, if one of ``procs`` dies."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            for proc in procs:
                if not proc.running:
                    raise proc.error(f"exited while waiting for {what}")
            try:
                if check():
                    return
            except (OSError, ValueError, http.client.HTTPException):
                pass  # Not listening yet, or restarting.
            if time.monotonic() > deadline:
                raise procs[-1].error(f"{what} not ready after {self.ready_timeout:.0f}s")
            time.sleep(0.25)

    def _cert_user(self, pair: pki.CertPair) -> dict[str, str]:
        return {"client-certificate-data": _b64(pair.cert), "client-key-data": _b64(pair.key)}

    def _write_kubeconfig(self, path: Path, user: dict[str, str]) -> Path:
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": self.server, "certificate-authority-data": _b64(self.ca_file)},
                }
            ],
            "users": [{"name": "user", "user": user}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "user"}}],
            "current-context": "local",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    @staticmethod
    def _replace(old: ManagedProcess | None, new: ManagedProcess) -> ManagedProcess:
        if old is not None:
            old.stop()  # A failed earlier attempt: reap it before forgetting it.
        return new

    @staticmethod
    def _require(value: _T | None) -> _T:
        if value is None:
            raise RuntimeError("the control plane is not started")
        return value


def _etcd_healthy(client_url: str) -> bool:
    with urllib.request.urlopen(f"{client_url}/health", timeout=5) as response:  # noqa: S310
        health: dict[str, Any] = json.load(response)
        return health.get("health") == "true"
