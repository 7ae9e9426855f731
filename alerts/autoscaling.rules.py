"""Capacity: an HPA pinned at its maximum or unable to scale (kube-state-metrics v2 in a cluster), and the
API refusing requests because it has more in flight than it may (admission control, anywhere)."""

from jatra.observability import exporters as x
from jatra.observability.promql import rate, sel, sum_by
from jatra.observability.rules import Alert, Group
from jatra.telemetry import catalogue as c

JATRA = 'horizontalpodautoscaler=~"jatra-.*"'
BY = "environment, namespace, horizontalpodautoscaler"
REFUSED = sum_by(rate(c.ADMISSION_SHED, window="5m"), "environment")
ANSWERED = sum_by(rate(c.HTTP_REQUESTS, window="5m"), "environment")

groups = [
    Group(
        "jatra-autoscaling",
        (
            Alert(
                "HPAMaxedOut",
                f"max by ({BY}) ({sel(x.HPA_CURRENT, JATRA)}) >= max by ({BY}) ({sel(x.HPA_MAX, JATRA)})",
                "15m",
                "ticket",
                "{{ $labels.horizontalpodautoscaler }} has run at its maximum for 15 minutes",
                "The HPA {{ $labels.horizontalpodautoscaler }} in {{ $labels.namespace }} has been at its "
                "maximum replicas ({{ $value }}) for 15 minutes: the service wants more pods than it may "
                "have. Raise the maximum or find what makes each pod busier.",
                "jatra-autoscaling",
            ),
            Alert(
                "HPAReplicasMismatch",
                f"max by ({BY}) ({sel(x.HPA_DESIRED, JATRA)}) != max by ({BY}) ({sel(x.HPA_CURRENT, JATRA)})",
                "15m",
                "ticket",
                "{{ $labels.horizontalpodautoscaler }} cannot reach its desired replicas",
                "The HPA {{ $labels.horizontalpodautoscaler }} in {{ $labels.namespace }} has wanted a "
                "different number of pods than run for 15 minutes: pods cannot be scheduled or do not "
                "become ready.",
                "jatra-autoscaling",
            ),
            Alert(
                "AdmissionShedding",
                f"{REFUSED} / clamp_min({ANSWERED}, 1e-9) > 0.05",
                "10m",
                "ticket",
                "The API has refused {{ $value | humanizePercentage }} of requests for 10 minutes",
                "API processes in {{ $labels.environment }} are at their limit of requests in flight and "
                "have answered {{ $value | humanizePercentage }} of requests with 503 + Retry-After for "
                "10 minutes, new trips first: more passengers arrive than the API can serve. Add "
                "capacity, or find what made each request slower.",
                "jatra-overview",
            ),
        ),
    ),
]
