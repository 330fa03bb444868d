"""What every benchmark needs: a private control plane with an audit log, the AWS emulator, the
operator running as a real subprocess under its own ServiceAccount (the chart's RBAC, so the audit
log tells its writes apart from ours), watches that timestamp what the operator does, and samplers
for its memory and for the emulator's call counts.

All times are `time.monotonic()` in this process; all figures are counts and ratios from one run.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.binaries import ensure_binaries
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import CLUSTER_PLURAL, GROUP, PLURAL, VERSION, Kube
from tests.harness.operator_process import OperatorProcess
from tests.harness.process import ManagedProcess

ROOT = Path(__file__).resolve().parents[1]
CRDS = ROOT / "deploy" / "crds"
MANIFESTS = ROOT / "deploy" / "manifests"
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=ecr-pull-secret-operator"
EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
REGISTRIES = (
    EAST,
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    "123456789012.dkr.ecr.ap-southeast-2.amazonaws.com",
)
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
T = TypeVar("T")


def say(message: str) -> None:
    """Progress, on stderr: stdout carries only the table row."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cores() -> int:
    return os.cpu_count() or 1


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def row(benchmark: str, scenario: str, result: str, goal: str, met: bool | None) -> str:
    mark = "n/a" if met is None else ("yes" if met else "**no**")
    load = os.getloadavg()[0]
    line = f"| {benchmark} | {scenario} | {result} | {goal} | {mark} | {cores()} (load {load:.1f}) |"
    print(line, flush=True)
    return line


TABLE_HEADER = (
    "| benchmark | scenario | measured | goal | met | cores (1-min load) |\n|---|---|---|---|---|---|"
)


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, audit log)")
    return parser


def bulk(fn: Callable[[T], Any], items: Iterable[T], workers: int = 16, what: str = "") -> float:
    """Runs fn over items on a thread pool; returns the seconds it took."""
    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(fn, items))
    took = time.monotonic() - started
    if what:
        say(f"{what} in {took:.1f}s")
    return took


def api_client(kubeconfig: Path, pool: int = 32) -> client.ApiClient:
    """A client whose connection pool fits our thread pools (the default keeps 10)."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = pool
    return client.ApiClient(configuration)


def eps_body(name: str, spec: Mapping[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EcrPullSecret",
        "metadata": {"name": name, **meta},
        "spec": dict(spec),
    }


def is_ready(body: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (body.get("status") or {}).get("conditions") or ()
    )


def passwords(secret: Mapping[str, Any]) -> set[str]:
    """The ECR passwords a managed pull Secret holds."""
    encoded = (secret.get("data") or {}).get(".dockerconfigjson")
    if not encoded:
        return set()
    auths = json.loads(base64.b64decode(encoded)).get("auths", {})
    return {entry.get("password", "") for entry in auths.values()}


# -- the environment ---------------------------------------------------------------------------


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
        token = self.core.create_namespaced_service_account_token(
            self.OPERATOR_ACCOUNT, self.OPERATOR_NAMESPACE, {"spec": {"expirationSeconds": 48 * 3600}}
        ).status.token
        return self.control_plane.kubeconfig_for_token(token, name="operator")

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

    # -- bulk API helpers -------------------------------------------------------------------

    def create_namespaces(self, names: Sequence[str], workers: int = 16) -> float:
        return bulk(
            lambda ns: self.core.create_namespace({"metadata": {"name": ns}}, _preload_content=False),
            names,
            workers,
            f"created {len(names)} namespaces",
        )

    def create_eps(self, namespace: str, name: str, spec: Mapping[str, Any], **meta: Any) -> None:
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, eps_body(name, spec, **meta), _preload_content=False
        )

    def create_ceps(self, name: str, spec: Mapping[str, Any]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClusterEcrPullSecret",
            "metadata": {"name": name},
            "spec": dict(spec),
        }
        self.custom.create_cluster_custom_object(GROUP, VERSION, CLUSTER_PLURAL, body, _preload_content=False)

    def managed_secrets(self) -> list[dict[str, Any]]:
        response = self.core.list_secret_for_all_namespaces(
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


def pid(operator: OperatorProcess) -> int:
    proc = operator._proc  # the harness keeps the Popen; we only read its pid
    assert proc is not None, "operator not running"
    return proc.pid


def total_writes(counts: Mapping[str, int]) -> int:
    return sum(n for verb, n in counts.items() if verb in SECRET_WRITE_VERBS)


# -- samplers ------------------------------------------------------------------------------------


class RssSampler:
    """Polls VmRSS of a process every `interval`; `peak_mb` also takes the kernel's VmHWM.

    With `limit_mb`, SIGKILLs the process once its RSS passes that (the machine is shared) and
    sets `killed`."""

    def __init__(self, process_id: int, interval: float = 0.1, limit_mb: float | None = None) -> None:
        self.pid = process_id
        self.interval = interval
        self.limit_mb = limit_mb
        self.killed = False
        self.max_rss_kb = 0
        self.hwm_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return max(self.max_rss_kb, self.hwm_kb) / 1024

    @property
    def current_mb(self) -> float:
        return self._read().get("VmRSS", 0) / 1024

    def _read(self) -> dict[str, int]:
        found: dict[str, int] = {}
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
                for line in status:
                    key, _, value = line.partition(":")
                    if key in ("VmRSS", "VmHWM"):
                        found[key] = int(value.split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
        return found

    def _sample(self) -> None:
        values = self._read()
        self.max_rss_kb = max(self.max_rss_kb, values.get("VmRSS", 0))
        self.hwm_kb = max(self.hwm_kb, values.get("VmHWM", 0))
        if self.limit_mb is not None and not self.killed and values.get("VmRSS", 0) / 1024 > self.limit_mb:
            self.killed = True
            say(f"operator RSS passed {self.limit_mb:.0f} MB: killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()


class CallSampler:
    """Samples the emulator's call counts every `interval` (nothing is added to the emulator):
    the differences give a per-second histogram of AWS requests as the endpoint received them."""

    def __init__(self, aws: AwsEmulator, interval: float = 0.1) -> None:
        self.aws = aws
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.by_action: list[tuple[float, dict[tuple[str, str], int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="calls", daemon=True)

    def __enter__(self) -> CallSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        counts = self.aws.call_counts()
        now = time.monotonic()
        self.samples.append((now, sum(counts.values())))
        self.by_action.append((now, counts))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def calls_between(self, start: float, end: float) -> int:
        before = [n for t, n in self.samples if t <= start]
        after = [n for t, n in self.samples if t <= end]
        return (after[-1] if after else 0) - (before[-1] if before else 0)

    def peak_per_second(self, start: float | None = None, end: float | None = None) -> tuple[int, int]:
        """(peak over fixed 1-second buckets, peak over any sliding window of ~1 s) of calls."""
        samples = [
            (t, n) for t, n in self.samples if (start is None or t >= start) and (end is None or t <= end)
        ]
        if len(samples) < 2:
            return 0, 0
        origin = samples[0][0]
        buckets: Counter[int] = Counter()
        for (_, before), (t, after) in itertools.pairwise(samples):
            buckets[int((t - origin) // 1.0)] += after - before
        sliding = 0
        j = 0
        for i in range(len(samples)):
            while samples[i][0] - samples[j][0] > 1.0 + 1e-6:
                j += 1
            sliding = max(sliding, samples[i][1] - samples[j][1])
        return max(buckets.values(), default=0), sliding

    def peak_breakdown(self) -> tuple[float, dict[str, int]]:
        """The fixed 1-s bucket with the most calls over the whole run: (its start, seconds after the
        first sample; calls in it by service:action)."""
        samples = self.by_action
        origin = samples[0][0]
        buckets: dict[int, Counter[str]] = {}
        for (_, before), (t, after) in itertools.pairwise(samples):
            bucket = buckets.setdefault(int((t - origin) // 1.0), Counter())
            for (service, action), n in after.items():
                if n - before.get((service, action), 0):
                    bucket[f"{service}:{action}"] += n - before.get((service, action), 0)
        if not buckets:
            return 0.0, {}
        top = max(buckets, key=lambda b: sum(buckets[b].values()))
        return float(top), dict(buckets[top])

    def histogram(self, start: float, end: float) -> list[int]:
        """Calls per 1-second bucket from start to end."""
        samples = [(t, n) for t, n in self.samples if start <= t <= end]
        buckets: Counter[int] = Counter()
        for (_, before), (t, after) in itertools.pairwise(samples):
            buckets[int((t - start) // 1.0)] += after - before
        return [buckets[i] for i in range(max(buckets, default=-1) + 1)]


# -- watches ------------------------------------------------------------------------------------


class Watch:
    """One cluster-wide list+watch in a thread, raw JSON (no model objects), calling
    `on_event(type, obj, monotonic time)`; re-lists on 410 Gone and on any stream error."""

    def __init__(
        self,
        kubeconfig: Path,
        kind: str,
        on_event: Callable[[str, dict[str, Any], float], None],
        label_selector: str = "",
    ) -> None:
        self.kind = kind
        self.label_selector = label_selector
        self.on_event = on_event
        self.synced = threading.Event()
        self.errors = 0
        self._api = api_client(kubeconfig, pool=4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{kind}", daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        if not self.synced.wait(60):
            raise RuntimeError(f"watch of {self.kind} did not sync")
        return self

    def __exit__(self, *exc: object) -> None:
        # Closing a urllib3 response that another thread is reading blocks until the read ends;
        # the thread is a daemon and reports nothing once stopped, so it is simply left behind.
        self._stop.set()

    def _list(self, **kwargs: Any) -> Any:
        if self.kind == "secrets":
            return client.CoreV1Api(self._api).list_secret_for_all_namespaces(
                label_selector=self.label_selector, _preload_content=False, **kwargs
            )
        plural = {"eps": PLURAL, "ceps": CLUSTER_PLURAL}[self.kind]
        return client.CustomObjectsApi(self._api).list_cluster_custom_object(
            GROUP, VERSION, plural, label_selector=self.label_selector, _preload_content=False, **kwargs
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                listed = json.loads(self._list().data)
                now = time.monotonic()
                for item in listed["items"]:
                    self.on_event("ADDED", item, now)
                self.synced.set()
                self._watch(listed["metadata"]["resourceVersion"])
            except Exception:  # apiserver restarts, timeouts: list again
                if self._stop.is_set():
                    return
                self.errors += 1
                time.sleep(0.2)

    def _watch(self, resource_version: str) -> None:
        while not self._stop.is_set():
            response = self._list(
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=240,
            )
            buffer = b""
            for chunk in response.stream(amt=None, decode_content=False):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":
                        raise ApiException(status=obj.get("code", 0), reason=obj.get("message", ""))
                    resource_version = obj["metadata"]["resourceVersion"]
                    if kind != "BOOKMARK" and not self._stop.is_set():
                        self.on_event(kind, obj, time.monotonic())


def key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


class Tracker:
    """What the watches saw, with times: when each Secret first appeared, when each resource was
    first Ready, and every distinct `lastRefreshTime` (one per issue or renewal)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.secret_seen: dict[tuple[str, str], float] = {}
        self.secret_events: dict[tuple[str, str], list[tuple[str, float]]] = {}
        self.ready_at: dict[tuple[str, str], float] = {}
        self.refreshes: dict[tuple[str, str], list[tuple[str, float]]] = {}
        self.bodies: dict[tuple[str, str], dict[str, Any]] = {}

    def on_secret(self, kind: str, obj: dict[str, Any], now: float) -> None:
        with self.cond:
            if kind != "DELETED":
                self.secret_seen.setdefault(key(obj), now)
            self.secret_events.setdefault(key(obj), []).append((kind, now))
            self.cond.notify_all()

    def on_resource(self, kind: str, obj: dict[str, Any], now: float) -> None:
        k = key(obj)
        with self.cond:
            if kind == "DELETED":
                self.bodies.pop(k, None)
            else:
                self.bodies[k] = obj
                if is_ready(obj):
                    self.ready_at.setdefault(k, now)
                refreshed = (obj.get("status") or {}).get("lastRefreshTime")
                seen = self.refreshes.setdefault(k, [])
                if refreshed and (not seen or seen[-1][0] != refreshed):
                    seen.append((refreshed, now))
            self.cond.notify_all()

    def wait(self, what: str, predicate: Callable[[], bool], timeout: float) -> float:
        """Blocks until predicate() (evaluated under the lock) holds; returns the monotonic time."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
                self.cond.wait(min(remaining, 1.0))
        return time.monotonic()

    @contextlib.contextmanager
    def watching(self, env: Env, *, resources: str = "eps", secrets: bool = True) -> Iterator[Tracker]:
        with contextlib.ExitStack() as stack:
            stack.enter_context(Watch(env.control_plane.kubeconfig, resources, self.on_resource))
            if secrets:
                stack.enter_context(
                    Watch(env.control_plane.kubeconfig, "secrets", self.on_secret, MANAGED_SELECTOR)
                )
            yield self
