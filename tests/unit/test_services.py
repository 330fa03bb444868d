"""The image keeps botocore's data for aws/services.py's services only (hack/image/prune.py): every
client the operator creates must come from that list, and must work against the pruned data.

The pruned copy is made by the image's own script; botocore reads it through a Loader that sees
nothing else, and each request is answered by a `before-send` hook (no network, no emulator)."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import botocore
import botocore.loaders
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import DataNotFoundError

from ecr_pull_secrets.aws import services
from ecr_pull_secrets.aws.errors import AwsCallFailed
from ecr_pull_secrets.aws.ratelimit import RateLimiter
from ecr_pull_secrets.aws.sessions import ChainSession, SessionResolver
from ecr_pull_secrets.aws.tokens import BotoTokenSource
from ecr_pull_secrets.model import rules
from ecr_pull_secrets.model.identity import OPERATOR_CHAIN, Chain, RoleHop, StaticKeys, WebIdentity
from ecr_pull_secrets.model.registry import PUBLIC_TOKEN_REGION

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = ROOT / "operator" / "ecr_pull_secrets"
BOTOCORE = Path(botocore.__file__).parent
OWNER = ("team-a", "pull")
ROLE = "arn:aws:iam::123456789012:role/ecr-pull"
# A region of each partition, and whether its registry hosts have a FIPS form.
REGIONS = {
    "aws": "eu-west-1",
    "aws-cn": "cn-northwest-1",
    "aws-us-gov": "us-gov-east-1",
    "aws-eusc": "eusc-de-east-1",
    "aws-iso": "us-iso-west-1",
    "aws-iso-b": "us-isob-east-1",
    "aws-iso-e": "eu-isoe-west-1",
    "aws-iso-f": "us-isof-east-1",
}


def load_prune() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_prune", ROOT / "hack" / "image" / "prune.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def link_or_copy(source: str, target: str) -> None:
    """Hard links where the file system allows (the prune only unlinks), copies elsewhere."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pruned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """botocore's data as the image has it."""
    data = tmp_path_factory.mktemp("botocore") / "data"
    shutil.copytree(BOTOCORE / "data", data, copy_function=link_or_copy)
    removed = load_prune().prune_botocore_data(data, services.KEPT)
    assert len(removed) > 300, "most services go"
    return data


@pytest.fixture
def loader(pruned: Path) -> botocore.loaders.Loader:
    return botocore.loaders.Loader(extra_search_paths=[str(pruned)], include_default_search_paths=False)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Static keys in the environment, nothing else that could change where a request goes."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR", "AWS_USE_FIPS_ENDPOINT", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


class Refusing:
    """A before-send hook: records each request's host and operation, and refuses it (403), so
    the call got as far as botocore can get without AWS: model, endpoint rules, signing."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        self.requests.append((request.url.split("/")[2], request.headers.get("X-Amz-Target", b"").decode()))
        body = b'{"__type": "AccessDeniedException", "message": "no"}'
        if "sts." in request.url:
            body = (
                b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                b"<Message>no</Message></Error></ErrorResponse>"
            )
        return AWSResponse(request.url, 403, HTTPHeaders(), Body(body))


def resolver(loader: botocore.loaders.Loader) -> SessionResolver:
    return SessionResolver(
        lambda namespace, name, audience: "header.payload.signature",
        RateLimiter(1000.0),
        lambda: datetime.now(UTC),
        loader=loader,
    )


def refused(session: ChainSession, service: str, region: str, *, fips: bool = False) -> Refusing:
    refusing = Refusing()
    session.client(service, region, fips=fips).meta.events.register("before-send", refusing)
    return refusing


# -- the pruned data serves every call ---------------------------------------------------------


def test_the_pruned_data_lacks_the_other_services(loader: botocore.loaders.Loader) -> None:
    assert sorted(loader.list_available_services("service-2")) == sorted(services.KEPT)
    with pytest.raises(DataNotFoundError):
        loader.load_service_model("s3", "service-2")


@pytest.mark.parametrize("partition", sorted(REGIONS))
def test_every_token_call_works_on_the_pruned_data(loader: botocore.loaders.Loader, partition: str) -> None:
    region = REGIONS[partition]
    resolver_ = resolver(loader)
    session = resolver_.resolve(OPERATOR_CHAIN, partition, OWNER)
    source = BotoTokenSource(resolver_)
    calls = [(services.ECR, False)] + [(services.ECR, True)] * (partition in rules.FIPS_PARTITIONS)

    for service, fips in calls:
        refusing = refused(session, service, region, fips=fips)
        with pytest.raises(AwsCallFailed, match="AccessDenied"):
            source.authorization_token(OPERATOR_CHAIN, partition, region, False, OWNER, fips=fips)
        ((host, target),) = refusing.requests
        assert ("ecr-fips." in host) if fips else host.startswith("api.ecr."), host
        assert target.endswith(".GetAuthorizationToken"), target

    sts = Refusing()
    session.sts().meta.events.register("before-send", sts)
    with pytest.raises(AwsCallFailed, match="AccessDenied"):
        source.caller_arn(OPERATOR_CHAIN, partition, OWNER)
    ((host, _),) = sts.requests
    assert host == f"sts.{ChainSession.sts_region(partition)}.{rules.REGISTRY_SUFFIXES[partition][0]}"


def test_the_public_token_call_works_on_the_pruned_data(loader: botocore.loaders.Loader) -> None:
    resolver_ = resolver(loader)
    session = resolver_.resolve(OPERATOR_CHAIN, "aws", OWNER)
    refusing = refused(session, services.ECR_PUBLIC, PUBLIC_TOKEN_REGION)

    with pytest.raises(AwsCallFailed, match="AccessDenied"):
        BotoTokenSource(resolver_).authorization_token(OPERATOR_CHAIN, "aws", "us-east-1", True, OWNER)
    ((host, target),) = refusing.requests
    assert host == "api.ecr-public.us-east-1.amazonaws.com"
    assert target.endswith(".GetAuthorizationToken")


class DummySts(BaseHTTPRequestHandler):
    """An endpoint that refuses every STS request (403 AccessDenied) and remembers its action."""

    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.seen.append(body.split("&", 1)[0])
        answer = (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
            b"<Message>no</Message></Error></ErrorResponse>"
        )
        self.send_response(403)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def dummy_sts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), DummySts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{server.server_address[1]}")
    DummySts.seen = []
    try:
        yield DummySts.seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("chain", "action"),
    [
        pytest.param(
            Chain(StaticKeys("team-a", "keys", "uid/1", "AKIDOTHER", "x"), (RoleHop(ROLE),)),
            "Action=AssumeRole",
            id="keys-then-role",
        ),
        pytest.param(
            Chain(WebIdentity("team-a", "puller", "sts.amazonaws.com", ROLE)),
            "Action=AssumeRoleWithWebIdentity",
            id="web-identity",
        ),
        pytest.param(
            Chain(OPERATOR_CHAIN.start, (RoleHop(ROLE),)), "Action=AssumeRole", id="operator-then-role"
        ),
    ],
)
def test_every_credential_call_works_on_the_pruned_data(
    loader: botocore.loaders.Loader, dummy_sts: list[str], chain: Chain, action: str
) -> None:
    """AssumeRole and AssumeRoleWithWebIdentity, from clients made while resolving a chain: sent to
    a local endpoint that refuses them."""
    with pytest.raises(AwsCallFailed, match="AccessDenied"):
        resolver(loader).resolve(chain, "aws", OWNER)

    assert dummy_sts == [action]


# -- the code asks for nothing else ------------------------------------------------------------


def client_calls() -> Iterator[tuple[Path, ast.Call, ast.FunctionDef | None]]:
    """Every `X.client(...)` and `X.create_client(...)` call in operator/, with its function."""
    for path in sorted(OPERATOR.rglob("*.py")):
        tree = parsed(path)
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"client", "create_client"}
            ):
                owner = next(
                    (f for f in functions if f.lineno <= node.lineno <= (f.end_lineno or f.lineno)), None
                )
                yield path, node, owner


def test_every_client_the_code_creates_names_a_listed_service() -> None:
    found = 0
    for path, call, function in client_calls():
        where = f"{path.relative_to(ROOT)}:{call.lineno}"
        assert call.args, f"{where}: the service must be the first positional argument"
        name = call.args[0]
        found += 1
        if isinstance(name, ast.Constant):
            assert name.value in services.SERVICES, f"{where}: {name.value!r} is not in aws/services.py"
        elif isinstance(name, ast.Name) and name.id in {"STS", "ECR", "ECR_PUBLIC"}:
            assert getattr(services, name.id) in services.SERVICES, where
        elif (
            isinstance(name, ast.Attribute)
            and isinstance(name.value, ast.Name)
            and name.value.id == "services"
        ):
            assert getattr(services, name.attr) in services.SERVICES, where
        else:
            # The one pass-through: ChainSession.client(service, ...), whose callers are checked here.
            assert isinstance(name, ast.Name), where
            assert function is not None, where
            assert (function.name, name.id) == ("client", "service"), (
                f"{where}: service from {ast.dump(name)}"
            )
    assert found >= 4


def test_nothing_imports_boto3_or_s3transfer() -> None:
    """The image deletes both (hack/image/prune.py): the operator makes its clients with botocore."""
    for path in sorted(OPERATOR.rglob("*.py")):
        for node in ast.walk(parsed(path)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in {"boto3", "s3transfer"}, (
                    f"{path}:{node.lineno} imports {name}"
                )


def test_the_services_botocores_credential_chain_creates_are_kept() -> None:
    """botocore's default chain creates clients by itself (assume-role, web identity, IAM Identity
    Center, `aws login`): a botocore upgrade that adds one fails here until it is kept."""
    created = set()
    for module in ("credentials.py", "tokens.py"):
        source = (BOTOCORE / module).read_text(encoding="utf-8")
        created |= set(re.findall(r"client_creator\(\s*['\"]([a-z0-9-]+)['\"]", source))
        created |= set(re.findall(r"create_nested_client\(\s*[\w.]+,\s*['\"]([a-z0-9-]+)['\"]", source))
    assert created, "botocore's credential providers moved: look again"
    assert created <= set(services.KEPT), sorted(created - set(services.KEPT))


def test_a_listed_service_botocore_lacks_stops_the_build(tmp_path: Path) -> None:
    (tmp_path / "ecr").mkdir()
    with pytest.raises(SystemExit, match="no data for sts"):
        load_prune().prune_botocore_data(tmp_path, ["ecr", "sts"])
    assert (tmp_path / "ecr").is_dir()


def test_sts_regions_exist(loader: botocore.loaders.Loader) -> None:
    partitions = {p["id"]: p for p in loader.load_data("partitions")["partitions"]}
    for partition in rules.PARTITIONS:
        assert ChainSession.sts_region(partition) in partitions[partition]["regions"]
