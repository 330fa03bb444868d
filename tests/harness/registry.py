"""A real container registry that answers for ECR host names, and a real client to pull from it.

The registry is the CNCF distribution registry (Debian package ``docker-registry``), the client
is ``skopeo`` (Debian package ``skopeo``); ``make test`` installs both (target ``registry-tools``).

    with Registry(tmp_path, aws) as registry:
        registry.push_image("team/app", "v1")
        result = registry.inspect(f"{HOST}/team/app:v1", authfile)   # skopeo, as a node would pull

Three pieces, all on 127.0.0.1 with ephemeral ports, none needing root:

* **The registry** runs with plain HTTP, no auth and storage in the work dir, and is only ever
  reached by the harness (``push_image``) and the auth front.
* **The auth front** is an HTTPS server in this process (stdlib ``http.server`` + ``ssl``, one
  thread per connection, every socket with a timeout) that checks ``Authorization`` and proxies
  pulls to the registry.  It exists because the distribution registry's only auth back ends are
  htpasswd and a token server, neither of which can ask the AWS emulator whether a password is a
  live token and whether its identity may pull a repository.  It answers as ECR does:

  - no credentials, a user other than ``AWS``, a password the emulator never issued or revoked:
    401 ``UNAUTHORIZED`` with a ``Basic`` challenge;
  - a token past its expiry: **403** ``DENIED`` "Your authorization token has expired.
    Reauthenticate and try again." (what ECR answers; a client must not read 403 as "no IAM
    permission" without looking at the message);
  - a live token whose identity the emulator's ``deny_pull`` forbids the repository: 403
    ``DENIED`` "User: <arn> is not authorized to perform: ecr:BatchGetImage on resource:
    arn:aws:ecr:<region>:<account>:repository/<name> ..." (``GetDownloadUrlForLayer`` for blobs);
  - anything else (``/v2/``, manifests, blobs, tags with a live, permitted token): proxied.

  Only GET and HEAD pass: pushes go straight to the registry through ``push_image``.  The TLS
  certificate comes from the harness PKI (``pki.py``, a CA of its own) and names the ECR hosts
  and 127.0.0.1.

* **How the ECR host names reach it: an HTTPS proxy.**  skopeo (like every Go program, and
  containerd) honours ``HTTPS_PROXY``; ``skopeo()`` sets it to a CONNECT proxy in this process
  that tunnels ``CONNECT <ecr host>:443`` to the front and refuses every other target.  TLS runs
  end to end inside the tunnel, so skopeo still verifies the certificate for the ECR host name
  and looks up credentials in ``--authfile`` under the plain host name, exactly as against ECR;
  nothing resolves the name, and the machine's DNS and ``/etc/hosts`` are never touched.
  Tried and rejected: a ``registries.conf`` rewriting the ECR host to ``127.0.0.1:PORT`` (skopeo
  then looks up credentials under the rewritten location, so the Secret could not be used
  verbatim); a private mount namespace (``unshare --mount``) with our own ``/etc/hosts``
  bind-mounted works, but needs root with CAP_SYS_ADMIN and the front on port 443.

A process that wants the registry without the proxy (the operator verifying a Secret, say)
connects to ``endpoint`` (``https://127.0.0.1:PORT``) and trusts ``ca_file``; the certificate
names 127.0.0.1, and an ECR host name sent as TLS server name (SNI) verifies as well.  Or it
sets ``HTTPS_PROXY=proxy_url`` (and ``NO_PROXY=127.0.0.1,localhost`` for everything else).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import hashlib
import http.client
import io
import ipaddress
import json
import logging
import os
import re
import select
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.harness import pki
from tests.harness.aws_emulator import IssuedToken
from tests.harness.process import ManagedProcess, ProcessError

log = logging.getLogger(__name__)
_S = TypeVar("_S")

DEFAULT_HOSTS = ("123456789012.dkr.ecr.us-east-1.amazonaws.com",)
TOOLS = ("docker-registry", "skopeo")
SOCKET_TIMEOUT = 10.0  # every socket the front and the proxy open or accept
READY_TIMEOUT = 30.0
# ECR registry host: "<account>.dkr.ecr[-fips].<region>.amazonaws.com".
_ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com")
# "/v2/<name>/<kind>/..." where <name> may contain slashes.
_REPOSITORY_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags)/")
_ECR_ACTION = {"manifests": "BatchGetImage", "blobs": "GetDownloadUrlForLayer", "tags": "ListImages"}
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer"}
    | {"transfer-encoding", "upgrade", "content-length"}
)


class TokenAuthority(Protocol):
    """What the front asks about a password; the AWS emulator answers it."""

    def registry_token(self, password: str) -> IssuedToken | None: ...

    def may_pull(self, principal: str, repository: str) -> bool: ...


@dataclass(frozen=True)
class FrontRequest:
    """One request the front answered (no credentials in it)."""

    method: str
    path: str
    status: int
    principal: str | None  # the identity of a live token, if one was shown


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


class Registry:
    """The distribution registry behind an ECR-like auth front; use as a context manager."""

    def __init__(
        self, workdir: Path, authority: TokenAuthority, hosts: Sequence[str] = DEFAULT_HOSTS
    ) -> None:
        self.workdir = workdir
        self.hosts = tuple(hosts)
        self._authority = authority
        self._registry: ManagedProcess | None = None
        self._backend_port = 0
        self._front: _Front | None = None
        self._proxy: _ConnectProxy | None = None
        self._serving: list[tuple[socketserver.BaseServer, threading.Thread]] = []
        self._ca: Path | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Registry:
        if self._registry is not None:
            raise RuntimeError("Registry already started")
        if missing := missing_tools():
            raise RuntimeError(f"not installed: {', '.join(missing)} (make registry-tools installs them)")
        for name in ("storage", "home", "tmp", "certs"):
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
        try:
            self._start_registry()
            self._start_front()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops the proxy, the front and the registry process; safe to call more than once."""
        serving, self._serving = self._serving, []
        self._proxy = self._front = None
        for server, thread in reversed(serving):
            server.shutdown()
            server.server_close()
            thread.join(timeout=SOCKET_TIMEOUT)
        registry, self._registry = self._registry, None
        if registry is not None:
            registry.stop()

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what tests use --------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The front's URL, for a client that does not go through the proxy."""
        return f"https://127.0.0.1:{self._require(self._front).server_address[1]}"

    @property
    def proxy_url(self) -> str:
        """An ``HTTPS_PROXY`` value that takes the ECR host names to the front."""
        return f"http://127.0.0.1:{self._require(self._proxy).server_address[1]}"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the front's certificate (trust only this for the ECR hosts)."""
        if self._ca is None:
            raise RuntimeError("Registry not started")
        return self._ca

    def requests(self) -> list[FrontRequest]:
        return self._require(self._front).answered()

    def push_image(self, repository: str, tag: str, files: Mapping[str, bytes] | None = None) -> str:
        """Pushes a one-layer image straight to the registry (no auth) and returns its digest."""
        layout = self.workdir / "tmp" / f"oci-{repository.replace('/', '_')}-{tag}"
        digest = write_oci_image(layout, tag, files or {"hello.txt": f"{repository}:{tag}\n".encode()})
        source, target = f"oci:{layout}:{tag}", f"docker://127.0.0.1:{self._backend_port}/{repository}:{tag}"
        argv = ["skopeo", *self._skopeo_globals(), "copy", "--dest-tls-verify=false", source, target]
        result = self._run(argv, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"pushing {repository}:{tag} failed: {result.stderr.strip()}")
        return digest

    def skopeo(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Runs ``skopeo ARGS`` with the ECR host names reaching the front (see the module doc)."""
        proxy = {"HTTPS_PROXY": self.proxy_url}
        return self._run(["skopeo", *self._skopeo_globals(), *args], timeout=timeout, env=proxy)

    def inspect(self, reference: str, authfile: Path) -> subprocess.CompletedProcess[str]:
        """``skopeo inspect`` of ``HOST/REPO:TAG`` with only ``authfile``'s credentials."""
        return self.skopeo(
            "inspect", "--authfile", str(authfile), "--cert-dir", str(self._cert_dir), f"docker://{reference}"
        )

    def pull(self, reference: str, authfile: Path, destination: Path) -> subprocess.CompletedProcess[str]:
        """``skopeo copy`` of ``HOST/REPO:TAG`` (manifest, config and layers) into a local directory."""
        return self.skopeo(
            "copy",
            "--src-authfile",
            str(authfile),
            "--src-cert-dir",
            str(self._cert_dir),
            f"docker://{reference}",
            f"dir:{destination}",
        )

    # -- internals -------------------------------------------------------------------------

    @property
    def _cert_dir(self) -> Path:
        return self.workdir / "certs"

    def _start_registry(self) -> None:
        for attempt in range(3):
            self._backend_port = _free_port()
            config = self.workdir / "registry.yml"
            config.write_text(json.dumps(_registry_config(self.workdir / "storage", self._backend_port)))
            self._registry = ManagedProcess(
                "docker-registry", ["docker-registry", "serve", str(config)], self.workdir / "registry.log"
            )
            self._registry.start()
            try:
                self._wait_backend(self._registry)
                return
            except ProcessError as err:
                self._registry.stop()
                if not err.address_in_use or attempt == 2:
                    raise

    def _wait_backend(self, registry: ManagedProcess) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        url = f"http://127.0.0.1:{self._backend_port}/v2/"
        while True:
            if not registry.running:
                raise registry.error("exited while starting")
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise registry.error(f"/v2/ not answering after {READY_TIMEOUT:.0f}s")
            time.sleep(0.1)

    def _start_front(self) -> None:
        (self.workdir / "pki").mkdir(exist_ok=True)
        issuer = pki._Issuer(self.workdir / "pki")  # the harness PKI, a CA of its own
        san: list[x509.GeneralName] = [x509.DNSName(host) for host in self.hosts]
        san.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        pair = issuer.issue("registry", pki._name("ecr-test-registry"), ExtendedKeyUsageOID.SERVER_AUTH, san)
        self._ca = issuer.pair.cert
        shutil.copyfile(issuer.pair.cert, self._cert_dir / "ca.crt")  # skopeo trusts every *.crt there
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(str(pair.cert), str(pair.key))
        self._front = _Front(tls, self._authority, self._backend_port)
        self._serve(self._front)
        self._proxy = _ConnectProxy(self.hosts, self._front.server_address[1])
        self._serve(self._proxy)

    def _serve(self, server: socketserver.BaseServer) -> None:
        """Serves in a thread; stop() shuts it down (shutdown() needs serve_forever() running)."""
        name = f"registry-{type(server).__name__.strip('_').lower()}"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name)
        thread.daemon = True
        thread.start()
        self._serving.append((server, thread))

    def _skopeo_globals(self) -> list[str]:
        policy, registries_conf = self.workdir / "policy.json", self.workdir / "registries.conf"
        if not policy.exists():
            policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
            registries_conf.touch()  # no mirrors or rewrites from the machine's own config
        return ["--policy", str(policy), "--registries-conf", str(registries_conf)]

    def _run(
        self, argv: list[str], timeout: float, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            # No credentials from the runner's own files (~/.docker/config.json and the like).
            "HOME": str(self.workdir / "home"),
            "XDG_RUNTIME_DIR": str(self.workdir / "home"),
            "TMPDIR": str(self.workdir / "tmp"),
            **(env or {}),
        }
        return subprocess.run(
            argv, env=environment, capture_output=True, text=True, timeout=timeout, check=False
        )

    @staticmethod
    def _require(server: _S | None) -> _S:
        if server is None:
            raise RuntimeError("Registry not started")
        return server


# -- the auth front ----------------------------------------------------------------------------


class _Front(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # handler sockets time out on their own

    def __init__(self, tls: ssl.SSLContext, authority: TokenAuthority, backend_port: int) -> None:
        self.tls = tls
        self.authority = authority
        self.backend_port = backend_port
        self._lock = threading.Lock()
        self._answered: list[FrontRequest] = []
        super().__init__(("127.0.0.1", 0), _FrontHandler)

    def record(self, request: FrontRequest) -> None:
        with self._lock:
            self._answered.append(request)

    def answered(self) -> list[FrontRequest]:
        with self._lock:
            return list(self._answered)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that rejects our certificate or hangs up: routine here, and no traceback spam.
        log.debug("registry front: connection from %s ended: %r", client_address, sys.exception())


class _FrontHandler(BaseHTTPRequestHandler):
    server: _Front
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT
    server_version = "ecr-test-registry"

    def setup(self) -> None:
        self.request.settimeout(SOCKET_TIMEOUT)
        # The TLS handshake happens here, in the connection's thread, not in the accept loop.
        self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.request.close()

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _refuse_write(self) -> None:
        self._error(405, "UNSUPPORTED", "this test registry serves pulls only; push with Registry.push_image")

    do_POST = do_PUT = do_PATCH = do_DELETE = _refuse_write

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is self.server.answered(); nothing that could carry a credential

    def _serve(self) -> None:
        path = self.path.split("?", 1)[0]
        verdict = self._authorize(path)
        if verdict is None:
            return
        self._proxy(verdict)

    def _authorize(self, path: str) -> str | None:
        """The principal of a live token that may do this, or None once an error is sent."""
        token = self._token()
        if token is None:
            self._error(401, "UNAUTHORIZED", "Not Authorized")
            return None
        if token.expires_at <= time.time():
            self._error(403, "DENIED", "Your authorization token has expired. Reauthenticate and try again.")
            return None
        match = _REPOSITORY_PATH.match(path)
        if match and not self.server.authority.may_pull(token.principal, match["name"]):
            account, region = self._account_region()
            action = f"ecr:{_ECR_ACTION[match['kind']]}"
            message = (
                f"User: {token.principal} is not authorized to perform: {action} on resource: "
                f"arn:aws:ecr:{region}:{account}:repository/{match['name']} "
                f"because no identity-based policy allows the {action} action"
            )
            self._error(403, "DENIED", message, principal=token.principal)
            return None
        return token.principal

    def _token(self) -> IssuedToken | None:
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if user != "AWS":
            return None
        return self.server.authority.registry_token(password)

    def _account_region(self) -> tuple[str, str]:
        match = _ECR_HOST.match(self.headers.get("Host", ""))
        return (match["account"], match["region"]) if match else ("123456789012", "us-east-1")

    def _proxy(self, principal: str) -> None:
        backend = http.client.HTTPConnection("127.0.0.1", self.server.backend_port, timeout=SOCKET_TIMEOUT)
        try:
            # Header by header: a client sends several Accept headers, and all of them count.
            backend.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP | {"authorization"}:
                    backend.putheader(name, value)
            backend.endheaders()
            response = backend.getresponse()
            body = response.read()  # test images are small
            length = response.getheader("Content-Length") if self.command == "HEAD" else str(len(body))
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", length or "0")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self._record(response.status, principal)
        finally:
            backend.close()

    def _error(self, status: int, code: str, message: str, principal: str | None = None) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        if status == 401:
            host = self.headers.get("Host", "")
            self.send_header("WWW-Authenticate", f'Basic realm="https://{host}/",service="ecr.amazonaws.com"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._record(status, principal)

    def _record(self, status: int, principal: str | None) -> None:
        self.server.record(FrontRequest(self.command, self.path, status, principal))


# -- the CONNECT proxy ----------------------------------------------------------------------------


class _ConnectProxy(socketserver.ThreadingTCPServer):
    """Tunnels ``CONNECT <ecr host>:443`` to the front; refuses every other target."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, hosts: Sequence[str], front_port: int) -> None:
        self.targets = frozenset(f"{host}:443" for host in hosts)
        self.front_port = front_port
        super().__init__(("127.0.0.1", 0), _ConnectHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("registry proxy: connection from %s ended: %r", client_address, sys.exception())


class _ConnectHandler(socketserver.StreamRequestHandler):
    server: _ConnectProxy
    timeout = SOCKET_TIMEOUT
    rbufsize = 0  # unbuffered: nothing the client sends after the headers may stick in a buffer

    def handle(self) -> None:
        method, target, _ = self.rfile.readline(8192).decode("latin-1").split(" ", 2)
        while self.rfile.readline(8192) not in {b"\r\n", b"\n", b""}:
            pass  # the request's headers: nothing in them matters here
        if method != "CONNECT" or target.lower() not in self.server.targets:
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        with socket.create_connection(("127.0.0.1", self.server.front_port), SOCKET_TIMEOUT) as front:
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _pump(self.connection, front)


def _pump(client: socket.socket, server: socket.socket) -> None:
    """Copies bytes both ways until either side closes or both stay idle for the socket timeout."""
    peers = {client: server, server: client}
    while True:
        readable, _, _ = select.select(list(peers), [], [], SOCKET_TIMEOUT)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            peers[sock].sendall(data)


# -- helpers -----------------------------------------------------------------------------------


def _registry_config(storage: Path, port: int) -> dict[str, Any]:
    """distribution's YAML config (JSON is YAML): loopback, plain HTTP, no auth, no health checks."""
    return {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        # Relative Location headers: upload URLs stay valid whatever host a client used.
        "http": {"addr": f"127.0.0.1:{port}", "relativeurls": True, "secret": os.urandom(16).hex()},
        "health": {"storagedriver": {"enabled": False}},
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_oci_image(layout: Path, tag: str, files: Mapping[str, bytes]) -> str:
    """Writes an OCI image layout with one image (one gzip layer of ``files``); returns the
    manifest digest. Built from plain bytes: no base image, no network."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def blob(data: bytes, media_type: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o644
            archive.addfile(info, io.BytesIO(content))
    diff_id = f"sha256:{hashlib.sha256(tar.getvalue()).hexdigest()}"
    layer = blob(gzip.compress(tar.getvalue(), mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": [layer],
    }
    descriptor = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))
    return str(descriptor["digest"])
