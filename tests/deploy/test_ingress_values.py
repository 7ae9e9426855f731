"""helm/ingress-nginx-values.yaml: the ingress-nginx controller's access log, redacted as the local
gateway's. No cluster runs here, so Debian's nginx runs the values' ``http-snippet`` and
``log-format-upstream`` (with ``log-format-escape-json``, the controller's ``escape=json``) in front of a
location that answers itself; ``$service_name``, which the controller sets per location, is set the same
way. Requests carrying personal data must leave none in the lines it writes."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jatra.gateway import ingress
from jatra.observability.generate import outputs
from jatra.stack.procs import free_ports, port_open, wait_until

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


def test_the_committed_values_are_what_the_code_generates() -> None:
    text = (ROOT / ingress.VALUES_PATH).read_text()
    assert text == outputs(ROOT)[ROOT / ingress.VALUES_PATH]
    assert yaml.safe_load(text) == ingress.values()
    config = yaml.safe_load(text)["controller"]["config"]
    assert config["log-format-escape-json"] == "true"  # a string: the controller's ConfigMap holds strings
    assert config["log-format-upstream"] == ingress.log_format()
    # the services trust X-Forwarded-For from the controller: it must not pass on what a client sent
    assert config["use-forwarded-headers"] == "false" and config["compute-full-forwarded-for"] == "false"
    assert config["http-snippet"] == ingress.http_snippet()
    assert (
        "$remote_addr" not in config["log-format-upstream"]
        and "$request " not in config["log-format-upstream"]
    )


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """nginx with the controller's settings from the values file; its base URL and access log."""
    assert NGINX is not None
    config = yaml.safe_load((ROOT / ingress.VALUES_PATH).read_text())["controller"]["config"]
    home = tmp_path_factory.mktemp("ingress-nginx")
    (port, closed), log = free_ports(2), home / "access.log"
    escape = " escape=json" if config["log-format-escape-json"] == "true" else ""
    temp = "".join(f"    {kind}_temp_path {home}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi"))
    temp += "".join(f"    {kind}_temp_path {home}/{kind};\n" for kind in ("uwsgi", "scgi"))
    conf = home / "nginx.conf"
    conf.write_text(
        f"worker_processes 1;\ndaemon off;\npid {home}/nginx.pid;\n"
        f"error_log {home}/error.log {config['error-log-level']};\n"
        "events { worker_connections 64; }\n"
        f"http {{\n{temp}{config['http-snippet']}\n"
        f"    log_format upstreaminfo{escape} '{config['log-format-upstream']}';\n"
        f"    access_log {log} upstreaminfo;\n"
        f"    server {{\n        listen 127.0.0.1:{port};\n"
        "        location / {\n            set $service_name jatra-catalog;\n"
        "            return 200 'ok';\n        }\n"
        # a Service whose pods refuse connections (nothing listens on that port)
        "        location /down {\n            set $service_name jatra-down;\n"
        f"            proxy_pass http://127.0.0.1:{closed};\n        }}\n    }}\n}}\n"
    )
    test = [NGINX, "-t", "-c", str(conf), "-p", str(home)]
    checked = subprocess.run(test, capture_output=True, text=True, check=False, timeout=30)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(home)], stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_open(port), 10, "nginx listening", home / "error.log")
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.terminate()
        process.wait(10)


def _get(url: str, headers: dict[str, str]) -> int:
    """A GET through the standard library: httpx is instrumented by OpenTelemetry in a session whose other
    tests set tracing up, and would send a traceparent of its own."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as answer:
        return int(answer.status)


def _line(edge: tuple[str, Path], target: str, headers: dict[str, str], marker: str) -> dict[str, Any]:
    """The access line of one request, found by ``marker`` (in its query or request id)."""
    base, log = edge
    assert _get(f"{base}{target}", headers) == 200
    found: list[dict[str, Any]] = []

    def written() -> bool:  # nginx writes the line once the response is sent
        found[:] = [json.loads(text) for text in log.read_text().splitlines() if marker in text]
        return bool(found)

    wait_until(written, 5, "the request's access line")
    [line] = found
    return line


def _marked(edge: tuple[str, Path], target: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The access line of a request sent with a marker as its request id."""
    marker = uuid.uuid4().hex
    return _line(edge, target, {"X-Request-ID": marker, **(headers or {})}, marker)


@pytest.mark.parametrize(
    ("target", "leak"),
    [
        ("/api/v1/stations?email=rahim%40example.com", "rahim"),
        ("/api/v1/stations?email=rahim%2540example.com", "rahim"),
        ("/api/v1/stations?phone=%2B8801712345678", "1712345678"),
        ("/api/v1/stations?to=01712345678", "1712345678"),
        ("/api/v1/stations?otp=483920", "483920"),
        ("/api/v1/stations?from=DA&passenger=Rahim+Uddin", "Rahim"),
        ("/api/v1/stations?from=DA%26passenger%3DRahim", "Rahim"),
        ("/api/v1/stations?user%5Fname=Karim", "Karim"),
        ("/api/v1/stations%3Fpassenger=Rahim", "Rahim"),
        ("/api/v1/users/rahim@example.com", "rahim"),
        ("/api/v1/users/rahim%252540example.com", "rahim"),
    ],
)
def test_the_controllers_line_holds_no_personal_data(edge: tuple[str, Path], target: str, leak: str) -> None:
    line = _marked(edge, target)
    assert leak not in json.dumps(line)
    field = "query" if "?" in target else "path"
    assert line["url"][field] == "[redacted]", line["url"]


def test_the_controllers_line_is_the_gateways_ecs_line(edge: tuple[str, Path]) -> None:
    trace_id = uuid.uuid4().hex
    line = _marked(
        edge,
        "/api/v1/journeys?from=DHK&to=CTG",
        {"traceparent": f"00-{trace_id}-{'1' * 16}-01", "User-Agent": 'odd "agent"'},
    )
    assert line["url"] == {"path": "/api/v1/journeys", "query": "from=DHK&to=CTG"}
    assert line["trace"]["id"] == trace_id
    assert line["service"] == {"name": "jatra-ingress", "environment": ingress.ENVIRONMENT}
    assert line["jatra"]["gateway"]["service"] == "jatra-catalog"
    assert line["http"]["response"]["status_code"] == 200 and line["event"]["dataset"] == "jatra.gateway"
    assert "127.0.0.1" not in json.dumps({k: v for k, v in line.items() if k != "jatra"})  # no client address


def test_a_phone_number_as_a_request_id_is_not_logged(edge: tuple[str, Path]) -> None:
    marker = uuid.uuid4().hex
    line = _line(edge, f"/api/v1/stations?m={marker}", {"X-Request-ID": "01712345678"}, marker)
    assert line["http"]["request"]["id"] == "[redacted]" and "1712345678" not in json.dumps(line)


def test_a_failed_upstream_leaves_no_client_address_or_query_in_the_error_log(edge: tuple[str, Path]) -> None:
    """nginx's error lines about a request hold the client's address and the raw request line, which no
    format can change; at the values' level they are not written, and the access line tells the failure."""
    base, log = edge
    marker, phone = uuid.uuid4().hex, "01712345678"
    with pytest.raises(urllib.error.HTTPError) as refused:
        _get(f"{base}/down?to={phone}", {"X-Request-ID": marker})
    assert refused.value.code == 502
    found: list[dict[str, Any]] = []

    def written() -> bool:
        found[:] = [json.loads(text) for text in log.read_text().splitlines() if marker in text]
        return bool(found)

    wait_until(written, 5, "the request's access line")
    [line] = found
    assert line["jatra"]["gateway"]["upstream_status"] == "502", line
    assert line["url"]["query"] == "[redacted]" and phone[1:] not in json.dumps(line)
    errors = (log.parent / "error.log").read_text()  # written before the access line
    assert phone[1:] not in errors and "client:" not in errors, errors
