"""The Grafana dashboard the chart ships (charts/…/dashboards/ecr-pull-secrets.json): valid JSON in
Grafana's current schema, every query on the `${datasource}` and `$job` variables, and every metric
name in its PromQL one the operator really exports — checked against the series a scrape of
`Metrics` shows, by a checker that is itself tested to catch made-up names. Where promtool is built
(`make alerts-check`), it also parses every query and evaluates the main panels on series stored
as a ServiceMonitor scrape stores them."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ecr_pull_secrets import metrics as names
from ecr_pull_secrets.metrics import Metrics

DASHBOARD = (
    Path(__file__).resolve().parents[2]
    / "charts"
    / "ecr-pull-secret-operator"
    / "dashboards"
    / "ecr-pull-secrets.json"
)
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# -- a PromQL reader that finds metric names ------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


AGGREGATIONS = _words(
    """
    sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio
    """
)
FUNCTIONS = _words(
    """
    abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp
    clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg
    delta deriv double_exponential_smoothing exp floor histogram_avg histogram_count histogram_fraction
    histogram_quantile histogram_stddev histogram_stdvar histogram_sum holt_winters hour idelta
    increase info irate label_join label_replace last_over_time ln log10 log2 mad_over_time
    max_over_time min_over_time minute month pi predict_linear present_over_time quantile_over_time rad
    rate resets round scalar sgn sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt
    stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp vector year
    """
)
# Words that are not metric names where they stand without a parenthesis after them.
KEYWORDS = _words(
    """
    and or unless bool offset atan2 inf nan by without on ignoring group_left group_right
    """
)

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{\w+(?::\w+)?\}|\$\w+|\[\[\w+\]\]")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NUMBER = re.compile(r"(?<![\w:])(?:0x[0-9a-fA-F]+|\d[\w.]*|\.\d[\w.]*)")  # also durations: 5m, 1h30m
_IDENTIFIER = re.compile(r"(?<![\w:])([A-Za-z_:][\w:]*)(\s*\()?")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<expr>.*),\s*\w+\s*\)\s*$", re.DOTALL)


class PromqlError(ValueError):
    pass


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects. Label names (in matchers and in by/without/on/
    ignoring clauses), strings, numbers, durations, Grafana variables, keywords and function
    names are not metric names; a name called like a function that PromQL does not know, an
    unbalanced bracket or a `__name__` matcher is an error (a name there could not be checked)."""
    if "__name__" in expr:
        raise PromqlError(f"say metric names plainly, not with __name__: {expr}")
    text = _STRING.sub('""', expr)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    for opening, closing in ("()", "[]", "{}"):
        if text.count(opening) != text.count(closing):
            raise PromqlError(f"unbalanced {opening}{closing}: {expr}")
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    found: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        word, called = match.group(1), match.group(2)
        if called:
            if word not in FUNCTIONS | AGGREGATIONS:
                raise PromqlError(f"{word}() is not a PromQL function: {expr}")
        elif word.lower() not in KEYWORDS:
            found.add(word)
    return found


# -- the dashboard ------------------------------------------------------------------------------


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panel targets and query variables (`label_values(EXPR, label)`)."""
    found = [
        target["expr"]
        for panel in all_panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        for query in (variable["definition"], variable["query"]["query"]):
            match = _LABEL_VALUES.match(query)
            found.append(match["expr"] if match else query)
    return found


def undefined_names(dashboard: dict[str, Any], defined: frozenset[str]) -> set[str]:
    return {name for expr in expressions(dashboard) for name in metric_names(expr)} - defined


def scraped_series() -> frozenset[str]:
    """Series names a scrape of the operator shows once every metric has a sample: the text
    exposition of a `Metrics` that recorded one of each, parsed as Prometheus would."""
    metrics = Metrics()
    now = datetime.now(UTC)
    metrics.schedule("EcrPullSecret", "team-a", "app", expires_at=now + timedelta(hours=12), renewal_at=now)
    metrics.renewal("success", "Issued", 0.2)
    metrics.renewal("failure", "AccessDenied", 1.0)
    metrics.aws_request("ecr", "GetAuthorizationToken", "success")
    metrics.verify_request("OK")
    metrics.follow_queue(waiting=lambda: 1, working=lambda: 0, scheduled=lambda: 1)
    return frozenset(
        sample.name
        for family in text_string_to_metric_families(metrics.exposition())
        for sample in family.samples
    )


# -- tests --------------------------------------------------------------------------------------


def test_the_dashboard_is_json_in_grafana_s_current_schema() -> None:
    dashboard = load()
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["uid"] == "ecr-pull-secrets"
    assert dashboard["title"]
    assert "id" not in dashboard or dashboard["id"] is None  # provisioning assigns it

    panels = list(all_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["title"], panel["id"]
        assert panel["description"], panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["refId"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), panel["title"]


def test_queries_use_the_datasource_and_job_variables() -> None:
    dashboard = load()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    job = variables["job"]
    assert job["type"] == "query"
    assert job["datasource"] == DATASOURCE
    assert job["includeAll"]
    assert job["multi"]
    # Every series the panels select is narrowed to the chosen jobs.
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            selectors = re.findall(r"\b(ecr_pull_secrets_\w+)(\{[^}]*\})?", target["expr"])
            assert selectors, target["expr"]
            for metric, matchers in selectors:
                assert 'job=~"$job"' in matchers, f"{metric} without the job variable in {panel['title']}"


def test_every_metric_name_is_one_the_operator_exports() -> None:
    dashboard = load()
    registry = Metrics().series_names()
    scraped = scraped_series()
    assert undefined_names(dashboard, registry) == set()
    assert undefined_names(dashboard, scraped) == set()


def test_the_dashboard_shows_every_metric_an_on_call_needs() -> None:
    """Expiry headroom, the renewal schedule, the work queue, renewals and failures, their
    duration, AWS calls and verification: every family the operator defines has a panel."""
    used = {name for expr in expressions(load()) for name in metric_names(expr)}
    families = {
        names.SECRET_EXPIRY,
        names.RENEWAL_TIME,
        f"{names.RENEWALS}_total",
        f"{names.RENEWAL_DURATION}_bucket",
        f"{names.AWS_REQUESTS}_total",
        f"{names.VERIFY_REQUESTS}_total",
        names.QUEUE,
    }
    assert families <= used, sorted(families - used)
    assert {family.name for family in Metrics().registry.collect()} == {
        n.removesuffix("_total").removesuffix("_bucket") for n in families
    }, "a metric was added to metrics.py: give it a panel"
    titles = {panel["title"] for panel in all_panels(load()["panels"])}
    assert {"Soonest expiry", "Failures by reason", "Renewals due, not done"} <= titles


# -- the checker itself -------------------------------------------------------------------------

EXPIRY = "ecr_pull_secrets_secret_expiry_timestamp_seconds"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (f'min({EXPIRY}{{job=~"$job"}}) - time()', {EXPIRY}),
        # Label names in by/without/on clauses and in matchers, strings, durations, numbers and
        # Grafana variables are not metric names.
        (
            'sum by (reason, le) (increase(ecr_pull_secrets_renewals_total{result="failure",'
            ' job=~"$job"}[$__rate_interval])) > 0 unless on () vector(1)',
            {"ecr_pull_secrets_renewals_total"},
        ),
        (
            f'label_replace({EXPIRY}, "namespace", "$1", "exported_namespace", "(.+)") offset 1h30m',
            {EXPIRY},
        ),
        ("histogram_quantile(0.95, sum by (le) (rate(a_bucket[5m]))) * 1e3", {"a_bucket"}),
        ("a / ignoring (x) group_left (y) b", {"a", "b"}),
        ("count(x < time() + 3600) or vector(0)", {"x"}),
        ("bare_metric_name", {"bare_metric_name"}),
        ("sum(rate(x[5m:1m]))", {"x"}),
    ],
)
def test_the_checker_finds_metric_names_and_only_those(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "ecr_pull_secrets_made_up_total",
        'rate(ecr_pull_secrets_renewals_totl{job=~"$job"}[5m])',  # a typo
        "sum(increase(ecr_pull_secrets_renewals[1h]))",  # a counter without _total
        "histogram_quantile(0.9, rate(ecr_pull_secrets_renewal_duration_seconds[5m]))",  # no _bucket
        f"{EXPIRY} - made_up_metric",  # bare, after a real one
        "up",  # Prometheus writes it, the operator does not
    ],
)
def test_the_checker_catches_names_the_operator_does_not_export(expr: str) -> None:
    assert metric_names(expr) - Metrics().series_names()


@pytest.mark.parametrize(
    "expr",
    ["rte(x[5m])", "sum(rate(x[5m])", '{__name__="ecr_pull_secrets_renewals_total"}', "x{a='b'"],
)
def test_the_checker_refuses_what_it_could_not_check(expr: str) -> None:
    with pytest.raises(PromqlError):
        metric_names(expr)


def test_a_made_up_name_anywhere_in_the_dashboard_is_caught() -> None:
    defined = Metrics().series_names()
    for where in ("panel", "variable"):
        dashboard = copy.deepcopy(load())
        if where == "panel":
            panel = next(p for p in all_panels(dashboard["panels"]) if p.get("targets"))
            panel["targets"][0]["expr"] = (
                'sum(rate(ecr_pull_secrets_renewal_failures_total{job=~"$job"}[5m]))'
            )
            made_up = "ecr_pull_secrets_renewal_failures_total"
        else:
            job = next(v for v in dashboard["templating"]["list"] if v["name"] == "job")
            job["query"]["query"] = "label_values(ecr_pull_secrets_queue_depth, job)"
            made_up = "ecr_pull_secrets_queue_depth"
        assert undefined_names(dashboard, defined) == {made_up}, where


# -- with promtool: the PromQL parses and the queries mean what the panels say --------------------

ROOT = Path(__file__).resolve().parents[2]
SERVICE_MONITOR = 'job="eps", namespace="ops"'  # target labels a ServiceMonitor scrape adds (and pod)


def promtool() -> Path | None:
    """The promtool `make alerts-check` builds (opt-in: building it takes minutes)."""
    make = (ROOT / "hack" / "make" / "metrics.mk").read_text()
    version = re.search(r"^PROMTOOL_VERSION \?= (\S+)$", make, re.MULTILINE)
    assert version, "PROMTOOL_VERSION not found in hack/make/metrics.mk"
    path = ROOT / ".dev" / "tools" / f"promtool-{version[1]}"
    return path if path.exists() else None


def recording_rules(dashboard: dict[str, Any]) -> dict[str, str]:
    """Every panel query as a recording rule `dashboard:<panel title>_<refId>`, with Grafana's
    variables as Grafana would fill them in for "All" jobs and a 5m rate interval."""
    rules = {}
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            slug = re.sub(r"[^a-z0-9]+", "_", panel["title"].lower()).strip("_")
            expr = target["expr"].replace("$__rate_interval", "5m").replace('"$job"', '".+"')
            rules[f"dashboard:{slug}_{target['refId'].lower()}"] = expr
    return rules


def series(name: str, labels: str, values: str, pod: str = "a") -> dict[str, str]:
    return {"series": f'{name}{{{SERVICE_MONITOR}, pod="{pod}", {labels}}}', "values": values}


def test_promql_parses_and_the_queries_mean_what_the_panels_say(tmp_path: Path) -> None:
    """promtool evaluates the panels' queries on series as a ServiceMonitor scrape stores them: the
    resource's namespace moved to `exported_namespace`, and two HA replicas of which the stood-down
    one (pod b) kept an older expiry."""
    binary = promtool()
    if binary is None:
        pytest.skip("promtool is not built (make alerts-check builds it into .dev/tools)")
    rules = recording_rules(load())
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump(
            {"groups": [{"name": "dashboard", "rules": [{"record": r, "expr": e} for r, e in rules.items()]}]}
        )
    )
    expiry, renewal = names.SECRET_EXPIRY, names.RENEWAL_TIME
    team_a = 'kind="EcrPullSecret", exported_namespace="team-a", name="app"'
    team_b = 'kind="EcrPullSecret", exported_namespace="team-b", name="app"'
    inputs = [
        series(expiry, team_a, "7200x10"),
        series(expiry, team_a, "3600x10", pod="b"),
        series(expiry, team_b, "10800x10"),
        series(renewal, team_a, "60x10"),  # due at 60 s: overdue at 300 s
        series(renewal, team_b, "3000x10"),  # due within the hour
        series(f"{names.RENEWALS}_total", 'result="failure", reason="AccessDenied"', "0+1x10"),
        series(f"{names.RENEWALS}_total", 'result="success", reason="Renewed"', "0x10"),
        series(f"{names.RENEWAL_DURATION}_sum", 'result="success"', "0+1.5x10"),
        series(f"{names.RENEWAL_DURATION}_count", 'result="success"', "0+2x10"),
    ]
    table = "dashboard:resources_by_expiry_headroom_a"
    resources = [
        {"labels": f'{table}{{kind="EcrPullSecret", namespace="team-a", name="app"}}', "value": 6900},
        {"labels": f'{table}{{kind="EcrPullSecret", namespace="team-b", name="app"}}', "value": 10500},
    ]
    expected = [
        ("5m", "dashboard:soonest_expiry_a", [{"labels": "dashboard:soonest_expiry_a", "value": 6900}]),
        ("5m", "dashboard:managed_resources_a", [{"labels": "dashboard:managed_resources_a", "value": 2}]),
        (
            "5m",
            "dashboard:renewals_due_not_done_a",
            [{"labels": "dashboard:renewals_due_not_done_a", "value": 1}],
        ),
        ("5m", table, resources),
        (
            "10m",
            "dashboard:failures_by_reason_a",
            [{"labels": 'dashboard:failures_by_reason_a{reason="AccessDenied"}', "value": 5}],
        ),
        ("10m", "dashboard:renewal_duration_d", [{"labels": "dashboard:renewal_duration_d", "value": 0.75}]),
    ]
    for _, record, _ in expected:
        assert record in rules, f"no panel query {record}: {sorted(rules)}"
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": inputs,
                "promql_expr_test": [
                    {"expr": record, "eval_time": at, "exp_samples": samples}
                    for at, record, samples in expected
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))

    for command in (["check", "rules", "rules.yaml"], ["test", "rules", "tests.yaml"]):
        run = subprocess.run(
            [str(binary), *command], cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60
        )
        assert run.returncode == 0, f"promtool {' '.join(command)}:\n{run.stdout}{run.stderr}"
