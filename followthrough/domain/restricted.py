"""Restricted postmortems: which incidents only a named group (and the people on them) may read.

A rule of the policy's `restricted` list names severities and labels (the incident's labels or
tags, as its source sends them); an incident with any of them is restricted to the rule's group.
The restriction is decided once, when the postmortem opens, and kept with it (and in the record's
columns, so lists filter in SQL). Who may read one is `access.may_read`: the group's members and
the people on it (its owner, the incident's commander, the reviewers who reviewed it, its action
items' owners past and present, and whoever verified or rejected one of them).
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

GROUP_NAME = r"^[a-z0-9_-]{1,64}$"


class RestrictionRule(BaseModel):
    """Incidents of these severities, or carrying any of these labels, are the group's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severities: list[str] = Field(default_factory=list, max_length=50)
    labels: list[str] = Field(default_factory=list, max_length=50)
    group: str = Field(pattern=GROUP_NAME, description="a group of the policy's `groups`")
    jira_security_level: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="the Jira issue security level its tickets are created at (by name); "
        "none: Jira tickets are not created for it (the built-in tracker keeps its items)",
    )
    confluence_space: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9~_-]{1,255}$",
        description="the Confluence space key it is published to; none: not published",
    )

    def matches(self, severity: str, labels: Iterable[str]) -> bool:
        return severity in self.severities or any(label in self.labels for label in labels)


class Readable(BaseModel):
    """What `may_read` judges a postmortem by: its restriction and the people on it."""

    model_config = ConfigDict(frozen=True)

    restricted_to: str | None = None
    people: frozenset[str] = frozenset()


class Reader(BaseModel):
    """A person as the record's reads see them: their name and the groups they are in."""

    model_config = ConfigDict(frozen=True)

    person: str
    groups: frozenset[str] = frozenset()

    def may_read(self, readable: Readable) -> bool:
        """The one rule (storage's SQL filters say the same, tests/test_restricted.py checks):
        unrestricted, or the reader is in its group, or on it."""
        return (
            readable.restricted_to is None
            or readable.restricted_to in self.groups
            or self.person in readable.people
        )


# What figures, reports and channels say instead of a restricted postmortem's title.
RESTRICTED_TITLE = "a restricted postmortem"
RESTRICTED_ITEM_TITLE = "an action item of a restricted postmortem"
