"""The Elasticsearch stand-in's gateway: what makes osmem-server answer the official client, and fail on cue.

Elasticsearch cannot be installed on these machines. osmem-server (PyPI) is an in-memory engine that speaks
OpenSearch's REST API: it indexes, enforces mappings, rejects bad documents item by item in a bulk answer,
refuses a second ``create`` of an ``_id`` with 409, searches and aggregates. It is not Elasticsearch, and this
gateway in front of it is kept to what the official ``elasticsearch`` 8 client and Jatra's log pipeline need:

- headers: the client sends ``application/vnd.elasticsearch+json; compatible-with=8`` (osmem answers 406) and
  requires ``X-Elastic-Product: Elasticsearch`` on answers; the gateway translates both ways;
- what osmem lacks is *kept, not enforced*: ILM policies and ingest pipelines are stored and returned, never
  run; an index template's ``data_stream`` and its lifecycle/pipeline settings are stripped before osmem
  sees it, so a data stream's name becomes a plain index with the template's mappings (no backing indices,
  no rollover) and ``GET _index_template/NAME`` answers the template as it was sent. What is kept lives
  in osmem itself (an index, ``.standin-kept``), so it survives a restart of this gateway as
  Elasticsearch's cluster state survives an outage, and goes when osmem's data goes;
- faults on cue, for tests (``POST /_standin/faults``; a ``GET`` shows them and the flood stage's count):
  the next N bulk requests answered 429 as a whole (``bulk_429``) or 503 (``bulk_503``, no node able to
  take them), or the first N items of the next bulk
  answered 429 item by item (``item_429``: Elasticsearch's write queue being full); with ``only``, just the
  bulks that hold that text (an index name), so another shipper writing meanwhile does not take them;
- a flood stage: osmem keeps everything in memory (some 30 KB of RSS per log event, measured) and never
  deletes (no ILM), so once it holds ``max_docs`` documents (``--max-docs``, or ``max_docs`` in the faults)
  every bulk item is answered 429 ``cluster_block_exception``, as Elasticsearch does past its disk
  flood-stage watermark. Writers back off and keep their data; restarting osmem empties it (the flood
  stage then lasts until the next count, up to ``RECOUNT_S``). As
  Elasticsearch reads its disk usage every 30 s (``cluster.info.update.interval``), not per write, the
  gateway asks osmem for its count at most every ``RECOUNT_S`` and adds what it forwarded since (an upper
  bound): osmem counts by visiting every document, ~1 ms of CPU per 1,000 it holds, which asked before
  every bulk was most of the stand-in's CPU in a rush.

- a sink, for benchmarks (``sink`` in the faults; with ``only``, just the bulks that hold that text): bulk
  writes are answered item by item in Elasticsearch's shape and dropped instead of indexed. What it checks
  is little: each source must be a JSON object (else 400), and a second ``create`` of an ``_id`` is a 409,
  as Jatra's shipper needs (it sends ``create`` only); mappings are not enforced, so nothing is refused
  for a field, and ``index``/``update`` are answered as creations. Elasticsearch runs on nodes of its own;
  osmem indexing a rush's logs on the machine under test took 0.14-0.75 of a core, at nice 19, until its
  flood stage stopped it (README "Eid rush", bench/results/standin-sink/). The ``_id`` of every document
  it took is kept, ~100 bytes each: a sink is for a benchmark's minutes, not left on.

An outage is not simulated here: stop this process and the port refuses connections, as a dead node does.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web

COMPAT = "compatible-with"
PRODUCT = {"X-Elastic-Product": "Elasticsearch"}
KEPT = ("_ilm/policy", "_ingest/pipeline")  # stored and returned, never enforced
KEPT_INDEX = ".standin-kept"
#: index template settings osmem refuses or cannot act on: kept, stripped from what osmem sees
UNENFORCED_SETTINGS = ("index.lifecycle.", "index.default_pipeline", "index.final_pipeline")


@dataclass
class Faults:
    bulk_429: int = 0  # next N bulk requests: 429 for the whole request
    bulk_503: int = 0  # next N bulk requests: 503 for the whole request
    item_429: int = 0  # the first N items of the next bulk request(s): 429 each, the rest indexed
    max_docs: int = 0  # flood stage: no more writes once osmem holds this many documents (0: no limit)
    sink: int = 0  # 1: bulk writes checked, answered and dropped, not indexed (benchmarks)
    #: the faults above (the sink too) meet only bulks whose body holds this text (an index name), so
    #: that another shipper writing meanwhile (the stack's own) does not take them; "" for every bulk.
    #: Reset on update.
    only: str = ""
    seen_bulks: int = 0

    def update(self, body: dict[str, Any]) -> None:
        self.bulk_429 = int(body.get("bulk_429", self.bulk_429))
        self.bulk_503 = int(body.get("bulk_503", self.bulk_503))
        self.item_429 = int(body.get("item_429", self.item_429))
        self.max_docs = int(body.get("max_docs", self.max_docs))
        self.sink = int(body.get("sink", self.sink))
        self.only = str(body.get("only", ""))


#: how often the flood stage asks osmem how many documents it holds (see the module's docstring)
RECOUNT_S = 5.0


@dataclass
class State:
    upstream: str
    faults: Faults = field(default_factory=Faults)
    counted_at: float = -RECOUNT_S
    #: osmem's document count as last asked, and how many of the documents sent on had been answered for
    #: when that count began
    counted: int = 0
    counted_from: int = 0
    #: documents sent on to osmem since this gateway started, and those of them osmem has answered for
    forwarded: int = 0
    completed: int = 0
    #: the ``_id`` of every document the sink took (a second ``create`` of one is a 409)
    sunk: set[str] = field(default_factory=set)

    @property
    def held(self) -> int:
        """An upper bound on what osmem holds: its last count, plus what was sent on and not yet answered
        for when that count began (osmem may not have counted those)."""
        return self.counted + self.forwarded - self.counted_from


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


def _doc_id(kind: str, name: str) -> str:
    return f"{kind.strip('_').replace('/', '_')}:{name}"


async def _keep(request: web.Request, state: State, kind: str, name: str, body: Any | None) -> bool:
    """Store (or, with ``body`` None, delete) a kept object in osmem; returns whether it existed."""
    session: ClientSession = request.app["session"]
    url = f"{state.upstream}/{KEPT_INDEX}/_doc/{_doc_id(kind, name)}?refresh=true"
    if body is None:
        async with session.delete(url) as answer:
            return answer.status == 200
    mapping = {"mappings": {"dynamic": False, "properties": {"kind": {"type": "keyword"}}}}
    async with session.put(f"{state.upstream}/{KEPT_INDEX}", json=mapping):
        pass  # 400 when it exists already
    async with session.put(url, json={"kind": kind, "name": name, "body": body}) as answer:
        answer.raise_for_status()
        return True


async def _kept_objects(request: web.Request, state: State, kind: str, name: str = "") -> dict[str, Any]:
    """Kept objects of one kind (only ``name`` when given), by name."""
    session: ClientSession = request.app["session"]
    if name:
        async with session.get(f"{state.upstream}/{KEPT_INDEX}/_doc/{_doc_id(kind, name)}") as answer:
            found = await answer.json() if answer.status == 200 else {}
        return {name: found["_source"]["body"]} if found.get("found") else {}
    query = {"size": 10_000, "query": {"term": {"kind": kind}}}
    async with session.post(f"{state.upstream}/{KEPT_INDEX}/_search", json=query) as answer:
        hits = (await answer.json())["hits"]["hits"] if answer.status == 200 else []
    return {hit["_source"]["name"]: hit["_source"]["body"] for hit in hits}


async def _kept(request: web.Request, state: State, body: bytes) -> web.Response | None:
    path = request.path.strip("/")
    prefix = next((p for p in KEPT if path == p or path.startswith(p + "/")), None)
    if prefix is None:
        return None
    name = path.removeprefix(prefix).strip("/")
    if request.method == "PUT" and name:
        await _keep(request, state, prefix, name, json.loads(body or b"{}"))
        return _answer(200, {"acknowledged": True})
    if request.method == "DELETE" and name:
        found = await _keep(request, state, prefix, name, None)
        return _answer(200 if found else 404, {"acknowledged": found})
    wanted = await _kept_objects(request, state, prefix, name)
    if name and not wanted:
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


QUEUE_FULL = {"type": "es_rejected_execution_exception", "reason": "rejected execution (write queue full)"}


def _rejected_item(action: bytes, error: dict[str, Any] = QUEUE_FULL) -> dict[str, Any]:
    parsed: dict[str, dict[str, Any]] = json.loads(action)
    op, meta = next(iter(parsed.items()))
    return {op: {"_index": meta.get("_index"), "_id": meta.get("_id"), "status": 429, "error": error}}


async def _flooded(request: web.Request, state: State) -> dict[str, Any] | None:
    """The flood-stage error when osmem holds ``max_docs`` documents or more, else None."""
    if not state.faults.max_docs:
        return None
    if time.monotonic() - state.counted_at >= RECOUNT_S:
        state.counted_at = time.monotonic()  # one count at a time: bulks meanwhile use the estimate
        answered = state.completed
        session: ClientSession = request.app["session"]
        async with session.get(f"{state.upstream}/_all/_count") as answer:
            state.counted, state.counted_from = int((await answer.json())["count"]), answered
    held = state.held
    if held < state.faults.max_docs:
        return None
    reason = (
        "blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has "
        f"read-only-allow-delete block]; stand-in: osmem holds {held} documents (max_docs "
        f"{state.faults.max_docs}), restart it to empty it"
    )
    return {"type": "cluster_block_exception", "reason": reason}


async def _bulk(request: web.Request, state: State, body: bytes) -> web.Response:
    faults = state.faults
    faults.seen_bulks += 1
    targeted = not faults.only or faults.only.encode() in body
    if targeted and faults.bulk_429 > 0:
        faults.bulk_429 -= 1
        error = {"type": "es_rejected_execution_exception", "reason": "rejected execution of bulk request"}
        return _answer(429, {"error": {"root_cause": [error], **error}, "status": 429})
    if targeted and faults.bulk_503 > 0:
        faults.bulk_503 -= 1
        error = {"type": "unavailable_shards_exception", "reason": "primary shard is not active"}
        return _answer(503, {"error": {"root_cause": [error], **error}, "status": 503})
    pairs = _split_bulk(body)
    if targeted and faults.sink:
        try:
            return _answer(200, _sunk(state, pairs))
        except ValueError:  # an action line that is not JSON: Elasticsearch refuses the whole request
            error = {"type": "illegal_argument_exception", "reason": "Malformed action/metadata line"}
            return _answer(400, {"error": {"root_cause": [error], **error}, "status": 400})
    if (flood := await _flooded(request, state)) is not None:
        blocked = [_rejected_item(action, flood) for action, _ in pairs]
        return _answer(200, {"errors": True, "took": 0, "items": blocked})
    refused = min(faults.item_429, len(pairs)) if targeted else 0
    sent = len(pairs) - refused
    state.forwarded += sent
    try:
        return await _sent_on(request, state, pairs, refused, body)
    finally:
        state.completed += sent


def _sunk(state: State, pairs: list[tuple[bytes, bytes | None]]) -> dict[str, Any]:
    """A bulk's answer from the sink: each item checked and answered as Elasticsearch would, then dropped."""
    # every action line read before anything is taken: one that is not JSON refuses the whole request
    actions: list[dict[str, dict[str, Any]]] = [json.loads(action) for action, _ in pairs]
    items: list[dict[str, Any]] = []
    for parsed, (_, source) in zip(actions, pairs, strict=True):
        op, meta = next(iter(parsed.items()))
        chosen = "_id" in meta
        doc_id = str(meta["_id"]) if chosen else uuid.uuid4().hex  # Elasticsearch's own id: never a 409
        item: dict[str, Any] = {"_index": meta.get("_index"), "_id": doc_id}
        try:
            valid = isinstance(json.loads(source), dict) if source is not None else op == "delete"
        except ValueError:
            valid = False
        if not valid:
            error = {"type": "mapper_parsing_exception", "reason": "failed to parse"}
            item |= {"status": 400, "error": error}
        elif op == "delete":
            found = doc_id in state.sunk
            state.sunk.discard(doc_id)
            item |= {"status": 200 if found else 404, "result": "deleted" if found else "not_found"}
        elif op == "create" and chosen and doc_id in state.sunk:
            reason = f"[{doc_id}]: version conflict, document already exists"
            error = {"type": "version_conflict_engine_exception", "reason": reason}
            item |= {"status": 409, "error": error}
        else:
            if chosen:
                state.sunk.add(doc_id)
            item |= {"status": 201, "result": "created", "_version": 1}
        items.append({op: item})
    return {"errors": any("error" in next(iter(i.values())) for i in items), "took": 0, "items": items}


async def _sent_on(
    request: web.Request, state: State, pairs: list[tuple[bytes, bytes | None]], refused: int, body: bytes
) -> web.Response:
    """The bulk sent on to osmem, its first ``refused`` items answered 429 here (``item_429``)."""
    if refused == 0:
        return await _forward(request, state, body)
    state.faults.item_429 -= refused
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
        stripped = copy.deepcopy(wanted)
        stripped.pop("data_stream", None)
        settings = stripped.get("template", {}).get("settings", {})
        for key in [k for k in settings if k.startswith(UNENFORCED_SETTINGS)]:
            settings.pop(key)
        answer = await _forward(request, state, json.dumps(stripped).encode())
        if answer.status == 200:
            await _keep(request, state, "_index_template", name, wanted)
        return answer
    if request.method == "GET" and (kept := await _kept_objects(request, state, "_index_template", name)):
        return _answer(200, {"index_templates": [{"name": name, "index_template": kept[name]}]})
    if request.method == "DELETE":
        await _keep(request, state, "_index_template", name, None)
    return await _forward(request, state, body)


async def handle(request: web.Request) -> web.StreamResponse:
    state: State = request.app["state"]
    body = await request.read()
    if request.path == "/_standin/faults":
        if request.method == "POST":
            state.faults.update(json.loads(body or b"{}"))
            state.counted_at = -RECOUNT_S  # a new flood stage is checked against osmem's own count
        counted = {
            "held": state.held,
            "counted_s_ago": round(time.monotonic() - state.counted_at, 3),
            "sunk": len(state.sunk),
        }
        return _answer(200, {**vars(state.faults), **counted})
    if (kept := await _kept(request, state, body)) is not None:
        return kept
    if request.path.rstrip("/").endswith("/_bulk") or request.path == "/_bulk":
        return await _bulk(request, state, body)
    if request.path.startswith("/_index_template/") and "name" in request.match_info:
        return await _template(request, state, body)
    return await _forward(request, state, body)


def make_app(upstream: str, max_docs: int = 0) -> web.Application:
    app = web.Application(client_max_size=256 * 1024 * 1024)
    app["state"] = State(upstream=upstream.rstrip("/"), faults=Faults(max_docs=max_docs))

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
    parser.add_argument("--max-docs", type=int, default=0, help="flood stage: documents osmem may hold")
    args = parser.parse_args()
    web.run_app(make_app(args.upstream, args.max_docs), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
