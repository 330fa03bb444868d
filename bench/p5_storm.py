"""P5: renewal storm under the AWS rate limit.

2,000 EcrPullSecrets become due for renewal at the same moment. The broker shares one token per
(credential chain, region), so a storm of AWS calls needs many distinct keys. A resource with
`auth.roleChain` is a chain of its own (its AssumeRole carries session tags naming the resource),
so C of the resources (default 50) each assume a role of their own and name registries in R
regions (default 20, the maximum): C x R GetAuthorizationToken calls (1,000). The other 1,950
use the operator's identity in one region and share one token (one more call). Every token
issued before the storm expires at one instant T (a thread keeps the emulator's token lifetime at
T - now; afterwards tokens live an hour), so with renewBefore 5m (the least the CRD admits;
tokens live longer than that until the storm) every resource is due at T - 5 min, less its jitter
(at most 10 % of renewBefore).

Measured, with `--aws-rate-limit` (default 10, the operator's default): AWS calls per second as
the emulator received them (its call counts sampled every 100 ms: fixed 1-s buckets and a
sliding 1-s window, over the whole run), the time from the first resource being due until all
have renewed, and, 8 s into the storm, how long the operator takes to restore a deleted managed
Secret (no AWS call needed) and to make a new EcrPullSecret with the operator's own identity
Ready. Then `--per-chain` (default 20) more resources with a role chain each (one region) give
the operator's RSS per chain.

Why not 2,000 role chains: at 10 calls per second, 2,000 chains x 20 regions would be a storm of
over an hour. Memory is not the limit any more: sessions share one botocore loader, so a chain
costs ~0.1 MB and a botocore client (one per chain and region) ~0.25 MB.

    python -m bench.p5_storm [--count 2000] [--chains 50] [--regions 20] [--rate 10]
"""

from __future__ import annotations

import threading
import time

from bench.env import Env, drain, pid
from bench.sampling import CallSampler, RssSampler
from bench.table import arguments, bulk, row, say
from bench.tracking import Tracker

REGIONS = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3",
    "eu-central-1", "eu-north-1", "eu-south-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1",
    "ap-northeast-2", "ap-northeast-3", "ap-south-1", "sa-east-1", "ca-central-1", "me-south-1",
    "af-south-1",
)  # fmt: skip
NAMESPACES = 20
RSS_LIMIT_MB = 4000.0


def registry(region: str) -> str:
    return f"123456789012.dkr.ecr.{region}.amazonaws.com"


def role(name: str) -> dict[str, list[dict[str, str]]]:
    return {"roleChain": [{"roleArn": f"arn:aws:iam::123456789012:role/{name}"}]}


class ExpireAt:
    """Keeps the emulator's token lifetime at `deadline - now` (every 50 ms): every token issued
    meanwhile expires at the same instant, give or take 50 ms."""

    def __init__(self, env: Env, deadline: float) -> None:
        self.env = env
        self.deadline = deadline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="expire-at", daemon=True)

    def __enter__(self) -> ExpireAt:
        self.env.aws.token_lifetime = self.deadline - time.time()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.env.aws.token_lifetime = 3600.0

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.env.aws.token_lifetime = self.deadline - time.time()


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--chains", type=int, default=50, help="resources with a role chain each")
    parser.add_argument("--regions", type=int, default=20, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--rate", type=float, default=10.0, help="the operator's --aws-rate-limit")
    parser.add_argument("--renew-before", type=int, default=300, help="seconds, at least 300")
    parser.add_argument("--per-chain", type=int, default=20, help="extra resources, one chain each")
    args = parser.parse_args()
    renew_before = float(args.renew_before)
    registries = [registry(r) for r in REGIONS[: args.regions]]

    with Env("p5", keep=args.keep, remote_aws=True) as env:
        namespaces = [f"p5-{i:02d}" for i in range(NAMESPACES)]
        env.create_namespaces([*namespaces, "p5-probe", "p5-chains"])
        resources = [(namespaces[i % NAMESPACES], f"r-{i:04d}", i < args.chains) for i in range(args.count)]
        renew = {"renewBefore": f"{args.renew_before}s"}

        def create(item: tuple[str, str, bool]) -> None:
            namespace, name, chained = item
            if chained:
                spec = {"registries": registries, "auth": role(f"storm-{name}"), **renew}
            else:
                spec = {"registries": [registry("us-east-1")], **renew}
            env.create_eps(namespace, name, spec)

        bulk(create, resources, 16, f"created {args.count} EcrPullSecrets, {args.chains} with a role chain")
        keys = [(ns, name) for ns, name, _ in resources]
        issue_calls = args.chains * (2 + args.regions) + 2
        estimate = issue_calls / args.rate
        deadline = time.time() + estimate * 1.3 + 30 + renew_before
        due = time.monotonic() + (deadline - time.time()) - renew_before * 1.1
        say(f"issuing ≈{issue_calls} AWS calls at {args.rate:g}/s (≈{estimate:.0f}s)")
        say(f"storm due in {due - time.monotonic():.0f}s")

        tracker = Tracker()
        with tracker.watching(env), CallSampler(env.aws) as calls:
            operator = env.operator(args=["--aws-rate-limit", f"{args.rate:g}"])
            with RssSampler(pid(operator), limit_mb=RSS_LIMIT_MB) as rss:
                with ExpireAt(env, deadline):
                    issued = tracker.wait(
                        "all Ready",
                        lambda: all(k in tracker.ready_at for k in keys),
                        timeout=due - time.monotonic() + 600,
                    )
                overlap = issued > due
                issue_rss = rss.current_mb
                when = "after" if overlap else "before"
                say(f"all Ready {issued - calls.samples[0][0]:.0f}s after start, {when} the storm is due")
                say(f"operator RSS {issue_rss:.0f} MB")

                time.sleep(max(0.0, due + 8 - time.monotonic()))
                probe_secret = keys[-1]
                drain(
                    env.core.delete_namespaced_secret(
                        probe_secret[1], probe_secret[0], _preload_content=False
                    )
                )
                deleted = time.monotonic()
                env.create_eps("p5-probe", "probe", {"registries": [registry("us-east-1")]})
                created = time.monotonic()

                def renewed() -> bool:
                    return all(len(tracker.refreshes.get(k, [])) >= 2 for k in keys)

                done = tracker.wait("every resource renewed", renewed, timeout=estimate * 3 + 600)
                probe_ready = tracker.wait(
                    "the probe Ready", lambda: ("p5-probe", "probe") in tracker.ready_at, timeout=600
                )

                def restored() -> float | None:
                    events = tracker.secret_events.get(probe_secret, [])
                    back = [t for kind, t, _ in events if kind == "ADDED" and t > deleted]
                    return back[0] if back else None

                back = tracker.wait(
                    "the deleted Secret restored", lambda: restored() is not None, timeout=600
                )
                repaired = (restored() or back) - deleted
                storm_rss = rss.peak_mb

                per_chain_mb = None
                if args.per_chain:
                    before = rss.current_mb
                    extra = [(f"pc-{i:03d}", f"chain-{i:03d}") for i in range(args.per_chain)]
                    bulk(
                        lambda item: env.create_eps(
                            "p5-chains", item[0], {"registries": [registries[0]], "auth": role(item[1])}
                        ),
                        extra,
                        8,
                    )
                    tracker.wait(
                        "per-chain resources Ready",
                        lambda: all(("p5-chains", n) in tracker.ready_at for n, _ in extra),
                        timeout=600,
                    )
                    time.sleep(2)
                    per_chain_mb = (rss.current_mb - before) / args.per_chain
                    say(
                        f"{args.per_chain} resources with a chain each: RSS {before:.0f} → "
                        f"{rss.current_mb:.0f} MB = {per_chain_mb:.1f} MB per chain"
                    )

            storm_calls = calls.calls_between(due - 1, done + 1)
            peak_bucket, peak_sliding = calls.peak_per_second(due - 1, done + 1)
            run_bucket, run_sliding = calls.peak_per_second()
            histogram = calls.histogram(due - 1, done + 1)
            issue_histogram = calls.histogram(calls.samples[0][0], issued + 1)
            peak_at, peak_actions = calls.peak_breakdown()

        took = done - due
        ready_after = probe_ready - created
        peak, sliding = max(peak_bucket, run_bucket), max(peak_sliding, run_sliding)
        say(f"issuance: calls per second {issue_histogram}")
        say(f"storm: {storm_calls} AWS calls; calls per second {histogram}")
        say(f"busiest second of the run: {peak_at:.0f}s after the operator started, {peak_actions}")
        say(f"storm peak {peak_bucket}/s (1-s buckets), {peak_sliding} (sliding 1 s)")
        say(f"whole-run peak {run_bucket}/s (1-s buckets), {run_sliding} (sliding 1 s)")
        say(
            f"all renewed {took:.1f}s after the first was due; deleted Secret back after {repaired:.1f}s, "
            f"new resource Ready {ready_after:.1f}s after its create; operator peak RSS {storm_rss:.0f} MB"
        )
        chain_cost = f"; {per_chain_mb:.1f} MB RSS per extra chain" if per_chain_mb is not None else ""
        row(
            "P5",
            f"renewal storm: {args.count} EcrPullSecrets due at once ({args.chains} with a role chain "
            f"each x {args.regions} regions + {args.count - args.chains} sharing one token = "
            f"{args.chains * args.regions + 1} token keys), --aws-rate-limit {args.rate:g}",
            f"peak {peak} calls/s (1-s buckets; sliding 1-s window {sliding}), {storm_calls} calls in the "
            f"storm, all renewed in {took:.0f} s; mid-storm: deleted Secret restored in {repaired:.1f} s, "
            f"new resource Ready in {ready_after:.1f} s; peak RSS {storm_rss:.0f} MB{chain_cost}",
            f"peak ≤ {args.rate:g}/s (± 1: bucket edges are known to 100 ms)",
            peak <= args.rate + 1 and not overlap,
        )


if __name__ == "__main__":
    main()
