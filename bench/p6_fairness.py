"""P6: one namespace's storm of token calls does not hold up another namespace at the AWS rate limit.

Namespace `p6-hog` holds N EcrPullSecrets (default 300), each with a role chain of its own, so
each renewal is a GetAuthorizationToken call of its own; namespace `p6-quiet` holds one resource,
also with a chain of its own. All N of the hog's resources are made due at once with the
`ecr.pullsecrets.dev/force-refresh` annotation (patched on all N within a few seconds; the same
path as a due renewal, without the cache): at 10 calls per second that is a queue of about N/10
seconds at the rate limit. A few seconds into it, the quiet resource is made due the same way,
three times (`--probes`, `--probe-gap` seconds apart), while hundreds of the hog's calls still
wait. Served in arrival order it would wait for all of those; served fairly, for about one slot
per waiting namespace.

Measured: how long the quiet resource takes from its annotation to the watch seeing its new
`lastRefreshTime`, during the storm and, earlier in the same run, alone (the baseline; the median
of three); their ratio; how many of the hog's refreshes were still to come when it was served; the
storm's AWS calls, its duration and calls per second (the emulator's counts, sampled every
100 ms) against `--aws-rate-limit`.

renewBefore is at least 5m, so renewals cannot be time-compressed with the token lifetime any more
(a short lifetime spreads due times by a third of the spread of issue times); forced refreshes
make the storm instantaneous instead. The hog needs more distinct chains than the default
per-namespace quota (50): the operator runs with `--max-chains-per-namespace` above N.

    python -m bench.p6_fairness [--count 300] [--rate 10] [--probes 3] [--probe-gap 5]
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from tests.harness.kube import GROUP, PLURAL, VERSION

from bench.env import Env, drain
from bench.p5_storm import registry, role
from bench.sampling import CallSampler
from bench.table import arguments, bulk, row, say
from bench.tracking import Tracker

HOG, QUIET = "p6-hog", "p6-quiet"
QUIET_KEY = (QUIET, "quiet")
FORCE_REFRESH = f"{GROUP}/force-refresh"
GOAL_SECONDS = 5.0
REGION = "us-east-1"
# Role-ARN globs never let * cross ':' or '/': name the account and the role path.
POLICY = {
    "operatorIdentity": {"namespaces": ["*"]},
    "assumeRoles": [{"namespaces": ["*"], "roleArns": ["arn:aws:iam::123456789012:role/*"]}],
}


def refreshed(tracker: Tracker, key: tuple[str, str]) -> int:
    with tracker.cond:
        return len(tracker.refreshes.get(key, []))


def force(env: Env, key: tuple[str, str], value: str) -> float:
    """Makes the resource due now; returns when the patch was accepted (monotonic)."""
    patch = {"metadata": {"annotations": {FORCE_REFRESH: value}}}
    drain(
        env.custom.patch_namespaced_custom_object(
            GROUP, VERSION, key[0], PLURAL, key[1], patch, _preload_content=False
        )
    )
    return time.monotonic()


def probe(env: Env, tracker: Tracker, value: str, timeout: float) -> float:
    """Forces the quiet resource once; how long until the watch saw it refreshed."""
    before = refreshed(tracker, QUIET_KEY)
    forced = force(env, QUIET_KEY, value)
    tracker.wait(f"quiet refresh {value}", lambda: refreshed(tracker, QUIET_KEY) > before, timeout=timeout)
    with tracker.cond:
        seen = tracker.refreshes[QUIET_KEY][before][1]  # when the watch saw it
    return seen - forced


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument("--count", type=int, default=300, help="the hog's resources, a role chain each")
    parser.add_argument("--rate", type=float, default=10.0, help="the operator's --aws-rate-limit")
    parser.add_argument("--probes", type=int, default=3, help="quiet refreshes during the storm")
    parser.add_argument("--probe-gap", type=float, default=5.0, help="seconds between them")
    args = parser.parse_args()
    hogs = [(HOG, f"hog-{i:04d}") for i in range(args.count)]
    issue_calls = args.count * 3  # AssumeRole, GetCallerIdentity, GetAuthorizationToken
    storm_estimate = args.count / args.rate

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
            env.create_eps(QUIET, QUIET_KEY[1], {"registries": [registry(REGION)], "auth": role("p6-quiet")})
            tracker.wait("the quiet resource Ready", lambda: QUIET_KEY in tracker.ready_at, timeout=120)
            alone = []
            for i in range(3):
                time.sleep(1.5)  # the floor between two refreshes of one resource (1 s here)
                alone.append(probe(env, tracker, f"alone-{i}", timeout=120))
            baseline = median(alone)
            say(f"alone, the quiet resource was refreshed in {', '.join(f'{s:.2f}' for s in alone)} s")

            bulk(
                lambda key: env.create_eps(
                    key[0], key[1], {"registries": [registry(REGION)], "auth": role(key[1])}
                ),
                hogs,
                16,
                f"created {args.count} EcrPullSecrets in {HOG}, a role chain each",
            )
            say(f"issuing ≈{issue_calls} AWS calls at {args.rate:g}/s (≈{issue_calls / args.rate:.0f}s)")
            tracker.wait(
                "every hog Ready",
                lambda: all(k in tracker.ready_at for k in hogs),
                timeout=issue_calls / args.rate * 3 + 300,
            )
            time.sleep(2)  # past the refresh floor, and the issuance's last calls counted
            start = time.monotonic()
            bulk(lambda key: force(env, key, "storm"), hogs, 16, f"forced {args.count} refreshes in {HOG}")
            patched = time.monotonic()
            during: list[tuple[float, int, int]] = []  # (seconds, hog refreshes to come then, after it)
            for i in range(args.probes):
                time.sleep(max(0.0, patched + args.probe_gap * (i + 1) - time.monotonic()))
                with tracker.cond:
                    pending = sum(1 for k in hogs if len(tracker.refreshes.get(k, [])) < 2)
                took = probe(env, tracker, f"storm-{i}", timeout=storm_estimate * 3 + 120)
                with tracker.cond:
                    after = sum(1 for k in hogs if len(tracker.refreshes.get(k, [])) < 2)
                during.append((took, pending, after))
                say(
                    f"probe {i}: {pending} hog refreshes to come; quiet refreshed in {took:.2f}s, "
                    f"{after} after it"
                )
            done = tracker.wait(
                "every hog refreshed",
                lambda: all(len(tracker.refreshes.get(k, [])) >= 2 for k in hogs),
                timeout=storm_estimate * 3 + 300,
            )
            storm_calls = calls.calls_between(start, done + 1)
            peak, sliding = calls.peak_per_second(start, done + 1)
            histogram = calls.histogram(start, done + 1)

        took_storm = done - start
        waits = [d[0] for d in during]
        worst = max(waits)
        ratio = median(waits) / baseline if baseline > 0 else float("inf")
        say(f"storm: {storm_calls} AWS calls in {took_storm:.1f}s; calls per second {histogram}")
        probes = "; ".join(f"{s:.2f} s with {p} to come ({a} after it)" for s, p, a in during)
        row(
            "P6",
            f"fairness: {args.count} EcrPullSecrets in one namespace, a role chain each, made due at once "
            f"(force-refresh); one in another namespace made due {args.probes}x during that storm, "
            f"{args.probe_gap:g} s apart; --aws-rate-limit {args.rate:g}",
            f"the single resource refreshed in {probes}; alone in the same run {baseline:.2f} s "
            f"(median of 3; ratio of medians {ratio:.1f}); "
            f"storm: {storm_calls} AWS calls in {took_storm:.0f} s, "
            f"peak {peak}/s (1-s buckets; sliding 1-s window {sliding})",
            f"refreshed within {GOAL_SECONDS:g} s during the storm; peak ≤ {args.rate:g}/s (± 1)",
            worst <= GOAL_SECONDS and peak <= args.rate + 1,
        )


if __name__ == "__main__":
    main()
