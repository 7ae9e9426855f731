"""What on-call engineers use: dashboards, alert rules and SLOs made from the metric catalogue; traces."""
