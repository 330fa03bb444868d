"""plan.renewal: which trigger fires, when the attempt may run, and the renewal schedule."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from ecr_pull_secrets.model.credential import Credential, RegistryToken
from ecr_pull_secrets.model.resource import Resource, Status
from ecr_pull_secrets.plan.renewal import (
    Decision,
    RenewalPolicy,
    Trigger,
    acceptable,
    backoff,
    decide,
    renewal_time,
)
from tests.unit.factories import GENERATION, NOW, ago, condition, issued, later, resource

POLICY = RenewalPolicy()  # min_interval 60s, backoff 5s doubling up to 5m, jitter 0.1
NO_JITTER = RenewalPolicy(jitter=0.0)
OLD = GENERATION - 1


def failed(
    attempts: int, at: datetime, *, generation: int = GENERATION, status: Status | None = None
) -> Status:
    """A status after `attempts` failures, the last at `at`, recorded for `generation`."""
    base = status if status is not None else Status()
    ready = "True" if base.expires_at else "False"
    return replace(
        base,
        failed_attempts=attempts,
        last_failure_time=at,
        conditions=(condition("Ready", ready, generation=generation, reason="AccessDenied"),),
    )


DECISIONS = [
    # -- first issue
    pytest.param(resource(Status()), Trigger.ISSUE, NOW, id="never-issued"),
    pytest.param(resource(Status(secret_name="pull")), Trigger.ISSUE, NOW, id="no-expiry-recorded"),
    pytest.param(resource(issued(secret_name=None)), Trigger.ISSUE, NOW, id="no-secret-recorded"),
    # -- nothing to do: look again at the renewal time
    pytest.param(resource(issued()), None, later(hours=4), id="before-renewal-time"),
    pytest.param(
        resource(issued(renewal_time=later(seconds=1))), None, later(seconds=1), id="1s-before-renewal"
    ),
    # -- renewal
    pytest.param(resource(issued(renewal_time=NOW)), Trigger.RENEW, NOW, id="renewal-time-reached"),
    pytest.param(resource(issued(renewal_time=ago(hours=1))), Trigger.RENEW, NOW, id="renewal-time-passed"),
    pytest.param(resource(issued(renewal_time=None)), Trigger.RENEW, NOW, id="renewal-time-unknown"),
    pytest.param(
        resource(issued(renewal_time=ago(seconds=1), last_refresh_time=ago(seconds=20))),
        Trigger.RENEW,
        later(seconds=40),
        id="renew-floor-after-refresh",
    ),
    # -- spec changes
    pytest.param(
        resource(issued(), generation=GENERATION + 1), Trigger.SPEC_CHANGED, NOW, id="generation-changed"
    ),
    pytest.param(
        resource(issued(), secret_name="renamed"), Trigger.SPEC_CHANGED, NOW, id="secret-name-changed"
    ),
    pytest.param(
        resource(issued(last_refresh_time=ago(seconds=5)), generation=GENERATION + 1),
        Trigger.SPEC_CHANGED,
        NOW,
        id="spec-change-ignores-floor",
    ),
    pytest.param(
        resource(failed(4, ago(seconds=1), generation=OLD, status=issued(observed_generation=OLD))),
        Trigger.SPEC_CHANGED,
        NOW,
        id="old-generation-failure-no-backoff",
    ),
    pytest.param(
        resource(failed(4, ago(seconds=1), status=issued(observed_generation=OLD))),
        Trigger.SPEC_CHANGED,
        ago(seconds=1) + timedelta(seconds=40),
        id="this-generation-failure-backs-off",
    ),
    # -- force refresh annotation
    pytest.param(resource(issued(), force_refresh="r1"), Trigger.FORCED, NOW, id="forced-new-value"),
    pytest.param(
        resource(issued(force_refresh="r1"), force_refresh="r2"),
        Trigger.FORCED,
        NOW,
        id="forced-changed-value",
    ),
    pytest.param(
        resource(issued(last_refresh_time=ago(seconds=10)), force_refresh="r1"),
        Trigger.FORCED,
        later(seconds=50),
        id="forced-floor-after-refresh",
    ),
    pytest.param(
        resource(
            failed(1, ago(seconds=30), status=issued(last_refresh_time=ago(hours=1))), force_refresh="r1"
        ),
        Trigger.FORCED,
        later(seconds=30),
        id="forced-floor-after-failure",
    ),
    pytest.param(
        resource(failed(6, ago(seconds=120), status=issued()), force_refresh="r1"),
        Trigger.FORCED,
        later(seconds=40),
        id="forced-honours-backoff",
    ),
    pytest.param(
        resource(issued(force_refresh="r1"), force_refresh="r1"),
        None,
        later(hours=4),
        id="forced-value-handled",
    ),
    pytest.param(resource(issued(force_refresh="r1")), None, later(hours=4), id="annotation-removed"),
    # -- backoff after failures
    pytest.param(resource(failed(1, NOW)), Trigger.ISSUE, later(seconds=5), id="issue-after-1-failure"),
    pytest.param(
        resource(failed(3, ago(seconds=5))), Trigger.ISSUE, later(seconds=15), id="issue-after-3-failures"
    ),
    pytest.param(resource(failed(3, ago(minutes=5))), Trigger.ISSUE, NOW, id="issue-backoff-elapsed"),
    pytest.param(
        resource(failed(5, ago(seconds=30), status=issued(renewal_time=ago(hours=1)))),
        Trigger.RENEW,
        later(seconds=50),
        id="renew-backoff-beats-floor",
    ),
    pytest.param(
        resource(failed(2, ago(seconds=30), status=issued(renewal_time=ago(hours=1)))),
        Trigger.RENEW,
        later(seconds=30),
        id="renew-floor-beats-backoff",
    ),
    pytest.param(
        resource(failed(9, NOW, status=issued(renewal_time=ago(hours=1)))),
        Trigger.RENEW,
        later(minutes=5),
        id="renew-backoff-capped",
    ),
]


@pytest.mark.parametrize(("target", "trigger", "at"), DECISIONS)
def test_decide(target: Resource, trigger: Trigger | None, at: datetime) -> None:
    decision = decide(target, NOW, POLICY)

    assert decision == Decision(trigger, at)
    assert decision.due(NOW) is (trigger is not None and at <= NOW)


@pytest.mark.parametrize("attempts", range(1, 9), ids=lambda n: f"{n}-failures")
def test_issue_backoff_doubles_and_caps(attempts: int) -> None:
    decision = decide(resource(failed(attempts, NOW)), NOW, POLICY)

    expected = min(timedelta(seconds=5 * 2 ** (attempts - 1)), timedelta(minutes=5))
    assert decision == Decision(Trigger.ISSUE, NOW + expected)


@pytest.mark.parametrize(
    ("decision", "now", "due"),
    [
        pytest.param(Decision(Trigger.RENEW, NOW), NOW, True, id="at-now"),
        pytest.param(Decision(Trigger.RENEW, ago(seconds=1)), NOW, True, id="past"),
        pytest.param(Decision(Trigger.RENEW, later(seconds=1)), NOW, False, id="future"),
        pytest.param(Decision(None, ago(hours=1)), NOW, False, id="no-trigger"),
    ],
)
def test_decision_due(decision: Decision, now: datetime, due: bool) -> None:
    assert decision.due(now) is due


@pytest.mark.parametrize(
    ("attempts", "policy", "expected"),
    [
        pytest.param(0, POLICY, timedelta(seconds=5), id="zero"),
        pytest.param(1, POLICY, timedelta(seconds=5), id="first"),
        pytest.param(2, POLICY, timedelta(seconds=10), id="second"),
        pytest.param(3, POLICY, timedelta(seconds=20), id="third"),
        pytest.param(6, POLICY, timedelta(seconds=160), id="sixth"),
        pytest.param(7, POLICY, timedelta(minutes=5), id="capped"),
        pytest.param(31, POLICY, timedelta(minutes=5), id="exponent-limit"),
        pytest.param(10_000, POLICY, timedelta(minutes=5), id="huge"),
        pytest.param(-3, POLICY, timedelta(seconds=5), id="negative"),
        pytest.param(
            10,
            RenewalPolicy(backoff_base=timedelta(seconds=1), backoff_cap=timedelta(hours=1)),
            timedelta(seconds=512),
            id="custom-base",
        ),
        pytest.param(
            13,
            RenewalPolicy(backoff_base=timedelta(seconds=1), backoff_cap=timedelta(hours=1)),
            timedelta(hours=1),
            id="custom-cap",
        ),
    ],
)
def test_backoff(attempts: int, policy: RenewalPolicy, expected: timedelta) -> None:
    assert backoff(attempts, policy) == expected


UIDS = [f"uid-{i:03d}" for i in range(200)]
TWELVE_HOURS = timedelta(hours=12)


@pytest.mark.parametrize(
    ("lifetime", "renew_before", "expected_lead"),
    [
        pytest.param(TWELVE_HOURS, timedelta(hours=4), timedelta(hours=4), id="renew-before"),
        pytest.param(TWELVE_HOURS, timedelta(minutes=90), timedelta(minutes=90), id="short-renew-before"),
        pytest.param(TWELVE_HOURS, TWELVE_HOURS, timedelta(hours=4), id="equal-lifetime-two-thirds"),
        pytest.param(TWELVE_HOURS, timedelta(hours=20), timedelta(hours=4), id="longer-than-lifetime"),
        pytest.param(timedelta(hours=3), timedelta(hours=4), timedelta(hours=1), id="short-token-two-thirds"),
    ],
)
def test_renewal_time(lifetime: timedelta, renew_before: timedelta, expected_lead: timedelta) -> None:
    issued_at, expires_at = ago(hours=1), ago(hours=1) + lifetime

    exact = renewal_time(issued_at, expires_at, renew_before, "uid-a", NO_JITTER)
    times = {uid: renewal_time(issued_at, expires_at, renew_before, uid, POLICY) for uid in UIDS}

    assert exact == expires_at - expected_lead
    window = expected_lead * POLICY.jitter
    for uid, when in times.items():
        assert exact - window <= when <= exact, uid
    early = sorted(exact - t for t in times.values())
    assert early[0] < window * 0.05, "jitter should reach close to zero for some resource"
    assert early[-1] > window * 0.95, "jitter should reach close to its maximum for some resource"


def test_renewal_time_is_stable_per_uid_and_spread_across_uids() -> None:
    def at(uid: str) -> datetime:
        return renewal_time(NOW, NOW + TWELVE_HOURS, timedelta(hours=4), uid, POLICY)

    assert [at("uid-a") for _ in range(3)] == [at("uid-a")] * 3
    assert at("uid-a") != at("uid-b")
    assert len({at(uid) for uid in UIDS}) >= 195


def token(issued_at: datetime, expires_at: datetime) -> RegistryToken:
    return RegistryToken(credential=Credential("AWS", "secret"), issued_at=issued_at, expires_at=expires_at)


@pytest.mark.parametrize(
    ("renew_before", "policy", "cutoff"),
    [
        pytest.param(timedelta(hours=4), POLICY, later(hours=4, minutes=24, seconds=60), id="defaults"),
        pytest.param(
            timedelta(hours=1),
            RenewalPolicy(jitter=0.0, min_interval=timedelta(0)),
            later(hours=1),
            id="no-jitter-no-floor",
        ),
        pytest.param(
            timedelta(minutes=90),
            RenewalPolicy(jitter=0.2, min_interval=timedelta(seconds=30)),
            later(minutes=108, seconds=30),
            id="custom",
        ),
    ],
)
def test_a_twelve_hour_token_is_acceptable_past_renew_before_and_its_jitter(
    renew_before: timedelta, policy: RenewalPolicy, cutoff: datetime
) -> None:
    def accepts(expires_at: datetime) -> bool:
        return acceptable(token(expires_at - TWELVE_HOURS, expires_at), NOW, renew_before, policy)

    assert accepts(cutoff + timedelta(seconds=1))
    assert not accepts(cutoff)


@pytest.mark.parametrize(
    ("lifetime", "left", "expected"),
    [
        pytest.param(timedelta(seconds=30), timedelta(seconds=25), True, id="most-of-a-short-life-left"),
        pytest.param(timedelta(seconds=30), timedelta(seconds=11), False, id="a-third-of-a-short-life-left"),
        pytest.param(TWELVE_HOURS, timedelta(hours=9), True, id="12h-token-outside-renew-before"),
        pytest.param(TWELVE_HOURS, timedelta(hours=8), False, id="12h-token-inside-renew-before"),
    ],
)
def test_a_token_shorter_than_renew_before_is_judged_by_a_third_of_its_life(
    lifetime: timedelta, left: timedelta, expected: bool
) -> None:
    """renewBefore 8h (the maximum): a 30 s token is renewed at 2/3 of its life, as renewal_time
    would schedule it, not refused outright because 8h exceeds its whole life."""
    policy = RenewalPolicy(jitter=0.1, min_interval=timedelta(seconds=1))
    expires_at = NOW + left
    made = token(expires_at - lifetime, expires_at)

    assert acceptable(made, NOW, timedelta(hours=8), policy) is expected


@pytest.mark.parametrize("renew_before", [timedelta(minutes=30), timedelta(hours=4), timedelta(hours=6)])
def test_an_acceptable_token_renews_after_the_floor(renew_before: timedelta) -> None:
    """A token the broker may hand out from cache never schedules a renewal inside min_interval."""
    expires_at = later(hours=12)
    for minutes in range(0, 12 * 60, 7):
        issued_at = NOW - timedelta(minutes=minutes)
        made = token(issued_at, expires_at - timedelta(minutes=minutes))
        if acceptable(made, NOW, renew_before, POLICY):
            for uid in UIDS:
                at = renewal_time(made.issued_at, made.expires_at, renew_before, uid, POLICY)
                assert at > NOW + POLICY.min_interval


# -- drift: a Secret is missing or was edited ----------------------------------------------------

REPAIRS = [
    pytest.param(resource(issued()), Trigger.REPAIR, NOW, id="repair-when-nothing-else-due"),
    pytest.param(
        resource(issued(force_refresh="r1"), force_refresh="r1"),
        Trigger.REPAIR,
        NOW,
        id="repair-forced-handled",
    ),
    pytest.param(
        resource(issued(last_refresh_time=ago(seconds=5))), Trigger.REPAIR, NOW, id="repair-ignores-floor"
    ),
    pytest.param(
        resource(failed(1, ago(seconds=30), status=issued())),
        Trigger.REPAIR,
        NOW,
        id="repair-ignores-floor-after-failure",
    ),
    pytest.param(
        resource(failed(2, ago(seconds=4), status=issued())),
        Trigger.REPAIR,
        later(seconds=6),
        id="repair-backs-off-after-failures",
    ),
    pytest.param(
        resource(failed(4, NOW, status=issued())),
        Trigger.REPAIR,
        later(seconds=40),
        id="repair-backoff-doubles",
    ),
    pytest.param(
        resource(failed(9, NOW, status=issued())),
        Trigger.REPAIR,
        later(minutes=5),
        id="repair-backoff-capped",
    ),
    pytest.param(
        resource(failed(3, ago(minutes=5), status=issued())), Trigger.REPAIR, NOW, id="repair-backoff-elapsed"
    ),
    pytest.param(
        resource(failed(4, ago(seconds=1), generation=OLD, status=issued())),
        Trigger.REPAIR,
        NOW,
        id="repair-old-generation-failure-no-backoff",
    ),
    # -- anything else due wins, with its own timing
    pytest.param(resource(Status()), Trigger.ISSUE, NOW, id="issue-beats-repair"),
    pytest.param(
        resource(failed(3, ago(seconds=5))), Trigger.ISSUE, later(seconds=15), id="issue-backoff-beats-repair"
    ),
    pytest.param(
        resource(issued(), generation=GENERATION + 1),
        Trigger.SPEC_CHANGED,
        NOW,
        id="spec-change-beats-repair",
    ),
    pytest.param(resource(issued(), force_refresh="r1"), Trigger.FORCED, NOW, id="forced-beats-repair"),
    pytest.param(
        resource(failed(6, ago(seconds=120), status=issued()), force_refresh="r1"),
        Trigger.FORCED,
        later(seconds=40),
        id="forced-still-honours-backoff",
    ),
    pytest.param(resource(issued(renewal_time=NOW)), Trigger.RENEW, NOW, id="renew-beats-repair"),
    pytest.param(
        resource(issued(renewal_time=ago(seconds=1), last_refresh_time=ago(seconds=20))),
        Trigger.RENEW,
        later(seconds=40),
        id="renew-keeps-its-floor",
    ),
]


@pytest.mark.parametrize(("target", "trigger", "at"), REPAIRS)
def test_decide_with_drift(target: Resource, trigger: Trigger, at: datetime) -> None:
    assert decide(target, NOW, POLICY, drift=True) == Decision(trigger, at)


@pytest.mark.parametrize(("target", "trigger", "at"), DECISIONS)
def test_drift_never_preempts_another_trigger(
    target: Resource, trigger: Trigger | None, at: datetime
) -> None:
    with_drift = decide(target, NOW, POLICY, drift=True)

    if trigger is None:
        assert with_drift == Decision(Trigger.REPAIR, NOW)
    else:
        assert with_drift == Decision(trigger, at)


def test_drift_defaults_to_false() -> None:
    assert decide(resource(issued()), NOW, POLICY) == Decision(None, later(hours=4))
