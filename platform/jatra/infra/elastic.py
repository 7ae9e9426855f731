"""The Elasticsearch client: the official async ``elasticsearch`` 8 client."""

from __future__ import annotations

from elasticsearch import AsyncElasticsearch

from jatra.settings import Settings


def es_client(settings: Settings, timeout_s: float = 30.0) -> AsyncElasticsearch:
    """A client with no retries of its own: callers retry (the bulk helper on 429s, stamina otherwise)."""
    return AsyncElasticsearch(settings.elasticsearch, request_timeout=timeout_s, max_retries=0)
