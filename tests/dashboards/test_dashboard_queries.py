"""Every PromQL expression of the Grafana dashboards runs against the live Prometheus, and returns data where it must.

Loads roles/grafana/files/dashboards/*.json, replaces Grafana's template variables with values Prometheus
understands ($__rate_interval -> 1m, $color -> .*, ...), and runs each panel target (and each query
variable) as an instant query through /api/v1/query. A query that errors fails, on every dashboard. Then:

- ragops traffic (ragops-traffic.json, provisioned for any app): a query on nginx's ragops_lb_* metrics must
  return a finite value (its series exist at 0 before any request, so mere presence proves nothing, while a
  ratio or a quantile is NaN until nginx measured traffic to a color); the other queries (targets, nginx
  exporter, host) must return data. Besides, the requests this test sends must show in nginx's counter;
- RAG service (rag-service.json, provisioned only when the app exports the reference service's rag_* metrics):
  its queries must return data when RAGOPS_APP_REFERENCE is true (the default, as the default stack runs the
  reference service); with RAGOPS_APP_REFERENCE=false they only must not error.

    RAGOPS_PROMETHEUS_URL=http://127.0.0.1:9090 pytest tests/dashboards

Run it once the whole stack is up. Before querying, and again while a query waits for data, it sends requests
through the public entry point (RAGOPS_PUBLIC_URL, default http://127.0.0.1:8080): /api/query questions to the
reference service, or GET RAGOPS_TRAFFIC_PATH (default /health) to another app; nginx must pass each to a color
(X-Ragops-Color). Each query is polled until it has data or RAGOPS_DASHBOARD_WAIT seconds (default 150) pass,
because rates need two scrapes inside their window.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

import pytest
import requests

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "roles" / "grafana" / "files" / "dashboards"
PROMETHEUS_URL = os.environ.get("RAGOPS_PROMETHEUS_URL", "http://127.0.0.1:9090").rstrip("/")
PUBLIC_URL = os.environ.get("RAGOPS_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/")
TIMEOUT = float(os.environ.get("RAGOPS_PROMETHEUS_TIMEOUT", "10"))
WAIT = float(os.environ.get("RAGOPS_DASHBOARD_WAIT", "150"))
APP_REFERENCE = os.environ.get("RAGOPS_APP_REFERENCE", "true").strip().lower() in ("1", "true", "yes")
TRAFFIC_PATH = os.environ.get("RAGOPS_TRAFFIC_PATH", "/health")
GRAFANA_DEFAULTS = DASHBOARD_DIR.parents[1] / "defaults" / "main.yml"

# Provisioned only when the app exports the reference service's metrics (grafana_app_reference_dashboards).
REFERENCE_DASHBOARDS = {"rag-service"}
# What a query must return: a finite value (nginx's traffic metrics), any data, or data only with the reference app.
TRAFFIC, DATA, REFERENCE = "traffic", "data", "reference"

# Grafana's built-in variables, as Grafana would expand them for a 1-hour dashboard.
BUILTIN_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
# Dashboard variables (multi-value or "All"): a regex that matches every value.
DASHBOARD_VARIABLE_VALUE = ".*"

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)\s*$")


def substitute(expr: str) -> str:
    """Replace Grafana variables ($name, ${name}, ${name:fmt}, [[name]]) by values Prometheus accepts."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return BUILTIN_VARIABLES.get(name, DASHBOARD_VARIABLE_VALUE)

    return _VARIABLE.sub(replace, expr)


def _panels(panels: list[dict]) -> list[dict]:
    found = []
    for panel in panels:
        found.append(panel)
        found.extend(_panels(panel.get("panels", [])))  # collapsed rows keep their panels inside
    return found


def _kind(dashboard: str, expr: str) -> str:
    if dashboard in REFERENCE_DASHBOARDS:
        return REFERENCE
    return TRAFFIC if "ragops_lb_" in expr else DATA


def collect_queries() -> list:
    params = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in _panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("hide"):
                    continue
                ident = f"{path.stem}: {panel.get('title', panel.get('id'))} [{target.get('refId', '?')}]"
                expr = target.get("expr", "")
                params.append(pytest.param(expr, _kind(path.stem, expr), id=ident))
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            query = variable.get("query")
            query = query.get("query", "") if isinstance(query, dict) else query or ""
            match = _LABEL_VALUES.match(substitute(query))
            if match:
                # label_values(selector, label) has values when the selector has series carrying the label.
                selector = match["selector"] or f'{{{match["label"]}=~".+"}}'
                expr = f"count by ({match['label']}) ({selector})"
            else:
                expr = query
            ident = f"{path.stem}: variable ${variable.get('name')}"
            params.append(pytest.param(expr, _kind(path.stem, expr), id=ident))
    return params


QUERIES = collect_queries()


def test_dashboards_have_queries() -> None:
    assert QUERIES, f"no dashboard queries found under {DASHBOARD_DIR}"
    stems = {path.stem for path in DASHBOARD_DIR.glob("*.json")}
    assert REFERENCE_DASHBOARDS < stems, f"expected the reference dashboards {REFERENCE_DASHBOARDS} and more in {stems}"
    kinds = {param.values[1] for param in QUERIES}
    assert {TRAFFIC, REFERENCE} <= kinds, kinds


def test_dashboards_are_the_ones_grafana_provisions() -> None:
    """The dashboard files are the ones the grafana role's defaults name, the reference one among them."""
    named = set(re.findall(r"([\w.-]+)\.json", GRAFANA_DEFAULTS.read_text(encoding="utf-8")))
    assert named == {path.stem for path in DASHBOARD_DIR.glob("*.json")}, named
    assert REFERENCE_DASHBOARDS <= named


def test_only_the_reference_dashboards_need_the_app_metrics() -> None:
    """The dashboards provisioned for any app read no metric of the reference service nor its job."""
    offenders = [
        param.id
        for param in QUERIES
        if param.values[1] != REFERENCE and re.search(r'\brag_\w+|job="rag-app"|\bprocess_\w+', param.values[0])
    ]
    assert offenders == []


def _send_traffic(session: requests.Session, count: int) -> None:
    """Requests through nginx that it passes to a color, so that ragops_lb_* counts them."""
    for i in range(count):
        if APP_REFERENCE:
            answer = session.post(
                f"{PUBLIC_URL}/api/query",
                json={"query": f"What does the Business plan cost? ({i})", "client_id": "dashboard-test"},
                timeout=TIMEOUT,
            )
            assert answer.status_code == 200, f"query through {PUBLIC_URL} failed: {answer.status_code} {answer.text}"
        else:
            answer = session.get(f"{PUBLIC_URL}{TRAFFIC_PATH}", timeout=TIMEOUT)
        assert answer.headers.get("X-Ragops-Color"), (
            f"nginx at {PUBLIC_URL} answered {answer.request.method} {answer.request.path_url} itself "
            f"({answer.status_code}, no X-Ragops-Color): set RAGOPS_TRAFFIC_PATH to a route of the app"
        )


@pytest.fixture(scope="session")
def prometheus() -> requests.Session:
    session = requests.Session()
    try:
        ready = session.get(f"{PROMETHEUS_URL}/-/ready", timeout=TIMEOUT)
    except requests.RequestException as error:
        pytest.fail(f"Prometheus is not reachable at {PROMETHEUS_URL} (RAGOPS_PROMETHEUS_URL): {error}")
    assert ready.status_code == 200, f"Prometheus at {PROMETHEUS_URL} is not ready: {ready.status_code} {ready.text}"
    _send_traffic(session, 20)
    return session


def _query(session: requests.Session, query: str) -> dict:
    response = session.get(f"{PROMETHEUS_URL}/api/v1/query", params={"query": query}, timeout=TIMEOUT)
    body = response.json()
    assert response.status_code == 200 and body.get("status") == "success", (
        f"query failed ({response.status_code}): {body.get('errorType')}: {body.get('error')}\n{query}"
    )
    return body["data"]


def test_nginx_counts_the_requests_it_passes_to_a_color(prometheus: requests.Session) -> None:
    query = 'sum(ragops_lb_requests_total{job="ragops-lb", color!="none"})'
    before = _values(_query(prometheus, query))
    assert before, f"Prometheus has no ragops_lb_requests_total from nginx (job ragops-lb):\n{query}"
    _send_traffic(prometheus, 10)
    deadline = time.monotonic() + WAIT
    while True:
        now = _values(_query(prometheus, query))
        if float(now[0]) - float(before[0]) >= 10 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert float(now[0]) - float(before[0]) >= 10, f"nginx counted {float(now[0]) - float(before[0]):g} of 10 requests"


def test_substitute_replaces_grafana_variables() -> None:
    expr = 'rate(x{color=~"$color", a=~"${color:regex}", b=~"[[color]]"}[$__rate_interval])'
    assert substitute(expr) == 'rate(x{color=~".*", a=~".*", b=~".*"}[1m])'


def _values(data: dict) -> list:
    if data["resultType"] == "scalar":
        return [data["result"][1]]
    if data["resultType"] == "string":
        return []
    return [sample["value"][1] for sample in data["result"]]


def _finite(values: list) -> bool:
    return any(math.isfinite(float(value)) for value in values)


def _satisfied(kind: str, values: list) -> bool:
    if kind == TRAFFIC:
        return _finite(values)
    if kind == REFERENCE and not APP_REFERENCE:
        return True
    return bool(values)


def test_finite_values_are_told_apart() -> None:
    assert _finite(["NaN", "0"]) and not _finite(["NaN", "+Inf"]) and not _finite([])
    assert not _satisfied(TRAFFIC, ["NaN"]) and _satisfied(DATA, ["NaN"]) and not _satisfied(DATA, [])


@pytest.mark.parametrize(("expr", "kind"), QUERIES)
def test_dashboard_query_returns_data(prometheus: requests.Session, expr: str, kind: str) -> None:
    assert expr.strip(), "panel target without an expression"
    query = substitute(expr)
    deadline = time.monotonic() + WAIT
    while True:
        values = _values(_query(prometheus, query))
        if _satisfied(kind, values) or time.monotonic() > deadline:
            break
        # Rates look back one interval only: keep traffic flowing while this query waits for it.
        _send_traffic(prometheus, 3)
        time.sleep(2)
    if kind == TRAFFIC:
        assert _finite(values), f"no finite value after {WAIT:.0f} s (nginx measured no traffic?): {values}\n{query}"
    else:
        assert _satisfied(kind, values), f"no data after {WAIT:.0f} s for:\n{query}"
