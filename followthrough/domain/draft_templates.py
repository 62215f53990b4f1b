"""Postmortem templates per kind of incident: the policy's `templates:` section.

A template is keyed by a severity name (`SEV1`) or a service name (`checkout`); every template
whose key is the incident's severity or one of its services applies. A template may require
sections the rules do not always require (they are checked by draft_problems, like every other
rule) and suggest action items that a new draft in the dashboard starts with.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The sections a template may make required; the others are always required (draft_problems).
ExtraSection = Literal["summary", "recovery_validation", "slo_impact"]


class SuggestedItem(BaseModel):
    """An action item a new draft starts with; its owner and due date are the author's to fill."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=200)
    team: str | None = None
    priority: str | None = None
    description: str = ""
    acceptance_criterion: dict[str, Any] | None = None


class DraftTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    required_sections: list[ExtraSection] = Field(default_factory=list)
    suggested_action_items: list[SuggestedItem] = Field(default_factory=list, max_length=30)


def templates_for(
    templates: dict[str, DraftTemplate], severity: str, services: list[str]
) -> list[tuple[str, DraftTemplate]]:
    """The templates that apply to an incident of this severity and these services, by key."""
    keys = [severity, *services]
    return [(key, templates[key]) for key in dict.fromkeys(keys) if key in templates]


def template_problems(
    templates: dict[str, DraftTemplate],
    severities: Collection[str],
    services: Collection[str],
    teams: Collection[str],
) -> list[str]:
    """A template keyed by nothing the policy knows would never apply: say so at `policy check`."""
    problems = []
    for key, template in templates.items():
        if key not in severities and key not in services:
            problems.append(f"templates.{key}: neither a severity nor a service of the policy")
        for i, item in enumerate(template.suggested_action_items):
            if item.team is not None and item.team not in teams:
                where = f"templates.{key}.suggested_action_items[{i}].team"
                problems.append(f"{where}: unknown team '{item.team}'")
    return problems
