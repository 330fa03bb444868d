"""P4: operator restart with 2,000 fresh Secrets.

2,000 EcrPullSecrets in 2,000 namespaces (12 h tokens, so every Secret is fresh) are made Ready
by a first operator, which is then stopped. A second operator starts; counted from its start:

* resumed: its liveness endpoint answers (`OperatorProcess.start()` returns), then a new
  EcrPullSecret created right after that becomes Ready. The probe uses a role chain of its own
  (`arn:aws:iam::123456789012:role/p4-probe`), so its AWS calls are known exactly: one
  AssumeRole, one GetAuthorizationToken, one GetCallerIdentity.
* AWS calls and writes: everything the emulator saw from the start of the second operator until
  10 s after the probe was Ready, minus the probe's three calls; the operator's writes (audit log)
  outside the probe's namespace: Secrets, and for completeness EcrPullSecret status patches and
  Events.

    python -m bench.p4_restart [--count 2000]
"""

from __future__ import annotations

import time
from collections import Counter

from bench.env import EAST, Env, total_writes
from bench.table import arguments, bulk, row, say
from bench.tracking import Tracker

PROBE_ROLE = "arn:aws:iam::123456789012:role/p4-probe"
PROBE_CALLS = Counter(
    {("sts", "AssumeRole"): 1, ("ecr", "GetAuthorizationToken"): 1, ("sts", "GetCallerIdentity"): 1}
)
SETTLE = 10.0


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()

    with Env("p4", keep=args.keep) as env:
        names = [f"p4-{i:04d}" for i in range(args.count)]
        env.create_namespaces([*names, "p4-probe"])
        bulk(lambda ns: env.create_eps(ns, "app", {"registries": [EAST]}), names, 16, "created EPS")
        keys = [(ns, "app") for ns in names]
        tracker = Tracker()
        with tracker.watching(env):
            first = env.operator()
            started = time.monotonic()
            tracker.wait(
                f"{args.count} Ready with Secrets",
                lambda: all(k in tracker.ready_at and k in tracker.secret_seen for k in keys),
                timeout=900,
            )
            say(f"first operator: all Ready in {time.monotonic() - started:.1f}s")
            time.sleep(3)
            first.stop()

            before = Counter(env.aws.call_counts())
            audit_mark = env.audit_lines()
            restarted = time.monotonic()
            env.operator()
            live = time.monotonic() - restarted
            env.create_eps(
                "p4-probe", "probe", {"registries": [EAST], "auth": {"roleChain": [{"roleArn": PROBE_ROLE}]}}
            )
            probe_ready = tracker.wait(
                "the probe Ready", lambda: ("p4-probe", "probe") in tracker.ready_at, timeout=900
            )
            resumed = probe_ready - restarted
            say(f"second operator live after {live:.1f}s; probe Ready {resumed:.1f}s after its start")
            time.sleep(SETTLE)

            calls = Counter(env.aws.call_counts())
            calls.subtract(before)
            calls.subtract(PROBE_CALLS)
            extra = {f"{svc}:{action}": n for (svc, action), n in calls.items() if n}
            aws_calls = sum(calls.values())
            secret_writes = env.operator_writes(audit_mark, exclude_namespaces=["p4-probe"])
            other = Counter(
                f"{e.verb} {e.resource}{'/' + e.subresource if e.subresource else ''}"
                for e in env.control_plane.audit_events()[audit_mark:]
                if e.user == env.operator_user and e.is_write and e.namespace != "p4-probe"
            )
            say(
                f"after restart: AWS calls beyond the probe's {extra or 0}; "
                f"operator writes {dict(other) or 0}"
            )

        row(
            "P4",
            f"restart with {args.count} fresh Secrets (second operator, until {SETTLE:.0f} s after a new "
            "resource is Ready)",
            f"{aws_calls} AWS calls, {total_writes(secret_writes)} Secret writes "
            f"({sum(other.values())} writes of any kind); live after {live:.1f} s, "
            f"new resource Ready {resumed:.1f} s after start",
            "0 AWS calls, 0 writes",
            aws_calls == 0 and total_writes(secret_writes) == 0 and not other,
        )


if __name__ == "__main__":
    main()
