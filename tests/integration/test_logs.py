"""`--log-format json`: one JSON object per line, for log shippers that parse rather than grep."""

from __future__ import annotations

import json
from typing import Any

from tests.harness.kube import Kube, wait_for
from tests.integration.conftest import StartOperator

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
LEVELS = {"debug", "info", "warn", "warning", "error", "critical", "fatal"}


def records(log: str) -> list[dict[str, Any]]:
    """Every line the operator wrote (the harness's own `=== starting` line aside), parsed."""
    parsed = []
    for number, line in enumerate(log.splitlines(), 1):
        if not line.strip() or line.startswith("=== starting"):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"line {number} is not JSON: {line[:200]!r}") from None
        assert isinstance(record, dict), f"line {number} is not a JSON object: {line[:200]!r}"
        parsed.append(record)
    return parsed


def level(record: dict[str, Any]) -> str:
    value = record.get("severity") or record.get("level") or record.get("levelname")
    return str(value).lower()


def test_every_log_line_is_a_json_object_with_message_and_level(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    operator = start_operator(args=["--log-format", "json"])
    kube.create_eps(namespace, "app", {"registries": [EAST]})
    kube.wait_ready(namespace, "app")

    def reconciled() -> list[dict[str, Any]]:
        return [
            r
            for r in records(operator.log())
            if f"{namespace}/app" in str(r.get("message")) and "valid until" in str(r.get("message"))
        ]

    # The reconcile message is logged right after the status write that made the resource Ready.
    [message] = wait_for("the reconcile message", reconciled, timeout=5)
    operator.stop()  # so the last line is complete

    parsed = records(operator.log())
    assert len(parsed) > 10, "the operator ran at DEBUG: there should be plenty of lines"
    for record in parsed:
        assert isinstance(record.get("message"), str), record
        assert level(record) in LEVELS, record
    assert level(message) == "info"
    assert "timestamp" in message
