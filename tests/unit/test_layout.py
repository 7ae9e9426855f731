"""The repository layout never shadows the standard library, and holds what the design says it holds."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


@pytest.mark.parametrize("name", ["logging", "platform"])
def test_stdlib_modules_resolve_to_the_standard_library(name: str) -> None:
    assert str(ROOT) in [str(Path(p).resolve()) for p in sys.path if p], (
        "tests must run with the repo on sys.path"
    )
    module = importlib.import_module(name)
    origin = Path(module.__file__ or "").resolve()
    assert origin.is_relative_to(STDLIB), f"{name} resolved to {origin}, not the standard library"
    assert not origin.is_relative_to(ROOT)


@pytest.mark.parametrize("folder", ["platform", "logging", "dashboards", "alerts"])
def test_data_folders_are_not_packages(folder: str) -> None:
    assert (ROOT / folder).is_dir()
    assert not (ROOT / folder / "__init__.py").exists()


@pytest.mark.parametrize("folder", ["dashboards", "alerts", "logging", "compose", "helm", "tests"])
def test_top_level_folders_exist(folder: str) -> None:
    assert (ROOT / folder).is_dir()


#: packages every service may use; everything else under jatra/ is a service or a worker of its own
SHARED = {
    "infra", "db", "domain", "inventory", "tickets", "telemetry", "observability", "stack", "rush", "gateway",
    "deploy",
}  # fmt: skip


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def test_the_import_contracts_cover_every_service_and_worker() -> None:
    packages = {
        p.name
        for p in (ROOT / "platform" / "jatra").iterdir()
        if (p / "__init__.py").exists() and p.name not in SHARED
    }
    independent, forbidden = _contracts()
    assert {m.removeprefix("jatra.") for m in independent["modules"]} == packages  # type: ignore[attr-defined]
    assert {m.removeprefix("jatra.") for m in forbidden["forbidden_modules"]} >= packages  # type: ignore[attr-defined]
    shared = {"jatra.infra", "jatra.db", "jatra.domain", "jatra.inventory", "jatra.tickets"}
    shared |= {"jatra.telemetry", "jatra.observability"}
    assert set(forbidden["source_modules"]) == shared


def test_services_never_import_each_other_and_shared_layers_never_import_them() -> None:
    """import-linter follows every import (indirect ones too) against the contracts in pyproject.toml."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def test_the_log_shipper_imports_only_the_shared_layers() -> None:
    """jatra.logship sits beside the services: it may use infra, telemetry, settings and observability
    (the Elasticsearch definitions), and nothing of a service, the database or the stack."""
    import grimp  # noqa: PLC0415 - import-linter's graph library

    graph = grimp.build_graph("jatra")
    ours = {m for m in graph.modules if m == "jatra.logship" or m.startswith("jatra.logship.")}
    imported = {i for m in ours for i in graph.find_modules_directly_imported_by(m)} - ours
    allowed = ("jatra.infra.", "jatra.telemetry.", "jatra.observability.", "jatra.settings")
    assert imported and all(m.startswith(allowed) for m in imported), sorted(imported)


def test_the_archive_imports_only_infra_telemetry_and_settings() -> None:
    """jatra.archive (the auditors' archive) sits beside the services: it may use infra, telemetry and
    settings, and nothing of a service, the database, the stack or the log shipper."""
    import grimp  # noqa: PLC0415 - import-linter's graph library

    graph = grimp.build_graph("jatra")
    ours = {m for m in graph.modules if m == "jatra.archive" or m.startswith("jatra.archive.")}
    imported = {i for m in ours for i in graph.find_modules_directly_imported_by(m)} - ours
    allowed = ("jatra.infra.", "jatra.telemetry.", "jatra.settings")
    assert imported and all(m.startswith(allowed) for m in imported), sorted(imported)


def test_every_http_service_has_the_same_files() -> None:
    """A newcomer finds the same five files in each: routes, the rules, the SQL, the shapes, the errors."""
    from jatra.app import SERVICES  # noqa: PLC0415

    wanted = {"controllers.py", "service.py", "repository.py", "schemas.py", "errors.py"}
    for name in SERVICES:
        present = {p.name for p in (ROOT / "platform" / "jatra" / name).glob("*.py")}
        assert wanted <= present, f"{name} lacks {sorted(wanted - present)}"


def test_each_http_service_keeps_its_sql_in_its_repository() -> None:
    """No service module builds a statement: select, insert, update, delete and text live in repository.py
    (the SQL a newcomer looks for is in one file per service)."""
    from jatra.app import SERVICES  # noqa: PLC0415

    builders = {"select", "insert", "update", "delete", "text"}
    for name in SERVICES:
        tree = ast.parse((ROOT / "platform" / "jatra" / name / "service.py").read_text())
        found = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy")
            for alias in node.names
        }
        assert not found & builders, f"{name}/service.py builds SQL: {sorted(found & builders)}"


def test_the_seat_inventory_and_the_tickets_have_packages_of_their_own() -> None:
    """Holds, their Lua, sales, hold states, segments and fares in jatra.inventory; the ticket view,
    signing, PDF and cache in jatra.tickets; nothing of either left in infra, db or domain."""
    jatra = ROOT / "platform" / "jatra"
    inventory = {p.relative_to(jatra / "inventory").as_posix() for p in (jatra / "inventory").rglob("*.*")}
    assert {"holds.py", "sales.py", "status.py", "segments.py", "fares.py", "lua/hold.lua"} <= inventory
    tickets = {p.name for p in (jatra / "tickets").glob("*.py")}
    assert {"view.py", "signing.py", "pdf.py", "cache.py"} <= tickets
    leftovers = [
        p.relative_to(jatra).as_posix()
        for folder in ("infra", "db", "domain")
        for p in (jatra / folder).rglob("*")
        if "__pycache__" not in p.parts
        and any(word in p.name for word in ("hold", "ticket", "sale", "segment", "fare", ".lua"))
    ]
    assert leftovers == []
