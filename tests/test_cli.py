"""Bad input on the command line: one clear message, exit status 1, and nothing started."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.processes import ROOT, Followthrough, free_port
from tests.servers.prometheus import promtool_binary


@pytest.fixture
def ft(tmp_path: Path) -> Followthrough:
    # Nothing listens on this port: a command that got past validation would say it cannot
    # reach Temporal, so the validation messages below prove nothing was started.
    return Followthrough.create(
        tmp_path,
        temporal_address=f"127.0.0.1:{free_port()}",
        database_url=None,
        task_queue="cli-test",
    )


def test_policy_check_accepts_the_default_and_names_every_problem(
    ft: Followthrough, tmp_path: Path
) -> None:
    ok = ft.cli("policy", "check", str(ROOT / "followthrough" / "default_policy.yaml"))
    assert (
        "ok: 4 severities (SEV1, SEV2, SEV3, SEV4), postmortem required for SEV1, SEV2" in ok.stdout
    )

    bad = tmp_path / "policy.yaml"
    bad.write_text(
        "severities: {SEV1: {postmortem_required: yes, draft_due_days: 0, review_due_days: 1,"
        " approvals_required: 1}}\nteams: {a: {manager: m, members: [x]}}\ncouncil: [c]\n"
        "default_owner: nobody\nservices: {web: ghosts}\n"
    )
    result = ft.cli("policy", "check", str(bad), check=False)
    assert result.returncode == 1
    assert (
        "severities.SEV1.draft_due_days: Input should be greater than or equal to 1"
        in result.stderr
    )


def test_a_bad_incident_file_starts_nothing(ft: Followthrough, tmp_path: Path) -> None:
    incident = tmp_path / "incident.json"
    incident.write_text(
        json.dumps(
            {
                "id": "INC-1",
                "title": "Checkout down",
                "severity": "SEV9",
                "resolved_at": "2026-11-20T11:00:00+00:00",
                "detected_at": "2026-11-20T12:00:00+00:00",
            }
        )
    )
    result = ft.cli("incident", "resolved", str(incident), check=False)
    assert result.returncode == 1
    assert "severity: 'SEV9' is not in the policy (SEV1, SEV2, SEV3, SEV4)" in result.stderr
    assert "resolved_at (2026-11-20T11:00:00+00:00) is before detected_at" in result.stderr
    assert "cannot reach Temporal" not in result.stderr

    incident.write_text("{not json")
    result = ft.cli("incident", "resolved", str(incident), check=False)
    assert result.returncode == 1 and "not valid YAML or JSON" in result.stderr

    result = ft.cli("incident", "resolved", str(tmp_path / "missing.json"), check=False)
    assert result.returncode == 1 and "No such file or directory" in result.stderr


def test_a_good_incident_without_temporal_says_so(ft: Followthrough) -> None:
    result = ft.cli(
        "incident", "resolved", str(ROOT / "examples" / "incident.json"), check=False, timeout=60
    )
    assert result.returncode == 1
    assert "cannot reach Temporal" in result.stderr


def test_draft_shape_errors_are_listed_before_anything_is_sent(
    ft: Followthrough, tmp_path: Path
) -> None:
    draft = tmp_path / "draft.yaml"
    draft.write_text(
        "impact: 3 hours\naction_items:\n  - title: x\n    due: next week\n    estimate: 2d\n"
    )
    result = ft.cli("postmortem", "submit", "INC-1", str(draft), "--as", "alice", check=False)
    assert result.returncode == 1
    assert "action_items[0].due: Input should be a valid date" in result.stderr
    assert "action_items[0].estimate: unknown field" in result.stderr


def test_actions_need_to_know_who_you_are(ft: Followthrough) -> None:
    for command in (
        ("action", "verify", "INC-1-item-1"),
        ("postmortem", "opt-in", "INC-1"),
        ("postmortem", "collect", "INC-1"),
    ):
        result = ft.cli(*command, check=False)
        assert result.returncode == 1, command
        assert "who are you? pass --as NAME or set FOLLOWTHROUGH_USER" in result.stderr, command


def test_an_action_on_a_fresh_install_gets_as_far_as_temporal(ft: Followthrough) -> None:
    # No database yet: the command creates it as every command does, then says what is missing.
    result = ft.cli("postmortem", "approve", "INC-1", "--as", "maria", check=False, timeout=60)
    assert result.returncode == 1
    assert "cannot reach Temporal" in result.stderr
    assert "Traceback" not in result.stderr


def test_tokens_are_created_for_people_listed_without_secrets_and_revoked(
    ft: Followthrough,
) -> None:
    stranger = ft.cli("token", "create", "--for", "mallory", check=False)
    assert stranger.returncode == 1
    assert "'mallory' is not in the policy's directory" in stranger.stderr

    token = ft.cli("token", "create", "--for", "erin", "--name", "laptop").stdout.strip()
    assert token.startswith("ft_") and len(token) > 40
    (listed,) = ft.cli_json("token", "list", "--json")
    assert (listed["person"], listed["name"], listed["revoked_at"]) == ("erin", "laptop", None)
    assert token not in ft.cli("token", "list").stdout  # only the id and a hash are kept

    assert "revoked" in ft.cli("token", "revoke", listed["id"]).stdout
    (revoked,) = ft.cli_json("token", "list", "--json")
    assert revoked["revoked_at"] is not None
    missing = ft.cli("token", "revoke", "nope", check=False)
    assert missing.returncode == 1 and "no token with id 'nope'" in missing.stderr


def test_slos_are_imported_from_sloth_and_openslo_and_bad_files_change_nothing(
    ft: Followthrough,
) -> None:
    examples = ROOT / "tests" / "slo_examples"
    broken = ft.cli(
        "slo",
        "import",
        str(examples / "sloth-valid.yaml"),
        str(examples / "sloth-broken.yaml"),
        check=False,
    )
    assert broken.returncode == 1 and "sloth-broken.yaml" in broken.stderr
    assert ft.cli_json("slo", "list", "--json") == []  # the valid file was not saved either

    imported = ft.cli(
        "slo", "import", str(examples / "sloth-valid.yaml"), str(examples / "openslo-valid.yaml")
    )
    assert "sloth-valid.yaml: 2 SLOs" in imported.stdout
    slos = ft.cli_json("slo", "list", "--json")
    assert {slo["source"] for slo in slos} == {"sloth", "openslo"}
    assert all(0 < slo["objective"] < 1 and slo["error_query"] for slo in slos)
    ft.cli("slo", "import", str(examples / "sloth-valid.yaml"))  # again: replaced, not doubled
    assert len(ft.cli_json("slo", "list", "--json")) == len(slos)


def test_slo_rules_print_what_promtool_accepts_and_a_sloth_spec(
    ft: Followthrough, tmp_path: Path
) -> None:
    ft.cli("slo", "import", str(ROOT / "tests" / "slo_examples" / "sloth-valid.yaml"))
    [slo_id, *_] = [slo["id"] for slo in ft.cli_json("slo", "list", "--json")]
    rules = ft.cli("slo", "rules", slo_id).stdout
    assert rules.startswith(f"# Proposed SLO alerting for {slo_id}")
    (tmp_path / "rules.yml").write_text(rules)
    checked = subprocess.run(
        [promtool_binary(), "check", "rules", str(tmp_path / "rules.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    spec = ft.cli("slo", "rules", slo_id, "--sloth").stdout
    assert spec.startswith("version: prometheus/v1") or "prometheus/v1" in spec
    missing = ft.cli("slo", "rules", "nope", check=False)
    assert missing.returncode == 1 and "there is no SLO 'nope'" in missing.stderr


def test_no_themes_yet(ft: Followthrough) -> None:
    assert ft.cli_json("theme", "list", "--json") == []
    assert ft.cli("theme", "list").stdout == ""
