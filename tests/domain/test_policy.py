"""The policy: its references, calendar, escalation, caps, addresses and themes, all checked
together."""

from __future__ import annotations

import copy
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from followthrough.domain.policy import (
    DEFAULT_POLICY_PATH,
    InvalidPolicy,
    Policy,
    load_policy,
    parse_policy,
)

# --- the policy -----------------------------------------------------------------------------------


def default_policy_data() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return copy.deepcopy(data)


def policy_problems(data: Any) -> str:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy(data)
    return str(caught.value)


def test_default_policy_is_valid() -> None:
    policy = load_policy()
    assert list(policy.severities) == ["SEV1", "SEV2", "SEV3", "SEV4"]
    required = {name for name, sev in policy.severities.items() if sev.postmortem_required}
    assert required == {"SEV1", "SEV2"}
    assert policy.default_owner in policy.people
    assert all(team in policy.teams for team in policy.services.values())


def test_unknown_team_in_services() -> None:
    data = default_policy_data()
    data["services"]["search"] = "growth"
    assert "services.search: unknown team 'growth'" in policy_problems(data)


def test_unknown_severity_in_source_severities() -> None:
    data = default_policy_data()
    data["source_severities"]["pagerduty"]["P1"] = "SEV0"
    assert "source_severities.pagerduty.P1: unknown severity 'SEV0'" in policy_problems(data)


def test_default_owner_not_in_directory() -> None:
    data = default_policy_data()
    data["default_owner"] = "nobody"
    message = policy_problems(data)
    assert "default_owner: 'nobody' is not a member or manager of any team" in message


def test_every_reference_problem_is_named_together() -> None:
    data = default_policy_data()
    data["services"]["search"] = "growth"
    data["default_owner"] = "nobody"
    data["source_severities"]["grafana"]["critical"] = "SEV0"
    message = policy_problems(data)
    assert "services.search: unknown team 'growth'" in message
    assert "default_owner: 'nobody'" in message
    assert "source_severities.grafana.critical: unknown severity 'SEV0'" in message


@pytest.mark.parametrize("data", [None, [1, 2], "severities: {}", 7])
def test_policy_must_be_a_mapping(data: Any) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy(data)
    assert caught.value.problems == ["the policy must be a YAML mapping"]


def test_extra_fields_are_named() -> None:
    data = default_policy_data()
    data["paging"] = "page everyone"
    data["severities"]["SEV1"]["sla_hours"] = 4
    data["teams"]["sre"]["slack"] = "#sre"
    message = policy_problems(data)
    assert "paging: unknown field" in message
    assert "severities.SEV1.sla_hours: unknown field" in message
    assert "teams.sre.slack: unknown field" in message


def test_severity_numbers_are_checked() -> None:
    data = default_policy_data()
    data["severities"]["SEV2"]["approvals_required"] = 0
    assert "severities.SEV2.approvals_required" in policy_problems(data)


def test_load_policy_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(InvalidPolicy) as caught:
        load_policy(path)
    assert caught.value.subject == str(path)
    assert caught.value.problems == ["cannot read the file: No such file or directory"]


def test_load_policy_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("severities: [SEV1\nteams: {", encoding="utf-8")
    with pytest.raises(InvalidPolicy) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: 1 problem:")
    assert caught.value.problems[0].startswith("not valid YAML:")


def test_load_policy_reports_problems_under_the_file_name(tmp_path: Path) -> None:
    data = default_policy_data()
    data["default_owner"] = "nobody"
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(InvalidPolicy, match=re.escape(f"{path}: 1 problem:")):
        load_policy(path)


def test_load_policy_reads_a_copy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_policy(path) == load_policy()


# --- the policy's calendar, escalation, caps and addresses ----------------------------------------


def test_default_policy_has_a_calendar_escalation_and_caps() -> None:
    policy = load_policy()
    calendar = policy.calendar
    assert calendar.timezone == "UTC"
    assert calendar.working_days == ["mon", "tue", "wed", "thu", "fri"]
    assert calendar.workday_starts.isoformat() == "09:00:00"
    assert {date(2026, 12, 25), date(2027, 1, 1)} <= set(calendar.holidays)
    assert not calendar.is_business_day(date(2026, 12, 25))

    default = policy.escalation.ladder("P2")
    assert [(s.name, s.business_days, s.notify) for s in default] == [
        ("reminder", -2, "owner"),
        ("due", 0, "owner"),
        ("manager", 2, "manager"),
        ("council", 5, "council"),
    ]
    p0 = policy.escalation.ladder("P0")
    assert [s.name for s in p0] == ["reminder", "due", "manager", "council"]
    assert p0[-1].business_days < default[-1].business_days

    assert policy.max_extensions == 2
    assert {team: t.wip_cap for team, t in policy.teams.items()} == {
        "payments": 3,
        "platform": 5,
        "sre": 4,
    }


def test_a_policy_without_the_new_sections_gets_the_defaults() -> None:
    data = default_policy_data()
    for key in ("calendar", "escalation", "max_extensions", "email_domain", "emails"):
        del data[key]
    for team in data["teams"].values():
        del team["wip_cap"]
    policy = parse_policy(data)
    assert policy.calendar.timezone == "UTC"
    assert policy.calendar.holidays == []
    assert [s.business_days for s in policy.escalation.ladder("P0")] == [-2, 0, 2, 5]
    assert policy.max_extensions == 2
    assert all(team.wip_cap is None for team in policy.teams.values())
    assert policy.email_of("bob") == "bob@example.com"


def test_email_of_uses_overrides_then_the_domain() -> None:
    data = default_policy_data()
    data["email_domain"] = "corp.test"
    data["emails"] = {"maria": "maria.lopez@payments.corp.test"}
    policy = parse_policy(data)
    assert policy.email_of("maria") == "maria.lopez@payments.corp.test"
    assert policy.email_of("bob") == "bob@corp.test"
    assert policy.council_emails() == ["grace@corp.test", "heidi@corp.test"]


def test_manager_of_team(policy: Policy) -> None:
    assert policy.manager_of_team("payments") == "maria"
    with pytest.raises(KeyError, match="unknown team 'growth'"):
        policy.manager_of_team("growth")


def test_email_for_a_stranger_is_refused() -> None:
    data = default_policy_data()
    data["emails"] = {"mallory": "mallory@example.com"}
    message = policy_problems(data)
    assert "emails.mallory: 'mallory' is not a member, manager, reviewer or council member" in (
        message
    )


def test_bad_addresses_are_named_with_the_other_reference_problems() -> None:
    data = default_policy_data()
    data["email_domain"] = "@example.com"
    data["emails"] = {"bob": "bob at example.com"}
    data["default_owner"] = "nobody"
    message = policy_problems(data)
    assert "email_domain: '@example.com' is not a domain (write it without '@')" in message
    assert "emails.bob: 'bob at example.com' is not an email address" in message
    assert "default_owner: 'nobody'" in message


@pytest.mark.parametrize(
    ("where", "value", "problem"),
    [
        (("teams", "sre", "wip_cap"), 0, "teams.sre.wip_cap: Input should be greater than"),
        (("max_extensions",), -1, "max_extensions: Input should be greater than or equal to 0"),
        (("calendar", "timezone"), "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        (("calendar", "working_days"), [], "calendar.working_days: at least one"),
        (("escalation", "by_priority", "P7"), [], "'P7' is not a priority"),
    ],
)
def test_new_policy_sections_are_checked(where: tuple[str, ...], value: Any, problem: str) -> None:
    data = default_policy_data()
    target = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    assert problem in policy_problems(data)


def test_policy_with_calendar_survives_a_json_round_trip(policy: Policy) -> None:
    # The policy travels to workflows as JSON.
    assert Policy.model_validate_json(policy.model_dump_json()) == policy


# --- themes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("themes", "problem"),
    [
        ({"threshold": 1}, "themes.threshold"),
        ({"window_days": 0}, "themes.window_days"),
    ],
)
def test_theme_rule_is_validated(themes: dict[str, int], problem: str) -> None:
    data = default_policy_data()
    data["themes"] = themes
    assert problem in policy_problems(data)


def test_a_tag_listed_twice_is_a_policy_problem() -> None:
    data = default_policy_data()
    data["contributing_factor_tags"] = ["deploy", "deploy"]
    assert "contributing_factor_tags: 'deploy' is listed more than once" in policy_problems(data)


# --- the communication contract ---------------------------------------------------------------


def test_the_default_policy_sets_a_communication_contract_for_sev1_only(policy: Policy) -> None:
    contract = policy.severity("SEV1").status_updates
    assert contract is not None
    assert (contract.first_within_minutes, contract.every_minutes) == (15, 30)
    assert policy.severity("SEV2").status_updates is None


@pytest.mark.parametrize(
    ("contract", "problem"),
    [
        (
            {"first_within_minutes": 0, "every_minutes": 30},
            "severities.SEV2.status_updates.first_within_minutes: Input should be greater than "
            "or equal to 1",
        ),
        (
            {"first_within_minutes": 15, "every_minutes": 1441},
            "severities.SEV2.status_updates.every_minutes: Input should be less than or equal "
            "to 1440",
        ),
        ({"first_within_minutes": 15}, "severities.SEV2.status_updates.every_minutes: is required"),
        (
            {"first_within_minutes": 15, "every_minutes": 30, "channel": "#x"},
            "severities.SEV2.status_updates.channel: unknown field",
        ),
        (
            {"first_within_minutes": "soon", "every_minutes": 30},
            "severities.SEV2.status_updates.first_within_minutes: Input should be a valid integer",
        ),
    ],
)
def test_the_communication_contract_is_bounded(contract: dict[str, Any], problem: str) -> None:
    data = default_policy_data()
    data["severities"]["SEV2"]["status_updates"] = contract
    assert problem in policy_problems(data)
