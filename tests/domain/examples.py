"""What the domain tests share: one moment, the incident of the factories, a draft's problems."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from followthrough.domain.draft import draft_problems, parse_draft
from followthrough.domain.incident import Incident, parse_incident
from followthrough.domain.policy import Policy
from tests.factories import incident_data

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def make_incident(policy: Policy, **overrides: Any) -> Incident:
    return parse_incident(incident_data(NOW, **overrides), policy)


def problems_of(
    policy: Policy, draft: dict[str, Any], incident: Incident | None = None
) -> list[str]:
    return draft_problems(
        parse_draft(draft), incident or make_incident(policy), policy, today=TODAY
    )


def at(hours_before_now: float) -> str:
    return (NOW - timedelta(hours=hours_before_now)).isoformat()
