"""P4: operator restart with N fresh Secrets (default 2,000; `--count 10000` works).

A first operator starts with N namespaces present and settles (its idle RSS); N EcrPullSecrets,
one per namespace (12 h tokens, so every Secret stays fresh), are created while it runs and made
Ready; it settles again (memory per resource = (RSS then - idle RSS) / N) and is stopped. A second
operator is spawned; the clock runs from its spawn (before its liveness answers). Right after its
liveness endpoint answers (`--act-at live`, the default) or right after its spawn (`--act-at
spawn`), this process:

* creates a new EcrPullSecret, the probe, and times it until Ready (seen through a watch);
* deletes the managed Secret of one of the N resources, the victim, and times it until the watch
  on managed Secrets sees a Secret of that name with another uid (restored).

Probe and victim each use a role chain of their own (`arn:aws:iam::123456789012:role/p4-probe`,
`.../p4-victim`), so their AWS calls are known exactly: one AssumeRole, one GetAuthorizationToken,
one GetCallerIdentity each. (Restoring a deleted Secret needs a token: a restarted operator may
read a token back only from the resource's own Secret, and it is gone.)

Counted from the spawn of the second operator until `SETTLE` s after the probe is Ready and the
victim restored: AWS calls at the emulator beyond the probe's and the victim's; the operator's
writes (audit log) outside the probe's and the victim's namespaces, of any kind (Secrets, status
patches, Events); their own writes are listed apart. Also the second operator's peak RSS and its
RSS once settled.

Goal (issue 11): the probe Ready and the victim restored each within 5 s of the spawn; 0 AWS
calls and 0 writes beyond the probe's and the victim's.

    python -m bench.p4_restart [--count 2000] [--act-at live|spawn]
"""

from __future__ import annotations

import time
from collections import Counter

from bench.env import EAST, Env, drain, kinds, pid, total_writes
from bench.sampling import RssSampler, per_resource_kb, settle
from bench.table import arguments, row, say, scaled
from bench.tracking import Tracker

PROBE_NAMESPACE = "p4-probe"
PROBE = (PROBE_NAMESPACE, "probe")
PROBE_ROLE = "arn:aws:iam::123456789012:role/p4-probe"
VICTIM_ROLE = "arn:aws:iam::123456789012:role/p4-victim"
ONE_CHAIN = Counter(
    {("sts", "AssumeRole"): 1, ("ecr", "GetAuthorizationToken"): 1, ("sts", "GetCallerIdentity"): 1}
)
SETTLE = 10.0
GOAL_SECONDS = 5.0


def chained(role: str) -> dict[str, object]:
    return {"registries": [EAST], "auth": {"roleChain": [{"roleArn": role}]}}


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument(
        "--act-at",
        choices=("live", "spawn"),
        default="live",
        help="create the probe and delete the victim's Secret once the second operator's liveness "
        "answers (default) or right after its spawn",
    )
    args = parser.parse_args()
    count = args.count
    ready_timeout = scaled(count, per_resource=0.45, minimum=900)
    settle_timeout = scaled(count, per_resource=0.01, minimum=60)

    with Env("p4", keep=args.keep) as env:
        names = [f"p4-{i:05d}" for i in range(count)]
        env.create_namespaces([*names, PROBE_NAMESPACE])
        keys = [(ns, "app") for ns in names]
        victim = keys[-1]
        tracker = Tracker()
        with tracker.watching(env):
            first = env.operator()
            idle = settle(pid(first), f"first operator, idle with {count} namespaces", timeout=settle_timeout)
            started = time.monotonic()
            env.create_eps_bulk(names[:-1], "app", {"registries": [EAST]})
            env.create_eps(victim[0], victim[1], chained(VICTIM_ROLE))
            done = tracker.wait_all(f"{count} Ready with Secrets", keys, ready_timeout)
            say(f"first operator: all Ready {done - started:.1f}s after the first create")
            steady = settle(pid(first), "first operator, all Ready", timeout=settle_timeout)
            per_kb = per_resource_kb(idle, steady, count)
            first.stop()

            before = Counter(env.aws.call_counts())
            audit_mark = env.audit_lines()
            victim_uid = tracker.secret_uid(victim)
            acted: dict[str, float] = {}

            def act() -> None:
                drain(env.core.delete_namespaced_secret(victim[1], victim[0], _preload_content=False))
                acted["deleted"] = time.monotonic()
                env.create_eps(PROBE[0], PROBE[1], chained(PROBE_ROLE))
                acted["created"] = time.monotonic()

            second = env.operator(start=False)
            clock = env.start_clocked(second, on_spawn=act if args.act_at == "spawn" else None)
            if args.act_at == "live":
                act()
            with RssSampler(pid(second)) as rss:
                tracker.wait("the probe Ready", lambda: PROBE in tracker.ready_at, ready_timeout)
                with tracker.cond:
                    probe_ready = tracker.ready_at[PROBE]
                tracker.wait(
                    "the victim's Secret restored",
                    lambda: tracker.restored(victim, after=acted["deleted"], uid=victim_uid) is not None,
                    ready_timeout,
                )
                restored_at = tracker.restored(victim, after=acted["deleted"], uid=victim_uid) or 0.0
                resumed = probe_ready - clock.spawned
                repaired = restored_at - clock.spawned
                say(
                    f"second operator live {clock.live - clock.spawned:.1f}s after its spawn; probe Ready "
                    f"after {resumed:.1f}s, victim's Secret restored after {repaired:.1f}s (acted at "
                    f"{acted['deleted'] - clock.spawned:.1f}s)"
                )
                time.sleep(SETTLE)
                restarted = settle(pid(second), "second operator", timeout=settle_timeout)

            calls = Counter(env.aws.call_counts())
            calls.subtract(before)
            theirs = ONE_CHAIN + ONE_CHAIN
            beyond = {f"{svc}:{action}": n - theirs[(svc, action)] for (svc, action), n in calls.items()}
            beyond = {k: n for k, n in beyond.items() if n}
            aws_beyond = sum(n for n in beyond.values() if n > 0)
            ours = {PROBE_NAMESPACE, victim[0]}
            other = env.operator_writes_by_kind(audit_mark, lambda ns: ns not in ours)
            own = env.operator_writes_by_kind(audit_mark, lambda ns: ns in ours)
            secret_writes = env.operator_writes(audit_mark, exclude_namespaces=ours)
            say(
                f"after restart: AWS calls beyond the probe's and the victim's (by action; negative: "
                f"fewer) {beyond or 0}; operator writes elsewhere {dict(other) or 0}; theirs {dict(own)}"
            )

        met = (
            resumed <= GOAL_SECONDS
            and repaired <= GOAL_SECONDS
            and aws_beyond == 0
            and total_writes(secret_writes) == 0
            and not other
        )
        row(
            "P4",
            f"restart with {count} fresh Secrets in {count} namespaces: second operator, clock from its "
            f"spawn; a new resource created and a managed Secret deleted once it "
            f"{'is live' if args.act_at == 'live' else 'is spawned'}; counts until {SETTLE:.0f} s after both",
            f"new resource Ready {resumed:.1f} s, deleted Secret restored {repaired:.1f} s after spawn "
            f"(live after {clock.live - clock.spawned:.1f} s); {aws_beyond} AWS calls and "
            f"{sum(other.values())} writes beyond the probe's and the victim's ({sum(calls.values())} "
            f"AWS calls in all; their writes: {kinds(own)}); RSS peak {rss.peak_mb:.0f} MB, settled "
            f"{restarted.rss_mb:.0f} MB; first operator: {per_kb:.1f} KB per resource",
            f"both ≤ {GOAL_SECONDS:g} s; 0 AWS calls, 0 writes beyond theirs",
            met,
        )


if __name__ == "__main__":
    main()
