"""Fault soak: 72 hours of renewals, time-compressed, while AWS fails, the API server restarts and
the operator is killed.

Time scale. ECR tokens live 12 h and the operator renews 4 h before expiry (the defaults), so a
resource renews every 8 h: 72 h are 9 renewals per resource. Here a token lives 24 s and, since
renewBefore (4h) exceeds that life, the operator renews a third of it ahead: 8 s (1 s of the soak =
30 min; the ratio 3:1 is the production one), and the soak
runs until every resource has renewed at least 9 times and twice after the last disruption. With that
scale an API server restart of ~5 s is a ~2.5 h outage, inside the 4 h margin; a harsher scale
(12 s / 4s) would make the margin smaller than one restart of the API server, and an expired
token would then say more about the scale than about the operator.

Fleet: 20 resources of every identity kind — 8 EcrPullSecrets with the operator's identity in
one region, 4 in two regions, 4 with a role chain each, 3 with a tenant ServiceAccount (IRSA),
and one ClusterEcrPullSecret over 5 namespaces: 24 managed Secrets.

Faults, all at once:
* AWS: the emulator in front of moto fails each token, STS and identity call with probability
  20 % (a seeded draw), alternating every 3 s between throttling (ThrottlingException/Throttling,
  400) and server errors (ServerException/InternalFailure, 500).
* kube-apiserver restarted twice, the operator SIGKILLed and restarted twice, then both at once
  (the operator restarts while the API server is down). Each outage stays under renewBefore:
  an operator that is down for longer than that cannot keep any token fresh (a first version of
  this soak ran the last two one after the other, 8 s = 4 h of operator outage, and the three
  resources due in that window held tokens up to 2.5 s past expiry). The last is the tightest:
  the API server answers again 3.5-5 s after the kill, and a Secret that fell due at the kill
  has what is left of its 8 s for the start-up lists and its STS and ECR calls, under the same
  faults (until the client stopped waiting out the 5 s Retry-After a starting API server sends
  for our CRDs' paths, it did not have enough).

A checker polls every managed Secret every 250 ms: no Secret may ever hold a token that is
expired or that AWS never issued (ground truth: `aws.issued_tokens()`), and none may be missing
for more than 3 s once it existed. Run with `make soak`; the report is printed (pytest -s).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.harness.aws_emulator import AwsEmulator
from tests.harness.binaries import ensure_binaries
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube, wait_for
from tests.harness.operator_process import OperatorProcess

ROOT = Path(__file__).resolve().parents[2]
LIFETIME = 24.0  # seconds for 12 h
RENEWAL_LEAD = "8s"  # a third of the token's life, for 4 h
RENEWALS_FOR_72H = 9  # 72 h / (12 h - 4 h)
RENEWALS_AFTER_LAST_DISRUPTION = 2
MIN_SECONDS = 150.0
MAX_SECONDS = 480.0
FAIL_SHARE = 0.2
POLL = 0.25
LOST_AFTER = 3.0
SELECTOR = "app.kubernetes.io/managed-by=ecr-pull-secret-operator"
EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
WEST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
SYDNEY = "123456789012.dkr.ecr.ap-southeast-2.amazonaws.com"
FAST = ["--min-renewal-interval", "1s", "--backoff-base", "1s", "--backoff-cap", "4s", "--no-verify"]
ALLOW_ALL = {
    "operatorIdentity": {"namespaces": ["*"]},
    "assumeRoles": [{"namespaces": ["*"], "roleArns": ["arn:aws:iam::*:role/*"]}],
}
# Error codes in each protocol's terms: ECR speaks JSON, STS the query protocol.
FAULTS = {
    "GetAuthorizationToken": (("ThrottlingException", 400), ("ServerException", 500)),
    "AssumeRole": (("Throttling", 400), ("InternalFailure", 500)),
    "AssumeRoleWithWebIdentity": (("Throttling", 400), ("InternalFailure", 500)),
    "GetCallerIdentity": (("Throttling", 400), ("InternalFailure", 500)),
}


class FaultInjector(threading.Thread):
    """Every faulted action fails with probability FAIL_SHARE (the emulator's seeded draw); the
    kind of failure, throttling or a server error, alternates every few seconds."""

    def __init__(self, aws: AwsEmulator, period: float = 3.0) -> None:
        super().__init__(name="faults", daemon=True)
        self.aws = aws
        self.period = period
        self.stop = threading.Event()

    def run(self) -> None:
        turn = 0
        while True:
            for action, errors in FAULTS.items():
                code, status = errors[turn % len(errors)]
                self.aws.fail(action, code, status, probability=FAIL_SHARE)
            turn += 1
            if self.stop.wait(self.period):
                break
        self.aws.clear_faults()


@dataclass
class Observed:
    """What the checker saw of one managed Secret."""

    first_seen: float
    passwords: list[str] = field(default_factory=list)
    changed_at: list[float] = field(default_factory=list)  # monotonic time of each token change
    missing_since: float | None = None


class Checker(threading.Thread):
    """Polls every managed Secret; records violations instead of raising (the main thread asserts)."""

    def __init__(self, kubeconfig: Path, aws: AwsEmulator) -> None:
        super().__init__(name="checker", daemon=True)
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        configuration.retries = 0
        self.core = client.CoreV1Api(client.ApiClient(configuration))
        self.aws = aws
        self.stop = threading.Event()
        self.secrets: dict[tuple[str, str], Observed] = {}
        self.expired: list[str] = []
        self.unknown: list[str] = []
        self.lost: list[str] = []
        self.worst_remaining = float("inf")
        self.worst_at = ""
        self.polls = 0
        self.failed_polls = 0
        self.started = time.monotonic()

    def run(self) -> None:
        while not self.stop.wait(POLL):
            try:
                response = self.core.list_secret_for_all_namespaces(
                    label_selector=SELECTOR, _preload_content=False, _request_timeout=2
                )
                items = json.loads(response.data)["items"]
            except Exception:  # the API server is restarting: nothing to observe
                self.failed_polls += 1
                continue
            self.polls += 1
            self.check(items, time.time(), time.monotonic())

    def check(self, items: list[dict[str, Any]], now: float, mono: float) -> None:
        issued = self.aws.issued_tokens()
        present = set()
        for secret in items:
            key = (secret["metadata"]["namespace"], secret["metadata"]["name"])
            present.add(key)
            seen = self.secrets.setdefault(key, Observed(first_seen=mono))
            seen.missing_since = None
            found = sorted(_passwords(secret))
            for password in found:
                expiry = issued.get(password)
                where = f"{key[0]}/{key[1]}"
                if expiry is None:
                    self.unknown.append(f"{where}: a token AWS never issued")
                    continue
                remaining = expiry - now
                if remaining < self.worst_remaining:
                    self.worst_remaining, self.worst_at = remaining, where
                if remaining <= 0:
                    at = mono - self.started
                    self.expired.append(f"{where}: token expired {-remaining:.2f}s ago (at {at:.1f}s)")
            signature = ",".join(found)
            if not seen.passwords or seen.passwords[-1] != signature:
                seen.passwords.append(signature)
                seen.changed_at.append(mono)
        for key, seen in self.secrets.items():
            if key in present:
                continue
            if seen.missing_since is None:
                seen.missing_since = mono
            elif mono - seen.missing_since > LOST_AFTER:
                since = seen.missing_since - self.started
                message = f"{key[0]}/{key[1]} missing for more than {LOST_AFTER:.0f}s (since {since:.1f}s)"
                if message not in self.lost:
                    self.lost.append(message)

    def renewals(self) -> dict[tuple[str, str], int]:
        """Token changes seen per Secret after the first token."""
        return {key: len(seen.passwords) - 1 for key, seen in self.secrets.items()}

    def renewals_since(self, mono: float) -> dict[tuple[str, str], int]:
        return {key: sum(t > mono for t in seen.changed_at) for key, seen in self.secrets.items()}


def _passwords(secret: dict[str, Any]) -> set[str]:
    encoded = (secret.get("data") or {}).get(".dockerconfigjson")
    if not encoded:
        return set()
    auths = json.loads(base64.b64decode(encoded)).get("auths", {})
    return {entry["password"] for entry in auths.values()}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[ControlPlane, AwsEmulator, Kube]]:
    with (
        ControlPlane(tmp_path / "controlplane") as cp,
        AwsEmulator(token_lifetime=LIFETIME, fault_seed=72) as aws,
    ):
        kube = Kube(cp.kubeconfig, ensure_binaries() / "kubectl")
        kube.kubectl("apply", "--server-side", "-f", str(ROOT / "deploy" / "crds"))
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        yield cp, aws, kube


def _fleet(kube: Kube) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Creates the 20 resources; returns (namespaced resources, expected Secrets)."""
    for ns in ("soak-a", "soak-b", "soak-c", *(f"soak-fan-{i}" for i in range(5))):
        kube.create_namespace(ns)
    resources: list[tuple[str, str, dict[str, Any]]] = []
    resources += [("soak-a", f"own-{i}", {"registries": [EAST]}) for i in range(8)]
    resources += [("soak-b", f"two-regions-{i}", {"registries": [EAST, WEST]}) for i in range(4)]
    resources += [
        (
            "soak-b",
            f"chain-{i}",
            {
                "registries": [WEST],
                "auth": {"roleChain": [{"roleArn": f"arn:aws:iam::123456789012:role/soak-{i}"}]},
            },
        )
        for i in range(4)
    ]
    for i in range(3):
        annotations = {"eks.amazonaws.com/role-arn": f"arn:aws:iam::333333333333:role/tenant-{i}"}
        kube.core.create_namespaced_service_account(
            "soak-c", {"metadata": {"name": f"puller-{i}", "annotations": annotations}}
        )
        spec = {"registries": [EAST], "auth": {"serviceAccountRef": {"name": f"puller-{i}"}}}
        resources.append(("soak-c", f"tenant-{i}", spec))
    for namespace, name, spec in resources:
        kube.create_eps(namespace, name, spec)
    kube.create_ceps(
        "soak-fan",
        {
            "registries": [EAST, SYDNEY],
            "secretName": "fan",
            "namespaces": {"include": ["soak-fan-*"]},
        },
    )
    secrets = [(ns, name) for ns, name, _ in resources] + [(f"soak-fan-{i}", "fan") for i in range(5)]
    return [(ns, name) for ns, name, _ in resources], secrets


def test_72h_of_renewals_under_faults(
    cluster: tuple[ControlPlane, AwsEmulator, Kube], tmp_path: Path
) -> None:
    control_plane, aws, kube = cluster
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(ALLOW_ALL))
    operator = OperatorProcess(
        tmp_path / "operator.log",
        {**aws.env(), "KUBECONFIG": str(control_plane.kubeconfig)},
        ["--policy", str(policy), *FAST, "--log-format", "full"],
    )
    resources, expected = _fleet(kube)
    operator.start()
    faults = FaultInjector(aws)
    checker = Checker(control_plane.kubeconfig, aws)
    restarts: Counter[str] = Counter()
    try:
        for namespace, name in resources:
            kube.wait_ready(namespace, name, timeout=60)
        wait_for(
            "the ClusterEcrPullSecret's Secrets",
            lambda: all(kube.get_secret(ns, name) for ns, name in expected),
            timeout=60,
        )
        started = time.monotonic()
        checker.started = started
        checker.start()
        calls_before = aws.call_counts()
        faults.start()

        def at(seconds: float) -> None:
            time.sleep(max(0.0, started + seconds - time.monotonic()))

        def log(message: str) -> None:
            print(f"[{time.monotonic() - started:5.0f}s] {message}", flush=True)

        def restart_apiserver() -> None:
            began = time.monotonic()
            control_plane.restart_apiserver()
            restarts["kube-apiserver"] += 1
            log(f"kube-apiserver restarted in {time.monotonic() - began:.1f}s")

        def kill_operator() -> None:
            began = time.monotonic()
            operator.kill()
            operator.start()
            restarts["operator (SIGKILL)"] += 1
            log(f"operator killed, live again in {time.monotonic() - began:.1f}s")

        at(20)
        restart_apiserver()
        at(45)
        kill_operator()
        at(75)
        restart_apiserver()
        at(100)
        kill_operator()
        at(125)
        # Both at once, as when a node fails: the API server restarts while the operator is
        # killed and started again (it comes up while the API server is still down).
        apiserver = threading.Thread(target=restart_apiserver, name="restart-apiserver")
        apiserver.start()
        kill_operator()
        apiserver.join()
        calm_from = time.monotonic()

        def enough() -> bool:
            # 72 h in all, and two renewals of every Secret after the last disruption: an operator
            # that came back broken would otherwise pass on the renewals it made before.
            counts, after = checker.renewals(), checker.renewals_since(calm_from)
            return (
                len(counts) == len(expected)
                and min(counts.values()) >= RENEWALS_FOR_72H
                and min(after.values()) >= RENEWALS_AFTER_LAST_DISRUPTION
            )

        while time.monotonic() - started < MIN_SECONDS or not enough():
            assert time.monotonic() - started < MAX_SECONDS, f"too few renewals: {checker.renewals()}"
            time.sleep(1)
        elapsed = time.monotonic() - started
    finally:
        faults.stop.set()
        checker.stop.set()
        if faults.is_alive():
            faults.join()
        if checker.is_alive():
            checker.join()
        operator.stop()

    renewals = checker.renewals()
    failed = {action: n for (_, action), n in aws.faulted_counts().items()}
    total = sum(n - calls_before.get(key, 0) for key, n in aws.call_counts().items() if key[1] in FAULTS)
    scale = 12 * 3600 / LIFETIME
    print(
        "\n=== fault soak ===\n"
        f"soak time {elapsed:.0f}s = {elapsed * scale / 3600:.0f} h at 12 h tokens (x{scale:.0f}); "
        f"token lifetime {LIFETIME:.0f}s, renewed {RENEWAL_LEAD} ahead\n"
        f"Secrets {len(renewals)}; renewals seen {sum(renewals.values())} "
        f"(per Secret min {min(renewals.values())}, max {max(renewals.values())}; "
        f"{RENEWALS_FOR_72H} = 72 h; after the last disruption min "
        f"{min(checker.renewals_since(calm_from).values())})\n"
        f"AWS calls {total} of the faulted actions; failures served {sum(failed.values())} "
        f"({sum(failed.values()) / max(total, 1):.0%}): {failed}\n"
        f"restarts {dict(restarts)}\n"
        f"checker polls {checker.polls} ok, {checker.failed_polls} failed (API server down)\n"
        f"worst remaining token lifetime seen {checker.worst_remaining:.2f}s ({checker.worst_at}) = "
        f"{checker.worst_remaining * scale / 3600:.1f} h at 12 h tokens\n"
        f"expired: {len(checker.expired)}, never issued: {len(checker.unknown)}, lost: {len(checker.lost)}"
    )
    if checker.expired or checker.unknown or checker.lost:
        print(operator.log()[-8000:])
    assert not checker.expired, checker.expired[:10]
    assert not checker.unknown, checker.unknown[:10]
    assert not checker.lost, checker.lost
    assert set(renewals) >= set(expected)
    assert min(renewals.values()) >= RENEWALS_FOR_72H
    assert min(checker.renewals_since(calm_from).values()) >= RENEWALS_AFTER_LAST_DISRUPTION
    assert restarts["kube-apiserver"] >= 2
    assert restarts["operator (SIGKILL)"] >= 2
    assert 0.1 < sum(failed.values()) / total < 0.3
