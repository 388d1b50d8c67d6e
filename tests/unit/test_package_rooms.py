"""The rooms stay apart: what ships (the pipeline package, the DAG, the UI plugin) never imports the developer
commands (demo, data generator, connect) or the emulator, so the Docker image can leave them out."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [ROOT / "include" / "omono_xero_sync", ROOT / "dags", ROOT / "plugins"]
NOT_SHIPPED = ("include.commands", "include.xero_emulator")
pytestmark = pytest.mark.unit


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_shipped_code_imports_neither_the_commands_nor_the_emulator() -> None:
    offenders = {str(path.relative_to(ROOT)): sorted(name for name in _imports(path) if name.startswith(NOT_SHIPPED))
                 for folder in SHIPPED for path in folder.rglob("*.py")}
    assert {path: names for path, names in offenders.items() if names} == {}
    assert len(offenders) > 20                                 # the walk did find the shipped modules


def test_the_developer_commands_live_outside_the_pipeline_package() -> None:
    package = {path.stem for path in (ROOT / "include" / "omono_xero_sync").glob("*.py")}
    assert not package & {"demo", "demo_data", "connect"}
    commands = {path.stem for path in (ROOT / "include" / "commands").glob("*.py")}
    assert {"demo", "demo_data", "connect", "reconcile"} <= commands
