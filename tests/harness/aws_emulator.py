"""The AWS side of the test harness: moto's server, plus the few things moto lacks.

The operator reaches AWS only through the standard ``AWS_ENDPOINT_URL`` variable and has
no test-only code paths, so the harness serves a real HTTP endpoint on loopback that
answers STS, ECR and ECR Public on one port.  moto's own server-mode WSGI app (it picks a
backend from the SigV4 signing name of each request) does most of the work.  A thin WSGI
middleware in front of it closes moto's gaps and adds test instrumentation:

* ECR ``GetAuthorizationToken``: moto answers with the same password on every call and
  ``expiresAt`` 2015-01-01.  We let moto answer (so its registry ids, proxy endpoints and
  the account of assumed-role credentials stay authoritative) and rewrite each entry: a
  password unique to the call, expiring at issue time + ``token_lifetime``.
* ECR Public ``GetAuthorizationToken``: moto has no ecr-public service at all (it returns
  an HTML 500), so the middleware answers it itself.
* Counting of every AWS request by (service, action), and fault injection in the wire
  format of the request's protocol (JSON for ECR, XML ``ErrorResponse`` for STS).
* A control API under ``/_emulator/`` for tests in other processes.  AWS query and JSON
  protocol requests all go to ``/``, so the prefix cannot collide with them.
* What a registry needs to judge a password (``tests/harness/registry.py``): the ledger of
  issued tokens, who asked for each (the ARN ``GetCallerIdentity`` names for the signing
  key), revocation, and an IAM-like "may this identity pull this repository" decision
  (``deny_pull``; cleared with the faults).

Not emulated: ``sts:GetServiceBearerToken``.  It is an IAM permission that ECR Public (and
CodeArtifact) check when they mint a token on the caller's behalf, not an operation a
client can call; botocore has no such operation and moto has nothing to mirror.  To test a
missing permission, inject ``AccessDeniedException`` on ecr-public GetAuthorizationToken.

Isolation: counts, faults and token lifetime belong to one ``AwsEmulator``.  moto's
backends (assumed roles, ECR repositories) are module globals, so emulators in the same
process share them; nothing the operator uses depends on that state across tests.

Run standalone (``make dev-up``): ``python -m tests.harness.aws_emulator --port 4566``
prints the endpoint URL and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import math
import random
import re
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment
from xml.sax.saxutils import escape

from moto.iam.models import get_account_id_from
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.sts.models import sts_backends
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

log = logging.getLogger(__name__)

DEFAULT_TOKEN_LIFETIME = 12 * 3600.0  # what real ECR and ECR Public issue
CONTROL_PREFIX = "/_emulator/"
MOTO_ACCOUNT_ID = "123456789012"  # moto's account for credentials it did not issue

# Services are named by their SigV4 signing name, as IAM names them. JSON-protocol requests
# say which service they are for in the X-Amz-Target prefix, which is the surest sign.
_TARGET_PREFIX_SERVICE = {
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
    "SpencerFrontendService": "ecr-public",
}
# "Credential=AKID/20250101/us-east-1/sts/aws4_request" -> "sts"
_SIGNING_NAME = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")
_STS_XML_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
_AWS_JSON = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class AwsCall:
    """What one request to the endpoint asked for."""

    service: str  # signing name: "sts", "ecr", "ecr-public"
    action: str  # operation name, e.g. "GetAuthorizationToken"
    json_protocol: bool  # X-Amz-Target JSON protocol (ECR) rather than query protocol (STS)
    params: tuple[tuple[str, str], ...] = ()  # query-protocol parameters (STS), for assertions


@dataclass(frozen=True)
class IssuedToken:
    """What a registry may know of a password it is shown."""

    expires_at: float  # epoch seconds
    principal: str  # the ARN GetCallerIdentity names for the credentials that asked for it


@dataclass
class Fault:
    """An AWS error to answer instead of the real response."""

    error_code: str
    status: int
    message: str
    remaining: int | None  # None: until cleared
    probability: float = 1.0  # the share of matching calls that fail; the rest pass through


class AwsEmulator:
    """STS + ECR + ECR Public on one loopback port; use as a context manager."""

    def __init__(
        self,
        token_lifetime: float = DEFAULT_TOKEN_LIFETIME,
        host: str = "127.0.0.1",
        port: int = 0,
        fault_seed: int = 0,
    ) -> None:
        self._host = host
        self._port = port
        self._lock = threading.Lock()  # guards counts, faults and the token serial
        self._counts: Counter[tuple[str, str]] = Counter()
        # Keyed by (service or None for "any service", action).
        self._faults: dict[tuple[str | None, str], Fault] = {}
        self._faulted: Counter[tuple[str, str]] = Counter()
        self._random = random.Random(fault_seed)  # seeded: a probabilistic run can be repeated
        self._serial = 0
        self._issued: dict[str, float] = {}
        self._principals: dict[str, str] = {}  # password -> the ARN that asked for it
        self._revoked: set[str] = set()
        self._pull_denied: set[tuple[str, str]] = set()  # (principal ARN or "*", repository)
        self._log: list[AwsCall] = []
        self._token_lifetime = DEFAULT_TOKEN_LIFETIME
        self.token_lifetime = token_lifetime  # validated by the setter
        self._moto: WSGIApplication = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("AwsEmulator already started")
        # Binding here, not in the thread, makes a taken port fail loudly in the caller.
        server = make_server(self._host, self._port, self, threaded=True, request_handler=_RequestHandler)
        self._server = server
        # A short poll interval keeps stop() (and so every test teardown) fast.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="aws-emulator", daemon=True
        )
        self._thread.start()
        log.info("AWS emulator listening on %s", self.endpoint_url)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()  # serve_forever() closes the socket on its way out
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> AwsEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("AwsEmulator not started")
        return f"http://{self._host}:{self._server.server_port}"

    def env(self, static_credentials: bool = True) -> dict[str, str]:
        """Environment to overlay on a process so boto3 in it talks to this emulator.

        With ``static_credentials=False`` no access keys are set, for tests that give the
        process another credential source (web identity, a pod identity agent): botocore
        prefers environment keys over all of those.
        """
        env = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",  # the variable botocore itself reads
            "AWS_EC2_METADATA_DISABLED": "true",  # never wait on a real IMDS
        }
        if static_credentials:
            # moto maps keys it did not issue to account 123456789012.
            env["AWS_ACCESS_KEY_ID"] = "testing"
            env["AWS_SECRET_ACCESS_KEY"] = "testing"
        return env

    # -- knobs -----------------------------------------------------------------------

    @property
    def token_lifetime(self) -> float:
        """Seconds from issue to ``expiresAt`` for ECR and ECR Public tokens."""
        return self._token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: float) -> None:
        seconds = float(seconds)
        # Zero or negative is allowed on purpose: it issues already-expired tokens.
        if not math.isfinite(seconds):
            raise ValueError(f"token lifetime must be finite, got {seconds}")
        self._token_lifetime = seconds

    def calls(self, action: str | None = None, service: str | None = None) -> int:
        """Requests received so far that match ``action`` and ``service`` (None: any)."""
        with self._lock:
            return sum(
                n
                for (svc, act), n in self._counts.items()
                if (action is None or act == action) and (service is None or svc == service)
            )

    def call_counts(self) -> dict[tuple[str, str], int]:
        """Snapshot of all counts, keyed by (service, action)."""
        with self._lock:
            return dict(self._counts)

    def reset_calls(self) -> None:
        with self._lock:
            self._log.clear()
            self._counts.clear()
            self._faulted.clear()

    def fail(
        self,
        action: str,
        error_code: str = "ServerException",
        status: int = 500,
        times: int | None = None,
        *,
        service: str | None = None,
        message: str | None = None,
        probability: float = 1.0,
    ) -> None:
        """Answer the next ``times`` calls of ``action`` (all, if None) with an AWS error.

        ``service`` narrows the match, e.g. "ecr" vs "ecr-public" for GetAuthorizationToken.
        With ``probability`` < 1 each matching call fails with that chance (a seeded draw) and
        only failed calls count towards ``times``. A faulted call still counts as a call: the
        client did reach the endpoint.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be None or >= 1, got {times}")
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status, got {status}")
        if not 0 < probability <= 1:
            raise ValueError(f"probability must be in (0, 1], got {probability}")
        text = message or f"Injected by the AWS emulator: {error_code}"
        fault = Fault(error_code, status, text, times, probability)
        with self._lock:
            self._faults[(service, action)] = fault

    def clear_faults(self) -> None:
        """Clears injected errors and pull denials."""
        with self._lock:
            self._faults.clear()
            self._pull_denied.clear()

    # -- what a registry asks ----------------------------------------------------------

    def deny_pull(self, repository: str, principal: str = "*") -> None:
        """From now on ``principal`` (an ARN; "*": everyone) may not pull ``repository``, as if
        its IAM policy lacked ecr:BatchGetImage on it. Tokens stay valid."""
        with self._lock:
            self._pull_denied.add((principal, repository))

    def may_pull(self, principal: str, repository: str) -> bool:
        with self._lock:
            return not {(principal, repository), ("*", repository)} & self._pull_denied

    def revoke_token(self, password: str) -> None:
        """The registry no longer knows ``password``, as after its session was revoked."""
        with self._lock:
            self._revoked.add(password)

    def registry_token(self, password: str) -> IssuedToken | None:
        """The issued token behind ``password`` (expired or not), or None if this emulator
        never issued it or it was revoked."""
        with self._lock:
            if password not in self._issued or password in self._revoked:
                return None
            return IssuedToken(self._issued[password], self._principals[password])

    def faulted_counts(self) -> dict[tuple[str, str], int]:
        """Calls answered with an injected error, keyed by (service, action)."""
        with self._lock:
            return dict(self._faulted)

    # -- WSGI ------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX):
            return self._control(Request(environ))(environ, start_response)

        call = _identify(environ, _buffer_body(environ))
        fault = self._record(call)
        if fault is not None:
            response = _error_response(call, fault)
        elif call.service == "ecr-public" and call.action == "GetAuthorizationToken":
            response = self._ecr_public_token(environ)
        elif call.service == "ecr" and call.action == "GetAuthorizationToken":
            response = self._ecr_token(environ)
        else:
            return self._moto(environ, start_response)
        return response(environ, start_response)

    def requests(self, action: str) -> list[dict[str, str]]:
        """The parameters of every query-protocol (STS) request for `action`, oldest first."""
        with self._lock:
            return [dict(call.params) for call in self._log if call.action == action]

    def _record(self, call: AwsCall) -> Fault | None:
        """Count the call and consume a matching fault, if any, in one step."""
        with self._lock:
            self._counts[(call.service, call.action)] += 1
            if call.params:
                self._log.append(call)
            for key in ((call.service, call.action), (None, call.action)):
                fault = self._faults.get(key)
                if fault is None:
                    continue
                if fault.probability < 1 and self._random.random() >= fault.probability:
                    return None
                self._faulted[(call.service, call.action)] += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        del self._faults[key]
                return fault
        return None

    def _new_password(self, base: str, expires_at: float, principal: str) -> str:
        with self._lock:
            self._serial += 1
            # The serial makes tokens easy to order in logs; the random part keeps them unique
            # across emulator restarts (``make dev-up``).
            password = f"{base}-{self._serial:06d}-{secrets.token_hex(6)}"
            self._issued[password] = expires_at
            self._principals[password] = principal
        return password

    def issued_tokens(self) -> dict[str, float]:
        """Every password handed out so far and its expiry (epoch seconds): the ground truth
        for "the Secret never held an expired token" and for grepping logs for leaks."""
        with self._lock:
            return dict(self._issued)

    def _ecr_token(self, environ: WSGIEnvironment) -> Response:
        response = Response.from_app(self._moto, environ, buffered=True)
        if response.status_code != 200:
            return response
        data = json.loads(response.get_data())
        expires_at = time.time() + self.token_lifetime
        principal = _caller_arn(environ)
        for entry in data.get("authorizationData", []):
            # moto's password is "<registry id>-auth-token"; keep it as a readable prefix.
            _, _, password = base64.b64decode(entry["authorizationToken"]).decode().partition(":")
            entry["authorizationToken"] = _docker_token(self._new_password(password, expires_at, principal))
            entry["expiresAt"] = expires_at
        response.set_data(json.dumps(data))  # also fixes Content-Length
        return response

    def _ecr_public_token(self, environ: WSGIEnvironment) -> Response:
        expires_at = time.time() + self.token_lifetime
        password = self._new_password("ecr-public-auth-token", expires_at, _caller_arn(environ))
        data = {
            "authorizationData": {
                "authorizationToken": _docker_token(password),
                "expiresAt": expires_at,
            }
        }
        return Response(json.dumps(data), content_type=_AWS_JSON, headers={"x-amzn-RequestId": _request_id()})

    # -- control API -----------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        name = request.path.removeprefix(CONTROL_PREFIX).strip("/")
        response = Response(status=204)  # for the endpoints that only change state
        try:
            match (request.method, name):
                case ("GET", "health"):
                    response = _json({"ok": True})
                case ("GET", "calls"):
                    response = _json(
                        self._calls_report(request.args.get("action"), request.args.get("service"))
                    )
                case ("POST", "reset-calls"):
                    self.reset_calls()
                case ("GET", "faults"):
                    with self._lock:
                        faults = [
                            {"service": s, "action": a, **asdict(f)} for (s, a), f in self._faults.items()
                        ]
                    response = _json({"faults": faults})
                case ("POST", "faults"):
                    body = _json_body(request)
                    self.fail(
                        str(body["action"]),
                        error_code=str(body.get("error_code", "ServerException")),
                        status=int(body.get("status", 500)),
                        times=None if body.get("times") is None else int(body["times"]),
                        service=body.get("service"),
                        message=body.get("message"),
                        probability=float(body.get("probability", 1.0)),
                    )
                case ("DELETE", "faults"):
                    self.clear_faults()
                case ("GET", "token-lifetime"):
                    response = _json({"seconds": self.token_lifetime})
                case ("POST", "token-lifetime"):
                    self.token_lifetime = float(_json_body(request)["seconds"])
                case _:
                    response = _json(
                        {"error": f"no such control endpoint: {request.method} {request.path}"}, 404
                    )
        except (KeyError, TypeError, ValueError) as exc:
            response = _json({"error": f"bad request: {exc!r}"}, 400)
        return response

    def _calls_report(self, action: str | None, service: str | None) -> dict[str, object]:
        matching = [
            (svc, act, n)
            for (svc, act), n in sorted(self.call_counts().items())
            if (action is None or act == action) and (service is None or svc == service)
        ]
        return {
            "total": sum(n for _, _, n in matching),
            "calls": [{"service": svc, "action": act, "count": n} for svc, act, n in matching],
        }


# -- request parsing and responses -----------------------------------------------------


def _buffer_body(environ: WSGIEnvironment) -> bytes:
    """Read the request body and put it back, so moto can still read it after us."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        body: bytes = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):  # chunked upload: read to the end
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _identify(environ: WSGIEnvironment, body: bytes) -> AwsCall:
    signed = _SIGNING_NAME.search(environ.get("HTTP_AUTHORIZATION", ""))
    signing_name = signed.group(1) if signed else None

    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        prefix, _, action = target.partition(".")
        service = _TARGET_PREFIX_SERVICE.get(prefix) or signing_name or prefix
        return AwsCall(service, action or "unknown", json_protocol=True)

    # Query protocol: Action is in the form body (botocore POSTs) or the query string.
    params = parse_qs(environ.get("QUERY_STRING", ""))
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        params.update(parse_qs(body.decode("utf-8", "replace")))
    action = params.get("Action", ["unknown"])[0]
    # Unsigned query requests here are STS AssumeRoleWithWebIdentity / WithSAML.
    service = signing_name or ("sts" if "Action" in params else "unknown")
    flat = tuple((key, values[0]) for key, values in sorted(params.items()))
    return AwsCall(service, action, json_protocol=False, params=flat)


def _error_response(call: AwsCall, fault: Fault) -> Response:
    request_id = _request_id()
    if call.json_protocol:
        body = json.dumps({"__type": fault.error_code, "message": fault.message})
        return Response(
            body,
            status=fault.status,
            content_type=_AWS_JSON,
            headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": fault.error_code},
        )
    # AWS query protocol: Sender = the caller's fault (4xx), Receiver = the service's (5xx).
    kind = "Sender" if fault.status < 500 else "Receiver"
    xml = (
        f'<ErrorResponse xmlns="{_STS_XML_NAMESPACE}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(fault.error_code)}</Code><Message>{escape(fault.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return Response(
        xml, status=fault.status, content_type="text/xml", headers={"x-amzn-RequestId": request_id}
    )


def _caller_arn(environ: WSGIEnvironment) -> str:
    """The ARN moto's GetCallerIdentity would name for the key that signed this request."""
    signed = _ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
    access_key = signed.group(1) if signed else ""
    backend = sts_backends[get_account_id_from(access_key)]["aws"]
    _, arn, _ = backend.get_caller_identity(access_key, "us-east-1")
    return str(arn)


def _docker_token(password: str) -> str:
    """ECR tokens are base64 of "user:password" with the user always "AWS"."""
    return base64.b64encode(f"AWS:{password}".encode()).decode()


def _request_id() -> str:
    return secrets.token_hex(16)


def _json(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")


def _json_body(request: Request) -> dict[str, Any]:
    body = json.loads(request.get_data() or b"{}")
    if not isinstance(body, dict):
        raise TypeError("expected a JSON object")
    return body


class _RequestHandler(MotoRequestHandler):
    """moto's handler (it keeps underscored headers), with per-request logs at DEBUG.

    werkzeug logs every request at INFO on stderr; a renewal loop would drown test output.
    """

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, self.path, code)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--token-lifetime", type=float, default=DEFAULT_TOKEN_LIFETIME, metavar="SECONDS")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with AwsEmulator(token_lifetime=args.token_lifetime, host=args.host, port=args.port) as emulator:
        print(emulator.endpoint_url, flush=True)  # first stdout line: callers read it
        stopping.wait()


if __name__ == "__main__":
    main()
