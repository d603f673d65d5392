"""Every PromQL expression of the Grafana dashboards returns data from the live Prometheus.

Loads roles/grafana/files/dashboards/*.json, replaces Grafana's template variables with values Prometheus
understands ($__rate_interval -> 1m, $color -> .*, ...), and runs each panel target (and each query
variable) as an instant query through /api/v1/query. A query that errors or returns an empty result fails.

    RAGOPS_PROMETHEUS_URL=http://127.0.0.1:9090 pytest tests/dashboards

Run it once the whole stack is up. Before querying it sends a few /api/query requests through the public
entry point (RAGOPS_PUBLIC_URL, default http://127.0.0.1:8080), since the latency, error and degraded-ratio
panels are built on /api/query series; each query is then polled until it has data or
RAGOPS_DASHBOARD_WAIT seconds (default 150) pass, because rates need two scrapes inside their window.
"""

from __future__ import annotations

import json
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


def collect_queries() -> list:
    params = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in _panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("hide"):
                    continue
                ident = f"{path.stem}: {panel.get('title', panel.get('id'))} [{target.get('refId', '?')}]"
                params.append(pytest.param(target.get("expr", ""), id=ident))
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
            params.append(pytest.param(expr, id=f"{path.stem}: variable ${variable.get('name')}"))
    return params


QUERIES = collect_queries()


def test_dashboards_have_queries() -> None:
    assert QUERIES, f"no dashboard queries found under {DASHBOARD_DIR}"


@pytest.fixture(scope="session")
def prometheus() -> requests.Session:
    session = requests.Session()
    try:
        ready = session.get(f"{PROMETHEUS_URL}/-/ready", timeout=TIMEOUT)
    except requests.RequestException as error:
        pytest.fail(f"Prometheus is not reachable at {PROMETHEUS_URL} (RAGOPS_PROMETHEUS_URL): {error}")
    assert ready.status_code == 200, f"Prometheus at {PROMETHEUS_URL} is not ready: {ready.status_code} {ready.text}"
    for i in range(20):
        answer = session.post(
            f"{PUBLIC_URL}/api/query",
            json={"query": f"What does the Business plan cost? ({i})", "client_id": "dashboard-test"},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, f"query through {PUBLIC_URL} failed: {answer.status_code} {answer.text}"
    return session


def test_substitute_replaces_grafana_variables() -> None:
    expr = 'rate(x{color=~"$color", a=~"${color:regex}", b=~"[[color]]"}[$__rate_interval])'
    assert substitute(expr) == 'rate(x{color=~".*", a=~".*", b=~".*"}[1m])'


@pytest.mark.parametrize("expr", QUERIES)
def test_dashboard_query_returns_data(prometheus: requests.Session, expr: str) -> None:
    assert expr.strip(), "panel target without an expression"
    query = substitute(expr)
    deadline = time.monotonic() + WAIT
    while True:
        response = prometheus.get(f"{PROMETHEUS_URL}/api/v1/query", params={"query": query}, timeout=TIMEOUT)
        body = response.json()
        assert response.status_code == 200 and body.get("status") == "success", (
            f"query failed ({response.status_code}): {body.get('errorType')}: {body.get('error')}\n{query}"
        )
        result = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            result = [result]
        if result or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert result, f"no data after {WAIT:.0f} s for:\n{query}"
