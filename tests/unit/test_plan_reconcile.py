"""plan.reconcile: one pass decided from its input — what to write, issue, delete, report and when to
look again. Table-driven with a fixed clock, like the renewal tests; no cluster, no AWS."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import SecretView, secret_view
from ecr_pull_secrets.model.credential import Credential
from ecr_pull_secrets.model.resource import Resource
from ecr_pull_secrets.model.scope import NamespaceScope
from ecr_pull_secrets.plan import adoption, status
from ecr_pull_secrets.plan.content import Owner, desired_secret
from ecr_pull_secrets.plan.reconcile import (
    Event,
    Input,
    Obtained,
    Work,
    next_look,
    plan_report,
    plan_work,
)
from ecr_pull_secrets.plan.renewal import Decision, RenewalPolicy, Trigger
from ecr_pull_secrets.plan.verify import Verdict
from tests.unit.factories import HOST, NOW, ago, issued, later, resource

POLICY = RenewalPolicy(jitter=0.0)
UID = "0b6f4c1e-uid"
EXPIRES_AT = later(hours=8)
CLUSTER = NamespaceScope(include=("team-*",))


def written(
    namespace: str = "team-a", *, uid: str = UID, name: str = "pull", kind: str = api.KIND
) -> SecretView:
    """The Secret as the operator writes it for the status of `issued()`."""
    body: dict[str, Any] = desired_secret(
        name=name,
        namespace=namespace,
        owner=Owner(f"{api.GROUP}/{api.VERSION}", kind, "pull", uid),
        credentials={HOST: Credential("AWS", "token")},
        issued_at=ago(hours=4),
        expires_at=EXPIRES_AT,
        chain_key="chain",
    )
    body["metadata"] |= {"uid": f"secret-{namespace}-{name}", "resourceVersion": "7"}
    return secret_view(body)


FRESH = written()
EDITED = replace(FRESH, content_ok=False)
OTHERS = written(uid="uid-other")
UNOWNED = replace(FRESH, controller_uid=None, controller="")
DUE = issued(renewal_time=ago(minutes=1))
NEW = resource()
ISSUED = resource(issued())
CLUSTER_ISSUED = resource(issued(), scope=CLUSTER)


def given(
    subject: Resource,
    secrets: dict[str, SecretView | None],
    *,
    holds: bool = False,
    conflicts: dict[str, datetime] | None = None,
    owned: tuple[SecretView, ...] = (),
) -> Input:
    return Input(
        resource=subject,
        now=NOW,
        namespaces=tuple(secrets),
        secrets=secrets,
        owned=owned,
        conflicts=conflicts or {},
        holds_tokens=holds,
    )


@pytest.mark.parametrize(
    ("inp", "trigger", "issue", "write_to", "reported"),
    [
        pytest.param(given(ISSUED, {"team-a": FRESH}), None, False, (), [], id="fresh: nothing to do"),
        pytest.param(given(NEW, {"team-a": None}), Trigger.ISSUE, True, ("team-a",), [], id="new: issue"),
        pytest.param(resource(DUE), Trigger.RENEW, True, ("team-a",), [], id="due: renew"),
        pytest.param(
            given(ISSUED, {"team-a": None}, holds=True),
            Trigger.REPAIR,
            False,
            ("team-a",),
            [],
            id="deleted, tokens held: rewrite from them",
        ),
        pytest.param(
            given(ISSUED, {"team-a": None}),
            Trigger.REPAIR,
            True,
            ("team-a",),
            [],
            id="deleted after a restart: tokens again (the broker may hold them)",
        ),
        pytest.param(
            given(ISSUED, {"team-a": EDITED}, holds=True), Trigger.REPAIR, False, ("team-a",), [], id="edited"
        ),
        pytest.param(
            given(ISSUED, {"team-a": OTHERS}),
            None,
            False,
            (),
            [("team-a", "SecretConflict")],
            id="another resource's Secret: reported, never written",
        ),
        pytest.param(
            given(ISSUED, {"team-a": UNOWNED}, holds=True, conflicts={"team-a": later(seconds=10)}),
            None,
            False,
            (),
            [("team-a", "SecretConflict")],
            id="a name found taken: not tried again before its time",
        ),
        pytest.param(
            given(ISSUED, {"team-a": UNOWNED}, holds=True, conflicts={"team-a": ago(seconds=1)}),
            Trigger.REPAIR,
            False,
            ("team-a",),
            [],
            id="a name found taken: tried again at its time",
        ),
        pytest.param(
            given(resource(scope=CLUSTER), {"team-a": None, "team-b": written("team-b", uid="uid-other")}),
            Trigger.ISSUE,
            True,
            ("team-a",),
            [("team-b", "SecretConflict")],
            id="cluster: written where free, reported where another resource writes",
        ),
        pytest.param(
            given(CLUSTER_ISSUED, {"team-a": written(kind=api.CLUSTER_KIND), "team-b": None}, holds=True),
            Trigger.REPAIR,
            False,
            ("team-b",),
            [],
            id="cluster: a new namespace gets the tokens held",
        ),
    ],
)
def test_plan_work(
    inp: Input | Resource,
    trigger: Trigger | None,
    issue: bool,
    write_to: tuple[str, ...],
    reported: list[tuple[str, str]],
) -> None:
    if isinstance(inp, Resource):
        inp = given(inp, {"team-a": FRESH})
    work = plan_work(inp, POLICY)
    assert work.decision.trigger is trigger
    assert work.due(NOW) is (trigger is not None)
    assert (work.issue, work.write_to) == (issue, write_to)
    assert [(f.namespace, f.reason) for f in work.reported] == reported


def test_plan_work_deletes_what_is_out_of_scope_or_renamed() -> None:
    out_of_scope = written("team-x", kind=api.CLUSTER_KIND)
    renamed = written("team-a", name="old-name", kind=api.CLUSTER_KIND)
    kept = written("team-a", kind=api.CLUSTER_KIND)
    inp = given(CLUSTER_ISSUED, {"team-a": kept}, owned=(kept, out_of_scope, renamed))
    assert plan_work(inp, POLICY).delete == (out_of_scope, renamed)


def test_the_reported_messages_name_the_holder_and_the_way_out() -> None:
    work = plan_work(given(ISSUED, {"team-a": OTHERS}), POLICY)
    assert work.reported[0].message == (
        "Secret pull is managed by EcrPullSecret pull; two resources may not write one Secret"
    )
    waiting = plan_work(given(ISSUED, {"team-a": UNOWNED}, conflicts={"team-a": later(seconds=5)}), POLICY)
    assert "set spec.secretPolicy: Adopt" in waiting.reported[0].message


# -- the report ------------------------------------------------------------------------------------


def work_for(inp: Input) -> Work:
    return plan_work(inp, POLICY)


def test_report_of_a_first_issue() -> None:
    inp = given(NEW, {"team-a": None})
    report = plan_report(
        inp, work_for(inp), POLICY, obtained=Obtained(NOW, later(hours=12), "arn:aws:sts::1:assumed-role/r/s")
    )
    assert report.status is not None
    assert report.status["expiresAt"] == "2025-03-02T00:00:00Z"
    assert report.status["renewalTime"] == "2025-03-01T20:00:00Z"  # 12 h token, renewBefore 4h
    assert report.status["readyNamespaces"] == 1
    assert report.renewed == "Issued"
    assert [(e.type, e.reason) for e in report.events] == [("Normal", "Issued")]
    assert report.renewal == (later(hours=12), later(hours=8))


def test_report_of_a_failure_keeps_the_old_expiry_and_backs_off() -> None:
    inp = given(resource(DUE), {"team-a": FRESH})
    failed = status.Failure("AccessDenied", "not allowed")
    report = plan_report(inp, work_for(inp), POLICY, failed=failed)
    assert report.status is not None
    assert report.status["failedAttempts"] == 1
    assert [(e.type, e.reason) for e in report.events] == [("Warning", "AccessDenied")]
    assert report.renewal == (EXPIRES_AT, NOW + timedelta(seconds=5))
    assert report.renewed is None


def test_a_token_no_Secret_took_is_not_reported_as_issued() -> None:
    inp = given(NEW, {"team-a": None})
    write_failed = [status.NamespaceFailure("team-a", "KubernetesError", "create Secret: HTTP 500")]
    report = plan_report(
        inp, work_for(inp), POLICY, obtained=Obtained(NOW, later(hours=12), None), write_failures=write_failed
    )
    assert report.renewed is None
    assert report.status is not None
    assert "expiresAt" not in report.status
    assert report.status["readyNamespaces"] == 0
    assert report.events == (Event("Warning", "KubernetesError", "create Secret: HTTP 500"),)


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param(resource(issued(), generation=4), id="spec-changed"),
        pytest.param(resource(issued(), force_refresh="1"), id="forced"),
    ],
)
def test_a_spec_change_or_forced_refresh_served_by_the_same_token_is_recorded(subject: Resource) -> None:
    """The held token may serve a new output, secretName or template: status records the generation
    (and the force-refresh value) all the same, or every pass would ask again."""
    inp = given(subject, {"team-a": FRESH})
    work = work_for(inp)
    assert work.issue
    assert work.write_to == ("team-a",)

    report = plan_report(inp, work, POLICY, obtained=Obtained(ago(hours=4), EXPIRES_AT, None))

    assert report.status is not None
    assert report.status["observedGeneration"] == subject.generation
    assert report.status["forceRefresh"] == subject.force_refresh
    assert report.status["expiresAt"] == "2025-03-01T20:00:00Z"


def test_a_repair_with_the_same_token_is_not_a_renewal() -> None:
    inp = given(ISSUED, {"team-a": EDITED})
    work = work_for(inp)
    assert work.issue
    assert work.write_to == ("team-a",)

    report = plan_report(inp, work, POLICY, obtained=Obtained(ago(hours=4), EXPIRES_AT, None), current={})

    assert report.renewed is None
    assert report.status is not None
    assert "expiresAt" not in report.status


def test_a_write_failure_status_already_says_is_not_said_again() -> None:
    said = ({"namespace": "team-a", "reason": "KubernetesError", "message": "m"},)
    inp = given(resource(issued(failed_namespaces=said)), {"team-a": None}, holds=True)
    write_failed = [status.NamespaceFailure("team-a", "KubernetesError", "m")]
    report = plan_report(inp, work_for(inp), POLICY, write_failures=write_failed)
    assert report.events == ()


def test_nothing_new_writes_nothing() -> None:
    inp = given(ISSUED, {"team-a": FRESH})
    first = plan_report(inp, work_for(inp), POLICY, current={})
    assert first.status is not None
    again = plan_report(inp, work_for(inp), POLICY, current=first.status)
    assert (again.status, again.events) == (None, ())
    assert again.renewal == (EXPIRES_AT, later(hours=4))


def test_a_verdict_sets_verified_and_warns_once() -> None:
    inp = given(ISSUED, {"team-a": FRESH})
    denied = Verdict(False, "Forbidden", "pull denied")
    first = plan_report(inp, work_for(inp), POLICY, verdict=denied, current={})
    assert first.status is not None
    verified = status.condition_in(first.status, status.VERIFIED)
    assert verified is not None
    assert (verified["status"], verified["reason"]) == ("False", "Forbidden")
    assert first.events == (Event("Warning", "Forbidden", "pull denied"),)
    again = plan_report(inp, work_for(inp), POLICY, verdict=denied, current=first.status)
    assert again.events == ()


@pytest.mark.parametrize(
    ("decision", "also", "expected"),
    [
        pytest.param(Decision(None, later(hours=4)), [], later(hours=4), id="waits for the renewal time"),
        pytest.param(
            Decision(None, later(hours=4)),
            [later(seconds=30), None],
            later(seconds=30),
            id="a conflict sooner",
        ),
        pytest.param(
            Decision(None, later(hours=4)), [ago(seconds=1)], later(hours=4), id="past times ignored"
        ),
        pytest.param(Decision(Trigger.RENEW, NOW), [], later(seconds=1), id="just acted: a second later"),
        pytest.param(Decision(Trigger.RENEW, later(seconds=40)), [], later(seconds=40), id="not yet allowed"),
    ],
)
def test_next_look(decision: Decision, also: list[datetime | None], expected: datetime) -> None:
    assert next_look(decision, NOW, also=also) == expected


# -- adoption --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("owners", "secret_type", "policy", "refused"),
    [
        pytest.param([], api.SECRET_TYPE, "Adopt", None, id="unowned, Adopt: taken over"),
        pytest.param(
            [], api.SECRET_TYPE, "Fail", "set spec.secretPolicy: Adopt", id="unowned, default: refused"
        ),
        pytest.param(
            [{"kind": "EcrPullSecret", "name": "x", "uid": UID, "controller": True}],
            api.SECRET_TYPE,
            "Fail",
            None,
            id="ours already (the cache had not seen it)",
        ),
        pytest.param(
            [{"kind": "EcrPullSecret", "name": "other", "uid": "uid-other", "controller": True}],
            api.SECRET_TYPE,
            "Adopt",
            "managed by EcrPullSecret other",
            id="another resource's: never, even with Adopt",
        ),
        pytest.param(
            [{"kind": "Deployment", "name": "d", "uid": "uid-d"}],
            api.SECRET_TYPE,
            "Adopt",
            None,
            id="owned but not controlled: Adopt takes it",
        ),
        pytest.param([], "Opaque", "Adopt", "cannot become kubernetes.io/dockerconfigjson", id="wrong type"),
    ],
)
def test_adoption(owners: list[dict[str, Any]], secret_type: str, policy: str, refused: str | None) -> None:
    metadata = {"name": "pull", "ownerReferences": owners}
    answer = adoption.refusal(metadata, secret_type, UID, policy, api.KIND)
    if refused is None:
        assert answer is None
    else:
        assert answer is not None
        assert refused in answer
