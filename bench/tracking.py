"""Watches that timestamp what the operator does: when each managed Secret appeared (and with which
uid, so that a restored Secret is told apart from the one deleted), when each resource was first
Ready, and every distinct `status.lastRefreshTime`. An event is timestamped when this process reads
it from the watch stream.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.harness.kube import CLUSTER_PLURAL, GROUP, PLURAL, VERSION

from bench.env import MANAGED_SELECTOR, Env, api_client

Key = tuple[str, str]


def is_ready(body: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (body.get("status") or {}).get("conditions") or ()
    )


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


def key(obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


class Tracker:
    """What the watches saw, with times: when each Secret first appeared, every event on each
    Secret (type, time, uid), when each resource was first Ready, and every distinct
    `lastRefreshTime` (one per issue or renewal)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.secret_seen: dict[Key, float] = {}
        self.secret_events: dict[Key, list[tuple[str, float, str]]] = {}
        self.ready_at: dict[Key, float] = {}
        self.refreshes: dict[Key, list[tuple[str, float]]] = {}
        self.bodies: dict[Key, dict[str, Any]] = {}

    def on_secret(self, kind: str, obj: dict[str, Any], now: float) -> None:
        k = key(obj)
        with self.cond:
            if kind != "DELETED":
                self.secret_seen.setdefault(k, now)
            self.secret_events.setdefault(k, []).append((kind, now, obj["metadata"].get("uid", "")))
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

    def wait(self, what: str, predicate: Callable[[], bool], timeout: float, *, every: float = 0.0) -> float:
        """Blocks until predicate() (evaluated under the lock) holds; returns the monotonic time.

        `every`: evaluate it at most that often (a costly predicate over thousands of resources
        would otherwise run on every watch event); the time returned is then late by up to that.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self.cond:
                if predicate():
                    return time.monotonic()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
                self.cond.wait(min(remaining, 1.0))
            if every:
                time.sleep(every)

    def wait_all(
        self, what: str, keys: Sequence[Key], timeout: float, *, ready: bool = True, secret: bool = True
    ) -> float:
        """Blocks until every resource in `keys` was seen Ready (`ready`) and its Secret was seen
        (`secret`); returns the time the watch saw the last of those events (monotonic), exactly."""
        tables = [t for t, wanted in ((self.ready_at, ready), (self.secret_seen, secret)) if wanted]
        missing = 0  # keys before this index are done: a key, once seen, stays seen

        def done() -> bool:
            nonlocal missing
            while missing < len(keys) and all(keys[missing] in t for t in tables):
                missing += 1
            return missing == len(keys)

        self.wait(what, done, timeout, every=0.05)
        with self.cond:
            return max((t[k] for t in tables for k in keys), default=time.monotonic())

    def restored(self, k: Key, *, after: float, uid: str) -> float | None:
        """When the watch first saw a Secret `k` with another uid than `uid` after `after`."""
        with self.cond:
            events = self.secret_events.get(k, [])
            back = [t for kind, t, u in events if kind != "DELETED" and t > after and u != uid]
        return back[0] if back else None

    def secret_uid(self, k: Key) -> str:
        """The uid of the Secret `k` as the watch last saw it."""
        with self.cond:
            events = self.secret_events.get(k, [])
            return events[-1][2] if events else ""

    @contextlib.contextmanager
    def watching(self, env: Env, *, resources: str = "eps", secrets: bool = True) -> Iterator[Tracker]:
        with contextlib.ExitStack() as stack:
            stack.enter_context(Watch(env.control_plane.kubeconfig, resources, self.on_resource))
            if secrets:
                stack.enter_context(
                    Watch(env.control_plane.kubeconfig, "secrets", self.on_secret, MANAGED_SELECTOR)
                )
            yield self
