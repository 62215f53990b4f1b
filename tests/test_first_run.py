"""What a new user met on a first run: help that starts a worker, problems told in rounds, a date
range for one day, a closing record spilling out of the audit table, and times that go stale."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from followthrough.domain.incident import InvalidIncident, parse_incident
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import AuditAction, AuditEvent, open_postmortem
from followthrough.domain.relative_time import (
    RELATIVE_MAX_DAYS,
    RelativeTimeError,
    relative_time,
    with_relative_times,
)
from followthrough.domain.themes import Theme
from followthrough.render import audit_line, postmortem_detail, theme_detail
from tests.factories import incident_data
from tests.processes import ROOT, Followthrough, free_port

NOW = datetime(2026, 12, 3, 14, 30, tzinfo=UTC)


@pytest.fixture
def ft(tmp_path: Path) -> Followthrough:
    # Nothing listens on this port: whatever is refused here was refused before reaching Temporal.
    return Followthrough.create(
        tmp_path,
        temporal_address=f"127.0.0.1:{free_port()}",
        database_url=None,
        task_queue="first-run",
    )


def test_worker_py_help_prints_help_and_starts_nothing() -> None:
    # Nothing listens there: a worker that started would hang trying to connect or fail.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    done = subprocess.run(
        [sys.executable, "worker.py", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and "Run a worker against TEMPORAL_ADDRESS" in done.stdout


def test_an_incident_file_hears_of_every_problem_at_once(policy: Policy) -> None:
    data = incident_data(NOW, severity="SEV9", started_at="yesterday")
    del data["title"]
    data["mitigated_at"] = (NOW - timedelta(minutes=30)).isoformat()  # after resolution
    with pytest.raises(InvalidIncident) as shape_and_meaning:
        parse_incident(data, policy)
    assert shape_and_meaning.value.problems == [
        "title: is required",
        "started_at: Input should be a valid datetime or date, input is too short",
        "severity: 'SEV9' is not in the policy (SEV1, SEV2, SEV3, SEV4)",
        f"resolved_at ({data['resolved_at']}) is before mitigated_at ({data['mitigated_at']})",
    ]

    # The clock's verdict joins the policy's in the same message.
    late = incident_data(NOW, severity="SEV9", resolved_at=(NOW + timedelta(days=2)).isoformat())
    with pytest.raises(InvalidIncident) as meaning_and_time:
        parse_incident(late, policy, now=NOW)
    problems = meaning_and_time.value.problems
    assert "severity: 'SEV9' is not in the policy (SEV1, SEV2, SEV3, SEV4)" in problems
    assert f"resolved_at: {late['resolved_at']} is in the future" in problems


def test_slo_import_names_every_broken_file_and_saves_none(ft: Followthrough) -> None:
    examples = ROOT / "tests" / "slo_examples"
    files = [str(examples / n) for n in ("sloth-broken.yaml", "sloth-valid.yaml")]
    files.append(str(examples / "openslo-broken.yaml"))
    result = ft.cli("slo", "import", *files, check=False)
    assert result.returncode == 1
    refusals = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert [line.split(":")[1].strip() for line in refusals] == [files[0], files[2]]
    assert result.stdout == ""
    assert ft.cli("slo", "list").stdout == ""  # the valid file was not saved either


def test_theme_list_says_the_day_when_its_incidents_share_one() -> None:
    day = datetime(2026, 11, 20, 9, tzinfo=UTC)
    theme = Theme(
        tag="deploy",
        window_start=day,
        window_end=day + timedelta(days=90),
        reached_at=day + timedelta(hours=5),
        reached_by="postmortem-generic-INC-3",
        postmortem_ids=[f"postmortem-generic-INC-{n}" for n in (1, 2, 3)],
        last_resolved_at=day + timedelta(hours=4),
    )
    assert "whose incidents resolved on 2026-11-20;" in theme_detail(theme)
    spread = theme.model_copy(update={"last_resolved_at": day + timedelta(days=12)})
    assert "whose incidents resolved 2026-11-20 to 2026-12-02;" in theme_detail(spread)


def test_the_closing_record_has_its_own_section_and_one_audit_row(policy: Policy) -> None:
    pm = open_postmortem(parse_incident(incident_data(NOW), policy), policy, NOW)
    closing = "all 2 action items resolved: 2 verified\n- item-1: verified by erin\n- item-2: pat"
    trail = [
        AuditEvent(
            workflow_id=pm.id,
            postmortem_id=pm.id,
            seq=1,
            at=NOW,
            actor="followthrough",
            action=AuditAction.POSTMORTEM_CLOSED.value,
            detail=closing,
        )
    ]
    shown = postmortem_detail(pm, [], trail).splitlines()
    record = shown.index("Closing record")
    assert shown[record + 1 : record + 4] == [f"  {line}" for line in closing.splitlines()]
    audit = shown.index("Audit trail")
    assert record < audit and shown[audit + 1 :] == [audit_line(trail[0])]
    assert audit_line(trail[0]).endswith("all 2 action items resolved: 2 verified ...")


# --- relative times ------------------------------------------------------------------------------


def test_relative_times_count_from_now_or_from_today() -> None:
    midnight = datetime(2026, 12, 3, tzinfo=UTC)
    assert relative_time("now", NOW) == NOW
    assert relative_time("now-1h", NOW) == NOW - timedelta(hours=1)
    assert relative_time(" now+90m ", NOW) == NOW + timedelta(minutes=90)
    assert relative_time("today", NOW) == midnight
    assert relative_time("today+8w", NOW) == midnight + timedelta(weeks=8)
    assert relative_time("today-2d", NOW) == midnight - timedelta(days=2)


@pytest.mark.parametrize(
    "text", ["now-", "now-1y", "now - 1h", "today+1.5d", "nowish", "now-1h30m", "today+-3d"]
)
def test_a_malformed_relative_time_is_refused(text: str) -> None:
    with pytest.raises(RelativeTimeError, match="is not a time"):
        relative_time(text, NOW)


def test_a_relative_time_reaches_only_so_far() -> None:
    assert relative_time(f"today+{RELATIVE_MAX_DAYS}d", NOW).date() > NOW.date()
    with pytest.raises(RelativeTimeError, match=f"more than {RELATIVE_MAX_DAYS} days away"):
        relative_time(f"today+{RELATIVE_MAX_DAYS + 1}d", NOW)
    with pytest.raises(RelativeTimeError, match="days away"):
        relative_time("now-999999h", NOW)


def test_a_file_gets_its_relative_times_written_out_and_its_bad_ones_named() -> None:
    draft = {
        "summary": "now and then",  # not a time field: left alone
        "timeline": [{"at": "now-2h", "kind": "decision"}, {"at": "2026-11-20T09:35:00+00:00"}],
        "action_items": [{"due": "today+6w"}, {"due": "today+6 weeks"}, {"due": "2027-01-15"}],
        "resolved_at": "now-1h",
    }
    written, problems = with_relative_times(draft, NOW)
    assert written == {
        "summary": "now and then",
        "timeline": [
            {"at": (NOW - timedelta(hours=2)).isoformat(), "kind": "decision"},
            {"at": "2026-11-20T09:35:00+00:00"},
        ],
        "action_items": [
            {"due": (date(2026, 12, 3) + timedelta(weeks=6)).isoformat()},
            {"due": "today+6 weeks"},
            {"due": "2027-01-15"},
        ],
        "resolved_at": (NOW - timedelta(hours=1)).isoformat(),
    }
    assert len(problems) == 1 and problems[0].startswith(
        "action_items[1].due: 'today+6 weeks' is not a time"
    )


def test_the_cli_refuses_a_bad_relative_time_by_its_field(
    ft: Followthrough, tmp_path: Path
) -> None:
    incident = tmp_path / "incident.json"
    incident.write_text(
        (ROOT / "examples" / "incident.json").read_text().replace('"now-1h"', '"now-1 hour"')
    )
    result = ft.cli("incident", "resolved", str(incident), check=False)
    assert result.returncode == 1
    assert "resolved_at: 'now-1 hour' is not a time" in result.stderr
    assert "cannot reach Temporal" not in result.stderr  # refused before anything was sent
    extend = ft.cli(
        "action",
        "extend",
        "INC-1-item-1",
        "--until",
        "today+2",
        "--reason",
        "r",
        "--as",
        "bob",
        check=False,
    )
    assert extend.returncode == 1
    assert "'today+2' is not a date like 2027-01-31 or today+8w" in extend.stderr
