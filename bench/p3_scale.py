"""P3: 2,000 namespaces.

Three runs, each on a fresh control plane with 2,000 namespaces:

* eps-live: the operator runs; 2,000 EcrPullSecrets, one per namespace, are created by 16
  threads of this process and the clock runs from the first create until every resource is Ready
  and its Secret exists (both seen through watches).
* eps: 2,000 EcrPullSecrets, one per namespace, all created while the operator is stopped; then
  the operator starts and the clock runs from `start()` until every resource is Ready and its
  Secret exists (both seen through watches). This is the operator's own throughput: creating
  2,000 objects from this process would otherwise be most of the figure.
* ceps: the operator runs; one ClusterEcrPullSecret over the 2,000 namespaces is created and the
  clock runs until status.readyNamespaces is 2,000 and all 2,000 Secrets exist.

Reported per run: time, the operator's peak RSS (VmRSS polled every 100 ms and the kernel's
VmHWM), Secret writes by the operator's user in the audit log, AWS calls.

    python -m bench.p3_scale [--count 2000] [--runs eps ceps]
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from bench.env import EAST, Env, pid, total_writes
from bench.sampling import RssSampler
from bench.table import arguments, bulk, row, say
from bench.tracking import Tracker

GOAL_SECONDS = 60.0
GOAL_MB = 150.0


@dataclass(frozen=True)
class Run:
    name: str
    seconds: float
    peak_mb: float
    writes: Counter[str]
    aws_calls: int

    def summary(self) -> str:
        failed = f", {self.writes['failed']} failed" if self.writes["failed"] else ""
        return (
            f"{self.name}: {self.seconds:.1f} s, {self.peak_mb:.0f} MB, "
            f"{total_writes(self.writes)} Secret writes{failed}, {self.aws_calls} AWS calls"
        )

    @property
    def met(self) -> bool:
        return self.seconds <= GOAL_SECONDS and self.peak_mb <= GOAL_MB


def namespaces(count: int) -> list[str]:
    return [f"p3-{i:04d}" for i in range(count)]


def run_eps(count: int, keep: bool) -> Run:
    with Env("p3-eps", keep=keep) as env:
        names = namespaces(count)
        env.create_namespaces(names)
        bulk(lambda ns: env.create_eps(ns, "app", {"registries": [EAST]}), names, 16, f"created {count} EPS")
        keys = [(ns, "app") for ns in names]
        tracker = Tracker()
        with tracker.watching(env):
            audit_mark = env.audit_lines()
            started = time.monotonic()
            operator = env.operator()
            with RssSampler(pid(operator)) as rss:
                done = tracker.wait(
                    f"{count} Ready with Secrets",
                    lambda: all(k in tracker.ready_at and k in tracker.secret_seen for k in keys),
                    timeout=600,
                )
                say(f"all Ready {done - started:.1f}s after start; RSS now {rss.current_mb:.0f} MB")
                time.sleep(3)  # anything still running after the last Ready counts too
            result = Run(
                f"{count} EcrPullSecrets present at its start",
                done - started,
                rss.peak_mb,
                env.operator_writes(audit_mark),
                env.aws.calls(),
            )
        say(result.summary() + f"; writes by verb {dict(result.writes)}")
        return result


def _while_running(
    label: str,
    count: int,
    keep: bool,
    *,
    secret: str,
    resources: str,
    act: Callable[[Env, list[str]], object],
    ready: Callable[[Tracker, list[tuple[str, str]]], bool],
) -> Run:
    """The operator runs; the clock runs from `act` until `ready` and every Secret is seen."""
    with Env(f"p3-{resources}", keep=keep) as env:
        names = namespaces(count)
        env.create_namespaces(names)
        keys = [(ns, secret) for ns in names]
        tracker = Tracker()
        with tracker.watching(env, resources=resources):
            operator = env.operator()
            with RssSampler(pid(operator)) as rss:
                audit_mark = env.audit_lines()
                started = time.monotonic()
                act(env, names)
                done = tracker.wait(
                    f"{count} namespaces served",
                    lambda: all(k in tracker.secret_seen for k in keys) and ready(tracker, keys),
                    timeout=600,
                )
                say(
                    f"all ready {done - started:.1f}s after the first create; RSS now {rss.current_mb:.0f} MB"
                )
                time.sleep(3)  # anything still running after the last Ready counts too
            result = Run(label, done - started, rss.peak_mb, env.operator_writes(audit_mark), env.aws.calls())
        say(result.summary() + f"; writes by verb {dict(result.writes)}")
        return result


def run_eps_live(count: int, keep: bool) -> Run:
    return _while_running(
        f"{count} EcrPullSecrets created while it runs",
        count,
        keep,
        secret="app",
        resources="eps",
        act=lambda env, names: bulk(
            lambda ns: env.create_eps(ns, "app", {"registries": [EAST]}), names, 16, "created"
        ),
        ready=lambda tracker, keys: all(k in tracker.ready_at for k in keys),
    )


def run_ceps(count: int, keep: bool) -> Run:
    def ready(tracker: Tracker, keys: list[tuple[str, str]]) -> bool:
        status = (tracker.bodies.get(("", "platform")) or {}).get("status") or {}
        return bool(status.get("readyNamespaces") == count)

    return _while_running(
        f"1 ClusterEcrPullSecret over {count} namespaces",
        count,
        keep,
        secret="ecr-pull",
        resources="ceps",
        act=lambda env, _: env.create_ceps(
            "platform",
            {"registries": [EAST], "secretName": "ecr-pull", "namespaces": {"include": ["p3-*"]}},
        ),
        ready=ready,
    )


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument("--count", type=int, default=2000)
    choices = {"eps-live": run_eps_live, "eps": run_eps, "ceps": run_ceps}
    parser.add_argument("--runs", nargs="+", default=list(choices), choices=list(choices))
    args = parser.parse_args()
    runs = [choices[name](args.count, args.keep) for name in args.runs]
    row(
        "P3",
        f"{args.count} namespaces: EcrPullSecrets created while the operator runs (clock from the first "
        "create); created before it starts (clock from its start); one ClusterEcrPullSecret (clock "
        "from its create)",
        "; ".join(r.summary() for r in runs),
        f"≤ {GOAL_SECONDS:.0f} s, ≤ {GOAL_MB:.0f} MB",
        all(r.met for r in runs),
    )


if __name__ == "__main__":
    main()
