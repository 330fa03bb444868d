"""P2: AWS token calls per renewal window.

N=100 EcrPullSecrets, all with the operator's own identity, naming registries in R = 1, 2, 3
regions, with the token lifetime compressed to 30 s and renewBefore 10s: one renewal window is
then ~20 s (a little less: renewal comes early by up to 10 % of renewBefore). For each R, in
regions no earlier phase used (so the broker holds no token for them yet): create the N
resources, wait until all are Ready, then count GetAuthorizationToken at the emulator, renewals
(watch on status.lastRefreshTime) and Secret writes (audit log) for `--windows` windows of 20 s.
The first renewal round comes ~20 s after the creates, so the observation holds exactly
`--windows` rounds.

A last phase ("R=2, shared") repeats R=2 where one region is also used by 10 other resources
created half a window earlier, so the broker holds that region's token out of phase with the new
region's token, as in any cluster whose resources were not all created at once: it shows how
often each resource then renews and writes its Secret. Its AWS calls include the 10 others'.

    python -m bench.p2_token_calls [--count 100] [--windows 3]
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kubernetes.client.exceptions import ApiException
from tests.harness.kube import GROUP, PLURAL, VERSION

from bench.env import Env, total_writes
from bench.table import arguments, bulk, row, say
from bench.tracking import Tracker

LIFETIME = 30.0
RENEW_BEFORE = 10.0
WINDOW = LIFETIME - RENEW_BEFORE
PHASES = {
    "R=1": ("us-east-1",),
    "R=2": ("eu-west-1", "ap-southeast-2"),
    "R=3": ("ap-northeast-1", "sa-east-1", "ca-central-1"),
    "R=2, shared": ("eu-north-1", "eu-central-1"),
}
SHARED_BY_OTHERS = "eu-north-1"


def registry(region: str) -> str:
    return f"123456789012.dkr.ecr.{region}.amazonaws.com"


@dataclass(frozen=True)
class Phase:
    name: str
    regions: int
    calls: int
    other_calls: int
    windows: int
    renewals_per_window: float
    writes_per_window: float

    @property
    def per_window(self) -> float:
        return self.calls / self.windows


def measure(env: Env, tracker: Tracker, name: str, count: int, windows: int) -> Phase:
    regions = PHASES[name]
    namespace = "p2-" + name.lower().replace("=", "").replace(", ", "-")
    env.create_namespaces([namespace])
    spec = {"registries": [registry(r) for r in regions]}  # renewed a third of the life ahead
    names = [f"app-{i:03d}" for i in range(count)]
    keys = [(namespace, n) for n in names]
    if SHARED_BY_OTHERS in regions:
        others = [f"other-{i:02d}" for i in range(10)]
        other_spec = {**spec, "registries": [registry(SHARED_BY_OTHERS)]}
        bulk(lambda n: env.create_eps(namespace, n, other_spec), others, 8, f"{name}: 10 others created")
        tracker.wait("others Ready", lambda: all((namespace, n) in tracker.ready_at for n in others), 60)
        time.sleep(WINDOW / 2)
    bulk(lambda n: env.create_eps(namespace, n, spec), names, 8, f"{name}: created {count}")
    tracker.wait(f"{name}: all Ready", lambda: all(k in tracker.ready_at for k in keys), timeout=120)
    with tracker.cond:
        baseline = {k: len(tracker.refreshes.get(k, [])) for k in keys}
    calls_before, all_before = env.aws.calls("GetAuthorizationToken"), env.aws.calls()
    audit_mark = env.audit_lines()
    time.sleep(windows * WINDOW)
    calls = env.aws.calls("GetAuthorizationToken") - calls_before
    other = env.aws.calls() - all_before - calls
    with tracker.cond:
        renewed = sum(len(tracker.refreshes.get(k, [])) - baseline[k] for k in keys)
    writes = total_writes(env.operator_writes(since=audit_mark))
    phase = Phase(name, len(regions), calls, other, windows, renewed / count / windows, writes / windows)
    say(
        f"{name} {regions}: {calls} GetAuthorizationToken + {other} other AWS calls in {windows} windows "
        f"= {phase.per_window:.2f}/window; {renewed} renewals = {phase.renewals_per_window:.2f} per "
        f"resource per window; {writes} Secret writes = {phase.writes_per_window:.0f}/window"
    )
    for resource in [*names, *(f"other-{i:02d}" for i in range(10))]:
        try:
            env.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, resource)
        except ApiException as error:
            if error.status != 404:
                raise
    tracker.wait(f"{name}: deleted", lambda: not any(k in tracker.bodies for k in keys), timeout=60)
    return phase


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--phases", nargs="+", default=list(PHASES), choices=list(PHASES))
    args = parser.parse_args()

    with Env("p2", token_lifetime=LIFETIME, keep=args.keep) as env:
        env.operator()
        tracker = Tracker()
        with tracker.watching(env, secrets=False):
            phases = [measure(env, tracker, name, args.count, args.windows) for name in args.phases]

    fresh = [p for p in phases if "shared" not in p.name]
    measured = "; ".join(
        f"{p.name}: {p.per_window:.2f} calls, {p.renewals_per_window:.2f} renewals/resource, "
        f"{p.writes_per_window:.0f} writes"
        for p in phases
    )
    row(
        "P2",
        f"per renewal window ({WINDOW:.0f} s): {args.count} EcrPullSecrets, 1 identity, token lifetime "
        f"{LIFETIME:.0f} s, renewBefore {RENEW_BEFORE:.0f}s, {args.windows} windows",
        measured,
        "GetAuthorizationToken = R",
        all(abs(p.per_window - p.regions) < 0.05 for p in fresh),
    )


if __name__ == "__main__":
    main()
