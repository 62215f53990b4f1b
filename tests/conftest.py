"""Real servers for the tests: Temporal (time-skipping and dev), SQLite and PostgreSQL.

PostgreSQL on 127.0.0.1:5432 is used when reachable; with CI=true it is required, so a broken
database fails the run instead of silently skipping half the storage tests.
"""

from __future__ import annotations

import asyncio
import email.policy
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.slots import team_slots_id
from followthrough.domain.notice import HANDOFF_KINDS
from followthrough.domain.policy import Policy, load_policy
from followthrough.notices.delivery import Mailer, SmtpServer
from followthrough.notices.render import Links
from followthrough.storage import Store
from followthrough.storage.migrate import upgrade
from followthrough.temporal.binaries import find_binary
from followthrough.temporal.client import register_search_attributes
from followthrough.temporal.worker import build_worker
from tests.api_support import Api, api_for, api_settings, link_mailer, loopback_policy
from workflows import SEARCH_ATTRIBUTES

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_reachable() -> str | None:
    try:
        with psycopg.connect(POSTGRES_ADMIN, connect_timeout=3):
            return None
    except psycopg.Error as err:
        return str(err).strip()


# The files that take longest (20 s or more each: `--junitxml` summed per file, a whole run on four
# processes), longest first. They start first, so that no long file is left to run alone at the
# end; every other file keeps its place. pytest-xdist then hands out the files with the most tests
# first (its default reordering), this order breaking ties: keeping this order alone
# (--no-loadscope-reorder) was slower in a fresh-clone run, 11 min 5 s against 10 min 1 s.
SLOWEST_FIRST = [
    "test_faults.py",
    "test_soak.py",
    "test_follow_up_restarts.py",
    "test_api_fuzz_shard1.py",
    "test_cli.py",
    "test_api_fuzz.py",
    "test_seed.py",
    "test_api_fuzz_shard2.py",
    "test_killed_worker.py",
    "test_end_to_end_cli.py",
    "test_embedded.py",
    "test_browser.py",
    "test_report.py",
    "test_restricted.py",
    "test_end_to_end.py",
    "test_search.py",
    "test_follow_up.py",
    "test_handoff_notices.py",
    "test_killed_worker_again.py",
    "test_storage.py",
    "test_readme.py",
    "test_bench_smoke.py",
    "test_api_fuzz_forgeries.py",
    "test_project.py",
    "test_scim.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests stay together and in their order


@pytest.fixture(scope="session")
def postgres_server() -> str:
    problem = _postgres_reachable()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is required when CI=true: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    return POSTGRES_ADMIN


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"followthrough_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class MigratedTemplates:
    """One database per test process that `upgrade` brought to the newest revision, on SQLite and
    on PostgreSQL; a test's store starts as a copy of it, which takes a few milliseconds where
    running every migration again takes a second or more."""

    sqlite_file: Path
    postgres_name: str | None  # None: PostgreSQL is not reachable, and its tests skip or fail

    def copy_to(self, url: str) -> None:
        """Make the fresh, empty database at `url` a copy of the migrated one."""
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if not path.exists():  # `store` and `sqlite_store` in one test share the file
                shutil.copyfile(self.sqlite_file, path)
            return
        assert self.postgres_name is not None
        name = url.rsplit("/", 1)[-1]
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.postgres_name}"')


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedTemplates]:
    sqlite_file = tmp_path_factory.mktemp("migrated") / "followthrough.db"
    upgrade(f"sqlite:///{sqlite_file}")
    if _postgres_reachable() is not None:
        yield MigratedTemplates(sqlite_file, None)
        return
    # The test process's own (pytest-xdist runs several), and nobody connects to it but
    # CREATE DATABASE ... TEMPLATE, which refuses a template that has other sessions.
    name = f"followthrough_migrated_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        yield MigratedTemplates(sqlite_file, name)
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every storage test runs against SQLite and against PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'followthrough.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(database_url: str, migrated_templates: MigratedTemplates) -> Iterator[Store]:
    migrated_templates.copy_to(database_url)
    upgrade(database_url)  # finds the copy at the newest revision, as a migrated database is
    store = Store(database_url)
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path, migrated_templates: MigratedTemplates) -> Iterator[Store]:
    """The embedded default's database, for tests that are not about storage."""
    url = f"sqlite:///{tmp_path / 'followthrough.db'}"
    migrated_templates.copy_to(url)
    upgrade(url)  # finds the copy at the newest revision, as a migrated database is
    store = Store(url)
    yield store
    store.close()


@pytest.fixture
def mailer(tmp_path: Path) -> Mailer:
    """The embedded default's mailer: messages kept in the local outbox."""
    return Mailer(
        sender="Followthrough <followthrough@localhost>",
        outbox_dir=tmp_path / "outbox",
        links=Links(temporal_ui="http://127.0.0.1:8233"),
    )


@dataclass
class SmtpCapture:
    """A real SMTP server (aiosmtpd) on loopback that keeps every message it accepts."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=email.policy.default).parsebytes(envelope.content)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def without_handoffs(self) -> list[EmailMessage]:
        """Every message but the hand-off notices (tests/test_handoff_notices.py counts those)."""
        kinds = {kind.value for kind in HANDOFF_KINDS}
        return [m for m in self.messages if m["X-Followthrough-Kind"] not in kinds]


@pytest.fixture
def smtp_server() -> Iterator[SmtpCapture]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    capture = SmtpCapture(port=port)
    controller = Controller(capture, hostname="127.0.0.1", port=port)
    controller.start()
    yield capture
    controller.stop()


@pytest.fixture
def smtp_mailer(smtp_server: SmtpCapture, tmp_path: Path) -> Mailer:
    return Mailer(
        sender="Followthrough <followthrough@localhost>",
        outbox_dir=tmp_path / "outbox",
        links=Links(temporal_ui="http://127.0.0.1:8233"),
        smtp=SmtpServer(hostname="127.0.0.1", port=smtp_server.port),
    )


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


async def _start_time_skipping() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client)
    return env


@pytest.fixture(scope="module")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """One per test module, so one module's leftovers cannot hold up another's skipping."""
    env = await _start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture
async def own_time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """A server of the test's own, for tests that skip weeks: the test server cannot skip time
    while any workflow task is outstanding, and a terminated earlier test's can linger."""
    env = await _start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        ip="127.0.0.1",
        # As `followthrough up` runs it: a workflow whose task failed twice in a row is flagged.
        dev_server_extra_args=[
            "--dynamic-config-value",
            "system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute=2",
        ],
    )
    yield env
    await env.shutdown()


async def skip(env: WorkflowEnvironment, duration: timedelta) -> None:
    """`env.sleep(duration)` with a deadline of minutes instead of the client's 30 s: the server
    holds the clock while an activity or workflow task is in flight, which on a loaded machine
    outlasted 30 s (seen in CI as "Timeout expired")."""
    request = SleepRequest()
    request.duration.FromTimedelta(duration)
    await env.client.test_service.unlock_time_skipping_with_sleep(
        request, timeout=timedelta(minutes=3)
    )


async def eventually(condition: Callable[[], Any], *, seconds: float = 10) -> Any:
    """Wait for what a workflow records asynchronously; the condition's truthy value."""
    for _ in range(int(seconds / 0.05)):
        if result := condition():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


@asynccontextmanager
async def api_on(env: WorkflowEnvironment, store: Store, tmp_path: Path) -> AsyncIterator[Api]:
    """The HTTP API in-process around a time-skipping server, a worker and SQLite."""
    client = env.client
    async with (
        running_worker(client, store, link_mailer(tmp_path / "outbox")) as queue,
        api_for(client, store, api_settings(tmp_path, queue)) as api,
    ):
        yield api


@pytest.fixture
async def api(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> AsyncIterator[Api]:
    async with api_on(time_skipping, sqlite_store, tmp_path) as api:
        yield api


@pytest.fixture
async def api_own_server(
    own_time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> AsyncIterator[Api]:
    """As `api`, on a time-skipping server of the test's own, for tests that skip weeks."""
    async with api_on(own_time_skipping, sqlite_store, tmp_path) as api:
        yield api


@asynccontextmanager
async def running_worker(
    client: Client, store: Store, mailer: Mailer, **options: Any
) -> AsyncIterator[str]:
    """A worker on a fresh task queue; afterwards every workflow it ran is terminated.

    The time-skipping server cannot skip time while a workflow task waits for a worker that has
    gone, so a test must not leave timers behind for the next one.
    """
    queue = f"test-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = build_worker(
            client, store, executor, mailer, loopback_policy(), task_queue=queue, **options
        )
        async with worker:
            try:
                yield queue
            finally:
                ids = [pm.id for pm in store.records.postmortems()]
                ids += [item.id for item in store.records.action_items()]
                ids += [decision.id for decision in store.decisions.all(limit=100_000)]
                ids += [team_slots_id(team, queue) for team in load_policy().teams]
                for workflow_id in ids:
                    with suppress(RPCError):  # already closed, or never started
                        await client.get_workflow_handle(workflow_id).terminate("test over")
