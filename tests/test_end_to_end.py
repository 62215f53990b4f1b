"""End to end on the real dev server: a worker process, the CLI, and PostgreSQL.

This is the path a user takes: `python starter.py incident.json`, `followthrough postmortem
submit|approve`, `followthrough action done|verify|reject`, then `followthrough postmortem show`.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from followthrough.temporal.binaries import find_binary
from tests.factories import draft_data, incident_data
from tests.processes import ROOT, Followthrough, wait_until


@pytest.fixture
def followthrough(
    dev_server: WorkflowEnvironment, postgres_url: str, tmp_path: Path
) -> Iterator[Followthrough]:
    ft = Followthrough.create(
        tmp_path,
        temporal_address=dev_server.client.service_client.config.target_host,
        database_url=postgres_url,
        task_queue=f"e2e-{uuid.uuid4().hex[:8]}",
    )
    ft.cli("db", "upgrade")
    yield ft
    ft.stop_workers()


def write_files(tmp_path: Path) -> tuple[Path, Path, str]:
    now = datetime.now(UTC)
    incident = incident_data(now)
    incident_file = tmp_path / "incident.json"
    incident_file.write_text(json.dumps(incident))
    draft_file = tmp_path / "draft.yaml"
    draft_file.write_text(yaml.safe_dump(draft_data(now)))
    return incident_file, draft_file, f"postmortem-generic-{incident['id']}"


def audit_rows(postgres_url: str, pm_id: str) -> list[tuple[str, int, str, str]]:
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as conn:
        return conn.execute(
            "SELECT workflow_id, seq, actor, action FROM audit_events "
            "WHERE postmortem_id = %s ORDER BY at, workflow_id, seq",
            (pm_id,),
        ).fetchall()


def starter(ft: Followthrough, incident_file: Path) -> str:
    result = subprocess.run(
        ["python", "starter.py", str(incident_file)],
        env=ft.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_resolved_to_closed_with_a_rejection_audited_in_postgres(
    followthrough: Followthrough, postgres_url: str, tmp_path: Path
) -> None:
    ft = followthrough
    ft.start_worker()
    incident_file, draft_file, pm_id = write_files(tmp_path)

    assert starter(ft, incident_file) == f"{pm_id}: started"
    assert starter(ft, incident_file) == f"{pm_id}: already open"
    wait_until(lambda: ft.cli_json("postmortem", "list"), what="the postmortem row")

    # An author cannot approve their own draft; a non-owner cannot submit it.
    refused = ft.cli("postmortem", "submit", pm_id, str(draft_file), "--as", "bob", check=False)
    assert refused.returncode == 1
    assert "only the postmortem owner (alice) can submit its draft" in refused.stderr
    # Collecting the timeline again: the owner or a reviewer, until approval.
    refused = ft.cli("postmortem", "collect", pm_id, "--as", "bob", check=False)
    assert refused.returncode == 1
    assert "only the postmortem owner (alice) or a reviewer" in refused.stderr
    collecting = ft.cli("postmortem", "collect", pm_id, "--as", "alice").stdout
    assert collecting == (
        f"{pm_id}: collecting its timeline again; the draft editor shows what each source gave\n"
    )
    ft.cli("postmortem", "submit", pm_id, str(draft_file), "--as", "alice")
    refused = ft.cli("postmortem", "approve", pm_id, "--as", "alice", check=False)
    assert "alice wrote this draft and cannot review it" in refused.stderr
    approved = ft.cli("postmortem", "approve", pm_id, "--as", "erin")
    assert "tracking" in approved.stdout and "2 action items opened" in approved.stdout
    refused = ft.cli("postmortem", "collect", pm_id, "--as", "erin", check=False)
    assert "the timeline can be collected again only until approval" in refused.stderr

    alert, canary = f"{pm_id}-item-1", f"{pm_id}-item-2"
    wait_until(
        lambda: len(ft.cli_json("action", "list", "--postmortem", pm_id)) == 2,
        what="both action items",
    )
    ft.cli("action", "done", alert, "--as", "bob", "--evidence", "PR #812")
    ft.cli("action", "reject", alert, "--as", "erin", "--reason", "Not routed to the pager")
    ft.cli("action", "done", alert, "--as", "bob", "--evidence", "PR #815 routes it")
    ft.cli("action", "verify", alert, "--as", "erin", "--note", "Fired in a drill")
    ft.cli("action", "done", canary, "--as", "carol", "--evidence", "canary on")
    ft.cli("action", "verify", canary, "--as", "pat", "--note", "12 pushes checked")

    shown = wait_until(
        lambda: (
            (out := ft.cli_json("postmortem", "show", pm_id))["postmortem"]["state"] == "closed"
            and out
        ),
        what="the postmortem to close",
    )
    assert [i["state"] for i in shown["action_items"]] == ["verified", "verified"]
    assert starter(ft, incident_file) == f"{pm_id}: already closed"

    assert_audit_log(audit_rows(postgres_url, pm_id), pm_id)

    item_text = ft.cli("action", "show", alert).stdout
    assert "rejected by erin: Not routed to the pager" in item_text
    assert "verified by erin: Fired in a drill" in item_text

    # The worker created the weekly council digest schedule; run it now, as Monday would.
    subprocess.run(
        [
            find_binary("temporal"),
            "schedule",
            "trigger",
            "--address",
            ft.env["TEMPORAL_ADDRESS"],
            "--schedule-id",
            f"council-digest-{ft.env['FOLLOWTHROUGH_TASK_QUEUE']}",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    digest = wait_until(
        lambda: [m for m in ft.cli_json("outbox", "list") if m["kind"] == "council_digest"],
        what="the council digest in the outbox",
    )
    assert digest[0]["recipients"] == ["grace@example.com", "heidi@example.com"]
    assert digest[0]["status"] == "kept"  # no SMTP configured: the local outbox

    text = ft.cli("postmortem", "show", pm_id).stdout
    for expected in (
        "[closed]",
        "Impact",
        "Contributing factors",
        "Detection gaps",
        "Recovery steps",
        "rejected by erin: Not routed to the pager",
        "Audit trail",
    ):
        assert expected in text


# What each workflow records, in order, for the scenario both tests play.
EXPECTED_AUDIT = {
    "": [
        ("followthrough", "postmortem.opened"),
        ("alice", "draft.submitted"),
        ("erin", "draft.approved"),
        ("followthrough", "postmortem.closed"),
    ],
    "-item-1": [
        ("followthrough", "item.opened"),
        ("bob", "item.done_claimed"),
        ("erin", "item.reopened"),
        ("bob", "item.done_claimed"),
        ("erin", "item.verified"),
    ],
    "-item-2": [
        ("followthrough", "item.opened"),
        ("carol", "item.done_claimed"),
        ("pat", "item.verified"),
    ],
}


def assert_audit_log(rows: list[tuple[str, int, str, str]], pm_id: str) -> None:
    """Each workflow's audit rows are exactly the expected ones, numbered 1..n, none twice."""
    by_workflow: dict[str, list[tuple[int, str, str]]] = {}
    for workflow_id, seq, actor, action in rows:
        by_workflow.setdefault(workflow_id.removeprefix(pm_id), []).append((seq, actor, action))
    assert set(by_workflow) == set(EXPECTED_AUDIT)
    for subject, events in by_workflow.items():
        events.sort()
        assert [seq for seq, _, _ in events] == list(range(1, len(events) + 1)), subject
        assert [(actor, action) for _, actor, action in events] == EXPECTED_AUDIT[subject]
    # The postmortem closes last, after every item is verified.
    assert rows[-1][3] == "postmortem.closed"


def kill_the_worker_through_a_postmortem(
    ft: Followthrough, postgres_url: str, tmp_path: Path, seed: int
) -> None:
    """SIGKILL the worker while each action is in flight, start a new one, and carry on."""
    # A dead worker's sticky queue holds its workflows' next task this long (10 s by default):
    # the loss under test is the same either way, only the wait is shorter.
    ft.env["FOLLOWTHROUGH_STICKY_QUEUE_TIMEOUT_SECONDS"] = "1"
    rng = random.Random(seed)
    worker = ft.start_worker()
    incident_file, draft_file, pm_id = write_files(tmp_path)
    starter(ft, incident_file)

    alert, canary = f"{pm_id}-item-1", f"{pm_id}-item-2"
    steps = [
        ("postmortem", "submit", pm_id, str(draft_file), "--as", "alice"),
        ("postmortem", "approve", pm_id, "--as", "erin"),
        ("action", "done", alert, "--as", "bob", "--evidence", "PR #812"),
        ("action", "reject", alert, "--as", "erin", "--reason", "Not routed to the pager"),
        ("action", "done", alert, "--as", "bob", "--evidence", "PR #815"),
        ("action", "verify", alert, "--as", "erin"),
        ("action", "done", canary, "--as", "carol", "--evidence", "canary on"),
        ("action", "verify", canary, "--as", "pat"),
    ]
    kills = 0
    for step in steps:
        if step[0] == "action":
            wait_until(
                lambda: len(ft.cli_json("action", "list", "--postmortem", pm_id)) == 2,
                what="both action items",
            )
        action = ft.cli_background(*step)
        if rng.random() < 0.6:
            # Somewhere between the update's arrival and its storage write, or just after.
            time.sleep(rng.uniform(0.0, 0.5))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
            worker = ft.start_worker()
        _, err = action.communicate(timeout=180)
        assert action.returncode == 0, f"{' '.join(step)}: {err}"
    print(f"seed {seed}: killed the worker {kills} times over {len(steps)} actions")

    shown = wait_until(
        lambda: (
            (out := ft.cli_json("postmortem", "show", pm_id))["postmortem"]["state"] == "closed"
            and out
        ),
        timeout=120,
        what="the postmortem to close",
    )
    assert [i["state"] for i in shown["action_items"]] == ["verified", "verified"]
    assert_audit_log(audit_rows(postgres_url, pm_id), pm_id)
