"""Publishing an approved postmortem where the company reads (a Confluence space), and the short
summary each audience of its severity receives.

The policy says where pages go (`publishing: {space, parent_page, by_team: {team: {...}}}`), who
the audiences are (`audiences: {product: [people or addresses], ...}`) and which severities tell
which (`severities.SEV1.audiences: [product, executives]`). The workflow asks for a page with
`page_request` and for the summaries with `handoffs.audience_notices`; the activities render,
publish and send.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# A Confluence space key: letters and digits (personal spaces start with '~').
SPACE_KEY = r"^~?[A-Za-z0-9]{1,255}$"
# A label is lower case, without spaces (Confluence lowercases and splits on them).
_NOT_IN_LABEL = re.compile(r"[^a-z0-9_.-]+")
# Control characters (C0, DEL, C1): a title is one line of text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class PageDestination(BaseModel):
    """A space, and the page the postmortems go under there (its title or its id; none: the
    space's top level)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: str = Field(pattern=SPACE_KEY, description="the Confluence space key")
    parent_page: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="the parent page's title, or its id (digits); none: the space's top level",
    )


class PublishingPolicy(PageDestination):
    """Where approved postmortems are published: a space, and a team's own where it has one."""

    by_team: dict[str, PageDestination] = Field(
        default_factory=dict, description="team -> its space (and parent page)"
    )

    def destination(self, team: str | None) -> PageDestination:
        found = self.by_team.get(team) if team else None
        return found or PageDestination(space=self.space, parent_page=self.parent_page)


class PageRequest(BaseModel):
    """Publish (or bring up to date) the postmortem's page at `destination`."""

    model_config = ConfigDict(frozen=True)

    postmortem_id: str
    destination: PageDestination
    at: AwareDatetime  # workflow time: the document's "as of"


class PublishedPage(BaseModel):
    """Where the postmortem's page is, and which version of it we last wrote or found."""

    model_config = ConfigDict(frozen=True)

    postmortem_id: str
    space: str
    page_id: str
    title: str
    url: str
    version: int
    changed: bool  # created or updated by this call (False: it already said the same)
    tickets: dict[str, str] = Field(default_factory=dict)  # item id -> its ticket's key, to link


def page_label(postmortem_id: str) -> str:
    """The label that finds the postmortem's page again: `ft-<postmortem id>`, as a label."""
    return "ft-" + _NOT_IN_LABEL.sub("-", postmortem_id.lower()).strip("-")[:240]


def page_title(title: str, postmortem_id: str) -> str:
    """Unique in its space (the id is): "Postmortem: <incident title> (<postmortem id>)"."""
    tail = f" ({postmortem_id})"
    one_line = " ".join(_CONTROL.sub(" ", title).split())
    room = 255 - len("Postmortem: ") - len(tail)  # Confluence's longest title
    if len(one_line) > room:
        one_line = one_line[: room - 1].rstrip() + "…"
    return f"Postmortem: {one_line}{tail}"


def page_request(
    postmortem_id: str, team: str | None, publishing: PublishingPolicy | None, at: datetime
) -> PageRequest | None:
    """The page to publish, or None when the policy publishes nowhere."""
    if publishing is None:
        return None
    return PageRequest(postmortem_id=postmortem_id, destination=publishing.destination(team), at=at)
