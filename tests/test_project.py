"""The project's own hygiene: lint, types, and deployment files that agree with the settings."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from typing import Any

import yaml

from followthrough.settings import Settings
from tests.processes import ROOT
from workflows import SEARCH_ATTRIBUTES


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_mypy_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_uses_only_settings_that_exist() -> None:
    """Every FOLLOWTHROUGH_ variable set, or interpolated from the host, is one Settings reads."""
    text = (ROOT / "docker-compose.yml").read_text()
    compose = _compose()
    fields = {f"FOLLOWTHROUGH_{name.upper()}" for name in Settings.model_fields}
    used: set[str] = set()
    for service in compose["services"].values():
        environment = service.get("environment") or {}
        used.update(k for k in environment if k.startswith("FOLLOWTHROUGH_"))
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    assert used and used <= fields, used - fields
    assert interpolated <= fields, interpolated - fields
    setup = compose["services"]["temporal-setup"]["command"][0]
    for key in SEARCH_ATTRIBUTES:
        assert key.name in setup


def test_compose_topology_is_whole_and_workers_scale() -> None:
    """What `docker compose up --scale worker=3` needs: every dependency exists and is waited on
    in the right way, the Followthrough services build from the Dockerfile, and the worker has no
    fixed name or host port (either would stop a second replica from starting)."""
    services = _compose()["services"]
    expected = {
        "postgresql",
        "temporal-schema",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "mailpit",
        "migrate",
        "worker",
        "api",
    }
    assert expected <= set(services), expected - set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            waited = services[dependency]
            wanted = condition["condition"]
            if wanted == "service_healthy":
                assert "healthcheck" in waited, f"{name} waits for {dependency}'s health"
            else:
                assert wanted == "service_completed_successfully", (name, dependency)
                assert "restart" not in waited or "on-failure" in waited["restart"], dependency
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker
    for name in ("migrate", "worker", "api"):
        assert services[name]["build"] == "." and (ROOT / "Dockerfile").exists()
        environment = services[name]["environment"]
        assert environment["TEMPORAL_ADDRESS"] == "temporal:7233"
        assert environment["FOLLOWTHROUGH_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgresql:5432/" in environment["FOLLOWTHROUGH_DATABASE_URL"]
        assert "mailpit:1025" in environment["FOLLOWTHROUGH_SMTP_URL"]
    host_ports = [
        port.split(":")[0] for service in services.values() for port in service.get("ports", [])
    ]
    assert len(host_ports) == len(set(host_ports)), host_ports


def test_the_dockerfile_installs_what_the_package_needs() -> None:
    """A non-editable install (the Dockerfile's `pip install .`) carries every file the code
    reads at run time: templates, the default policy, migrations."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    for top in ("followthrough", "workflows", "activities", "worker.py", "pyproject.toml"):
        assert top in dockerfile, top
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["followthrough"]
    package = ROOT / "followthrough"
    data = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]
    assert data
    missing = [f for f in data if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert missing == [], f"not in [tool.setuptools.package-data]: {missing}"


def test_workflow_code_imports_no_storage_or_http_clients() -> None:
    """What the workflow sandbox loads: an ORM or HTTP client there costs ~9x per workflow."""
    probe = (
        "import sys, workflows.postmortem, workflows.action_item\n"
        "banned = ('sqlalchemy', 'psycopg', 'alembic', 'httpx', 'requests', 'jira', 'aiosmtpd')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(banned)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
