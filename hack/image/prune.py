#!/usr/bin/env python3
"""Deletes from the image's virtualenv what the operator never runs (the Dockerfile calls it).

- botocore's data for every service but ecr_pull_secrets.aws.services.KEPT (about 420 services,
  28 MB); botocore's own files at the top of data/ (endpoints.json, partitions.json,
  sdk-default-configuration.json, _retry.json) stay;
- boto3 and s3transfer: installed as dependencies, never imported (the operator creates its
  clients with botocore; tests/unit/test_services.py checks no module imports them);
- the test suites some packages ship inside themselves (websocket/tests, certifi/tests, the
  kubernetes client's *_test.py and dynamic/test_*.py modules: nothing but tests imports them).

    /opt/venv/bin/python hack/image/prune.py /opt/venv/lib/python3.11/site-packages

tests/unit/test_services.py runs prune_botocore_data on a copy of botocore's data and creates
every client the operator creates against what is left.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from ecr_pull_secrets.aws.services import KEPT  # the installed operator's own list

UNUSED_PACKAGES = ("boto3", "s3transfer")
"""Dependencies nothing imports: their package directories and metadata go."""
BUNDLED_TESTS = ("websocket/tests", "certifi/tests")
BUNDLED_TEST_MODULES = ("kubernetes/**/*_test.py", "kubernetes/dynamic/test_*.py")


def prune_botocore_data(data: Path, keep: Iterable[str]) -> list[Path]:
    """Deletes every service directory under botocore's `data` but `keep`; returns what went.
    Files at the top (botocore's own partition, endpoint, retry and default configuration data)
    stay. A kept service botocore lacks is an error: the image would not have it either."""
    kept = set(keep)
    missing = sorted(name for name in kept if not (data / name).is_dir())
    if missing:
        raise SystemExit(f"botocore has no data for {', '.join(missing)} (in {data})")
    removed = [entry for entry in sorted(data.iterdir()) if entry.is_dir() and entry.name not in kept]
    for entry in removed:
        shutil.rmtree(entry)
    return removed


def prune_packages(site: Path, packages: Iterable[str]) -> list[Path]:
    """Deletes installed packages (code and dist-info) without pip, which the image does not keep."""
    removed: list[Path] = []
    for package in packages:
        targets = [site / package, *site.glob(f"{package}-*.dist-info")]
        for target in (t for t in targets if t.exists()):
            shutil.rmtree(target)
            removed.append(target)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("site_packages", type=Path)
    args = parser.parse_args(argv)
    site: Path = args.site_packages

    def size(path: Path) -> int:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

    before = size(site)
    services = prune_botocore_data(site / "botocore" / "data", KEPT)
    packages = prune_packages(site, UNUSED_PACKAGES)
    tests = [site / t for t in BUNDLED_TESTS if (site / t).is_dir()]
    for path in tests:
        shutil.rmtree(path)
    modules = sorted({m for pattern in BUNDLED_TEST_MODULES for m in site.glob(pattern)})
    for module in modules:
        module.unlink()
    after = size(site)
    print(
        f"[prune] botocore data of {len(services)} services (kept: {', '.join(sorted(KEPT))}), "
        f"{', '.join(p.name for p in packages) or 'no packages'}, {len(tests)} bundled test suites, "
        f"{len(modules)} test modules: "
        f"{(before - after) / 1e6:.1f} MB of {before / 1e6:.1f} MB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
