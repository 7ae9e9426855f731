"""Autoscaling: every HorizontalPodAutoscaler's replicas against its range, CPU against its target.

The series come from kube-state-metrics v2 in a cluster (Helm); nothing here runs one, so these panels
are checked against promtool series (alerts/tests/autoscaling-panels.test.yml), not live data.
"""

from jatra.observability import exporters as x
from jatra.observability.panels import dashboard, label_variable, q, stat, timeseries
from jatra.observability.promql import sel, sum_by
from jatra.telemetry import catalogue as c

HPA = 'namespace=~"$namespace",horizontalpodautoscaler=~"jatra-.*"'
BY = "namespace, horizontalpodautoscaler"  # one HPA name may exist in several namespaces
NAME = "{{namespace}}/{{horizontalpodautoscaler}}"
CPU = 'metric_name="cpu",metric_target_type="utilization"'

dashboard = dashboard(
    "jatra-autoscaling",
    "Jatra / Autoscaling",
    "Replicas of each service's HPA (current, desired, min, max) and CPU utilisation against the target; "
    "restarts of Jatra processes.",
    [
        (
            "HorizontalPodAutoscalers",
            [
                timeseries(
                    "Replicas: current and desired",
                    "Pods running and pods the HPA wants, per deployment: apart for long means pods cannot "
                    "be "
                    "scheduled or started.",
                    "short",
                    q(sum_by(sel(x.HPA_CURRENT, HPA), BY), "current " + NAME),
                    q(sum_by(sel(x.HPA_DESIRED, HPA), BY), "desired " + NAME),
                ),
                stat(
                    "Range (min - max)",
                    "The replica range each HPA may move in; at max for long means the service needs more.",
                    "short",
                    q(sum_by(sel(x.HPA_MIN, HPA), BY), "min " + NAME),
                    q(sum_by(sel(x.HPA_MAX, HPA), BY), "max " + NAME),
                ),
                timeseries(
                    "CPU utilisation against target",
                    "Average CPU utilisation of each deployment's pods (% of requests) and the HPA's target.",
                    "percent",
                    q(sum_by(sel(x.HPA_TARGET_NOW, HPA, CPU), BY), "now " + NAME),
                    q(sum_by(sel(x.HPA_TARGET, HPA, CPU), BY), "target " + NAME),
                ),
                timeseries(
                    "Share of max replicas in use",
                    "current / max per HPA: 100 % means the HPA cannot add pods any more.",
                    "percentunit",
                    q(f"{sum_by(sel(x.HPA_CURRENT, HPA), BY)} / {sum_by(sel(x.HPA_MAX, HPA), BY)}", NAME),
                ),
            ],
        ),
        (
            "Restarts",
            [
                timeseries(
                    "Process restarts (last hour)",
                    "Jatra processes brought back after they died: by supervisord locally (this series), by "
                    "the kubelet in a cluster (kube_pod_container_status_restarts_total).",
                    "short",
                    q(sum_by(f"increase({sel(c.PROCESS_RESTARTS)}[1h])", "process"), "{{process}}"),
                ),
            ],
        ),
    ],
    label_variable("namespace", "Namespace", f"label_values({x.HPA_MAX.name}, namespace)"),
)
