"""What every benchmark prints and how it parses its options: progress on stderr, one Markdown
table row on stdout, percentiles, ratios to the baseline, a thread pool for bulk API calls, and
time limits that grow with the number of resources."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
WORKERS = 16  # threads of bulk API calls, here and in the baseline

TABLE_HEADER = (
    "| benchmark | scenario | measured | goal | met | cores (1-min load) |\n|---|---|---|---|---|---|"
)


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


TIMES = "\N{MULTIPLICATION SIGN}"


def times(ratio: float) -> str:
    """A ratio to the baseline as the rows print it: 2.1, the multiplication sign, " baseline"."""
    return f"{ratio:.1f}{TIMES} baseline"


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, audit log)")
    return parser


def scaled(count: int, *, per_resource: float, minimum: float) -> float:
    """A time limit for work on `count` resources: `per_resource` seconds each, at least `minimum`."""
    return max(minimum, count * per_resource)


def bulk(fn: Callable[[T], Any], items: Iterable[T], workers: int = WORKERS, what: str = "") -> float:
    """Runs fn over items on a thread pool; returns the seconds it took."""
    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(fn, items))
    took = time.monotonic() - started
    if what:
        say(f"{what} in {took:.1f}s")
    return took
