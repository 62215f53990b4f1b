"""The project's own hygiene: lint, types, and deployment files that agree with the settings."""

from __future__ import annotations

import subprocess
import sys

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


def test_compose_uses_only_settings_that_exist() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    fields = {f"FOLLOWTHROUGH_{name.upper()}" for name in Settings.model_fields}
    used: set[str] = set()
    for service in compose["services"].values():
        environment = service.get("environment") or {}
        used.update(k for k in environment if k.startswith("FOLLOWTHROUGH_"))
    assert used and used <= fields, used - fields
    setup = compose["services"]["temporal-setup"]["command"][0]
    for key in SEARCH_ATTRIBUTES:
        assert key.name in setup


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
