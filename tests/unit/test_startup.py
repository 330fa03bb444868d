"""handlers.watch: what the start-up task does after the lists, whatever fails on the way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta
from typing import Any

import kopf
import pytest

from ecr_pull_secrets.handlers import watch
from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.kube.client import KubeError


class Sync:
    """CacheSync as the start-up task sees it: lists that end at once."""

    counts = (0, 0, 0)
    prime_seconds = 0.0

    def __init__(self) -> None:
        self.relisting = asyncio.Event()

    def start_prime(self, *_: Any) -> Future[dict[Any, Any]]:
        done: Future[dict[Any, Any]] = Future()
        done.set_result({})
        return done

    def follow(self, versions: Any) -> None: ...
    def completed(self) -> None: ...
    def stop(self) -> None: ...

    async def relist_every(self, seconds: float) -> None:
        self.relisting.set()


class Parts:
    """FirstPasses, WorkQueue and EventPoster as the start-up task sees them."""

    def listed(self, uid: str) -> None: ...
    def followed(self, scope: Any) -> None: ...
    def completed(self) -> None: ...
    def start(self) -> None: ...


def start_up(sync: Sync, warm: Callable[[], None] = lambda: None) -> Any:
    """The start-up handler watch.register gives kopf, with `sync` and parts that do nothing."""
    registry = kopf.OperatorRegistry()
    watch.register(
        registry,
        cache=ClusterCache(),
        sync=sync,  # type: ignore[arg-type]
        first_passes=Parts(),  # type: ignore[arg-type]
        queue=Parts(),  # type: ignore[arg-type]
        events=Parts(),  # type: ignore[arg-type]
        gate=None,
        relist_interval=timedelta(seconds=1),
        warm=warm,
    )
    (start,) = (h for h in registry._activities.get_all_handlers() if h.id == "serve-while-listing")
    return start


def test_the_relists_run_even_when_loading_the_aws_clients_ahead_fails() -> None:
    def warm() -> None:
        raise ValueError("botocore refuses AWS_STS_REGIONAL_ENDPOINTS=bogus at create_client")

    sync = Sync()
    start = start_up(sync, warm)

    async def story() -> None:
        await start.fn(logger=logging.getLogger("test"))
        await asyncio.wait_for(sync.relisting.wait(), 5)

    asyncio.run(story())


class FailingFirst(Sync):
    """Lists that fail once with `error`, then end."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error: Exception | None = error

    def start_prime(self, *_: Any) -> Future[dict[Any, Any]]:
        done: Future[dict[Any, Any]] = Future()
        if self.error is not None:
            done.set_exception(self.error)
            self.error = None
        else:
            done.set_result({})
        return done


@pytest.mark.parametrize(
    ("error", "said"),
    [
        pytest.param(
            KubeError(0, "NewConnectionError", "list namespaces"), "again in 0.25s", id="unreachable"
        ),
        pytest.param(KubeError(403, "Forbidden", "list"), "again in 2s", id="refused"),
    ],
)
def test_lists_that_fail_go_again_soon_while_the_api_server_cannot_be_reached(
    error: Exception, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A restarting API server: every second the lists wait after it is back counts against the
    renewals due meanwhile. A refusal is not over that soon."""
    sync = FailingFirst(error)
    start = start_up(sync)

    async def story() -> None:
        await start.fn(logger=logging.getLogger("test"))
        await asyncio.wait_for(sync.relisting.wait(), 10)

    with caplog.at_level(logging.WARNING, logger="test"):
        asyncio.run(story())
    assert [r.getMessage().rsplit("; ", 1)[1] for r in caplog.records] == [said]
