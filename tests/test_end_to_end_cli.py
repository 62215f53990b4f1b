"""End to end on the real dev server, through the CLI as a user types it: an extension asked for
and decided, an item reassigned and another's risk accepted by the council, and the letters each
sent (tests/test_end_to_end.py has the shared setup)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from tests.processes import Followthrough, wait_until
from tests.test_end_to_end import followthrough, starter, write_files  # noqa: F401 (the fixture)


def test_extension_reassignment_and_risk_acceptance_through_the_cli(
    followthrough: Followthrough,  # noqa: F811
    tmp_path: Path,
) -> None:
    ft = followthrough
    ft.start_worker()
    incident_file, draft_file, pm_id = write_files(tmp_path)
    starter(ft, incident_file)
    ft.cli("postmortem", "submit", pm_id, str(draft_file), "--as", "alice")
    ft.cli("postmortem", "approve", pm_id, "--as", "erin")
    alert, canary = f"{pm_id}-item-1", f"{pm_id}-item-2"
    wait_until(
        lambda: len(ft.cli_json("action", "list", "--postmortem", pm_id)) == 2,
        what="both action items",
    )
    due = ft.cli_json("action", "show", alert)["due"]
    later = (date.fromisoformat(due) + timedelta(days=14)).isoformat()

    asked = ft.cli(
        "action", "extend", alert, "--until", later, "--reason", "Vendor fix", "--as", "bob"
    )
    assert f"extension to {later} awaits a decision" in asked.stdout
    refused = ft.cli("action", "decide-extension", alert, "--approve", "--as", "bob", check=False)
    assert refused.returncode == 1 and "cannot decide their own extension" in refused.stderr
    decided = ft.cli("action", "decide-extension", alert, "--approve", "--as", "maria")
    assert f"due {later}" in decided.stdout
    bad_date = ft.cli(
        "action", "extend", alert, "--until", "soon", "--reason", "x", "--as", "bob", check=False
    )
    assert bad_date.returncode == 1 and "'soon' is not a date like 2027-01-31" in bad_date.stderr

    moved = ft.cli("action", "reassign", canary, "--to", "dan", "--reason", "leave", "--as", "pat")
    assert "owned by dan" in moved.stdout
    refused = ft.cli(
        "action",
        "accept-risk",
        canary,
        "--reason",
        "Legacy path retires in Q1",
        "--as",
        "pat",
        check=False,
    )
    assert "only the reliability council can accept" in refused.stderr
    ft.cli(
        "action", "accept-risk", canary, "--reason", "Legacy path retires in Q1", "--as", "grace"
    )
    ft.cli("action", "done", alert, "--as", "bob", "--evidence", "PR #900")
    ft.cli("action", "verify", alert, "--as", "erin")

    shown = wait_until(
        lambda: (
            (out := ft.cli_json("postmortem", "show", pm_id))["postmortem"]["state"] == "closed"
            and out
        ),
        what="the postmortem to close",
    )
    headline, *evidence = shown["audit"][-1]["detail"].splitlines()
    assert headline == (
        "all 2 action items resolved: 1 verified, 1 with their risk accepted by the council"
    )
    assert len(evidence) == 2 and any(": verified by erin" in line for line in evidence)
    assert any(": risk accepted by grace: " in line for line in evidence)
    subjects = {
        m["dedupe_key"].removeprefix(pm_id): m["subject"]
        for m in ft.cli_json("outbox", "list", "--postmortem", pm_id)
    }
    assert "Extension requested" in subjects["-item-1/extension-1/requested"]
    assert "Extension approved" in subjects["-item-1/extension-1/approved"]
    assert "You now own" in subjects["-item-2/reassigned-2"]
    assert "Risk accepted" in subjects["-item-2/risk-accepted"]
    letter = ft.cli("outbox", "show", f"{pm_id}-item-2/reassigned-2").stdout
    assert "To:      dan@example.com" in letter and "pat made you the owner" in letter
