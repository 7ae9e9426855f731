"""The ingress-nginx controller's settings for a cluster: the text of ``helm/ingress-nginx-values.yaml``.

The chart's Ingresses (``helm/jatra/templates/ingress.yaml``) are served by the cluster's ingress-nginx
controller, which the chart does not install. Its access log is the controller's own: by default the
client's address and the request line as sent, path and query with them, written to the controller's
stdout, where the cluster's log agent collects it with every other container's. A phone number or an
e-mail address in a URL would be kept for as long as those logs are.

These are values for the ingress-nginx chart (``helm upgrade --install ingress-nginx
ingress-nginx/ingress-nginx -f helm/ingress-nginx-values.yaml``). They set the controller's
``log-format-upstream`` to the local gateway's ECS line (:data:`jatra.gateway.nginx.LOG_FORMAT`), with its
maps in ``http-snippet``: the path, query and request id logged as "[redacted]" when one of the redaction's
patterns matches (:data:`jatra.gateway.nginx.PERSONAL`), the trace id taken from traceparent, and no client
address. Its error log is set to ``crit``, as the local gateway's
(:data:`jatra.gateway.nginx.ERROR_LOG_LEVEL`): nginx's lines about a request carry the client's address and
the request line, and cannot be formatted; the controller's default, ``notice``, writes them.
``$service_name`` is the controller's: the Kubernetes Service a request went to. The controller's
ConfigMap applies to every Ingress it serves, so a cluster that shares one controller with other
applications gets this format for all of them. A test runs Debian's nginx on the snippet and the format,
with requests carrying personal data. ``jatra gen`` writes the file; a test checks it is current.
"""

from __future__ import annotations

import textwrap
from typing import Any

from jatra.gateway.nginx import ERROR_LOG_LEVEL, LOG_FORMAT, REQUEST_MAPS, logged_maps

#: where the values file is (relative to the repository root)
VALUES_PATH = "helm/ingress-nginx-values.yaml"
ENVIRONMENT = "production"


def log_format(environment: str = ENVIRONMENT) -> str:
    """The gateway's ECS line, as the controller writes it: its own service name, the Service it routed
    to, and the environment written in."""
    line = LOG_FORMAT.replace('"jatra-gateway"', '"jatra-ingress"').replace("$jatra_service", "$service_name")
    return line.replace("$jatra_environment", environment)


def http_snippet() -> str:
    """The maps the log format reads, for the controller's ``http`` block."""
    return textwrap.dedent(REQUEST_MAPS + logged_maps())


def values(environment: str = ENVIRONMENT) -> dict[str, Any]:
    """The values: `jatra gen` writes them as YAML (:func:`jatra.observability.rules.dump_yaml`)."""
    config = {
        "log-format-escape-json": "true",
        "log-format-upstream": log_format(environment),
        "http-snippet": http_snippet(),
        "error-log-level": ERROR_LOG_LEVEL,
        # X-Forwarded-For is the address the controller saw, whatever a client sent: the services trust it
        # from the controller (the chart's forwardedAllowIps) for their per-address login limit. These are
        # ingress-nginx's defaults, pinned: turned on, a client would choose its own address
        "use-forwarded-headers": "false",
        "compute-full-forwarded-for": "false",
    }
    return {"controller": {"config": config}}
