"""The gateway's nginx configuration for compose: the text of ``compose/nginx/nginx.conf``.

The same :func:`jatra.gateway.nginx.render` as the local stack's split mode, with compose's addresses and
paths: the upstreams are the compose services on port 8000 (``auth:8000`` ...), nginx listens on 8080 as
the unprivileged official image does, writes its ECS access log on the shared ``logs`` volume (where the
log shipper and the archiver follow every process's log) and its error log to stderr, keeps its pid and
temporary files under ``/tmp`` (a tmpfs: the container's root filesystem is read-only) and has no ``user``
directive (it never starts as root). A test checks that the committed file equals
:func:`compose_nginx_conf`.
"""

from __future__ import annotations

from jatra.gateway.nginx import Site, render
from jatra.gateway.routes import SERVICES

#: the ``environment`` of everything compose runs: JATRA_ENVIRONMENT and Prometheus's ``environment`` label
COMPOSE_ENVIRONMENT = "compose"
#: the port every Jatra HTTP service listens on inside its container
SERVICE_PORT = 8000
#: where compose mounts the rendered file (relative to the repository root)
CONF_PATH = "compose/nginx/nginx.conf"
NOTE = (
    "generated from platform/jatra/gateway/compose.py (jatra.gateway.nginx.render); do not edit. "
    "Mounted by compose/docker-compose.yml"
)


def compose_site() -> Site:
    """Where the gateway runs in compose."""
    return Site(
        listen="8080",
        upstreams={service: [f"{service}:{SERVICE_PORT}"] for service in SERVICES},
        pid="/tmp/nginx.pid",  # noqa: S108 - the container's own tmpfs, no other user
        error_log="stderr",
        access_log="/var/log/jatra/gateway.log",
        temp_dir="/tmp",  # noqa: S108 - the container's own tmpfs
        user=None,
        # a fixed count, not "auto": auto starts one worker per host CPU, whatever the container's limits
        worker_processes="2",
        daemon=False,
    )


def compose_nginx_conf() -> str:
    """The text of ``compose/nginx/nginx.conf``."""
    return render(compose_site(), COMPOSE_ENVIRONMENT, NOTE)
