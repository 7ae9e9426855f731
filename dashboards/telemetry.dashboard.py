"""The telemetry pipeline: what every process logs and traces, what reaches its destination, what is lost."""

from jatra.observability import exporters as x
from jatra.observability.panels import dashboard, process_variable, q, timeseries
from jatra.observability.promql import ENV, quantile, rate, sel, sum_by
from jatra.telemetry import catalogue as c

PROC = 'process=~"$process"'

dashboard = dashboard(
    "jatra-telemetry",
    "Jatra / Telemetry pipeline",
    "Log events and spans produced, exported, failed and dropped per process; logs shipped to "
    "Elasticsearch; the scrapes themselves.",
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
            "Log shipping to Elasticsearch",
            [
                timeseries(
                    "Log events shipped per second by outcome",
                    "read: lines the shipper took from the files; shipped: indexed; duplicate: already "
                    "indexed (a resend after a restart, harmless); retried: Elasticsearch answered 429 or "
                    "failed and the events were sent again; rejected: refused for good and set aside with "
                    "the reason (state dir, logship/rejected).",
                    "ops",
                    q(sum_by(rate(c.LOGSHIP_EVENTS, ENV), "outcome"), "{{outcome}}"),
                ),
                timeseries(
                    "Shipping lag",
                    "Age of the oldest event not yet in Elasticsearch (s): Kibana is this far behind. It "
                    "grows while Elasticsearch is down; nothing is lost, the files are the buffer.",
                    "s",
                    q(f"max({sel(c.LOGSHIP_LAG_SECONDS, ENV)})", "lag"),
                ),
                timeseries(
                    "Bytes waiting to be shipped",
                    "Bytes written to the log files and not yet shipped.",
                    "bytes",
                    q(f"max({sel(c.LOGSHIP_LAG_BYTES, ENV)})", "unshipped"),
                ),
                timeseries(
                    "Bulk request latency",
                    "Time of one bulk request to Elasticsearch, retries included (p50, p99).",
                    "s",
                    q(quantile(0.5, c.LOGSHIP_BULK_DURATION, ENV), "p50"),
                    q(quantile(0.99, c.LOGSHIP_BULK_DURATION, ENV), "p99"),
                    exemplars=True,
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
