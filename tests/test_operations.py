"""Operations: stuck work is listed for the operators and reported to them once; /readyz says
which part is not ready; a database that takes no writes still serves reads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from followthrough.domain.stuck import StuckWorkSweep
from followthrough.notices.delivery import Mailer
from followthrough.storage import Store
from followthrough.storage.migrate import upgrade
from tests.api_support import api_for, api_settings
from tests.conftest import SmtpCapture, running_worker
from tests.processes import free_port
from tests.test_dashboard import browser, text_of
from workflows.stuck_work import StuckWorkWorkflow

# --- a workflow whose tasks fail, and one whose activity always fails (test-only) ---------------


# Unsandboxed: the sandbox would re-import this test module and everything it imports.
@workflow.defn(sandboxed=False)
class TaskFailsWorkflow:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("the ledger is gone")  # not an ApplicationError: the task retries


@activity.defn
async def always_fails() -> None:
    raise ConnectionRefusedError("ticket tracker refused the connection")


@workflow.defn(sandboxed=False)
class ActivityFailsWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            always_fails,
            start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100),
                maximum_interval=timedelta(milliseconds=100),
            ),
        )


@asynccontextmanager
async def stuck_workflows(client: Client) -> AsyncIterator[tuple[str, list[str]]]:
    """Both failing workflows running on a queue of their own: (the queue, their ids)."""
    queue = f"stuck-{uuid.uuid4().hex[:8]}"
    ids = [f"task-fails-{queue}", f"activity-fails-{queue}"]
    async with Worker(
        client,
        task_queue=queue,
        workflows=[TaskFailsWorkflow, ActivityFailsWorkflow],
        activities=[always_fails],
    ):
        await client.start_workflow(TaskFailsWorkflow.run, id=ids[0], task_queue=queue)
        await client.start_workflow(ActivityFailsWorkflow.run, id=ids[1], task_queue=queue)
        try:
            yield queue, ids
        finally:
            for workflow_id in ids:
                await client.get_workflow_handle(workflow_id).terminate("test over")


async def until_listed(http: httpx.AsyncClient, *needles: str) -> str:
    """The operations page's text once it shows every needle (Temporal retries on its own
    backoff, so the second consecutive task failure comes when it comes)."""
    for _ in range(600):
        page = await http.get("/operations")
        assert page.status_code == 200, page.text
        text = text_of(page)
        if all(needle in text for needle in needles):
            return text
        await asyncio.sleep(0.2)
    raise AssertionError(f"never listed: {needles}; last page: {text}")


async def test_stuck_work_is_listed_for_operators_and_reported_once(
    dev_server: WorkflowEnvironment,
    sqlite_store: Store,
    smtp_server: SmtpCapture,
    smtp_mailer: Mailer,
    tmp_path: Path,
) -> None:
    client = dev_server.client
    async with (
        stuck_workflows(client) as (watched, (task_fails, activity_fails)),
        running_worker(client, sqlite_store, smtp_mailer) as queue,
        api_for(client, sqlite_store, api_settings(tmp_path, watched)) as api,
    ):
        async with browser(api, "sam") as operator:  # the default policy's operator
            text = await until_listed(
                operator,
                task_fails,
                "the ledger is gone",
                activity_fails,
                "activity always_fails",
                "ticket tracker refused the connection",
            )
            assert "TaskFailsWorkflow" in text and "workflow task" in text
            assert 'href="/operations"' in (await operator.get("/")).text  # in the operator's nav
        async with browser(api, "dan") as someone_else:
            refused = await someone_else.get("/operations")
            assert refused.status_code == 403
            assert task_fails not in refused.text and "for the operators (sam)" in text_of(refused)
            assert 'href="/operations"' not in (await someone_else.get("/")).text

        # The sweep, as the schedule runs it, twice: the operator hears of each problem once.
        for run in range(2):
            sent = await client.execute_workflow(
                StuckWorkWorkflow.run,
                StuckWorkSweep(task_queue=watched),
                id=f"stuck-work-{watched}-{run}",
                task_queue=queue,
            )
            assert len(sent) == (2 if run == 0 else 0)
    # (A subject this long is folded onto its own line; the mail reader shows it unfolded.)
    assert sorted(subject.strip() for subject in smtp_server.subjects()) == [
        f"[stuck] {activity_fails}: activity always_fails keeps failing",
        f"[stuck] {task_fails}: workflow task keeps failing",
    ]
    for message in smtp_server.messages:
        assert message["To"] == "sam@example.com"
    bodies = {
        str(m["Subject"]).strip(): m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        for m in smtp_server.messages
    }
    task_email = bodies[f"[stuck] {task_fails}: workflow task keeps failing"]
    assert "the ledger is gone" in task_email and "TaskFailsWorkflow" in task_email
    assert f"http://127.0.0.1:8233/namespaces/default/workflows/{task_fails}" in task_email


async def test_readyz_names_temporal_when_it_does_not_answer(
    dev_server: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    settings = api_settings(tmp_path, "readyz")
    async with api_for(dev_server.client, sqlite_store, settings) as api:
        ready = await api.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "temporal": "ok", "database": "ok"}
        # /healthz is liveness: the process and its database answer, whatever Temporal does.
        assert (await api.get("/healthz")).status_code == 200

    nobody = await Client.connect(
        f"127.0.0.1:{free_port()}", data_converter=pydantic_data_converter, lazy=True
    )
    async with api_for(nobody, sqlite_store, settings) as api:
        gone = await api.get("/readyz")
        assert gone.status_code == 503
        answer = gone.json()
        assert answer["status"] == "not ready" and answer["database"] == "ok"
        assert answer["temporal"].startswith("Temporal did not answer")
        assert (await api.get("/healthz")).status_code == 200


async def test_a_read_only_database_still_serves_reads_and_is_not_ready(
    dev_server: WorkflowEnvironment, postgres_url: str, tmp_path: Path
) -> None:
    upgrade(postgres_url)
    name = postgres_url.rsplit("/", 1)[-1]
    store = Store(postgres_url)
    try:
        async with api_for(dev_server.client, store, api_settings(tmp_path, "ro")) as api:
            token = api.token("maria")  # issued while the database still takes writes
            store.engine.dispose()
            with psycopg.connect(
                "postgresql://postgres@127.0.0.1:5432/test", autocommit=True
            ) as admin:
                admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            me = await api.http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert me.json()["person"] == "maria"
            listed = await api.http.get(
                "/api/postmortems", headers={"Authorization": f"Bearer {token}"}
            )
            assert listed.status_code == 200, listed.text

            unready = await api.get("/readyz")
            assert unready.status_code == 503
            answer = unready.json()
            assert answer["temporal"] == "ok"
            assert answer["database"].startswith("the database refused a write")
            assert "read-only" in answer["database"]
    finally:
        store.close()
