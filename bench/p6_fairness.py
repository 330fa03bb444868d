"""P6: one namespace's renewal storm does not hold up another namespace at the AWS rate limit.

Namespace `p6-hog` holds N EcrPullSecrets (default 300), each with a role chain of its own, so
each renewal is a GetAuthorizationToken call of its own; namespace `p6-quiet` holds one resource,
also with a chain of its own. As in P5, every token issued before the storm expires at one
instant T (the emulator's token lifetime is kept at T - now), and afterwards tokens live an hour.
The hog's resources have renewBefore 30s, so they are all due at T - 30 s (less up to 3 s of
jitter); the quiet resource has renewBefore 20s, so it is due about 10 s into the storm, when at
10 calls per second some 200 of the hog's calls still wait. Served in arrival order it would wait
for all of those (~20 s); served fairly, for about one slot per waiting namespace.

Measured: how long the quiet resource waits to be renewed, from its `status.renewalTime` (the
moment the operator acts on; whole seconds) until the watch sees its new `lastRefreshTime`, once
during the storm and once alone earlier in the same run (the baseline), and their ratio; how many
of the hog's renewals were still to come when it was renewed; the storm's AWS calls, its duration
and its calls per second (the emulator's counts, sampled every 100 ms) against `--aws-rate-limit`.

The hog needs more distinct chains than the default per-namespace quota (50): the operator runs
with `--max-chains-per-namespace` above N.

    python -m bench.p6_fairness [--count 300] [--rate 10]
"""

from __future__ import annotations

import time
from datetime import datetime

from bench.common import CallSampler, Env, Tracker, arguments, bulk, row, say
from bench.p5_storm import ExpireAt, registry, role

HOG, QUIET = "p6-hog", "p6-quiet"
QUIET_KEY = (QUIET, "quiet")
QUIET_RENEW_BEFORE = 20
HOG_RENEW_BEFORE = 30
BASELINE_LIFETIME = 45.0  # the quiet resource's first token: due ~25 s after its create
GOAL_SECONDS = 5.0
REGION = "us-east-1"
# Role-ARN globs never let * cross ':' or '/': name the account and the role path.
POLICY = {
    "operatorIdentity": {"namespaces": ["*"]},
    "assumeRoles": [{"namespaces": ["*"], "roleArns": ["arn:aws:iam::123456789012:role/*"]}],
}


def seconds(stamp: str) -> float:
    """An RFC 3339 timestamp from status as wall-clock seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class Schedule:
    """Reads the tracker's view of one resource: when it was due, when it was renewed (wall clock)."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.offset = time.time() - time.monotonic()  # the tracker keeps monotonic times

    def due(self, key: tuple[str, str], refreshes: int) -> float:
        """renewalTime in status once the resource has been issued or renewed `refreshes` times."""

        def scheduled() -> bool:
            body = self.tracker.bodies.get(key) or {}
            seen = len(self.tracker.refreshes.get(key, []))
            return seen == refreshes and bool((body.get("status") or {}).get("renewalTime"))

        self.tracker.wait(f"{key} scheduled after refresh {refreshes}", scheduled, timeout=600)
        with self.tracker.cond:
            return seconds(self.tracker.bodies[key]["status"]["renewalTime"])

    def renewed(self, key: tuple[str, str], refreshes: int, timeout: float) -> float:
        """When the watch saw the resource's `refreshes`-th lastRefreshTime."""
        self.tracker.wait(
            f"{key} refreshed {refreshes} times",
            lambda: len(self.tracker.refreshes.get(key, [])) >= refreshes,
            timeout=timeout,
        )
        with self.tracker.cond:
            return self.tracker.refreshes[key][refreshes - 1][1] + self.offset


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument("--count", type=int, default=300, help="the hog's resources, a role chain each")
    parser.add_argument("--rate", type=float, default=10.0, help="the operator's --aws-rate-limit")
    args = parser.parse_args()
    hogs = [(HOG, f"hog-{i:04d}") for i in range(args.count)]
    issue_calls = args.count * 3  # AssumeRole, GetCallerIdentity, GetAuthorizationToken
    estimate = issue_calls / args.rate

    with Env("p6", keep=args.keep, remote_aws=True) as env:
        env.create_namespaces([HOG, QUIET])
        tracker = Tracker()
        with tracker.watching(env), CallSampler(env.aws) as calls:
            env.operator(
                args=[
                    "--aws-rate-limit",
                    f"{args.rate:g}",
                    "--max-chains-per-namespace",
                    str(args.count + 10),
                ],
                policy=POLICY,
            )
            schedule = Schedule(tracker)
            storm_at = time.time() + BASELINE_LIFETIME + estimate * 1.5 + 60 + HOG_RENEW_BEFORE
            with ExpireAt(env, time.time() + BASELINE_LIFETIME) as expiry:
                # The baseline: the quiet resource renews alone, and gets a token expiring at T.
                env.create_eps(
                    QUIET,
                    QUIET_KEY[1],
                    {
                        "registries": [registry(REGION)],
                        "auth": role("p6-quiet"),
                        "renewBefore": f"{QUIET_RENEW_BEFORE}s",
                    },
                )
                due = schedule.due(QUIET_KEY, 1)
                expiry.deadline = storm_at
                say(f"quiet resource Ready, due alone in {due - time.time():.1f}s")
                baseline = schedule.renewed(QUIET_KEY, 2, timeout=120) - due
                say(f"alone, the quiet resource was renewed {baseline:.2f}s after it was due")

                def create(key: tuple[str, str]) -> None:
                    spec = {
                        "registries": [registry(REGION)],
                        "auth": role(f"p6-{key[1]}"),
                        "renewBefore": f"{HOG_RENEW_BEFORE}s",
                    }
                    env.create_eps(key[0], key[1], spec)

                bulk(create, hogs, 16, f"created {args.count} EcrPullSecrets in {HOG}, a role chain each")
                say(f"issuing ≈{issue_calls} AWS calls at {args.rate:g}/s (≈{estimate:.0f}s)")
                issued = tracker.wait(
                    "every hog Ready",
                    lambda: all(k in tracker.ready_at for k in hogs),
                    timeout=estimate * 3 + 300,
                )
                say(f"the hog is Ready; the storm is due in {storm_at - HOG_RENEW_BEFORE - time.time():.0f}s")
            hog_due = {k: schedule.due(k, 1) for k in hogs}
            quiet_due = schedule.due(QUIET_KEY, 2)
            storm_starts = min(hog_due.values())
            if storm_starts < time.time() or issued + schedule.offset > storm_starts:
                raise RuntimeError("the hog was not Ready before its storm was due: raise the margins")
            say(
                f"storm due in {storm_starts - time.time():.0f}s, "
                f"the quiet resource {quiet_due - storm_starts:.1f}s later"
            )

            quiet_renewed = schedule.renewed(QUIET_KEY, 3, timeout=storm_at - time.time() + 600)
            last = max(schedule.renewed(k, 2, timeout=estimate * 3 + 600) for k in hogs)
            during = quiet_renewed - quiet_due
            later = sum(1 for k in hogs if schedule.renewed(k, 2, timeout=1) > quiet_renewed)
            waiting_at_due = sum(1 for k in hogs if schedule.renewed(k, 2, timeout=1) > quiet_due)
            start_mono, end_mono = storm_starts - schedule.offset, last - schedule.offset
            storm_calls = calls.calls_between(start_mono - 1, end_mono + 1)
            peak, sliding = calls.peak_per_second(start_mono - 1, end_mono + 1)

        took = last - storm_starts
        ratio = during / baseline if baseline > 0 else float("inf")
        say(
            f"storm: {storm_calls} AWS calls in {took:.1f}s; "
            f"calls per second {calls.histogram(start_mono, end_mono)}"
        )
        say(
            f"the quiet resource: due {quiet_due - storm_starts:.1f}s into the storm with {waiting_at_due} "
            f"hog renewals to come, renewed after {during:.2f}s (alone: {baseline:.2f}s); "
            f"{later} hog renewals came after it"
        )
        row(
            "P6",
            f"fairness: {args.count} EcrPullSecrets in one namespace, a role chain each, due at once "
            f"(renewBefore {HOG_RENEW_BEFORE}s); one in another namespace due "
            f"{quiet_due - storm_starts:.0f} s into that storm (renewBefore {QUIET_RENEW_BEFORE}s), "
            f"--aws-rate-limit {args.rate:g}",
            f"the single resource renewed {during:.2f} s after it was due, with {waiting_at_due} of the "
            f"storm's renewals still to come ({later} came after it); alone in the same run "
            f"{baseline:.2f} s (ratio {ratio:.1f}); storm: {storm_calls} AWS calls in {took:.0f} s, "
            f"peak {peak}/s (1-s buckets; sliding 1-s window {sliding})",
            f"renewed within {GOAL_SECONDS:g} s; peak ≤ {args.rate:g}/s (± 1)",
            during <= GOAL_SECONDS and peak <= args.rate + 1,
        )


if __name__ == "__main__":
    main()
