"""The project's own hygiene: lint, types, and deployment files that agree with the settings."""

from __future__ import annotations

import ast
import fnmatch
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
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


def _imported_by(statement: str, prefix: str) -> list[str]:
    """The modules under `prefix` that a fresh interpreter has loaded after `statement`."""
    listing = f"print(sorted(m for m in sys.modules if m.startswith({prefix!r})))"
    probe = f"import sys\n{statement}\n{listing}"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded: list[str] = ast.literal_eval(result.stdout.strip())
    return loaded


def test_settings_load_no_workflows_and_the_api_no_activities() -> None:
    """Settings name the task queue without workflow code; the API and CLI processes load the
    Temporal client and activity names, never the activities themselves (only workers do)."""
    assert _imported_by("import followthrough.settings", "workflows") == []
    assert _imported_by("import followthrough.api, followthrough.cli", "activities") == [
        "activities"  # the names workflows refer to
    ]


_UPDATE_CALLS = {
    "execute_update",
    "start_update",
    "execute_update_with_start_workflow",
    "start_update_with_start_workflow",
}


def _untyped_updates(node: ast.AST, typed: frozenset[str] = frozenset()) -> Iterator[ast.Call]:
    """Update calls under `node` that do not name a workflow's handler or a parameter typed as
    one (`UpdateMethodMultiParam`), or that pass `result_type=` (only a name needs it)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        typed = typed | {
            argument.arg
            for argument in arguments
            if argument.annotation is not None
            and "UpdateMethodMultiParam" in ast.unparse(argument.annotation)
        }
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _UPDATE_CALLS
    ):
        update = node.args[0] if node.args else None
        handler = (
            isinstance(update, ast.Attribute)
            and isinstance(update.value, ast.Name)
            and update.value.id.endswith("Workflow")
        )
        parameter = isinstance(update, ast.Name) and update.id in typed
        by_name = any(keyword.arg == "result_type" for keyword in node.keywords)
        if not (handler or parameter) or by_name:
            yield node
    for child in ast.iter_child_nodes(node):
        yield from _untyped_updates(child, typed)


def test_people_act_through_typed_updates_only() -> None:
    """No update is sent by name in product code: each goes through its workflow's handler
    (`PostmortemWorkflow.approve`) or a parameter typed as one, so mypy checks what is sent and
    what comes back."""
    sources = [
        *(ROOT / "followthrough").rglob("*.py"),
        *(ROOT / "activities").rglob("*.py"),
        *(ROOT / "workflows").rglob("*.py"),
        ROOT / "worker.py",
        ROOT / "starter.py",
    ]
    untyped = [
        f"{path.relative_to(ROOT)}:{call.lineno}: {ast.unparse(call)}"
        for path in sources
        for call in _untyped_updates(ast.parse(path.read_text(), filename=str(path)))
    ]
    assert untyped == [], "\n".join(untyped)
