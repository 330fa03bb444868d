"""Samplers of what the operator costs: its memory (VmRSS, VmHWM), its CPU time and a wait for it
to settle, and the emulator's AWS call counts over time.

Memory per resource is an RSS slope: the operator's RSS once it has settled with all resources
Ready, less its RSS once it settled before the first resource existed, over the number of
resources. RSS, not tracemalloc: it is what a memory limit counts, and it includes what Python's
allocator keeps after a peak.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.table import say

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_kb(process_id: int) -> int:
    """VmRSS of the process in KB (0 once it is gone)."""
    return _status(process_id).get("VmRSS", 0)


def _status(process_id: int) -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{process_id}/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def cpu_seconds(process_id: int) -> float:
    """User + system CPU time of the process so far (its threads included)."""
    try:
        with open(f"/proc/{process_id}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # After the command name: state is field 3 of stat(5), utime and stime fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass(frozen=True)
class Settled:
    """The operator at rest: its RSS and how long it took to get there."""

    rss_kb: int
    waited: float
    quiet: bool  # False: the time limit came first

    @property
    def rss_mb(self) -> float:
        return self.rss_kb / 1024


def settle(
    process_id: int,
    what: str,
    *,
    minimum: float = 3.0,
    window: float = 2.0,
    busy: float = 0.05,
    timeout: float = 60.0,
) -> Settled:
    """Waits at least `minimum` seconds, then until the process used at most `busy` of a core over
    the last `window` seconds (a few periodic wake-ups pass), or until `timeout`; its RSS then."""
    started = time.monotonic()
    samples: list[tuple[float, float]] = []
    while True:
        now = time.monotonic()
        samples.append((now, cpu_seconds(process_id)))
        old = [s for s in samples if s[0] <= now - window]
        if now - started >= minimum and old:
            then, cpu_then = old[-1]
            if (samples[-1][1] - cpu_then) / (now - then) <= busy:
                settled = Settled(rss_kb(process_id), now - started, quiet=True)
                break
        if now - started >= timeout:
            settled = Settled(rss_kb(process_id), now - started, quiet=False)
            break
        time.sleep(0.2)
    state = "settled" if settled.quiet else f"still busy after {timeout:.0f}s"
    say(f"{what}: operator {state} after {settled.waited:.1f}s, RSS {settled.rss_mb:.1f} MB")
    return settled


def per_resource_kb(idle: Settled, steady: Settled, count: int) -> float:
    """(RSS at steady state - RSS idle before the resources) / count, in KB."""
    return (steady.rss_kb - idle.rss_kb) / max(count, 1)


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
        return _status(self.pid)

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
    """Samples the emulator's call counts every `interval` (nothing is added to the emulator; `aws`
    is an AwsEmulator or a RemoteAws): the differences give a per-second histogram of AWS requests
    as the endpoint received them."""

    def __init__(self, aws: Any, interval: float = 0.1) -> None:
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
