"""The repository layout never shadows the standard library, and holds what the design says it holds."""

from __future__ import annotations

import importlib
import sys
import sysconfig
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


def test_services_never_import_each_other() -> None:
    services = ["auth", "catalog", "seats"]
    for service in services:
        for path in (ROOT / "platform" / "jatra" / service).rglob("*.py"):
            text = path.read_text()
            for other in services:
                if other != service:
                    assert f"jatra.{other}" not in text, f"{path} imports jatra.{other}"
