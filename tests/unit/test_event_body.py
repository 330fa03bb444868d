"""kube.events.event_body: the core/v1 Event as `kubectl describe` shows it; plan.status.settled."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ecr_pull_secrets.kube.events import MAX_MESSAGE, event_body
from ecr_pull_secrets.model import api
from ecr_pull_secrets.plan.status import settled

AT = datetime(2026, 12, 2, 12, 0, 0, 123456, tzinfo=UTC)


def resource(kind: str = api.KIND, namespace: str | None = "team-a") -> dict[str, Any]:
    meta = {"name": "app", "uid": "u-1", **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": f"{api.GROUP}/{api.VERSION}", "kind": kind, "metadata": meta}


def test_an_event_names_its_object_and_says_who_reported_it() -> None:
    body = event_body(resource(), type="Normal", reason="Issued", message="ok", namespace="team-a", at=AT)
    assert body["involvedObject"] == {
        "apiVersion": f"{api.GROUP}/{api.VERSION}",
        "kind": api.KIND,
        "name": "app",
        "uid": "u-1",
        "namespace": "team-a",
    }
    assert body["metadata"] == {"namespace": "team-a", "generateName": "app."}
    assert (body["type"], body["reason"], body["message"]) == ("Normal", "Issued", "ok")
    assert body["source"] == {"component": "ecr-pull-secret-operator"}
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-12-02T12:00:00.123456+00:00"
    assert body["eventTime"] == "2026-12-02T12:00:00.123456Z"


def test_a_cluster_scoped_object_is_reported_in_the_given_namespace() -> None:
    body = event_body(
        resource(api.CLUSTER_KIND, None), type="Warning", reason="X", message="m", namespace="ops", at=AT
    )
    assert body["metadata"]["namespace"] == body["involvedObject"]["namespace"] == "ops"


def test_a_long_message_keeps_its_start_and_end() -> None:
    message = "a" * 2000 + "END"
    body = event_body(resource(), type="Warning", reason="X", message=message, namespace="n", at=AT)
    assert len(body["message"]) <= MAX_MESSAGE
    assert body["message"].startswith("aaa")
    assert body["message"].endswith("END")


def with_status(
    generation: int, observed: int | None, *, asked: str | None = None, done: str | None = None
) -> dict[str, Any]:
    annotations = {api.FORCE_REFRESH_ANNOTATION: asked} if asked else {}
    return {
        "metadata": {"generation": generation, "annotations": annotations},
        "status": {"observedGeneration": observed, "forceRefresh": done} if observed else {},
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (with_status(1, 1), True),
        (with_status(1, None), False),  # never worked on
        (with_status(2, 1), False),  # edited while no replica worked
        (with_status(1, 1, asked="x"), False),  # a refresh asked for meanwhile
        (with_status(1, 1, asked="x", done="x"), True),
        ({**with_status(1, 1), "metadata": {"generation": 1, "deletionTimestamp": "t"}}, False),
    ],
)
def test_settled(body: dict[str, Any], expected: bool) -> None:
    assert settled(body) is expected
