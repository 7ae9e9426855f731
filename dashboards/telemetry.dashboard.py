"""The telemetry pipeline: what every process logs and traces, what reaches its destination, what is lost."""

from jatra.observability import exporters as x
from jatra.observability.panels import dashboard, process_variable, q, timeseries
from jatra.observability.promql import ENV, rate, sel, sum_by
from jatra.telemetry import catalogue as c

PROC = 'process=~"$process"'

dashboard = dashboard(
    "jatra-telemetry",
    "Jatra / Telemetry pipeline",
    "Log events and spans produced, exported, failed and dropped per process; the scrapes themselves.",
    [
        (
            "Logs",
            [
                timeseries(
                    "Log events per second by process",
                    "ECS events each process wrote (after the personal-data redaction), all levels.",
                    "ops",
                    q(sum_by(rate(c.LOG_EVENTS, ENV, PROC), "process"), "{{process}}"),
                    stacked=True,
                ),
                timeseries(
                    "Warnings and errors per second",
                    "Events at warning level or above, per process and level.",
                    "ops",
                    q(
                        sum_by(
                            rate(c.LOG_EVENTS, ENV, PROC, 'level=~"warning|error|critical|exception"'),
                            "process",
                            "level",
                        ),
                        "{{process}} {{level}}",
                    ),
                ),
            ],
        ),
        (
            "Traces",
            [
                timeseries(
                    "Spans per second by outcome",
                    "ended: sampled spans produced; exported: accepted by an exporter (the OTLP collector, "
                    "or "
                    "the local trace files); failed: refused or unreachable; dropped: the export queue was "
                    "full.",
                    "ops",
                    q(sum_by(rate(c.SPANS, ENV, PROC), "outcome"), "{{outcome}}"),
                ),
                timeseries(
                    "Spans lost per second by process",
                    "Spans that never reached a destination (failed or dropped): 0 when the pipeline is "
                    "healthy.",
                    "ops",
                    q(
                        sum_by(rate(c.SPANS, ENV, PROC, 'outcome=~"failed|dropped"'), "process", "outcome"),
                        "{{process}} {{outcome}}",
                    ),
                ),
            ],
        ),
        (
            "Metrics",
            [
                timeseries(
                    "Scrape duration by job",
                    "How long Prometheus took to scrape each job's targets (s).",
                    "s",
                    q(f"max by (job) ({sel(x.SCRAPE_DURATION, ENV)})", "{{job}}"),
                ),
                timeseries(
                    "Targets down",
                    "Targets Prometheus could not scrape, per job: their panels and alerts go blind.",
                    "short",
                    q(f"count by (job) ({sel(x.UP, ENV)} == 0) or vector(0)", "{{job}}"),
                ),
            ],
        ),
    ],
    process_variable(),
)
