"""The soak runs for minutes and loads the machine: it is skipped unless ECR_SOAK=1 (`make soak`
sets it), so `pytest tests` in `make test` collects it and skips it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ENABLED = os.environ.get("ECR_SOAK") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: opt-in fault soak; runs only with ECR_SOAK=1 (make soak)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="fault soak: opt-in, run `make soak` (ECR_SOAK=1)")
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.soak)
            if not ENABLED:
                item.add_marker(skip)
