"""`jatra logs setup`: install the lifecycle policy and the templates in Elasticsearch, idempotently.

The bodies are the ones `jatra gen` writes to ``logging/generated/elasticsearch/`` (built by
:mod:`jatra.observability.elastic`), with the deployment's ``logs_retention_days``. The policy goes first,
then the component templates, then the index template that names them, so a data stream created at any
moment finds everything it refers to. An object that is already there as wanted is left alone; one that
differs is replaced. Elasticsearch answers with defaults filled in and settings in its own spelling, so
"as wanted" means: every member we set has our value (settings compared as Elasticsearch stores them,
dotted and as strings).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from elasticsearch import AsyncElasticsearch, NotFoundError

from jatra.observability import elastic
from jatra.settings import Settings


@dataclass(frozen=True, slots=True)
class Managed:
    kind: str  # "ilm-policy", "component-template", "index-template": the generated file's prefix
    name: str
    body: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


def managed(settings: Settings) -> list[Managed]:
    """Everything setup installs, in the order it must be installed."""
    return [
        Managed("ilm-policy", elastic.POLICY, elastic.ilm_policy(settings.logs_retention_days)),
        Managed("component-template", elastic.SETTINGS_COMPONENT, elastic.settings_component()),
        Managed("component-template", elastic.MAPPINGS_COMPONENT, elastic.mappings_component()),
        Managed("index-template", elastic.INDEX_TEMPLATE, elastic.index_template()),
    ]


async def installed(client: AsyncElasticsearch, obj: Managed) -> dict[str, Any] | None:
    """The object as Elasticsearch has it, in the shape of our body (None: not there)."""
    try:
        if obj.kind == "ilm-policy":
            found: dict[str, Any] = (await client.ilm.get_lifecycle(name=obj.name)).body[obj.name]
            return {"policy": found["policy"]}
        if obj.kind == "component-template":
            answer = await client.cluster.get_component_template(name=obj.name, flat_settings=True)
            return dict(answer.body["component_templates"][0]["component_template"])
        answer = await client.indices.get_index_template(name=obj.name, flat_settings=True)
        return dict(answer.body["index_templates"][0]["index_template"])
    except NotFoundError:
        return None


def _put(client: AsyncElasticsearch, obj: Managed) -> Callable[[], Awaitable[Any]]:
    if obj.kind == "ilm-policy":
        return lambda: client.ilm.put_lifecycle(name=obj.name, body=obj.body)
    if obj.kind == "component-template":
        return lambda: client.cluster.put_component_template(name=obj.name, body=obj.body)
    return lambda: client.indices.put_index_template(name=obj.name, body=obj.body)


def flat_settings(settings: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Index settings as Elasticsearch stores them: dotted names, string values."""
    flat: dict[str, str] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat |= flat_settings(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return flat


def covers(have: Any, want: Any) -> bool:
    """Whether ``have`` holds every member of ``want`` with the same value (extra members are defaults)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_member(have, key, value) for key, value in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(have) == len(want) and all(map(covers, have, want))
    if isinstance(want, bool | int | float) and isinstance(have, str):
        return str(want).lower() == have.lower()  # Elasticsearch may answer `true` or `2` as strings
    return bool(have == want)


def _member(have: dict[str, Any], key: str, want: Any) -> bool:
    if key not in have:
        return False
    if key == "settings" and isinstance(want, dict) and isinstance(have[key], dict):
        theirs = flat_settings(have[key])
        return all(theirs.get(k) == v for k, v in flat_settings(want).items())
    return covers(have[key], want)


async def drift(client: AsyncElasticsearch, settings: Settings) -> list[str]:
    """What is missing or differs from what setup would install (empty: all in place)."""
    return [obj.label for obj in managed(settings) if not covers(await installed(client, obj), obj.body)]


async def install(client: AsyncElasticsearch, settings: Settings) -> dict[str, str]:
    """Install what is missing or differs; returns each object's fate: created, updated or unchanged."""
    done = {}
    for obj in managed(settings):
        have = await installed(client, obj)
        if have is not None and covers(have, obj.body):
            done[obj.label] = "unchanged"
            continue
        await _put(client, obj)()
        done[obj.label] = "created" if have is None else "updated"
    return done
