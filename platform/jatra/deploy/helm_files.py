"""The files the Helm chart reads from ``helm/jatra/files/``: Helm reads only files inside the chart, so the
chart ships copies of the generated rules and dashboards, and the gateway's route table as data.

- ``rules/<name>.rules.yml``: ``alerts/generated/*.rules.yml``, byte for byte (the PrometheusRule);
- ``dashboards/<name>.json``: ``dashboards/generated/*.json``, byte for byte (the dashboards ConfigMaps);
- ``routes.yaml``: :data:`jatra.gateway.routes.ROUTES` (the Ingress paths and their limit classes).

`jatra gen` writes them with the other generated files (:mod:`jatra.observability.generate` passes the
contents it generates); on their own, :func:`files` reads the generated files from disk. A test checks that
the committed copies equal :func:`files`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from jatra.gateway.routes import ROUTES

REPO_ROOT = Path(__file__).resolve().parents[3]
#: where the chart keeps the copies, relative to the repository root
FILES_DIR = Path("helm") / "jatra" / "files"
HEADER = "# generated from platform/jatra/gateway/routes.py by jatra.deploy.helm_files; do not edit\n"


def routes_yaml() -> str:
    """The route table as the chart reads it: path, kind (exact, prefix, regex), service, limit class."""
    routes = [{"path": r.path, "kind": r.kind, "service": r.service, "limit": r.limit} for r in ROUTES]
    return HEADER + yaml.safe_dump({"routes": routes}, sort_keys=False)


def files(root: Path = REPO_ROOT, generated: Mapping[Path, str] | None = None) -> dict[Path, str]:
    """Every file under ``helm/jatra/files/`` (path relative to that folder -> content). ``generated``: the
    generated files by absolute path (what `jatra gen` is writing); by default they are read from disk."""
    rules_dir, dashboards_dir = root / "alerts" / "generated", root / "dashboards" / "generated"
    if generated is None:
        paths = [*rules_dir.glob("*.rules.yml"), *dashboards_dir.glob("*.json")]
        generated = {path: path.read_text() for path in paths}
    out: dict[Path, str] = {}
    for source in sorted(p for p in generated if p.parent == rules_dir and p.name.endswith(".rules.yml")):
        out[Path("rules") / source.name] = generated[source]
    for source in sorted(p for p in generated if p.parent == dashboards_dir and p.suffix == ".json"):
        out[Path("dashboards") / source.name] = generated[source]
    out[Path("routes.yaml")] = routes_yaml()
    return out


def stale(root: Path = REPO_ROOT) -> list[Path]:
    """Copies that differ from :func:`files`, are missing, or are left over (absolute paths)."""
    base = root / FILES_DIR
    wanted = {base / rel: content for rel, content in files(root).items()}
    different = [p for p, content in wanted.items() if not p.is_file() or p.read_text() != content]
    leftovers = [p for p in base.rglob("*") if p.is_file() and p not in wanted] if base.is_dir() else []
    return different + sorted(leftovers)


def write(root: Path = REPO_ROOT) -> list[Path]:
    """Write the copies and delete left-over ones; returns the paths that changed."""
    base = root / FILES_DIR
    wanted = {base / rel: content for rel, content in files(root).items()}
    changed = []
    for path in stale(root):
        if path in wanted:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted[path])
        else:
            path.unlink()
        changed.append(path)
    return changed
