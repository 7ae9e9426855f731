"""The Elasticsearch stand-in's gateway: what makes osmem-server answer the official client, and fail on cue.

Elasticsearch cannot be installed on these machines. osmem-server (PyPI) is an in-memory engine that speaks
OpenSearch's REST API: it indexes, enforces mappings, rejects bad documents item by item in a bulk answer,
refuses a second ``create`` of an ``_id`` with 409, searches and aggregates. It is not Elasticsearch, and this
gateway in front of it is kept to what the official ``elasticsearch`` 8 client and Jatra's log pipeline need:

- headers: the client sends ``application/vnd.elasticsearch+json; compatible-with=8`` (osmem answers 406) and
  requires ``X-Elastic-Product: Elasticsearch`` on answers; the gateway translates both ways;
- what osmem lacks is *kept, not enforced*: ILM policies and ingest pipelines are stored and returned, never
  run; an index template's ``data_stream`` is stripped before osmem sees it, so a data stream's name becomes a
  plain index with the template's mappings (no backing indices, no rollover);
- faults on cue, for tests (``POST /_standin/faults``): the next N bulk requests answered 429 as a whole, or
  the first N items of the next bulk answered 429 item by item (Elasticsearch's write queue being full).

An outage is not simulated here: stop this process and the port refuses connections, as a dead node does.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web

COMPAT = "compatible-with"
PRODUCT = {"X-Elastic-Product": "Elasticsearch"}
KEPT = ("_ilm/policy", "_ingest/pipeline")  # stored and returned, never enforced


@dataclass
class Faults:
    bulk_429: int = 0  # next N bulk requests: 429 for the whole request
    item_429: int = 0  # the first N items of the next bulk request(s): 429 each, the rest indexed
    seen_bulks: int = 0

    def update(self, body: dict[str, Any]) -> None:
        self.bulk_429 = int(body.get("bulk_429", self.bulk_429))
        self.item_429 = int(body.get("item_429", self.item_429))


@dataclass
class State:
    upstream: str
    faults: Faults = field(default_factory=Faults)
    kept: dict[str, dict[str, Any]] = field(default_factory=dict)  # "_ilm/policy/NAME" -> body
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)  # as sent, data_stream included


def _plain(content_type: str | None) -> str | None:
    """``application/vnd.elasticsearch+x-ndjson; compatible-with=8`` -> ``application/x-ndjson``."""
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().replace("vnd.elasticsearch+", "")


def _answer(status: int, body: Any) -> web.Response:
    return web.json_response(body, status=status, headers=PRODUCT)


async def _forward(request: web.Request, state: State, body: bytes) -> web.Response:
    headers = {}
    if content_type := _plain(request.headers.get("Content-Type")):
        headers["Content-Type"] = content_type
    session: ClientSession = request.app["session"]
    url = state.upstream + request.path_qs
    async with session.request(request.method, url, data=body or None, headers=headers) as upstream:
        payload = await upstream.read()
        out = {"Content-Type": upstream.headers.get("Content-Type", "application/json"), **PRODUCT}
        return web.Response(body=payload, status=upstream.status, headers=out)


def _kept(request: web.Request, state: State, body: bytes) -> web.Response | None:
    path = request.path.strip("/")
    prefix = next((p for p in KEPT if path == p or path.startswith(p + "/")), None)
    if prefix is None:
        return None
    name = path.removeprefix(prefix).strip("/")
    if request.method == "PUT" and name:
        state.kept[f"{prefix}/{name}"] = json.loads(body or b"{}")
        return _answer(200, {"acknowledged": True})
    if request.method == "DELETE" and name:
        found = state.kept.pop(f"{prefix}/{name}", None)
        return _answer(200 if found else 404, {"acknowledged": found is not None})
    wanted = {k.removeprefix(prefix + "/"): v for k, v in state.kept.items() if k.startswith(prefix + "/")}
    if name:
        wanted = {k: v for k, v in wanted.items() if k == name}
        if not wanted:
            return _answer(404, {})
    if prefix == "_ilm/policy":
        wanted = {k: {"policy": v.get("policy", v)} for k, v in wanted.items()}
    return _answer(200, wanted)


def _split_bulk(body: bytes) -> list[tuple[bytes, bytes | None]]:
    """(action line, source line) pairs; delete actions carry no source."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    pairs: list[tuple[bytes, bytes | None]] = []
    i = 0
    while i < len(lines):
        action = lines[i]
        if b'"delete"' in action.split(b":", 1)[0]:
            pairs.append((action, None))
            i += 1
        else:
            pairs.append((action, lines[i + 1] if i + 1 < len(lines) else None))
            i += 2
    return pairs


def _rejected_item(action: bytes) -> dict[str, Any]:
    parsed: dict[str, dict[str, Any]] = json.loads(action)
    op, meta = next(iter(parsed.items()))
    error = {"type": "es_rejected_execution_exception", "reason": "rejected execution (write queue full)"}
    return {op: {"_index": meta.get("_index"), "_id": meta.get("_id"), "status": 429, "error": error}}


async def _bulk(request: web.Request, state: State, body: bytes) -> web.Response:
    faults = state.faults
    faults.seen_bulks += 1
    if faults.bulk_429 > 0:
        faults.bulk_429 -= 1
        error = {"type": "es_rejected_execution_exception", "reason": "rejected execution of bulk request"}
        return _answer(429, {"error": {"root_cause": [error], **error}, "status": 429})
    pairs = _split_bulk(body)
    refused = min(faults.item_429, len(pairs))
    if refused == 0:
        return await _forward(request, state, body)
    faults.item_429 -= refused
    rest = pairs[refused:]
    items: list[dict[str, Any]] = [_rejected_item(action) for action, _ in pairs[:refused]]
    took = 0
    if rest:
        forwarded = b"".join(a + b"\n" + (s + b"\n" if s is not None else b"") for a, s in rest)
        answer = await _forward(request, state, forwarded)
        assert answer.body is not None
        upstream = json.loads(bytes(answer.body))  # type: ignore[arg-type]
        items += upstream.get("items", [])
        took = upstream.get("took", 0)
    return _answer(200, {"errors": True, "took": took, "items": items})


async def _template(request: web.Request, state: State, body: bytes) -> web.Response:
    name = request.match_info["name"]
    if request.method == "PUT":
        wanted = json.loads(body or b"{}")
        state.templates[name] = wanted
        stripped = {k: v for k, v in wanted.items() if k != "data_stream"}
        settings = stripped.get("template", {}).get("settings", {})
        for key in [k for k in settings if k.startswith("index.lifecycle") or k == "index.default_pipeline"]:
            settings.pop(key)
        return await _forward(request, state, json.dumps(stripped).encode())
    if request.method == "GET" and name in state.templates:
        return _answer(200, {"index_templates": [{"name": name, "index_template": state.templates[name]}]})
    if request.method == "DELETE":
        state.templates.pop(name, None)
    return await _forward(request, state, body)


async def handle(request: web.Request) -> web.StreamResponse:
    state: State = request.app["state"]
    body = await request.read()
    if request.path == "/_standin/faults":
        if request.method == "POST":
            state.faults.update(json.loads(body or b"{}"))
        return _answer(200, vars(state.faults))
    if (kept := _kept(request, state, body)) is not None:
        return kept
    if request.path.rstrip("/").endswith("/_bulk") or request.path == "/_bulk":
        return await _bulk(request, state, body)
    if request.path.startswith("/_index_template/") and "name" in request.match_info:
        return await _template(request, state, body)
    return await _forward(request, state, body)


def make_app(upstream: str) -> web.Application:
    app = web.Application(client_max_size=256 * 1024 * 1024)
    app["state"] = State(upstream=upstream.rstrip("/"))

    async def session(app: web.Application) -> Any:
        app["session"] = ClientSession()
        yield
        await app["session"].close()

    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/_index_template/{name}", handle)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="osmem-server's URL")
    args = parser.parse_args()
    web.run_app(make_app(args.upstream), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
