"""The gateway's nginx configuration, written once: the local stack (`jatra up --split`) and compose render
the same text with their own addresses and paths.

What it does at the edge:
- routes by path prefix to the HTTP services (:mod:`jatra.gateway.routes`), with keep-alive upstreams;
- limits each client (by address): 50 requests/s with a burst of 100 on the API, 5/s with a burst of 10 on
  the login endpoints; past that, a 429 problem+json with Retry-After;
- bounds slow clients (10 s for headers and between body reads) and bodies (64 KiB, as the services do);
- upstream timeouts (2 s to connect, 30 s to answer) and passive failure handling: a server failing 3
  times is left out for 10 s, and an idempotent request that could not reach one is tried on another;
  when no server answers, a 503 problem+json with Retry-After (the services' own answers pass untouched);
- a request id (the client's X-Request-ID if it is sane, else nginx's) passed on and returned, and the W3C
  trace context (traceparent, tracestate) passed through untouched;
- one access log in ECS JSON, with the trace id taken from traceparent, and no client address (personal
  data; the limits use it in memory only). The path and the query are logged as "[redacted]" when one of
  the patterns jatra.telemetry.redact scrubs (an e-mail, a phone number, a token, an OTP; percent-encoded
  too) is in them, and the query also when a parameter is named like personal data (``passenger=``,
  :data:`PERSONAL_PARAMETER`): the shipper sends these lines on as written, so nothing after nginx would
  catch it;
- an error log of nginx's own failures only (:data:`ERROR_LOG_LEVEL`): its lines about a request cannot be
  formatted and carry the client's address and the raw request line, query and all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jatra.gateway.routes import ROUTES, SERVICES, Route
from jatra.telemetry.redact import PERSONAL_KEYS, PHONE_KEYS

PROBLEM_TYPE = "https://jatra.dev/problems/"
#: nginx writes what went wrong with a request (an upstream refused or timed out, a body too large, a client
#: over its limit) at "error" or "warn", in a fixed text with ``client: <address>`` and ``request: "<the
#: request line>"``, its query unredacted (a phone number, an e-mail), and no format can change that. At
#: "crit" only nginx's own failures are left (a worker that died, files or sockets it cannot open, its
#: configuration). The access log says the same of each request without them: the status, and the
#: upstream's address, status and time ("502" for a refused connection, "504" for a timeout).
ERROR_LOG_LEVEL = "crit"


@dataclass(frozen=True, slots=True)
class Site:
    """Where this rendering runs: listen address, upstream servers per service, and file paths."""

    listen: str
    upstreams: Mapping[str, Sequence[str]]
    pid: str
    error_log: str
    access_log: str
    temp_dir: str
    #: the `user` directive (only meaningful when nginx starts as root)
    user: str | None = None
    worker_processes: str = "auto"
    daemon: bool = False
    #: more addresses to listen on (the local stack's split mode: the API port, next to the gateway's own)
    also_listen: Sequence[str] = ()


def _problem(status: int, slug: str, title: str, detail: str) -> str:
    body = (
        f'{{"type":"{PROBLEM_TYPE}{slug}","title":"{title}","status":{status},"detail":"{detail}",'
        f'"instance":"$uri"}}'
    )
    return body.replace("'", "")


ERRORS = (
    (429, "rate-limited", "Too many requests", "too many requests from this client; slow down", 1),
    (413, "body-too-large", "Request body too large", "the body is over 64 KiB", None),
    (503, "dependency-unavailable", "Service unavailable", "no server of this service answered", 5),
)

LOG_FORMAT = (
    '{"@timestamp":"$time_iso8601","ecs.version":"1.6.0","log.level":"info",'
    '"message":"$request_method $jatra_logged_path $status",'
    '"event":{"dataset":"jatra.gateway","kind":"event"},'
    '"service":{"name":"jatra-gateway","environment":"$jatra_environment"},'
    '"http":{"request":{"method":"$request_method","id":"$jatra_logged_request_id"},'
    '"response":{"status_code":$status,"body":{"bytes":$body_bytes_sent}},"version":"$server_protocol"},'
    '"url":{"path":"$jatra_logged_path","query":"$jatra_logged_query"},"trace":{"id":"$jatra_trace_id"},'
    '"jatra":{"gateway":{"service":"$jatra_service","upstream":"$upstream_addr",'
    '"upstream_status":"$upstream_status","request_time_s":$request_time,'
    '"upstream_time_s":"$upstream_response_time"}}}'
)


#: what may be personal in a path or query (case-blind PCRE; jatra.telemetry.redact's patterns, with the
#: percent-encoded "@", "+" and separators a query carries, encoded once or more: "%2540" is "%40" encoded
#: again): a match logs the whole field as "[redacted]"
_PCT = "%(25)*"
PERSONAL = (
    # an e-mail: its domain is enough, as the whole field goes; a local part before it, unanchored, made
    # PCRE's work quadratic in a long run and could pass its match limit, when the map logs the default
    rf"(@|{_PCT}40)[a-z0-9-]+(\.[a-z0-9-]+)+",
    # a Bangladeshi mobile
    rf"(^|[^a-z0-9_*]|{_PCT}[0-9a-f]{{2}})(\+|{_PCT}2b)?(88)?01[3-9][0-9]{{8}}([^0-9]|$)",
    rf"(\+|{_PCT}2b)[0-9]{{10,14}}([^0-9]|$)",  # a number in international form
    r"eyj[a-z0-9_-]{8,}\.[a-z0-9_-]{8,}\.",  # a JWT
    rf"(bearer|basic)(\s|{_PCT}20|\+)+[a-z0-9.~+/=_-]{{8,}}",  # a credential
    rf"\b(otp|code|passcode|pin)\b({_PCT}[0-9a-f]{{2}}|[^a-z0-9]){{1,4}}(is({_PCT}[0-9a-f]{{2}}|[^a-z0-9]){{1,3}})?"
    r"[0-9]{4,8}\b",
)


def _key(name: str) -> str:
    """A field's name as a pattern: its "_" and "-" also percent-encoded, as the app decodes a name."""
    return "".join(
        f"(_|{_PCT}5f)" if c == "_" else f"(-|{_PCT}2d)" if c == "-" else re.escape(c) for c in name
    )


#: what may stand around a parameter name's last word: any character but a letter, a digit, "_", "-", "&",
#: "=" or "%", or any percent-encoded character (once or more: "%5B", "%255B")
_AROUND = rf"([^a-z0-9_&=%-]|{_PCT}[0-9a-f]{{2}})"
#: a query's parameter named like personal data, its value not empty (jatra.telemetry.redact's field names:
#: a passenger's name has no pattern to be found by), judged by the last word of its name as the app's
#: `scrub_query` judges it: ``passenger=``, ``contact.email=``, ``passengers%5B0%5D%5Bname%5D=``, ``name[]=``,
#: ``user%5Fname=`` (an encoded "_" or "-" in the name), and one hidden in another's value by an encoded
#: "&" and "=" (``from=DA%26passenger%3DRahim``). A name with encoded letters (``p%61ssenger``) is not
#: found here, where the app finds it. A name's run stops at an encoded "&", which starts a name of its
#: own: without that stop, a run of "%26" was searched in time quadratic in its length (28 ms for 750
#: bytes in Python's engine). Linear in the query.
PERSONAL_PARAMETER = (
    rf"(^|&|{_PCT}26)(([^&=%]|%(?!(25)*26))*{_AROUND})?"
    rf"({'|'.join(sorted(_key(key) for key in PERSONAL_KEYS | PHONE_KEYS))}){_AROUND}*(=|{_PCT}3d)[^&]"
)
#: a path with a "?" in it: nginx's $uri is decoded, so a client's "%3F" put a query there
QUERY_IN_PATH = r"\?"


def _redacting_map(source: str, target: str, patterns: tuple[str, ...] = PERSONAL) -> str:
    entries = "".join(f'        "~*{pattern}" "[redacted]";\n' for pattern in patterns)
    return f"    map {source} {target} {{\n{entries}        default {source};\n    }}\n"


def logged_maps() -> str:
    """The path, query and request id as logged (``$jatra_logged_path``, ``$jatra_logged_query``,
    ``$jatra_logged_request_id``): "[redacted]" if personal data may be in them (:data:`PERSONAL`; in the
    query also a parameter named like personal data, :data:`PERSONAL_PARAMETER`; in the path a query,
    :data:`QUERY_IN_PATH`, as the app's `scrub_url` drops one named so)."""
    return "".join(
        _redacting_map(source, target, patterns)
        for source, target, patterns in (
            ("$uri", "$jatra_logged_path", (*PERSONAL, QUERY_IN_PATH)),
            ("$args", "$jatra_logged_query", (*PERSONAL, PERSONAL_PARAMETER)),
            ("$jatra_request_id", "$jatra_logged_request_id", PERSONAL),  # a client's may be a phone number
        )
    )


#: a sane client request id kept, anything else replaced by nginx's own; the trace id of a W3C traceparent
REQUEST_MAPS = """\
    map $http_x_request_id $jatra_request_id {
        "~^[A-Za-z0-9._-]{1,64}$" $http_x_request_id;
        default $request_id;
    }
    map $http_traceparent $jatra_trace_id {
        "~^[0-9a-f]{2}-(?<tid>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$" $tid;
        default "";
    }
"""


def _location(route: Route) -> str:
    match route.kind:
        case "exact":
            head = f"location = {route.path}"
        case "prefix":
            head = f"location {route.path}"
        case _:
            head = f"location ~ {route.path}"
    zone = "per_client_auth" if route.limit == "auth" else "per_client"
    burst = 10 if route.limit == "auth" else 100
    return (
        f"        {head} {{\n"
        f"            set $jatra_service {route.service};\n"
        f"            limit_req zone={zone} burst={burst} nodelay;\n"
        f"            proxy_pass http://{route.service};\n"
        f"        }}\n"
    )


def _upstream(service: str, servers: Sequence[str]) -> str:
    lines = "".join(f"        server {s} max_fails=3 fail_timeout=10s;\n" for s in servers)
    return f"    upstream {service} {{\n{lines}        keepalive 32;\n    }}\n"


def _error_pages() -> str:
    out = ""
    for status, slug, *_ in ERRORS:
        out += f"        error_page {status} @{slug};\n"
    out += "        error_page 502 504 =503 @dependency-unavailable;\n"
    for status, slug, title, detail, retry in ERRORS:
        retry_header = f"            add_header Retry-After {retry} always;\n" if retry else ""
        out += (
            f"        location @{slug} {{\n"
            f"            default_type application/problem+json;\n"
            f"            add_header X-Request-ID $jatra_request_id always;\n"
            f"{retry_header}"
            f"            return {status} '{_problem(status, slug, title, detail)}';\n"
            f"        }}\n"
        )
    return out


def render(site: Site, environment: str, generated_note: str = "") -> str:
    missing = [s for s in SERVICES if not site.upstreams.get(s)]
    if missing:
        raise ValueError(f"no upstream servers for {missing}")
    header = f"# {generated_note}\n" if generated_note else ""
    user = f"user {site.user};\n" if site.user else ""
    upstreams = "".join(_upstream(s, site.upstreams[s]) for s in SERVICES)
    locations = "".join(_location(r) for r in ROUTES)
    temp = site.temp_dir
    listen = "".join(f"        listen {address} reuseport;\n" for address in (site.listen, *site.also_listen))
    logged = logged_maps()
    return f"""{header}{user}worker_processes {site.worker_processes};
daemon {"on" if site.daemon else "off"};
pid {site.pid};
pcre_jit on;  # the redacting maps run on every request
error_log {site.error_log} {ERROR_LOG_LEVEL};

events {{
    worker_connections 4096;
}}

http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server_tokens off;
    default_type application/json;

    # a sane client request id is kept, anything else replaced by nginx's own; the trace id of a W3C
    # traceparent (version-traceid-parentid-flags), for the access log
{REQUEST_MAPS}    map $host $jatra_environment {{
        default "{environment}";
    }}
    # the path, query and request id as logged: "[redacted]" if personal data may be in them (PERSONAL)
{logged}    log_format ecs escape=json '{LOG_FORMAT}';
    access_log {site.access_log} ecs;

    limit_req_zone $binary_remote_addr zone=per_client:10m rate=50r/s;
    limit_req_zone $binary_remote_addr zone=per_client_auth:10m rate=5r/s;
    limit_req_status 429;

    client_header_timeout 10s;
    client_body_timeout 10s;
    client_max_body_size 64k;
    keepalive_timeout 30s;

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Request-ID $jatra_request_id;
    # the address nginx saw, replacing whatever the client sent: the services trust this header from the
    # gateway (JATRA_FORWARDED_ALLOW_IPS), and a client must not choose its own address for their limits
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_connect_timeout 2s;
    proxy_send_timeout 10s;
    proxy_read_timeout 30s;
    proxy_next_upstream error timeout http_502;
    proxy_next_upstream_tries 2;
    add_header X-Request-ID $jatra_request_id always;

{upstreams}
    server {{
{listen}        set $jatra_service "";

        location = /gateway/health {{
            access_log off;
            return 200 '{{"status":"ok","service":"gateway"}}';
        }}

{locations}
        location / {{
            default_type application/problem+json;
            return 404 '{_problem(404, "not-found", "Not found", "no service answers this path")}';
        }}

{_error_pages()}    }}
}}
"""
