"""The dependency rules of ARCHITECTURE.md, checked on the import statements themselves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "runyard"

# package -> import prefixes it must never use
FORBIDDEN = {
    "control": (
        "sqlalchemy",
        "starlette",
        "uvicorn",
        "httpx",
        "botocore",
        "boto3",
        "subprocess",
        "runyard.api",
        "runyard.store",
        "runyard.app",
    ),
    "api": ("sqlalchemy", "runyard.store", "runyard.app"),
    # The console calls the control plane's commands, as the API does: never a second path to the data.
    "console": ("sqlalchemy", "runyard.store", "runyard.app", "runyard.api", "runyard.workloads"),
    "store": ("starlette", "httpx", "botocore", "runyard.api", "runyard.app"),
    # The building blocks know nothing of the domain or of each other's wiring; workloads/ joins them.
    **{
        room: ("runyard.control", "runyard.api", "runyard.store", "runyard.app", "runyard.workloads")
        for room in ("source", "build", "runtime", "dataplane")
    },
    "observe": ("runyard.api", "runyard.store", "runyard.app", "runyard.workloads"),
    "workloads": ("runyard.api", "runyard.store", "runyard.app", "sqlalchemy", "starlette"),
}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_its_dependency_rules(package: str) -> None:
    offences = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted((SRC / package).rglob("*.py"))
        for name in _imports(path)
        if name.startswith(FORBIDDEN[package])
    ]
    assert offences == []
