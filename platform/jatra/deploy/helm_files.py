"""The files the Helm chart reads from ``helm/jatra/files/``: Helm reads only files inside the chart, so the
chart ships copies of the generated rules and dashboards, and the gateway's route table as data.

- ``rules/<name>.rules.yml``: ``alerts/generated/*.rules.yml``, byte for byte (the PrometheusRule);
- ``dashboards/<name>.json``: ``dashboards/generated/*.json``, byte for byte (the dashboards ConfigMaps);
- ``routes.yaml``: :data:`jatra.gateway.routes.ROUTES` (the Ingress paths and their limit classes).

The copies are read from disk: run this after the generated files are written. A test checks that the
committed copies equal :func:`files`.
"""

from __future__ import annotations

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


def files(root: Path = REPO_ROOT) -> dict[Path, str]:
    """Every file under ``helm/jatra/files/`` (path relative to that folder -> content)."""
    out: dict[Path, str] = {}
    for source in sorted((root / "alerts" / "generated").glob("*.rules.yml")):
        out[Path("rules") / source.name] = source.read_text()
    for source in sorted((root / "dashboards" / "generated").glob("*.json")):
        out[Path("dashboards") / source.name] = source.read_text()
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
