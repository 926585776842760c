"""configs/prometheus/alerts.yml and configs/grafana/authly.json (issue 11, item 4): both
load, Prometheus loads the rules, and every metric their expressions name is exported by
a real app's /metrics, with the type the suffix implies and the labels the selectors use."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from authly.factory import create_app
from tests.conftest import login
from tests.supervisor_helpers import metrics_text, steady_redis_settings

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
ALERTS = CONFIGS / "prometheus" / "alerts.yml"
PROMETHEUS = CONFIGS / "prometheus" / "prometheus.yml"
PROD = CONFIGS / "docker-compose.prod.yml"
DASHBOARD = CONFIGS / "grafana" / "authly.json"

METRIC = re.compile(r"\bauthly_[a-z_]+")
SELECTOR = re.compile(r"\b(authly_[a-z_]+)\{([^}]*)\}")
LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
GROUPING = re.compile(r"\b(?:by|on)\s*\(([^)]*)\)")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
TARGET_LABELS = {"job", "instance"}  # added by Prometheus to every scraped sample
GUIDE_ALERTS = {
    "AuthlyRedisPoolNearlyFull": ["authly_redis_connections_in_use", "authly_redis_pool_size"],
    "AuthlyRedisSlow": ["authly_redis_operation_duration_seconds_bucket"],
    "AuthlyRedisErrorRate": ["authly_redis_errors_total", "authly_redis_operations_total"],
    "AuthlyRedisDown": ["authly_redis_up"],
    "AuthlyFeatureOnFallback": ["authly_backend_active"],
}


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def dashboard_panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # panels inside collapsed rows
    return panels


def expressions() -> dict[str, str]:
    """Every PromQL expression in both files, by where it is."""
    found = {f"alert {rule['alert']}": rule["expr"] for rule in alert_rules()}
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            found[f"variable {variable['name']}"] = variable["definition"]
    return found


def exposed_as(name: str) -> tuple[str, str]:
    """(family as /metrics declares it in ``# TYPE``, type) for a name used in PromQL."""
    if name.endswith("_total"):
        return name, "counter"
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix), "histogram"
    return name, "gauge"


def named_metrics() -> dict[str, set[str]]:
    """Each metric name the expressions use -> the label names their selectors match on."""
    names: dict[str, set[str]] = {}
    for expr in expressions().values():
        for name in METRIC.findall(expr):
            names.setdefault(name, set())
        for name, matchers in SELECTOR.findall(expr):
            names[name] |= set(LABEL.findall(matchers))
    return names


# --- the files themselves ----------------------------------------------------------------


def test_alert_rules_cover_the_guide_thresholds():
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(GUIDE_ALERTS) <= set(rules)
    for name, metrics in GUIDE_ALERTS.items():
        for metric in metrics:
            assert metric in rules[name]["expr"], (name, metric)
    assert "> 0.8" in rules["AuthlyRedisPoolNearlyFull"]["expr"]  # < 80 % of the pool
    assert "histogram_quantile(0.99" in rules["AuthlyRedisSlow"]["expr"]
    assert "> 0.005" in rules["AuthlyRedisSlow"]["expr"]  # < 5 ms
    assert "> 0.001" in rules["AuthlyRedisErrorRate"]["expr"]  # < 0.1 %
    # Sessions fall back to "database", the other features to "memory": both count.
    assert 'backend!="redis"' in rules["AuthlyFeatureOnFallback"]["expr"]
    for rule in rules.values():
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


def test_prometheus_loads_the_rules_in_prod():
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    assert config["rule_files"] == ["alerts.yml"]  # relative to prometheus.yml
    assert (PROMETHEUS.parent / "alerts.yml").resolve() == ALERTS
    compose = yaml.safe_load(PROD.read_text(encoding="utf-8"))
    volumes = compose["services"]["prometheus"]["volumes"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in volumes}
    config_in_container = Path("/etc/prometheus/prometheus.yml")
    rules_in_container = str(config_in_container.parent / "alerts.yml")
    assert (CONFIGS / mounts[rules_in_container]).resolve() == ALERTS


def test_dashboard_is_a_grafana_json_model():
    board = dashboard()
    assert board["title"]
    assert board["uid"] == "authly"
    assert isinstance(board["schemaVersion"], int)
    ids = [panel["id"] for panel in dashboard_panels()]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard_panels():
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    titles = " ".join(p["title"].lower() for p in dashboard_panels())
    for topic in (
        "backend",
        "switches",
        "rate-limit",
        "hit ratio",
        "redis latency",
        "http latency by route",
    ):
        assert topic in titles, topic


@pytest.mark.parametrize(("where", "expr"), sorted(expressions().items()))
def test_expressions_are_balanced(where, expr):
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    in_string = False
    for char in expr:
        if char == '"':
            in_string = not in_string
        elif in_string:
            continue
        elif char in "([{":
            stack.append(char)
        elif char in pairs:
            assert stack, where
            assert stack.pop() == pairs[char], where
    assert not stack, where
    assert not in_string, where


# --- every metric they name is in /metrics -------------------------------------------------


def check_against(text: str, *, samples_required: bool) -> None:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {s.name: s for f in families.values() for s in f.samples}
    labels: dict[str, set[str]] = {}
    for family in families.values():
        for s in family.samples:
            labels.setdefault(s.name, set()).update(s.labels)
    for name, selector_labels in sorted(named_metrics().items()):
        declared, kind = exposed_as(name)
        assert f"# TYPE {declared} {kind}\n" in text, f"{name}: no {kind} {declared} in /metrics"
        if samples_required:
            assert name in samples, f"{name}: declared, but no sample in /metrics"
            missing = selector_labels - TARGET_LABELS - labels[name]
            assert not missing, f"{name} has no label {missing}"


def check_grouping(text: str) -> None:
    """Each label an expression groups or matches on (``by (...)``, ``on (...)``) is a
    label of at least one of the metrics that expression names."""
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels.setdefault(s.name, set()).update(s.labels)
    for where, expr in expressions().items():
        known = set().union(*(labels.get(name, set()) for name in METRIC.findall(expr)))
        for group in GROUPING.findall(expr):
            for label in {g.strip() for g in group.split(",")} - TARGET_LABELS - {"le"}:
                assert label in known, f"{where}: no metric it names has label {label!r}"


async def test_every_metric_they_name_is_declared_without_redis(client):
    check_against(await metrics_text(client), samples_required=False)


@pytest.mark.redis
async def test_every_metric_they_name_is_exported_with_redis(tmp_path, redis_server):
    app = create_app(steady_redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        await login(client)
        await client.get("/.well-known/jwks.json")
        text = await metrics_text(client)
    check_against(text, samples_required=True)
    check_grouping(text)
