"""structlog emitting ECS JSON on stdout, with trace context; standard-library logging routed through it."""

from __future__ import annotations

import logging
from typing import Any

import structlog
from litestar.logging.config import LoggingConfig, StructLoggingConfig
from litestar.plugins.structlog import StructlogConfig
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from jatra import __version__
from jatra.settings import Settings
from jatra.telemetry import catalogue as c
from jatra.telemetry import uncaught
from jatra.telemetry.access_log import AccessLog, AccessLogConfig, AccessLogMiddleware
from jatra.telemetry.ecs_json import render_ecs
from jatra.telemetry.log_sink import LineFileHandler, LineStreamHandler, RootHandlersLogger
from jatra.telemetry.metrics import counter
from jatra.telemetry.redact import redact

LOG_EVENTS = counter(c.LOG_EVENTS)
LEVELS = frozenset({"debug", "info", "warning", "error", "critical", "exception"})
ACCESS_LOGGER = "jatra.http"


def _add_logger_name(logger: WrappedLogger, _: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    name = record.name if record is not None else getattr(logger, "name", None)
    if name:
        event_dict["log.logger"] = name
    return event_dict


def _add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace.id"] = format(ctx.trace_id, "032x")
        event_dict["span.id"] = format(ctx.span_id, "016x")
    return event_dict


def _ecs_error(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # ECS `error` is an object; a plain `error="..."` field becomes error.message instead of clashing.
    if isinstance(event_dict.get("error"), str):
        event_dict["error.message"] = event_dict.pop("error")
    return event_dict


class _ServiceFields:
    """ECS service fields; ``event.dataset`` lets Kibana split the logs of each process."""

    def __init__(self, service_name: str, environment: str) -> None:
        self.fields = {
            "service.name": f"jatra-{service_name}",
            "service.version": __version__,
            "service.environment": environment,
            "event.dataset": f"jatra.{service_name}",
        }

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        for key, value in self.fields.items():
            event_dict.setdefault(key, value)
        return event_dict


def _count(_: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Count the event by level (``jatra_telemetry_log_events_total``): what this process logs."""
    record = event_dict.get("_record")
    level = record.levelname.lower() if record is not None else method
    LOG_EVENTS.labels(level if level in LEVELS else "other").inc()
    return event_dict


def _shared_processors(service_name: str, environment: str) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_logger_name,
        _add_trace_context,
        _ServiceFields(service_name, environment),
        _ecs_error,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact,  # it also sees the rendered tracebacks
        _count,
    ]


def configure_logging(settings: Settings, service_name: str) -> StructLoggingConfig:
    """Configure structlog and the root logger; return the same setup for Litestar's structlog plugin.

    structlog events are rendered to their ECS line by structlog itself and written straight to the root
    logger's handlers (no LogRecord, no formatter: ~125 -> ~30 µs an event, `make bench-logs`);
    standard-library records (uvicorn, SQLAlchemy, ...) go through the same processors and the same
    renderer in the handlers' formatter. Both end as identical ECS JSON lines on the same streams.
    """
    shared = _shared_processors(service_name, settings.environment)
    level = logging.getLevelName(settings.log_level.upper())
    processors: list[Processor] = [*shared, render_ecs]
    logger_factory = RootHandlersLogger
    wrapper = structlog.make_filtering_bound_logger(level)
    formatter = {
        "()": structlog.stdlib.ProcessorFormatter,
        "foreign_pre_chain": shared,
        "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, render_ecs],
    }
    handlers: dict[str, dict[str, Any]] = {
        "stdout": {"()": LineStreamHandler, "stream": "ext://sys.stdout", "formatter": "ecs"}
    }
    if settings.log_file:
        handlers["file"] = {
            "()": LineFileHandler,
            "filename": settings.log_file,
            "maxBytes": settings.log_file_max_bytes,
            "backupCount": 5,
            "formatter": "ecs",
        }
    quiet = {"level": "WARNING", "handlers": list(handlers), "propagate": False}
    stdlib_config = LoggingConfig(
        formatters={"ecs": formatter},
        handlers=handlers,
        root={"handlers": list(handlers), "level": level},
        loggers={"uvicorn.access": quiet, "aiormq": quiet, "aio_pika": quiet},
        disable_existing_loggers=False,
        configure_root_logger=True,
        log_exceptions="never",
    )
    stdlib_config.configure()
    structlog.configure(
        processors=processors,
        logger_factory=logger_factory,
        wrapper_class=wrapper,
        cache_logger_on_first_use=True,
    )
    uncaught.install()
    return StructLoggingConfig(
        processors=processors,
        logger_factory=logger_factory,
        wrapper_class=wrapper,
        standard_lib_logging_config=stdlib_config,
        log_exceptions="never",
        pretty_print_tty=False,
    )


def request_logging_config(settings: Settings, process: str) -> StructlogConfig:
    """Litestar's structlog plugin: one ECS access event per request, no bodies, headers or cookies."""
    level = logging.getLevelName(settings.log_level.upper())
    service = _ServiceFields(process, settings.environment).fields
    return StructlogConfig(
        structlog_logging_config=configure_logging(settings, process),
        middleware_logging_config=AccessLogConfig(
            response_log_message="http.request",
            exclude=["^/metrics$", "^/health$", "^/ready$"],
            logger_name=ACCESS_LOGGER,
            middleware_class=AccessLogMiddleware,
            access=AccessLog(service, ACCESS_LOGGER, level, LOG_EVENTS.labels("info")),
        ),
        enable_middleware_logging=settings.telemetry_enabled,
    )
