"""The Helm chart (helm/jatra), checked offline with the real tools, for the default and production values:

- `helm lint --strict`, and `helm template`;
- every rendered object against the Kubernetes 1.33 schemas (`kubernetes-validate --strict`), and the custom
  resources (PodMonitor, PrometheusRule, ScaledObject, TriggerAuthentication, ScheduledBackup) against their
  CRDs' schemas vendored in tests/deploy/schemas;
- the PrometheusRule's groups through `promtool check rules`, and that every metric they read is one a
  cluster has (Jatra's own, recorded by a process the chart deploys, or a cluster exporter's);
- the rendered objects against what the code and the design say: probes, resources and hardening of every
  Deployment, the HPA ranges, PDBs, labels and selectors, the Ingress routes and limits of the local gateway,
  network policies, and no secret anywhere but in Secret references.

No cluster runs here: nothing of this was applied to one.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from jatra.app import SERVICES as APP_SERVICES
from jatra.deploy import helm_files
from jatra.gateway import nginx
from jatra.gateway.routes import ROUTES, SERVICES
from jatra.infra import topology
from jatra.observability import exporters
from jatra.observability.promql import metric_names
from jatra.observability.rules import chart_rule_paths
from jatra.settings import Settings
from jatra.stack.base import StackContext
from jatra.stack.monitoring import prometheus_config
from jatra.stack.ports import Ports
from jatra.telemetry import catalogue as c
from jatra.tickets import signing
from jatra.worker import WORKERS

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "jatra"
PRODUCTION = ROOT / "helm" / "values-production.yaml"
SCHEMAS = Path(__file__).parent / "schemas"
BIN = Path(sys.executable).parent
HELM = BIN / "helm"
KUBERNETES_VALIDATE = BIN / "kubernetes-validate"
KUBERNETES_VERSION = "1.33.0"
RELEASE = "jatra"

#: the custom resources the chart renders, and the schema of each (from datreeio/CRDs-catalog, see README)
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com_podmonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrule_v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobject_v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh_triggerauthentication_v1alpha1.json",
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): "postgresql.cnpg.io_scheduledbackup_v1.json",
}
#: HPA ranges from the design documents: (fewest, most, CPU target %); "all other services": 2-10 at 70 %
DESIGN_RANGES = {"seats": (5, 20, 60), "bookings": (3, 15, 65), "payments": (3, 15, 65), "auth": (2, 10, 70)}
OTHER_RANGE = (2, 10, 70)
#: the workers that scale on CPU (the others are singletons), and those that also scale on their queue
CPU_WORKERS = {"outbox", "payments", "notifications"}
QUEUE_WORKERS = {"payments": topology.PAYMENT_REQUESTS, "notifications": topology.NOTIFICATIONS}
#: workers that are not Deployments of their own in the chart: sidecars in every pod, or CloudNativePG's job
NOT_DEPLOYMENTS = {"archive": "sidecar", "logship": "sidecar", "backup": "CloudNativePG"}
#: where the chart mounts the e-ticket key: the path jatra.tickets.signing.signing_key reads (checked below)
TICKET_KEY_PATH = "/var/lib/jatra/secrets/tickets.ed25519.pem"


# -- running the tools ---------------------------------------------------------------------------------------


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=120, check=False)


def helm_template(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run(HELM, "template", RELEASE, CHART, "--namespace", "jatra", *args)


@dataclasses.dataclass(frozen=True)
class Rendered:
    text: str
    docs: list[dict[str, Any]]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.of(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
        return found[0]

    def deployments(self) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in self.of("Deployment")}


@cache
def render(*args: str) -> Rendered:
    result = helm_template(*args)
    assert result.returncode == 0, result.stderr
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return Rendered(result.stdout, [d for d in yaml.load_all(result.stdout, Loader=loader) if d])


#: the values files rendered: the defaults, and the production example on top of them
VARIANTS: dict[str, tuple[Path, ...]] = {"default": (), "production": (PRODUCTION,)}


def args_of(variant: str) -> tuple[str, ...]:
    return tuple(arg for path in VARIANTS[variant] for arg in ("-f", str(path)))


@pytest.fixture(params=list(VARIANTS))
def variant(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def rendered(variant: str) -> Rendered:
    return render(*args_of(variant))


@pytest.fixture
def values(variant: str) -> dict[str, Any]:
    return chart_values(*VARIANTS[variant])


def main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def sidecars(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return list(deployment["spec"]["template"]["spec"].get("initContainers", []))


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def chart_values(*files: Path) -> dict[str, Any]:
    """values.yaml with the files' values merged over it, as Helm does (maps merge, the rest replaces)."""

    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            return {k: merge(base[k], v) if k in base else v for k, v in over.items()} | {
                k: v for k, v in base.items() if k not in over
            }
        return over

    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in files:
        values = merge(values, yaml.safe_load(path.read_text()))
    return values


# -- the tools themselves ------------------------------------------------------------------------------------


def test_the_tools_are_installed() -> None:
    for tool in (HELM, KUBERNETES_VALIDATE):
        assert tool.is_file(), f"{tool} is missing: run the bootstrap (make install)"
    assert shutil.which("promtool"), "promtool is missing (apt-get install prometheus)"


def test_chart_app_version_is_the_project_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == project


def test_helm_lint_strict_passes(variant: str) -> None:
    result = run(HELM, "lint", "--strict", CHART, *args_of(variant))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_every_rendered_object_is_valid_for_kubernetes_1_33(rendered: Rendered, tmp_path: Path) -> None:
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(rendered.text)
    result = run(KUBERNETES_VALIDATE, "-k", KUBERNETES_VERSION, "--strict", manifest)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout
    # every built-in object passed; the only ones without a schema are the custom resources checked below
    passed = result.stdout.count(" passed for resource ")
    custom = [d for d in rendered.docs if (d["apiVersion"], d["kind"]) in CRD_SCHEMAS]
    assert passed == len(rendered.docs) - len(custom)
    skipped = set(re.findall(r"schema for kind (\S+) with api version (\S+)", result.stdout))
    assert skipped == {(d["kind"], d["apiVersion"]) for d in custom}


def test_kubernetes_validate_refuses_a_misspelled_field(tmp_path: Path) -> None:
    """The check above can fail: a field Kubernetes does not know is an error under --strict."""
    pdb = render().named("PodDisruptionBudget", "jatra-seats")
    broken = {**pdb, "spec": {**pdb["spec"], "maxUnavailabel": 1}}
    manifest = tmp_path / "broken.yaml"
    manifest.write_text(yaml.safe_dump(broken))
    result = run(KUBERNETES_VALIDATE, "-k", KUBERNETES_VERSION, "--strict", manifest)
    assert result.returncode != 0
    assert "maxUnavailabel" in result.stdout


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[api_version, kind]).read_text())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    # the schema is well-formed (without checking its patterns' syntax: some are Go regexes, "^(?i)...")
    cls(cls.META_SCHEMA).validate(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def test_custom_resources_match_their_crd_schemas(rendered: Rendered) -> None:
    groups = {d["apiVersion"].split("/")[0] for d in rendered.docs if "/" in d["apiVersion"]}
    custom_groups = {g for g in groups if "." in g and not g.endswith(".k8s.io")}
    custom = [d for d in rendered.docs if d["apiVersion"].split("/")[0] in custom_groups]
    assert {d["kind"] for d in custom} >= {"PodMonitor", "PrometheusRule", "ScaledObject"}
    for doc in custom:
        assert (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS, f"no schema for {doc['kind']}"
        errors = [e.message for e in crd_validator(doc["apiVersion"], doc["kind"]).iter_errors(doc)]
        assert not errors, f"{doc['kind']}/{doc['metadata']['name']}: {errors}"


def test_the_crd_schemas_refuse_a_misspelled_field() -> None:
    monitor = render().named("PodMonitor", "jatra-seats")
    endpoint = {**monitor["spec"]["podMetricsEndpoints"][0], "scrapeIntervall": "5s"}
    broken = {**monitor, "spec": {**monitor["spec"], "podMetricsEndpoints": [endpoint]}}
    errors = list(crd_validator(monitor["apiVersion"], "PodMonitor").iter_errors(broken))
    assert errors


def test_the_scheduled_backup_matches_its_crd_schema() -> None:
    backup = render("-f", str(PRODUCTION)).named("ScheduledBackup", "jatra-db")
    assert not list(crd_validator(backup["apiVersion"], "ScheduledBackup").iter_errors(backup))
    assert backup["spec"]["cluster"]["name"] == chart_values(PRODUCTION)["postgres"]["cluster"]


# -- the generated files the chart ships ---------------------------------------------------------------------


def test_the_chart_files_are_the_generated_ones() -> None:
    """helm/jatra/files/ holds what jatra.deploy.helm_files generates (run it after `jatra gen`)."""
    assert helm_files.stale() == []
    assert {p.parent.name for p in helm_files.files() if p.parent.name} == {"rules", "dashboards"}


def generated_groups() -> list[dict[str, Any]]:
    """The generated groups the chart ships: all but the local stack's own, and the cluster's variants."""
    groups: list[dict[str, Any]] = []
    for path in chart_rule_paths(ROOT):
        groups += yaml.safe_load(path.read_text())["groups"]
    return groups


def annotations_of(groups: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {r["alert"]: r["annotations"] for g in groups for r in g["rules"] if "alert" in r}


def without_links(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The groups with each alert's runbook and dashboard links cut to what the generated files give."""
    groups = copy.deepcopy(groups)
    for notes in annotations_of(groups).values():
        notes["runbook_url"] = f"alerts/runbooks/{notes['runbook_url'].rsplit('/', 1)[-1]}"
        notes["dashboard"] = "/d/" + notes["dashboard"].rsplit("/d/", 1)[-1]
    return groups


def test_the_prometheus_rule_holds_every_generated_group_and_promtool_accepts_it(
    rendered: Rendered, tmp_path: Path
) -> None:
    rule = rendered.named("PrometheusRule", "jatra")
    assert without_links(rule["spec"]["groups"]) == generated_groups()
    rules = tmp_path / "jatra.rules.yml"
    rules.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    result = run(shutil.which("promtool") or "promtool", "check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in generated_groups())
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_alert_links_are_made_absolute_when_their_bases_are_given(
    rendered: Rendered, values: dict[str, Any], variant: str
) -> None:
    """A pager cannot open `alerts/runbooks/X.md`: with the bases set (the production example), every
    alert's runbook and dashboard are absolute links to a runbook that exists and a dashboard the chart
    ships; without them (the defaults), the generated paths are left as they are."""
    rule = values["monitoring"]["prometheusRule"]
    runbooks, grafana = rule.get("runbookBaseUrl", ""), rule.get("grafanaUrl", "")
    generated = annotations_of(generated_groups())
    shipped = {json.loads(p.read_text())["uid"] for p in (CHART / "files" / "dashboards").glob("*.json")}
    rendered_groups = rendered.named("PrometheusRule", "jatra")["spec"]["groups"]
    for name, notes in annotations_of(rendered_groups).items():
        if not runbooks:
            assert notes["runbook_url"] == generated[name]["runbook_url"]
        else:
            assert notes["runbook_url"] == f"{runbooks}/{name}.md"
            assert (ROOT / "alerts" / "runbooks" / f"{name}.md").is_file()
        uid = notes["dashboard"].rsplit("/d/", 1)[-1]
        assert uid in shipped, f"{name}: no dashboard {uid} in the chart"
        assert notes["dashboard"] == (f"{grafana}/d/{uid}" if grafana else generated[name]["dashboard"])
    assert bool(runbooks) == bool(grafana) == (variant == "production")  # both variants are exercised


#: where the local stack's instruments are made: its supervisord listener and exporters, and the backup worker
#: (pgBackRest next to PGDATA), which the chart leaves to CloudNativePG (NOT_DEPLOYMENTS)
LOCAL_ONLY_CODE = (ROOT / "platform" / "jatra" / "stack", ROOT / "platform" / "jatra" / "backup")


def cluster_metrics() -> set[str]:
    """The series a cluster that meets the chart's prerequisites has: Jatra's own but those only the local
    stack records, and those of the exporters a cluster runs (kube-state-metrics, CloudNativePG and its
    Pooler and Barman Cloud plugin, RabbitMQ's plugin, Prometheus's ``up``)."""
    jatra = {s for spec in c.CATALOGUE.values() if spec.name not in exporters.LOCAL_ONLY for s in spec.series}
    return jatra | {name for name, exporter in exporters.ALL.items() if exporter in exporters.IN_CLUSTER}


def test_jatra_metrics_declared_local_only_are_those_of_the_local_only_code() -> None:
    """An instrument made in the local stack's code or the backup worker is declared local-only (and so
    kept out of the chart's rules), and only those are."""
    made = {
        name
        for folder in LOCAL_ONLY_CODE
        for path in folder.rglob("*.py")
        for name in re.findall(r"\b(?:counter|gauge|histogram)\(c\.([A-Z_]+)\)", path.read_text())
    }
    assert made and {getattr(c, name).name for name in made} == set(exporters.LOCAL_ONLY)
    assert NOT_DEPLOYMENTS["backup"] == "CloudNativePG"


def test_every_metric_the_prometheus_rule_reads_exists_in_a_cluster(rendered: Rendered) -> None:
    """A rule on a metric no process of a cluster exports can never fire there: not postgres_exporter's
    pg_up or pgbouncer_exporter's (only the local stack runs them), not supervisord's restarts, not the
    backup worker's timestamps. The local stack's variants stay in alerts/generated/*.local.rules.yml."""
    groups = rendered.named("PrometheusRule", "jatra")["spec"]["groups"]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    known = cluster_metrics() | recorded
    unknown = {
        rule.get("alert") or rule["record"]: sorted(metric_names(rule["expr"]) - known)
        for group in groups
        for rule in group["rules"]
        if metric_names(rule["expr"]) - known
    }
    assert unknown == {}, "the chart ships rules on metrics no cluster exports: give them a cluster variant"
    # and the alerts the chart replaced by cluster variants are there, on cluster metrics
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    assert {"PostgresDown", "PgBouncerDown", "BackupTooOld", "WALArchivingStalled"} <= alerts
    assert {"JatraProcessRestarting", "PostgresConnectionsNearLimit", "PgBouncerClientsWaiting"} <= alerts


def test_the_cluster_metrics_check_refuses_the_local_stacks_rules() -> None:
    """The check above fails on the rules the chart shipped before: the local stack's own."""
    local = sorted((ROOT / "alerts" / "generated").glob("*.local.rules.yml"))
    exprs = [r["expr"] for p in local for g in yaml.safe_load(p.read_text())["groups"] for r in g["rules"]]
    unknown = {name for expr in exprs for name in metric_names(expr)} - cluster_metrics()
    assert {"pg_up", "pgbouncer_up", "jatra_process_restarts_total"} <= unknown
    assert "jatra_backup_last_success_timestamp_seconds" in unknown


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    rules = tmp_path / "broken.rules.yml"
    rules.write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"alert": "X", "expr": "sum by ("}]}]})
    )
    assert run(shutil.which("promtool") or "promtool", "check", "rules", rules).returncode != 0


def test_every_generated_dashboard_is_a_configmap_for_the_grafana_sidecar(rendered: Rendered) -> None:
    maps = [m for m in rendered.of("ConfigMap") if m["metadata"]["labels"].get("grafana_dashboard") == "1"]
    shipped = {key: json.loads(text) for m in maps for key, text in m["data"].items()}
    generated = {
        p.name: json.loads(p.read_text()) for p in (ROOT / "dashboards" / "generated").glob("*.json")
    }
    assert generated
    assert shipped == generated
    assert all(len(m["data"]) == 1 for m in maps)


# -- what every process gets ---------------------------------------------------------------------------------


def test_every_service_and_worker_is_a_deployment(rendered: Rendered) -> None:
    deployments = set(rendered.deployments())
    expected = set(SERVICES) | (set(WORKERS) - set(NOT_DEPLOYMENTS))
    assert expected <= deployments
    assert deployments - expected <= {"payment-provider"}
    values = chart_values()
    assert set(values["services"]) == set(SERVICES) == set(APP_SERVICES)
    assert set(values["workers"]) | set(NOT_DEPLOYMENTS) == set(WORKERS)


def check_probe(probe: dict[str, Any], path: str, port: str) -> None:
    assert probe["httpGet"] == {"path": path, "port": port}
    assert 1 <= probe["timeoutSeconds"] < probe["periodSeconds"]
    assert probe["failureThreshold"] >= 1


def check_hardened(container: dict[str, Any]) -> None:
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) >= {"cpu", "memory"}, f"{container['name']}: {kind}"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    writable = {path for path, mount in mounts.items() if not mount.get("readOnly")}
    assert writable == {"/tmp", "/var/lib/jatra", "/var/log/jatra"}
    # the only read-only mount is the e-ticket key (see test_the_ticket_key_is_one_secret_...)
    assert set(mounts) - writable <= {TICKET_KEY_PATH}


def test_every_deployment_is_probed_sized_and_hardened(rendered: Rendered) -> None:
    for name, deployment in rendered.deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        container = main_container(deployment)
        check_probe(container["livenessProbe"], "/health", "http")
        check_probe(container["readinessProbe"], "/ready", "http")
        check_probe(container["startupProbe"], "/health", "http")
        check_hardened(container)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in pod["volumes"]}
        writable = [m for m in container["volumeMounts"] if not m.get("readOnly")]
        assert all("emptyDir" in volumes[m["name"]] for m in writable)
        assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [("http", 8000)]
        args = container["args"]
        assert args == [("worker" if name in WORKERS else "serve"), name, "--port", "8000"]
        assert {"configMapRef": {"name": "jatra-config"}} in container["envFrom"]
        spread = pod["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} >= {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert all(c["labelSelector"]["matchLabels"] == selector for c in spread)
        for sidecar in sidecars(deployment):
            assert sidecar["restartPolicy"] == "Always", "a native sidecar"
            check_probe(sidecar["livenessProbe"], "/health", sidecar["name"])
            check_hardened(sidecar)


def test_the_sidecars_follow_the_log_file_only_when_enabled() -> None:
    on = render()
    for deployment in on.deployments().values():
        assert [s["name"] for s in sidecars(deployment)] == ["archive"]
        assert (
            env_of(main_container(deployment))["JATRA_LOG_FILE"]["value"] == "/var/log/jatra/$(POD_NAME).log"
        )
        # the sidecar logs to stdout only: it must never write (and rotate) the file it follows
        (archive,) = sidecars(deployment)
        assert "JATRA_LOG_FILE" not in env_of(archive)
        assert archive["args"] == ["worker", "archive", "--port", "8001"]
    both = render("--set", "logship.enabled=true")
    for deployment in both.deployments().values():
        assert [s["name"] for s in sidecars(deployment)] == ["archive", "logship"]
    off = render("--set", "archive.enabled=false")
    for deployment in off.deployments().values():
        assert not sidecars(deployment)
        assert "JATRA_LOG_FILE" not in env_of(main_container(deployment))


def test_each_process_gets_exactly_the_connections_its_code_needs(rendered: Rendered) -> None:
    code = {name: spec.needs for name, spec in APP_SERVICES.items()}
    code |= {name: spec.needs for name, spec in WORKERS.items()}
    for name, deployment in rendered.deployments().items():
        env = env_of(main_container(deployment))
        needs = code.get(name, frozenset())
        assert ("JATRA_DATABASE_URL" in env) == ("db" in needs), name
        assert ("JATRA_DATABASE_LISTEN_URL" in env) == ("dblisten" in needs), name
        assert ("JATRA_REDIS_URL" in env) == ("redis" in needs), name
        assert ("JATRA_AMQP_URL" in env) == ("amqp" in needs), name
        assert ("JATRA_JWT_SECRET" in env) == (name in SERVICES), name
        assert "JATRA_DATABASE_ADMIN_URL" not in env


def ticket_key_processes() -> set[str]:
    """The processes whose code signs or verifies e-tickets: those whose entry module calls
    jatra.tickets.signing.signing_key. Every caller must be such a module, so that a new one is noticed."""
    # (jatra.archive has a signing module and a signing_key of its own: the import tells them apart)
    imported = re.compile(r"^from jatra\.tickets import [^\n]*\bsigning\b", re.M)
    direct = re.compile(r"^from jatra\.tickets\.signing import [^\n]*\bsigning_key\b", re.M)

    def calls_it(text: str) -> bool:
        return bool(direct.search(text)) or (bool(imported.search(text)) and "signing.signing_key(" in text)

    platform = ROOT / "platform"
    callers = {
        ".".join(path.relative_to(platform).with_suffix("").parts)
        for path in (platform / "jatra").rglob("*.py")
        if path != platform / "jatra" / "tickets" / "signing.py" and calls_it(path.read_text())
    }
    entry = {name: spec.factory.split(":")[0] for name, spec in APP_SERVICES.items()}
    entry |= {name: spec.iteration.split(":")[0] for name, spec in WORKERS.items()}
    assert callers <= set(entry.values()), f"signing_key called outside a process's entry module: {callers}"
    return {name for name, module in entry.items() if module in callers}


def test_the_ticket_key_path_is_where_the_code_reads_it(rendered: Rendered, tmp_path: Path) -> None:
    key = signing.signing_key(Settings(state_dir=tmp_path))  # creates the key where it would read it
    (created,) = [p for p in tmp_path.rglob("*") if p.is_file()]
    # and, the file being there, reads it rather than making another (the pods' key is never replaced)
    assert signing.public_pem(signing.signing_key(Settings(state_dir=tmp_path))) == signing.public_pem(key)
    state_dir = rendered.named("ConfigMap", "jatra-config")["data"]["JATRA_STATE_DIR"]
    assert f"{state_dir}/{created.relative_to(tmp_path).as_posix()}" == TICKET_KEY_PATH


def ticket_key_mounts(rendered: Rendered, secret: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Process -> the (container, mount) pairs of its pods that mount the Secret or the key's path."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, deployment in rendered.deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in [*pod["containers"], *pod.get("initContainers", [])]:
            for mount in container["volumeMounts"]:
                source = volumes[mount["name"]].get("secret", {}).get("secretName")
                if source == secret or mount["mountPath"] == TICKET_KEY_PATH:
                    found.setdefault(name, []).append((container["name"], mount))
    return found


@pytest.mark.parametrize("secret", ["", "jatra-ticket-key-2"])
def test_the_ticket_key_is_one_secret_mounted_read_only_where_the_code_reads_it(
    variant: str, secret: str
) -> None:
    """The processes that sign or verify tickets mount the same Secret, read-only, at the path the code
    reads, so a ticket signed by any pod verifies on any other; no other process or sidecar mounts it."""
    signers = ticket_key_processes()
    assert signers == {"bookings", "notifications"}, signers
    settings = chart_values(*VARIANTS[variant])["tickets"]
    rendered = render(*args_of(variant), *(("--set", f"tickets.existingSecret={secret}") if secret else ()))
    name = secret or settings["existingSecret"]
    assert not rendered.of("Secret"), "the chart references the key, it never holds it"
    mounts = ticket_key_mounts(rendered, name)
    assert set(mounts) == signers, set(mounts) ^ signers
    for process in signers:
        pod = rendered.deployments()[process]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert [container for container, _ in mounts[process]] == ["jatra"], "the process only, no sidecar"
        ((_, mount),) = mounts[process]
        assert mount["mountPath"] == TICKET_KEY_PATH
        assert mount["readOnly"] is True
        assert volumes[mount["name"]]["secret"] == {
            "secretName": name,
            "items": [{"key": settings["signingKeyKey"], "path": mount["subPath"]}],
            "defaultMode": 0o440,
        }
        # one file over the state emptyDir, which stays writable for the rest of /var/lib/jatra
        state = {m["mountPath"]: m for m in main_container(rendered.deployments()[process])["volumeMounts"]}
        assert "emptyDir" in volumes[state["/var/lib/jatra"]["name"]]
        assert not state["/var/lib/jatra"].get("readOnly")


def test_singletons_run_one_pod_that_never_overlaps(rendered: Rendered) -> None:
    for name, deployment in rendered.deployments().items():
        if name in WORKERS and name not in CPU_WORKERS:
            assert deployment["spec"]["replicas"] == 1
            assert deployment["spec"]["strategy"] == {"type": "Recreate"}


# -- scaling -------------------------------------------------------------------------------------------------


def autoscalers(rendered: Rendered) -> dict[str, tuple[str, int, int, int]]:
    """Process -> (HPA name, fewest, most, CPU target) from the HPAs and the ScaledObjects."""
    out = {}
    for hpa in rendered.of("HorizontalPodAutoscaler"):
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        target = metric["resource"]["target"]["averageUtilization"]
        name = hpa["spec"]["scaleTargetRef"]["name"].removeprefix("jatra-")
        out[name] = (hpa["metadata"]["name"], hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"], target)
    for scaled in rendered.of("ScaledObject"):
        spec = scaled["spec"]
        (cpu,) = [t for t in spec["triggers"] if t["type"] == "cpu"]
        hpa_name = spec["advanced"]["horizontalPodAutoscalerConfig"]["name"]
        name = spec["scaleTargetRef"]["name"].removeprefix("jatra-")
        assert name not in out, f"{name} has an HPA and a ScaledObject"
        out[name] = (
            hpa_name,
            spec["minReplicaCount"],
            spec["maxReplicaCount"],
            int(cpu["metadata"]["value"]),
        )
    return out


def test_autoscalers_are_within_the_design_ranges(rendered: Rendered) -> None:
    scaled = autoscalers(rendered)
    assert set(scaled) == set(SERVICES) | CPU_WORKERS
    deployments = rendered.deployments()
    for name, (hpa, fewest, most, target) in scaled.items():
        low, high, design_target = DESIGN_RANGES.get(name, OTHER_RANGE)
        assert low <= fewest <= most <= high, f"{name}: {fewest}-{most} is outside {low}-{high}"
        assert target == design_target, name
        # kube-state-metrics labels the series with the HPA's name; the dashboards and alerts select jatra-.*
        assert hpa == f"jatra-{name}"
        assert re.fullmatch("jatra-.*", hpa)
        assert "replicas" not in deployments[name]["spec"], "the HPA owns the replica count"


def test_the_queue_workers_scale_on_their_queue_through_keda(rendered: Rendered) -> None:
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in rendered.of("ScaledObject")}
    assert set(scaled) == {f"jatra-{w}" for w in QUEUE_WORKERS}
    auth = rendered.named("TriggerAuthentication", "jatra-rabbitmq")
    assert [p["parameter"] for p in auth["spec"]["secretTargetRef"]] == ["host"]
    for worker, queue in QUEUE_WORKERS.items():
        (trigger,) = [t for t in scaled[f"jatra-{worker}"]["spec"]["triggers"] if t["type"] == "rabbitmq"]
        assert trigger["metadata"]["queueName"] == queue
        assert trigger["metadata"]["mode"] == "QueueLength"
        assert int(trigger["metadata"]["value"]) >= 1
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]


def test_without_keda_the_queue_workers_fall_back_to_cpu_hpas() -> None:
    rendered = render("--set", "keda.enabled=false")
    assert not rendered.of("ScaledObject")
    assert not rendered.of("TriggerAuthentication")
    for worker in QUEUE_WORKERS:
        hpa = rendered.named("HorizontalPodAutoscaler", f"jatra-{worker}")
        low, high, target = DESIGN_RANGES.get(worker, OTHER_RANGE)
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (low, high)
        assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == target


def test_labels_and_selectors_agree(rendered: Rendered) -> None:
    deployments = rendered.deployments()
    pdbs = {p["metadata"]["name"]: p for p in rendered.of("PodDisruptionBudget")}
    monitors = {m["metadata"]["name"]: m for m in rendered.of("PodMonitor")}
    services = {s["metadata"]["name"]: s for s in rendered.of("Service")}
    policies = {p["metadata"]["name"]: p for p in rendered.of("NetworkPolicy")}
    for name, deployment in deployments.items():
        full = f"jatra-{name}"
        assert deployment["metadata"]["name"] == full
        selector = deployment["spec"]["selector"]["matchLabels"]
        pod = deployment["spec"]["template"]
        labels = pod["metadata"]["labels"]
        assert matches(selector, labels)
        assert selector["app.kubernetes.io/component"] == name
        # one PDB, monitor and policy per process, selecting exactly its pods
        assert pdbs[full]["spec"]["selector"]["matchLabels"] == selector
        assert monitors[full]["spec"]["selector"]["matchLabels"] == selector
        assert policies[full]["spec"]["podSelector"]["matchLabels"] == selector
        ports = {p["name"] for c in [*pod["spec"]["containers"], *sidecars(deployment)] for p in c["ports"]}
        assert {e["port"] for e in monitors[full]["spec"]["podMetricsEndpoints"]} == ports
        if full in services:
            assert services[full]["spec"]["selector"] == selector
            assert {p["targetPort"] for p in services[full]["spec"]["ports"]} <= ports
    # every other selector selects some Deployment's pods: nothing selects nothing (but the broker's monitor,
    # which selects the RabbitmqCluster's pods: tested below)
    monitors.pop("jatra-rabbitmq", None)
    for other in [*pdbs.values(), *monitors.values()]:
        assert other["metadata"]["name"].removeprefix("jatra-") in deployments
    for hpa in rendered.of("HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in {d["metadata"]["name"] for d in deployments.values()}
    assert set(services) == {f"jatra-{s}" for s in deployments if s in SERVICES or s == "payment-provider"}


def test_every_deployment_has_a_pod_disruption_budget(rendered: Rendered) -> None:
    pdbs = {p["metadata"]["name"]: p["spec"] for p in rendered.of("PodDisruptionBudget")}
    for deployment in rendered.deployments().values():
        spec = pdbs[deployment["metadata"]["name"]]
        assert ("maxUnavailable" in spec) != ("minAvailable" in spec)
        assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_the_monitors_label_series_as_the_local_stack_does(
    rendered: Rendered, values: dict[str, Any]
) -> None:
    environment = values["environment"]
    for monitor in rendered.of("PodMonitor"):
        if monitor["metadata"]["name"].endswith("-rabbitmq"):
            continue  # the broker's (below)
        process = monitor["metadata"]["name"].removeprefix("jatra-")
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert endpoint["path"] == "/metrics"
            labels = {r["targetLabel"]: r.get("replacement") for r in endpoint["relabelings"]}
            expected = process if endpoint["port"] == "http" else endpoint["port"]
            assert labels["job"] == "jatra"
            assert labels["process"] == expected
            assert labels["environment"] == environment


def test_the_broker_is_scraped_as_the_local_stack_scrapes_it(
    rendered: Rendered, values: dict[str, Any], tmp_path: Path
) -> None:
    """RabbitMQDown, the broker's alarms and the queue alerts select job rabbitmq or rabbitmq-queues and
    group by environment: the chart's monitor of the RabbitmqCluster sets both, with the local stack's
    paths and parameters, on the Cluster Operator's pods."""
    local = yaml.safe_load(prometheus_config(StackContext(tmp_path, Ports(40000))))["scrape_configs"]
    jobs = {j["job_name"]: j for j in local if j["job_name"].startswith("rabbitmq")}
    assert set(jobs) == {"rabbitmq", "rabbitmq-queues"}
    (monitor,) = [m for m in rendered.of("PodMonitor") if m["metadata"]["name"].endswith("-rabbitmq")]
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": values["rabbitmq"]["cluster"],
        "app.kubernetes.io/component": "rabbitmq",
    }
    endpoints = {}
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        labels = {r["targetLabel"]: r.get("replacement") for r in endpoint["relabelings"]}
        assert labels["environment"] == values["environment"]
        endpoints[labels["job"]] = endpoint
    assert set(endpoints) == set(jobs)
    for name, job in jobs.items():
        assert endpoints[name]["path"] == job.get("metrics_path", "/metrics")
        assert endpoints[name].get("params", {}) == job.get("params", {})
        assert endpoints[name]["port"] == values["monitoring"]["rabbitmq"]["port"]
    # the rules that need it
    rules = [r["expr"] for g in rendered.of("PrometheusRule")[0]["spec"]["groups"] for r in g["rules"]]
    assert any('job="rabbitmq"' in expr for expr in rules)
    for switch in ("monitoring.rabbitmq.enabled=false", "monitoring.podMonitor.enabled=false"):
        off = render(*args_of("default"), "--set", switch)
        assert not [m for m in off.of("PodMonitor") if m["metadata"]["name"].endswith("-rabbitmq")]
    tls = render(*args_of("default"), "--set", "monitoring.rabbitmq.scheme=https",
                 "--set", "monitoring.rabbitmq.tlsConfig.serverName=jatra-rabbitmq")  # fmt: skip
    (secure,) = [m for m in tls.of("PodMonitor") if m["metadata"]["name"].endswith("-rabbitmq")]
    for endpoint in secure["spec"]["podMetricsEndpoints"]:
        assert endpoint["scheme"] == "https" and endpoint["tlsConfig"] == {"serverName": "jatra-rabbitmq"}


def test_config_changes_roll_the_pods() -> None:
    before = render().named("Deployment", "jatra-seats")["spec"]["template"]["metadata"]["annotations"]
    after = render("--set", "config.JATRA_LOG_LEVEL=DEBUG").named("Deployment", "jatra-seats")
    assert (
        before["checksum/config"] != after["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    )


# -- the edge: the Ingress carries the local gateway's routes and limits -------------------------------------


def ingress_routes(rendered: Rendered) -> set[tuple[str, str, str, str]]:
    """(path, pathType, service, limit class) of every path of the Ingresses."""
    out = set()
    for ingress in rendered.of("Ingress"):
        limit = ingress["metadata"]["name"].removeprefix("jatra-")
        (rule,) = ingress["spec"]["rules"]
        for path in rule["http"]["paths"]:
            service = path["backend"]["service"]["name"].removeprefix("jatra-")
            assert path["backend"]["service"]["port"] == {"name": "http"}
            out.add((path["path"], path["pathType"], service, limit))
    return out


def test_the_ingress_paths_equal_the_gateway_routes(rendered: Rendered) -> None:
    kinds = {"exact": "Exact", "prefix": "Prefix", "regex": "ImplementationSpecific"}
    # an Ingress path must start with "/": a regex route's "^" anchor is implied (ingress-nginx adds it)
    expected = {(r.path.removeprefix("^"), kinds[r.kind], r.service, r.limit) for r in ROUTES}
    assert ingress_routes(rendered) == expected
    assert len(expected) == len(ROUTES)


def test_a_regex_route_compiles_and_matches_like_the_gateway() -> None:
    for route in ROUTES:
        if route.kind == "regex":
            pattern = re.compile("^" + route.path.removeprefix("^"))
            assert pattern.match("/api/v1/journeys/12/seats")
            assert route.matches("/api/v1/journeys/12/seats")


def gateway_limits() -> dict[str, str]:
    """The local gateway's numbers, read from the nginx configuration it renders."""
    site = nginx.Site(
        listen="127.0.0.1:1", upstreams={s: ["127.0.0.1:2"] for s in SERVICES}, pid="p", error_log="e",
        access_log="a", temp_dir="t",
    )  # fmt: skip
    conf = nginx.render(site, "test")

    def one(pattern: str) -> str:
        (value,) = set(re.findall(pattern, conf))
        return str(value)

    return {
        "api-rps": one(r"zone=per_client:\S+ rate=(\d+)r/s"),
        "auth-rps": one(r"zone=per_client_auth:\S+ rate=(\d+)r/s"),
        "api-burst": one(r"zone=per_client burst=(\d+)"),
        "auth-burst": one(r"zone=per_client_auth burst=(\d+)"),
        "body": one(r"client_max_body_size (\S+);"),
        "connect": one(r"proxy_connect_timeout (\d+)s;"),
        "send": one(r"proxy_send_timeout (\d+)s;"),
        "read": one(r"proxy_read_timeout (\d+)s;"),
        "tries": one(r"proxy_next_upstream_tries (\d+);"),
        "next": one(r"proxy_next_upstream (error[^;]*);"),
    }


def test_the_ingress_limits_equal_the_gateway_limits(rendered: Rendered) -> None:
    gateway = gateway_limits()
    prefix = "nginx.ingress.kubernetes.io/"
    for ingress in rendered.of("Ingress"):
        limit = ingress["metadata"]["name"].removeprefix("jatra-")
        notes = {k.removeprefix(prefix): v for k, v in ingress["metadata"]["annotations"].items()}
        assert notes["limit-rps"] == gateway[f"{limit}-rps"]
        assert int(notes["limit-rps"]) * int(notes["limit-burst-multiplier"]) == int(
            gateway[f"{limit}-burst"]
        )
        assert notes["proxy-body-size"] == gateway["body"]
        assert notes["proxy-connect-timeout"] == gateway["connect"]
        assert notes["proxy-send-timeout"] == gateway["send"]
        assert notes["proxy-read-timeout"] == gateway["read"]
        assert notes["proxy-next-upstream-tries"] == gateway["tries"]
        assert notes["proxy-next-upstream"] == gateway["next"]
        assert notes["use-regex"] == "true"


# -- network policies ----------------------------------------------------------------------------------------


#: what the code reaches beyond db, redis and amqp: the payment provider (settings.provider) and SMTP
PROVIDER_CLIENTS = {"payments", "reconciler"}
SMTP_CLIENTS = {"notifications"}


def expected_egress(name: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The egress rules a process's policy must have, from the values, in any order."""
    rules = values["networkPolicy"]["egress"]
    needs = {n: s.needs for n, s in APP_SERVICES.items()} | {n: s.needs for n, s in WORKERS.items()}
    need = needs.get(name, frozenset())
    wanted = ["dns"]
    wanted += [e for e, n in (("postgres", "db"), ("redis", "redis"), ("rabbitmq", "amqp")) if n in need]
    wanted += ["smtp"] * (name in SMTP_CLIENTS)
    if name in PROVIDER_CLIENTS and not values["paymentProvider"]["simulator"]["enabled"]:
        wanted.append("paymentProvider")
    wanted += ["otlp"] * bool(values["telemetry"]["otlpEndpoint"])
    wanted += ["s3"] * values["archive"]["enabled"] + ["elasticsearch"] * values["logship"]["enabled"]
    return [rules[w] for w in wanted]


def same_items(a: list[Any], b: list[Any]) -> bool:
    return sorted(json.dumps(x, sort_keys=True) for x in a) == sorted(
        json.dumps(x, sort_keys=True) for x in b
    )


def test_network_policies_deny_by_default_and_allow_what_each_process_needs(
    rendered: Rendered, values: dict[str, Any]
) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in rendered.of("NetworkPolicy")}
    deny = policies["jatra-default-deny"]
    assert set(deny) == {"podSelector", "policyTypes"}, "no rule: everything is denied"
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    job = rendered.named("Job", "jatra-migrate")["spec"]["template"]["metadata"]["labels"]
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in rendered.deployments().values()] + [job]
    assert all(matches(deny["podSelector"]["matchLabels"], labels) for labels in pods)
    np = values["networkPolicy"]
    for name in rendered.deployments():
        spec = policies[f"jatra-{name}"]
        endpoints = rendered.named("PodMonitor", f"jatra-{name}")["spec"]["podMetricsEndpoints"]
        metrics = [{"port": e["port"], "protocol": "TCP"} for e in endpoints]
        assert {"from": np["prometheus"], "ports": metrics} in spec["ingress"]
        from_edge = {"from": np["ingressController"], "ports": [{"port": "http", "protocol": "TCP"}]}
        assert (from_edge in spec["ingress"]) == (name in SERVICES), name
        egress = [
            r for r in spec["egress"] if "podSelector" not in r["to"][0] or "namespaceSelector" in r["to"][0]
        ]
        assert same_items(egress, expected_egress(name, values)), name
        to_simulator = [r for r in spec["egress"] if r not in egress]
        simulated = values["paymentProvider"]["simulator"]["enabled"] and name in PROVIDER_CLIENTS
        assert len(to_simulator) == simulated, name
    migrate = policies["jatra-migrate"]
    assert "ingress" not in migrate
    assert same_items(migrate["egress"], [np["egress"]["dns"], np["egress"]["postgres"]])


def test_only_the_payment_workers_reach_the_simulator() -> None:
    policy = render().named("NetworkPolicy", "jatra-payment-provider")["spec"]
    clients = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in policy["ingress"]
        for peer in rule["from"]
        if "namespaceSelector" not in peer
    }
    assert clients == {"payments", "reconciler"}


# -- the migrations ------------------------------------------------------------------------------------------


def test_migrations_run_as_a_hook_before_install_and_upgrade(rendered: Rendered) -> None:
    (job,) = rendered.of("Job")
    notes = job["metadata"]["annotations"]
    assert set(notes["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert set(notes["helm.sh/hook-delete-policy"].split(",")) == {"before-hook-creation", "hook-succeeded"}
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["migrate"]
    check_hardened(container)
    env = env_of(container)
    assert "JATRA_DATABASE_ADMIN_URL" in env
    # it runs before the release's objects exist: it may not depend on them
    assert "envFrom" not in container
    assert "serviceAccountName" not in pod
    assert pod["automountServiceAccountToken"] is False


# -- secrets -------------------------------------------------------------------------------------------------

#: a URL carrying a password (user:password@), other than a $(VAR) the pod expands from a Secret
CREDENTIAL_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:(?!\$\()[^/\s@]+@", re.IGNORECASE)
SECRETISH_KEY = re.compile(r"password|passwd|secret|token|private", re.IGNORECASE)
#: keys that name a Secret or a key in one, never hold a value
REFERENCE_KEY = re.compile(r"(existingSecret|Key|secretName|key|connectionSecret)$")
PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def leaks(data: Any, path: str = "") -> Iterator[str]:
    """Where a structure holds something that looks like a secret value."""
    if isinstance(data, dict):
        for key, value in data.items():
            here = f"{path}.{key}"
            secretish = SECRETISH_KEY.search(str(key)) and not REFERENCE_KEY.search(str(key))
            if isinstance(value, str) and value and secretish:
                yield f"{here}: a secret-looking key holds a value"
            yield from leaks(value, here)
    elif isinstance(data, list):
        for n, item in enumerate(data):
            yield from leaks(item, f"{path}[{n}]")
    elif isinstance(data, str) and (CREDENTIAL_URL.search(data) or PEM.search(data)):
        yield f"{path}: {data[:60]}"


def test_the_leak_detector_finds_secrets() -> None:
    """The checks below can fail."""
    assert list(leaks({"url": "postgresql+asyncpg://jatra:hunter2@db:5432/jatra"}))
    assert list(leaks({"JATRA_JWT_SECRET": "s3cr3t"}))
    assert list(leaks({"data": {"JATRA_S3_SECRET_KEY": "s3cr3t"}}))
    assert list(leaks({"key": "-----BEGIN PRIVATE KEY-----\nabc"}))
    assert not list(leaks({"url": "amqp://$(AMQP_USERNAME):$(AMQP_PASSWORD)@rabbit:5672/"}))
    assert not list(leaks({"existingSecret": "jatra-jwt", "passwordKey": "password"}))


@pytest.mark.parametrize("path", [CHART / "values.yaml", PRODUCTION])
def test_no_secret_in_the_values_files(path: Path) -> None:
    assert not list(leaks(yaml.safe_load(path.read_text())))


def test_no_secret_in_rendered_configmaps_or_env_values(rendered: Rendered) -> None:
    assert not rendered.of("Secret"), "the chart references Secrets, it never holds one"
    for config in rendered.of("ConfigMap"):
        assert not list(leaks(config["data"])), config["metadata"]["name"]
    for workload in [*rendered.of("Deployment"), *rendered.of("Job")]:
        pod = workload["spec"]["template"]["spec"]
        for container in [*pod["containers"], *pod.get("initContainers", [])]:
            for env in container.get("env", []):
                if SECRETISH_KEY.search(env["name"]) or env["name"].endswith("_URL"):
                    assert "value" not in env or not CREDENTIAL_URL.search(env["value"]), env
                if SECRETISH_KEY.search(env["name"]):
                    assert "secretKeyRef" in env["valueFrom"], env
            assert not list(leaks(container.get("env", []))), workload["metadata"]["name"]


def test_the_schema_keeps_every_secret_setting_out_of_config() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    refused = set(schema["properties"]["config"]["propertyNames"]["not"]["enum"])
    secret = {f"JATRA_{f.name.upper()}" for f in dataclasses.fields(Settings) if f.metadata.get("secret")}
    assert secret
    assert secret <= refused
    known = {f"JATRA_{f.name.upper()}" for f in dataclasses.fields(Settings)}
    assert refused <= known, refused - known
    for path in (CHART / "values.yaml", PRODUCTION):
        config = yaml.safe_load(path.read_text()).get("config", {})
        assert set(config) <= known, f"{path.name}: unknown settings {set(config) - known}"


# -- the values and their schema -----------------------------------------------------------------------------

BAD_VALUES = {
    "negative replicas": "services:\n  auth:\n    replicas: -1\n",
    "a percentage over 100": (
        "services:\n  seats:\n    autoscaling:\n      targetCPUUtilizationPercentage: 150\n"
    ),
    "no pods at most": "workers:\n  outbox:\n    autoscaling:\n      maxReplicas: 0\n",
    "a second singleton": "workers:\n  reaper:\n    replicas: 2\n",
    "an unknown key": "servises: {}\n",
    "an unknown pull policy": "image:\n  pullPolicy: Sometimes\n",
    "a secret in config": "config:\n  JATRA_JWT_SECRET: hunter2\n",
    "credentials in a URL": "telemetry:\n  otlpEndpoint: http://user:pass@collector:4318\n",
    "no provider without the simulator": "paymentProvider:\n  simulator:\n    enabled: false\n",
    "an ingress limit of zero": "ingress:\n  limits:\n    api:\n      rps: 0\n",
    "a missing required key": "postgres: null\n",
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_the_schema_refuses_bad_values(case: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_VALUES[case])
    result = helm_template("-f", bad)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr


def test_helm_lint_fails_on_bad_values(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_VALUES["negative replicas"])
    result = run(HELM, "lint", "--strict", CHART, "-f", bad)
    assert result.returncode != 0
    assert "minimum" in result.stdout + result.stderr


def test_a_minimum_above_the_maximum_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  auth:\n    autoscaling:\n      minReplicas: 9\n      maxReplicas: 3\n")
    result = helm_template("-f", bad)
    assert result.returncode != 0
    assert "minReplicas (9) is above maxReplicas (3)" in result.stderr


def test_the_queue_names_are_the_topology_s() -> None:
    workers = chart_values()["workers"]
    for worker, queue in QUEUE_WORKERS.items():
        assert workers[worker]["autoscaling"]["queue"]["name"] == queue


#: values whose content is an example structure, documented as a whole by the comment above their key
BLOB = re.compile(
    r"^((.*\.)?(resources|labels|annotations)|defaults\.(probes|topologySpread|pdb)|autoscalingBehavior|config"
    r"|networkPolicy\.(ingressController|prometheus|egress\.\w+))$"
)


def undocumented_keys(text: str) -> list[str]:
    """Keys of a values file without a comment on the line above (inside a documented blob: exempt)."""
    missing: list[str] = []
    stack: list[tuple[int, str]] = []
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        key = re.match(r"^(\s*)([A-Za-z_][\w.-]*):", line)
        if key and not stripped.startswith("-"):
            indent = len(key.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            ancestors = [name for _, name in stack]
            in_blob = any(BLOB.match(".".join(ancestors[: n + 1])) for n in range(len(ancestors)))
            if not in_blob and not previous.startswith("#"):
                missing.append(".".join([*ancestors, key.group(2)]))
            stack.append((indent, key.group(2)))
        if stripped:
            previous = stripped
    return missing


def test_values_yaml_documents_every_key() -> None:
    assert undocumented_keys("a:\n  # documented\n  b: 1\n  c: 2\n") == ["a", "a.c"]
    assert undocumented_keys((CHART / "values.yaml").read_text()) == []


def test_the_schema_checks_every_key_of_values_yaml() -> None:
    """values.schema.json names every key values.yaml has (free-form maps aside): a typo is an error."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"])
    assert set(schema["required"]) <= set(values)
    assert schema["additionalProperties"] is False
