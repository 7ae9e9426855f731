"""The log shipper against the Elasticsearch stand-in (osmem behind Jatra's gateway: jatra.stack.es_standin).

osmem indexes for real: it enforces the mappings (a value that does not fit is a 400 for that document) and
refuses a second ``create`` of an ``_id`` (409). What it cannot do, the gateway does on cue: 429 for a whole
bulk or per event, 503 for a whole bulk. An outage is the gateway stopped (osmem keeps the data). Every test
ships into data streams of its own namespace (``logs-jatra.<dataset>-t<random>``), from log files of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from elasticsearch import AsyncElasticsearch
from elasticsearch import ConnectionError as Unreachable
from prometheus_client import REGISTRY

from jatra.infra.elastic import es_client
from jatra.logship import bulk
from jatra.logship.commands import logs
from jatra.logship.documents import data_stream
from jatra.logship.setup import covers, drift, install, managed
from jatra.logship.shipper import Shipper
from jatra.observability import elastic, kibana
from jatra.settings import Settings
from jatra.stack import es_standin
from jatra.stack.elastic import MAX_DOCS, STANDIN_CORES, STANDIN_NICE, ElasticGateway
from jatra.stack.manager import Stack
from tests.fixtures.logs import Logged
from tests.fixtures.stack import paused
from tests.integration.helpers import eventually, sample
from tests.integration.logwriter import booking_events, ecs, write

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "logging" / "generated" / "elasticsearch"
#: the worker's /metrics in the outage test: above every port of the test stack (base + 91)
WORKER_PORT_OFFSET = 98


@pytest.fixture(scope="module", autouse=True)
def stack_shipper_paused(stack: Stack) -> Iterator[None]:
    """These tests set Elasticsearch up and fill the stand-in themselves. The stack's own shipper, if
    earlier tests started the Jatra processes, would race them: its setup (at start, every 5 minutes and
    after a failed pass) and its bulks (which count towards the stand-in's flood stage). Pause it, and
    start it again after."""
    with paused(stack, "logship"):
        yield


@pytest.fixture
def shipping(settings: Settings, tmp_path: Path) -> Settings:
    """Settings of a shipper with log files, cursor and namespace of its own."""
    namespace = "t" + uuid.uuid4().hex[:10]
    return dataclasses.replace(
        settings, state_dir=tmp_path, log_dir=tmp_path / "log", environment=namespace, logship_batch=100
    )


@pytest.fixture
async def es(stack: Stack, settings: Settings) -> AsyncIterator[AsyncElasticsearch]:
    async with es_client(settings) as client:
        await install(client, settings)
        yield client


@pytest.fixture
def gateway_restored(stack: Stack) -> Iterator[Stack]:
    """The stack; whatever a test does to the gateway, it runs again afterwards."""
    yield stack
    stack.up([ElasticGateway()])


async def _more_than(value: Awaitable[int], floor: int) -> bool:
    return await value > floor


def events(outcome: str) -> float:
    return REGISTRY.get_sample_value("jatra_logship_events_total", {"outcome": outcome}) or 0.0


def gauge(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    assert value is not None, name
    return value


def counts() -> dict[str, float]:
    return {o: events(o) for o in ("read", "shipped", "duplicate", "retried", "rejected")}


def delta(before: dict[str, float]) -> dict[str, float]:
    return {k: v - before[k] for k, v in counts().items()}


async def count(es: AsyncElasticsearch, index: str) -> int:
    await es.indices.refresh(index=index, ignore_unavailable=True)
    answer = await es.count(index=index, ignore_unavailable=True)
    return int(answer["count"])


async def seqs(es: AsyncElasticsearch, index: str) -> list[int]:
    await es.indices.refresh(index=index)
    answer = await es.search(index=index, size=10_000, source_includes=["seq"], query={"match_all": {}})
    return sorted(hit["_source"]["seq"] for hit in answer["hits"]["hits"])


def faults(settings: Settings, **wanted: int | str) -> dict[str, Any]:
    body = json.dumps(wanted).encode()
    request = urllib.request.Request(
        f"{settings.elasticsearch}/_standin/faults", data=body, method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as answer:
        state: dict[str, Any] = json.load(answer)
    return state


def env_of(shipping: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "JATRA_STATE_DIR": str(shipping.state_dir),
        "JATRA_LOG_DIR": str(shipping.logs),
        "JATRA_ENVIRONMENT": shipping.environment,
        "JATRA_LOGSHIP_BATCH": str(shipping.logship_batch),
        **extra,
    }


# -- Elasticsearch as code ---------------------------------------------------------------------------------
def test_the_stand_in_takes_only_the_cpu_the_platform_leaves(stack: Stack) -> None:
    """Elasticsearch runs on nodes of its own; its stand-in shares this machine, at the lowest priority:
    every thread at nice 19, and, where the kernel shares the CPU between sessions first, its session too;
    its engine on one core."""
    running = {r.name: r.pids for r in stack.status()}
    for name in ("osmem", "elasticsearch"):
        [pid] = running[name]
        tasks = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
        assert {os.getpriority(os.PRIO_PROCESS, t) for t in tasks} == {STANDIN_NICE}, name
        autogroup = Path(f"/proc/{pid}/autogroup")
        if autogroup.exists():
            assert autogroup.read_text().split()[-1] == str(STANDIN_NICE), name
    # and the engine (Go) on one core at most: on two, its bursts saturated the machine
    [osmem] = running["osmem"]
    environ = Path(f"/proc/{osmem}/environ").read_bytes().split(b"\0")
    assert f"GOMAXPROCS={STANDIN_CORES}".encode() in environ
    [redis] = running["redis"]
    # the platform's own servers are left as they are: as nice as whatever started the stack
    assert os.getpriority(os.PRIO_PROCESS, redis) == os.getpriority(os.PRIO_PROCESS, 0)


async def test_setup_is_idempotent_and_installs_exactly_the_generated_files(
    es: AsyncElasticsearch, settings: Settings
) -> None:
    await es.ilm.delete_lifecycle(name=elastic.POLICY)
    first = await install(es, settings)
    assert first[f"ilm-policy {elastic.POLICY}"] == "created"
    assert set(first.values()) <= {"created", "unchanged"}
    again = await install(es, settings)
    assert set(again.values()) == {"unchanged"} and len(again) == 4
    assert await drift(es, settings) == []

    # what is installed is what `jatra gen` wrote, read back from Elasticsearch
    policy = (await es.ilm.get_lifecycle(name=elastic.POLICY)).body[elastic.POLICY]
    assert {"policy": policy["policy"]} == json.loads((GENERATED / "ilm-policy.jatra-logs.json").read_text())
    for obj in managed(settings):
        on_disk = json.loads((GENERATED / f"{obj.kind}.{obj.name}.json").read_text())
        assert obj.body == on_disk, obj.label
    mappings = (await es.cluster.get_component_template(name=elastic.MAPPINGS_COMPONENT)).body
    installed = mappings["component_templates"][0]["component_template"]
    on_disk = json.loads((GENERATED / "component-template.jatra-logs@mappings.json").read_text())
    assert installed["template"]["mappings"] == on_disk["template"]["mappings"]
    assert (
        installed["_meta"] == on_disk["_meta"]
        and "generated by `jatra gen`" in installed["_meta"]["description"]
    )
    template = (await es.indices.get_index_template(name=elastic.INDEX_TEMPLATE)).body["index_templates"][0]
    assert template["index_template"] == json.loads(
        (GENERATED / "index-template.jatra-logs.json").read_text()
    )

    # a policy changed by hand is drift, and setup puts it back
    await es.ilm.put_lifecycle(
        name=elastic.POLICY, policy={"phases": {"delete": {"min_age": "1d", "actions": {"delete": {}}}}}
    )
    assert await drift(es, settings) == [f"ilm-policy {elastic.POLICY}"]
    result = await asyncio.to_thread(CliRunner().invoke, logs, ["setup", "--check"])
    assert result.exit_code == 1 and "missing or different: ilm-policy jatra-logs" in result.output
    assert (await install(es, settings))[f"ilm-policy {elastic.POLICY}"] == "updated"
    result = await asyncio.to_thread(CliRunner().invoke, logs, ["setup", "--check"])
    assert result.exit_code == 0, result.output


async def test_the_setup_check_compares_what_elasticsearch_answers_not_what_it_was_sent() -> None:
    """Elasticsearch answers with defaults filled in and settings as dotted strings: still as wanted."""
    want = elastic.index_template()
    answered = json.loads(json.dumps(want))
    answered["data_stream"] = {"hidden": False, "allow_custom_routing": False}
    answered["template"]["settings"] = {"index": {"lifecycle": {"name": elastic.POLICY}}}
    assert covers(answered, want)
    answered["template"]["settings"] = {"index": {"lifecycle": {"name": "another"}}}
    assert not covers(answered, want)
    component = elastic.settings_component()
    answered = json.loads(json.dumps(component))
    answered["template"]["settings"] = {
        "index": {"mapping": {"ignore_malformed": "true"}, "codec": "best_compression"}
    }
    assert covers(answered, component)
    assert not covers(None, component)


# -- what arrives ------------------------------------------------------------------------------------------
async def test_lines_arrive_as_written_with_the_mappings_we_chose(
    es: AsyncElasticsearch, shipping: Settings
) -> None:
    lines = [
        ecs("payment.captured", booking_id=str(uuid.uuid4()), status="CAPTURED", amount=779, seq=0),
        ecs("request.rejected", status=503, problem="dependency-unavailable", seq=1),  # a number, same field
        ecs("catalog.timetable.rolled", dates=7, journeys=12, until="2026-12-24", seq=2),
        ecs("catalog.cache.invalidated", dates=["2026-12-01", "2026-12-02"], reason="reseed", seq=3),
        ecs("hold.created", journey_id=469, seats=[77401001, 77401004], hold_id=str(uuid.uuid4()), seq=4),
        ecs("http.request", seq=5, **{"http.response.status_code": 202, "event.duration": 20924427,
                                      "url.path": "/api/v1/holds", "http.route": "/api/v1/holds"}),
        ecs("hold.expired", noticed_by="release", seq=6, note="x" * 2000),  # unmapped; > ignore_above
        ecs("booking.created", amount="not a number", seq=7),  # ignore_malformed: kept, field unindexed
    ]  # fmt: skip
    write(shipping.logs / "payments.log", lines)
    before = counts()
    async with es_client(shipping) as client:
        await Shipper(shipping).drain(client, 30)
    index = data_stream("jatra.payments", shipping.environment)
    assert await count(es, index) == len(lines)
    assert await seqs(es, index) == list(range(len(lines)))
    assert delta(before) == {"read": 8, "shipped": 8, "duplicate": 0, "retried": 0, "rejected": 0}

    props = (await es.indices.get_mapping(index=index)).body[index]["mappings"]["properties"]
    assert props["message"]["type"] == "text" and props["message"]["fields"]["keyword"]["type"] == "keyword"
    for name in ("booking_id", "hold_id", "journey_id", "seats", "status", "dates"):
        assert props[name]["type"] == "keyword", name
    assert props["http"]["properties"]["response"]["properties"]["status_code"]["type"] == "long"
    assert props["event"]["properties"]["duration"]["type"] == "long"
    assert props["amount"]["type"] == "long" and props["until"]["type"] == "date"
    assert props["noticed_by"] == {"type": "keyword", "ignore_above": 1024}  # a string nobody mapped
    assert props["data_stream"]["properties"]["namespace"]["type"] == "keyword"

    async def hits(**term: Any) -> int:
        return int((await es.count(index=index, query={"term": term}))["count"])

    assert await hits(status="503") == 1 and await hits(status="CAPTURED") == 1
    assert await hits(journey_id="469") == 1 and await hits(seats="77401004") == 1
    assert await hits(note="x" * 2000) == 0  # too long to index, still in _source
    found = await es.search(index=index, query={"term": {"seq": 6}})
    assert found["hits"]["hits"][0]["_source"]["note"] == "x" * 2000
    source = found["hits"]["hits"][0]["_source"]
    assert source["data_stream"] == {
        "type": "logs",
        "dataset": "jatra.payments",
        "namespace": shipping.environment,
    }


async def test_non_json_lines_arrive_wrapped(es: AsyncElasticsearch, shipping: Settings) -> None:
    traceback = [
        b"Traceback (most recent call last):",
        b'  File "/srv/jatra/worker.py", line 7, in <module>',
        b"ValueError: \xffnot utf-8",
    ]
    lines = [ecs("worker.started", "jatra.api", seq=0), *(t + b"\n" for t in traceback), b"[1, 2, 3]\n",
             ecs("worker.stopped", "jatra.api", seq=1)]  # fmt: skip
    write(shipping.logs / "api-2.log", lines)
    before = counts()
    async with es_client(shipping) as client:
        await Shipper(shipping).drain(client, 30)
    index = data_stream("jatra.api", shipping.environment)
    assert await count(es, index) == 6 and delta(before)["shipped"] == 6
    wrapped = await es.search(
        index=index, query={"term": {"tags": "unstructured"}}, sort=[{"log.offset": "asc"}]
    )
    docs = [hit["_source"] for hit in wrapped["hits"]["hits"]]
    assert [d["message"] for d in docs] == [
        "Traceback (most recent call last):",
        '  File "/srv/jatra/worker.py", line 7, in <module>',
        "ValueError: \ufffdnot utf-8",
        "[1, 2, 3]",
    ]
    assert {d["event"]["dataset"] for d in docs} == {"jatra.api"}  # api-2 is a replica of the api
    assert {d["log"]["file"]["path"] for d in docs} == {f"{shipping.logs}/api-2.log"}
    assert all(d["@timestamp"] for d in docs)


# -- nothing lost, nothing twice -----------------------------------------------------------------------------
async def test_a_crash_after_the_bulk_and_before_the_commit_duplicates_nothing(
    es: AsyncElasticsearch, shipping: Settings
) -> None:
    total = 300
    write(shipping.logs / "payments.log", [booking_events(n) for n in range(total)])
    index = data_stream("jatra.payments", shipping.environment)
    crashing = Shipper(shipping)

    def crash(_: object) -> None:
        raise RuntimeError("killed after the bulk, before the cursor was saved")

    crashing.follower.commit = crash  # type: ignore[method-assign]
    async with es_client(shipping) as client:
        with pytest.raises(RuntimeError):
            await crashing.drain(client, 30)
        indexed_before_crash = await count(es, index)
        assert 0 < indexed_before_crash < total
        assert not (shipping.state_dir / "logship" / "cursor.json").exists()

        before = counts()
        await Shipper(shipping).drain(client, 30)  # the restarted shipper: from the cursor on disk
    assert await count(es, index) == total
    assert await seqs(es, index) == list(range(total))
    moved = delta(before)
    assert moved["duplicate"] == indexed_before_crash
    assert moved["shipped"] == total - indexed_before_crash
    assert moved["read"] == total and moved["rejected"] == 0
    assert gauge("jatra_logship_lag_bytes") == 0 and gauge("jatra_logship_lag_seconds") == 0


@pytest.mark.slow
async def test_a_shipper_killed_again_and_again_loses_and_duplicates_nothing(
    es: AsyncElasticsearch, shipping: Settings
) -> None:
    """`jatra logs ship` in a process of its own, SIGKILLed as soon as it has indexed something, three times,
    then run to the end."""
    total = 3000
    write(shipping.logs / "payments.log", [booking_events(n) for n in range(total)])
    index = data_stream("jatra.payments", shipping.environment)
    env = env_of(shipping, JATRA_LOGSHIP_BATCH="50")
    command = [sys.executable, "-m", "jatra", "logs", "ship"]
    seen = []
    for _ in range(3):
        start = await count(es, index)
        process = await asyncio.create_subprocess_exec(*command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)

        async def progressed(start: int = start, process: asyncio.subprocess.Process = process) -> bool:
            return process.returncode is not None or await count(es, index) > start

        await eventually(progressed, 60, "the shipper indexed something")
        process.kill()
        await process.wait()
        seen.append(await count(es, index))
    assert any(0 < n < total for n in seen), seen  # killed in the middle of the work
    process = await asyncio.create_subprocess_exec(
        *command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = (await asyncio.wait_for(process.communicate(), 120))[0].decode()
    assert process.returncode == 0, output
    assert await count(es, index) == total
    assert await seqs(es, index) == list(range(total))
    found = re.search(r"(\d+) indexed, (\d+) duplicates, 0 set aside", output)
    assert found, output
    assert int(found[1]) + int(found[2]) >= total - seen[-1] and int(found[2]) <= seen[-1]


@pytest.mark.slow
async def test_an_outage_while_processes_keep_logging_loses_and_duplicates_nothing(
    es: AsyncElasticsearch, shipping: Settings, settings: Settings, gateway_restored: Stack
) -> None:
    """The real worker (`jatra worker logship`) and two real processes logging through Jatra's ECS logging;
    the Elasticsearch gateway stops for a few seconds in the middle and comes back."""
    stack = gateway_restored
    # the worker must install the templates itself, before its first bulk
    await es.indices.delete_index_template(name=elastic.INDEX_TEMPLATE)
    port = settings.ports.base + WORKER_PORT_OFFSET
    env = env_of(shipping, JATRA_LOGSHIP_INTERVAL_S="0.2")
    shipping.logs.mkdir(parents=True)
    # the writers log for 25 s: the outage must begin and end while they do, after the worker (started
    # below, a few seconds on a busy machine) shipped its first events
    per_writer, rate = 2500, 100.0
    writers = []
    for service in ("payments", "notifications"):
        out = (shipping.logs / f"{service}.log").open("ab")
        command = [
            sys.executable,
            "-m",
            "tests.integration.logwriter",
            "--service",
            service,
            "--count",
            str(per_writer),
            "--rate",
            str(rate),
            "--environment",
            shipping.environment,
        ]
        writers.append(await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env, stdout=out,
                                                            stderr=subprocess.STDOUT))  # fmt: skip
    worker_out = (shipping.state_dir / "worker.out").open("ab")  # not in the log dir: counts stay exact
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jatra", "worker", "logship", "--port", str(port),
        cwd=ROOT, env=env, stdout=worker_out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    indices = [data_stream(f"jatra.{s}", shipping.environment) for s in ("payments", "notifications")]

    def metrics() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())

    async def indexed() -> int:
        return sum([await count(es, i) for i in indices])

    try:
        await eventually(lambda: _more_than(indexed(), 0), 60, "the worker shipped something")
        assert await drift(es, shipping) == []  # the worker put the index template back
        stack.down(["elasticsearch"])
        await asyncio.sleep(4)  # the writers keep logging into the files
        assert all(w.returncode is None for w in writers), "the writers finished before the outage ended"
        stack.up([ElasticGateway()])
        for w in writers:
            assert await asyncio.wait_for(w.wait(), 60) == 0
        total = 2 * per_writer
        await eventually(lambda: _more_than(indexed(), total - 1), 90, "everything shipped")
        for i in indices:
            assert await count(es, i) == per_writer
            assert await seqs(es, i) == list(range(per_writer))

        async def caught_up() -> bool:
            text = metrics()
            return sample(text, "jatra_logship_lag_bytes") == sample(text, "jatra_logship_lag_seconds") == 0

        await eventually(caught_up, 30, "the lag back to 0")
        text = metrics()
        got = {o: sample(text, "jatra_logship_events_total", outcome=o) for o in
               ("read", "shipped", "duplicate", "retried", "rejected")}  # fmt: skip
        assert got["shipped"] == total and got["rejected"] == 0
        assert got["retried"] > 0  # it did meet the outage
        assert got["read"] >= got["shipped"] + got["duplicate"]
        assert sample(text, "jatra_logship_lag_bytes") == 0 and sample(text, "jatra_logship_lag_seconds") == 0
        assert sample(text, "jatra_logship_bulk_duration_seconds_count") > 0
    finally:
        for process in [*writers, worker]:
            if process.returncode is None:
                process.terminate()
                await asyncio.wait_for(process.wait(), 15)
        stack.up([ElasticGateway()])


async def test_the_worker_ships_its_own_log_without_feeding_on_it(
    es: AsyncElasticsearch, shipping: Settings, settings: Settings
) -> None:
    """Under supervisord the worker's stdout is one of the logs it ships. Nothing it logs per bulk may be
    at info (the Elasticsearch client logs each request there): each bulk would ship the line the last
    one wrote, for ever."""
    port = settings.ports.base + WORKER_PORT_OFFSET
    shipping.logs.mkdir(parents=True)
    own_log = shipping.logs / "logship.log"
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jatra", "worker", "logship", "--port", str(port), cwd=ROOT,
        env=env_of(shipping, JATRA_LOGSHIP_INTERVAL_S="0.1"), stdout=own_log.open("ab"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    index = data_stream("jatra.logship", shipping.environment)

    def read() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return sample(answer.read().decode(), "jatra_logship_events_total", outcome="read")

    try:
        await eventually(lambda: _more_than(count(es, index), 0), 60, "the worker shipped its own log")
        await asyncio.sleep(1)
        before = read()
        await asyncio.sleep(3)  # some 30 passes
        assert read() == before
        assert await count(es, index) == len(own_log.read_bytes().splitlines()) == before
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.wait(), 15)


async def test_an_outage_longer_than_the_retries_fails_the_pass_and_moves_nothing(
    es: AsyncElasticsearch, shipping: Settings, gateway_restored: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    total = 200
    write(shipping.logs / "payments.log", [booking_events(n) for n in range(total)])
    index = data_stream("jatra.payments", shipping.environment)
    shipper = Shipper(shipping)
    monkeypatch.setattr(bulk, "UNREACHABLE_BUDGET_S", 1.0)
    lag = shipper.follower.lag_bytes()
    gateway_restored.down(["elasticsearch"])
    async with es_client(shipping) as client:
        with pytest.raises(Unreachable):
            await shipper.drain(client, 30)
        assert shipper.follower.lag_bytes() == lag > 0 and gauge("jatra_logship_lag_bytes") == lag
        assert gauge("jatra_logship_lag_seconds") > 0
        gateway_restored.up([ElasticGateway()])
        before = counts()
        await shipper.drain(client, 30)
    assert await count(es, index) == total and delta(before)["shipped"] == total
    assert gauge("jatra_logship_lag_bytes") == 0 and gauge("jatra_logship_lag_seconds") == 0


# -- back-pressure and refusals ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "retried"),
    [({"bulk_429": 2}, 200), ({"item_429": 30}, 30), ({"bulk_503": 2}, 200)],
    ids=["429-whole-bulk", "429-per-item", "503-whole-bulk"],
)
async def test_busy_or_failing_elasticsearch_is_retried_and_nothing_is_lost(
    es: AsyncElasticsearch, shipping: Settings, fault: dict[str, int], retried: int
) -> None:
    total = 100  # one bulk request (logship_batch is 100)
    write(shipping.logs / "payments.log", [booking_events(n) for n in range(total)])
    index = data_stream("jatra.payments", shipping.environment)
    before = counts()
    faults(shipping, **fault, only=index)  # the stack's own shipper writes meanwhile: not its bulks
    async with es_client(shipping) as client:
        await Shipper(shipping).drain(client, 60)
    left = faults(shipping)
    assert (left["bulk_429"], left["bulk_503"], left["item_429"]) == (0, 0, 0)  # every fault was met
    assert await count(es, index) == total
    assert await seqs(es, index) == list(range(total))
    assert delta(before) == {
        "read": total,
        "shipped": total,
        "duplicate": 0,
        "retried": retried,
        "rejected": 0,
    }


async def test_a_document_elasticsearch_refuses_is_set_aside_with_the_reason_and_the_rest_ships(
    es: AsyncElasticsearch, shipping: Settings
) -> None:
    good = [booking_events(n) for n in range(10)]
    bad = ecs("payment.captured", trace="not-an-object", seq=10)  # `trace` is an object in the mapping
    write(shipping.logs / "payments.log", [*good[:5], bad, *good[5:]])
    index = data_stream("jatra.payments", shipping.environment)
    before = counts()
    shipper = Shipper(shipping)
    async with es_client(shipping) as client:
        await shipper.drain(client, 30)
        assert await count(es, index) == 10
        assert delta(before) == {"read": 11, "shipped": 10, "duplicate": 0, "retried": 0, "rejected": 1}
        [aside] = list(shipper.aside)
        assert aside["status"] == 400 and aside["error"]["type"] == "mapper_parsing_exception"
        assert "trace" in aside["error"]["reason"]
        assert (
            aside["line"].encode() + b"\n" == bad
            and aside["index"] == index
            and aside["source"] == "payments"
        )
        assert gauge("jatra_logship_lag_bytes") == 0  # set aside counts as done: the cursor moved on
        await Shipper(shipping).drain(client, 30)  # a restart does not send it again
    assert delta(before)["rejected"] == 1 and shipper.aside.count() == 1


async def test_a_full_stand_in_refuses_writes_and_the_shipper_waits_losing_nothing(
    es: AsyncElasticsearch, shipping: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stand-in's flood stage (osmem keeps everything in memory): past ``max_docs`` every write is a
    429, as past Elasticsearch's disk watermark. The shipper keeps retrying, the lines wait in their files.
    While it waits, the retried counter moves and a warning names Elasticsearch's error type (both came
    only once the batch was settled, or never: a flood stage lasts until someone makes room)."""
    logged = Logged()
    monkeypatch.setattr(bulk, "log", logged)
    monkeypatch.setattr(bulk, "WARN_AFTER_S", 1.0)
    total = 300
    write(shipping.logs / "payments.log", [booking_events(n) for n in range(total)])
    index = data_stream("jatra.payments", shipping.environment)
    held = int((await es.count(index="_all"))["count"])
    faults(shipping, max_docs=held + 50)  # room for the first bulk of 100, not for the second
    before = counts()
    try:
        async with es_client(shipping) as client:
            draining = asyncio.create_task(Shipper(shipping).drain(client, 120))
            await asyncio.sleep(3)
            assert not draining.done()  # waiting: not failed, nothing dropped or set aside
            assert await count(es, index) == 100
            assert gauge("jatra_logship_lag_bytes") > 0 and gauge("jatra_logship_lag_seconds") > 0
            assert delta(before)["retried"] > 0  # counted while the batch waits, not once it is settled

            async def warned() -> bool:
                return any(e["event"] == "logship.bulk.held_back" for e in logged.events)

            await eventually(warned, 60, "a warning about the held-back batch")
            [warning] = [e for e in logged.events if e["event"] == "logship.bulk.held_back"]
            assert warning["log_level"] == "warning" and warning["events"] > 0
            assert warning["error_type"] == "cluster_block_exception" and warning["waited_s"] >= 1.0
            assert delta(before)["retried"] >= 2 * warning["events"]  # before the warning, and with it
            assert not draining.done()
            faults(shipping, max_docs=0)
            await asyncio.wait_for(draining, 60)
    finally:
        faults(shipping, max_docs=MAX_DOCS)
    assert await count(es, index) == total
    assert await seqs(es, index) == list(range(total))
    moved = delta(before)
    assert moved["shipped"] == total and moved["rejected"] == 0 and moved["retried"] > 0


async def test_the_flood_stage_asks_osmem_for_its_count_every_few_seconds_not_every_bulk(
    es: AsyncElasticsearch, shipping: Settings
) -> None:
    """osmem counts by visiting every document (~1 ms of CPU per 1,000 held): asked before every bulk, that
    was most of the stand-in's CPU in a rush. The gateway asks at most every RECOUNT_S and adds what it
    forwarded since, as Elasticsearch reads its disk usage every 30 s, not per write."""
    faults(shipping, max_docs=10**9)  # a new flood stage: the next bulk asks osmem
    log = shipping.logs / "payments.log"
    try:
        for batch in range(3):  # three drains half a second apart, each of one bulk
            write(log, [booking_events(100 * batch + n) for n in range(100)])
            async with es_client(shipping) as client:
                await Shipper(shipping).drain(client, 30)
            if batch < 2:
                await asyncio.sleep(0.5)
        held = await count(es, "_all")
        state = (await es.perform_request("GET", "/_standin/faults")).body
    finally:
        faults(shipping, max_docs=MAX_DOCS)
    assert es_standin.RECOUNT_S > 3
    # counted at the first bulk only (the third came at least 1 s later; RECOUNT_S leaves 4 s for the drains)
    assert state["counted_s_ago"] >= 1, state
    assert state["held"] >= held, state  # its estimate is an upper bound


async def test_the_benchmarks_sink_answers_the_shipper_as_elasticsearch_and_indexes_nothing(
    es: AsyncElasticsearch, shipping: Settings
) -> None:
    """``make bench`` runs the stand-in as a sink (Elasticsearch has nodes of its own; osmem indexing on the
    machine under test took up to 0.75 of a core): the official client and the shipper take its answers as
    Elasticsearch's, every event counts as shipped, and osmem receives none of them."""
    total = 250
    write(shipping.logs / "payments.log", [booking_events(n) for n in range(total)])
    index = data_stream("jatra.payments", shipping.environment)
    before, held = counts(), await count(es, index)
    sunk = faults(shipping, sink=1, only=index)["sunk"]  # this test's bulks only
    try:
        async with es_client(shipping) as client:
            await Shipper(shipping).drain(client, 60)
        after = faults(shipping, sink=0)
    finally:
        faults(shipping, sink=0)
    moved = delta(before)
    assert moved["shipped"] == total and moved["rejected"] == 0 and moved["duplicate"] == 0
    assert after["sunk"] - sunk == total
    assert await count(es, index) == held  # nothing reached osmem


# -- Kibana: the saved searches find what they say ----------------------------------------------------------
def lucene(kql: str) -> str:
    """The KQL of our saved searches (``field : value``, ``and``/``or``, parentheses) as Lucene query syntax,
    which the stand-in understands (Kibana itself translates KQL to the query DSL)."""
    query = re.sub(r"\s*:\s*", ":", kql)
    return query.replace(" or ", " OR ").replace(" and ", " AND ")


async def test_the_saved_searches_find_what_they_promise(es: AsyncElasticsearch, shipping: Settings) -> None:
    booking, trace_id = str(uuid.uuid4()), uuid.uuid4().hex
    lines = {
        "created": ecs("booking.created", "jatra.api", booking_id=booking, trace={"id": trace_id}),
        "request": ecs("http.request", "jatra.api", trace={"id": trace_id}, status=202),
        "failed": ecs("booking.transition", booking_id=booking, to_state="FAILED"),
        "dead": ecs("payment.dead_lettered", level="warning", reason="rejected"),
        "worker_error": ecs("payment.handle.failed", level="error", **{"error.message": "boom"}),
        "api_error": ecs("request.failed", "jatra.api", level="error", problem="internal-error"),
        "confirmed": ecs("booking.transition", booking_id=str(uuid.uuid4()), to_state="CONFIRMED"),
        "retrying": ecs("payment.retrying", level="warning", status=503),
    }  # fmt: skip
    write(shipping.logs / "mixed.log", list(lines.values()))
    async with es_client(shipping) as client:
        await Shipper(shipping).drain(client, 30)
    pattern = f"logs-jatra.*-{shipping.environment}"
    await es.indices.refresh(index=pattern)
    by_message = {json.loads(v)["message"] + json.loads(v).get("to_state", ""): k for k, v in lines.items()}

    async def found(kql: str) -> set[str]:
        answer = await es.search(index=pattern, size=100, query={"query_string": {"query": lucene(kql)}})
        return {
            by_message[h["_source"]["message"] + h["_source"].get("to_state", "")]
            for h in answer["hits"]["hits"]
        }

    searches = {s.id: s for s in kibana.SEARCHES}
    assert await found(searches["jatra-logs-errors-by-service"].kql) == {"worker_error", "api_error"}
    assert await found(searches["jatra-logs-payment-failures"].kql) == {"failed", "dead", "worker_error"}
    one_booking = searches["jatra-logs-booking"].kql.replace("*", f'"{booking}"')
    assert await found(one_booking) == {"created", "failed"}
    one_trace = searches["jatra-logs-trace"].kql.replace("*", f'"{trace_id}"')
    assert await found(one_trace) == {"created", "request"}
