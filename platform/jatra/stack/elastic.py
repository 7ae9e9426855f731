"""Elasticsearch for the local stack: a stand-in, because Elasticsearch cannot be installed here.

Two processes: osmem-server (PyPI ``osmem-server``, an in-memory OpenSearch-compatible engine) and Jatra's
small gateway in front of it (:mod:`jatra.stack.es_standin`), which is the Elasticsearch URL the platform
uses. What the pair does and does not do is written in the gateway's docstring and in the README. Compose
and Helm run the real Elasticsearch 8 and Kibana.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from jatra.stack.base import Server, StackContext
from jatra.stack.procs import find_binary, http_ok

#: Both processes run at the lowest CPU priority: Elasticsearch has nodes of its own (compose, Helm), and
#: here its stand-in shares two cores with the platform. Indexing a rush's logs at 50 arrivals/s took a
#: quarter of them, and at equal priority the booking's p99 was three times as long
#: (bench/results/standin-session/).
STANDIN_NICE = 19
#: and osmem (Go) runs on one core at most: on both it took 0.90-0.95 of a core in some seconds of a rush,
#: which then saturated the machine. On one, in A B B A 120 s rushes at 50 arrivals/s, its CPU a booking
#: was 11.2-11.3 ms against 12.3-12.8 (stand-in and S3 together), the machine over 1.9 cores in 4 s of a rush
#: against 27-29, and it never took more than 0.71 of a core in a second (bench/results/standin-cores/)
STANDIN_CORES = 1


def _osmem_binary() -> str:
    spec = importlib.util.find_spec("osmem_server")
    bundled = (
        [str(Path(p) / "bin" / "osmem-server") for p in (spec.submodule_search_locations or [])]
        if spec
        else []
    )
    return find_binary([*bundled, "osmem-server"], "osmem-server (PyPI)")


class Osmem(Server):
    """The engine: indexes and searches in memory, so a restart empties it (the gateway is what tests stop
    to take "Elasticsearch" down)."""

    name = "osmem"
    nice = STANDIN_NICE

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.osmem

    def argv(self, ctx: StackContext) -> list[str]:
        return [_osmem_binary(), "-addr", f"127.0.0.1:{self.port(ctx)}", "-no-stdin-watch"]

    def env(self, ctx: StackContext) -> dict[str, str]:
        return {"GOMAXPROCS": str(STANDIN_CORES)}

    def ready(self, ctx: StackContext) -> bool:
        return http_ok(f"http://127.0.0.1:{self.port(ctx)}/", timeout=1)


#: The stand-in's flood stage: osmem keeps every document in memory (about 30 KB of RSS per log event,
#: measured with real Jatra logs) and never deletes one, so past this many the gateway refuses writes with
#: 429, as Elasticsearch does past its disk watermark, instead of letting osmem take the machine's memory.
MAX_DOCS = 100_000


class ElasticGateway(Server):
    name = "elasticsearch"
    nice = STANDIN_NICE

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.elasticsearch

    def argv(self, ctx: StackContext) -> list[str]:
        upstream = f"http://127.0.0.1:{ctx.ports.osmem}"
        return [
            sys.executable,
            "-m",
            "jatra.stack.es_standin",
            "--port",
            str(self.port(ctx)),
            "--upstream",
            upstream,
            "--max-docs",
            str(MAX_DOCS),
        ]

    def ready(self, ctx: StackContext) -> bool:
        return http_ok(f"http://127.0.0.1:{self.port(ctx)}/", timeout=1)
