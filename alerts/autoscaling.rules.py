"""Autoscaling (kube-state-metrics v2 in a cluster): an HPA pinned at its maximum, or unable to scale."""

from jatra.observability import exporters as x
from jatra.observability.promql import sel
from jatra.observability.rules import Alert, Group

JATRA = 'horizontalpodautoscaler=~"jatra-.*"'
BY = "environment, namespace, horizontalpodautoscaler"

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
        ),
    ),
]
