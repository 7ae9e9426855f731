"""Grafana dashboards with grafanalib, the way every Jatra dashboard is built.

Every panel has a description and a unit; latency panels show exemplars that link to traces; every
dashboard has the same variables (data source, environment, service or process) and lays its panels out
in rows of two. Dashboards are loaded by path from ``dashboards/*.dashboard.py`` by `jatra gen`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grafanalib import core as g

PROMETHEUS = {"type": "prometheus", "uid": "${datasource}"}
PANEL_W, PANEL_H = 12, 8


@dataclass(frozen=True, slots=True)
class Query:
    expr: str
    legend: str = ""


def q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


def _targets(
    queries: tuple[Query, ...], exemplar: bool = False, instant: bool = False
) -> list[dict[str, Any]]:
    """Prometheus query targets (plain JSON: grafanalib's Target has no exemplar option)."""
    return [
        {"expr": query.expr, "legendFormat": query.legend, "refId": chr(ord("A") + i), "exemplar": exemplar,
         "instant": instant, "range": not instant, "datasource": PROMETHEUS}
        for i, query in enumerate(queries)
    ]  # fmt: skip


def timeseries(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    exemplars: bool = False,
    stacked: bool = False,
    min_value: float | None = 0,
) -> g.TimeSeries:
    """A time series; ``exemplars`` for latency panels (each dot opens its trace)."""
    return g.TimeSeries(
        title=title,
        description=description,
        unit=unit,
        dataSource=PROMETHEUS,
        targets=_targets(queries, exemplar=exemplars),
        stacking={"mode": "normal" if stacked else "none"},
        valueMin=min_value,
        legendDisplayMode="table",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
    )


def stat(title: str, description: str, unit: str, *queries: Query, decimals: int | None = None) -> g.Stat:
    """A single number per series (SLO status, budget left, replicas)."""
    return g.Stat(
        title=title,
        description=description,
        format=unit,
        decimals=decimals,
        dataSource=PROMETHEUS,
        targets=_targets(queries, instant=True),
        reduceCalc="lastNotNull",
        graphMode="none",
    )


def _template(name: str, label: str, query: str, include_all: bool = True) -> g.Template:
    return g.Template(
        name=name,
        label=label,
        query={"query": query, "refId": f"{name}-var"},
        dataSource=PROMETHEUS,
        includeAll=include_all,
        multi=include_all,
        allValue=".*",
        refresh=2,
        default="$__all" if include_all else "",
        sort=1,
    )


def variables(*extra: g.Template) -> g.Templating:
    """Data source and environment on every dashboard, then the dashboard's own (service, process ...)."""
    datasource = g.Template(
        name="datasource", label="Data source", query="prometheus", type="datasource", default="Prometheus"
    )
    environment = _template("environment", "Environment", "label_values(jatra_build_info, environment)")
    return g.Templating(list=[datasource, environment, *extra])


def label_variable(name: str, label: str, query: str) -> g.Template:
    """A multi-value variable from ``label_values(...)``."""
    return _template(name, label, query)


def service_variable() -> g.Template:
    return _template("service", "Service", "label_values(jatra_http_requests_total, service)")


def process_variable() -> g.Template:
    return _template("process", "Process", 'label_values(up{job="jatra"}, process)')


def _laid_out(rows: list[tuple[str, list[Any]]]) -> list[Any]:
    """Each row a collapsible row panel, its panels two to a line."""
    panels: list[Any] = []
    y = 0
    for title, members in rows:
        panels.append(g.RowPanel(title=title, gridPos=g.GridPos(h=1, w=24, x=0, y=y)))
        y += 1
        for i, panel in enumerate(members):
            panel.gridPos = g.GridPos(h=PANEL_H, w=PANEL_W, x=(i % 2) * PANEL_W, y=y + (i // 2) * PANEL_H)
        panels += members
        y += ((len(members) + 1) // 2) * PANEL_H
    return panels


def dashboard(
    uid: str, title: str, description: str, rows: list[tuple[str, list[Any]]], *extra_variables: g.Template
) -> g.Dashboard:
    return g.Dashboard(
        uid=uid,
        title=title,
        description=description,
        tags=["jatra", "generated"],
        timezone="browser",
        refresh="30s",
        time=g.Time("now-1h", "now"),
        templating=variables(*extra_variables),
        panels=_laid_out(rows),
        links=[g.DashboardLink(asDropdown=True, tags=["jatra"], title="Jatra dashboards", type="dashboards")],
    ).auto_panel_ids()
