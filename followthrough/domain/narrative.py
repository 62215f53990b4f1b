"""The council's quarterly narrative: what the council has to say about the quarter, in its words.

The quarterly report reads its numbers from the record; the narrative is what only people can add
(what the council decided, what it worries about, what it asks of teams). Council members write it
in the browser; each save names the version it was written against, so two members editing at once
never overwrite each other silently. It becomes a section of that quarter's report.
"""

from __future__ import annotations

import re

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from followthrough.domain import limits
from followthrough.domain.bounds import Bounds
from followthrough.domain.policy import Policy

QUARTER = re.compile(r"\d{4}Q[1-4]")


class CouncilNarrative(BaseModel):
    """The narrative of one quarter as last saved (version 0: none written yet)."""

    model_config = ConfigDict(frozen=True)

    quarter: str  # e.g. 2026Q4
    text: str = ""
    version: int = Field(default=0, ge=0)
    written_by: str | None = None
    written_at: AwareDatetime | None = None

    @property
    def paragraphs(self) -> list[str]:
        """The text as paragraphs (a blank line between them), for the report."""
        return [p.strip() for p in re.split(r"\n\s*\n", self.text) if p.strip()]


class NarrativeEdit(BaseModel):
    """A council member's save: the text, and the version it was written against."""

    model_config = ConfigDict(frozen=True)

    quarter: str
    text: str
    version: int  # the version the writer read; the save is refused if another came since
    by: str


def edit_problems(edit: NarrativeEdit, policy: Policy) -> list[str]:
    """What refuses the save, each naming its field; [] when it may be saved."""
    problems = []
    if QUARTER.fullmatch(edit.quarter) is None:
        problems.append(f"quarter: '{edit.quarter[:16]}' is not a quarter; write e.g. '2026Q4'")
    if edit.by not in policy.council:
        problems.append(
            f"by: only the reliability council writes its narrative ({edit.by} is not on it)"
        )
    bounds = Bounds()
    bounds.text("text", edit.text, limits.LONG_TEXT_CHARS, lines=True)
    bounds.number("version", edit.version, 0, limits.NUMBER_MAGNITUDE)
    return problems + bounds.problems


def stale_edit_problem(edit: NarrativeEdit, current: CouncilNarrative) -> str | None:
    """The save was written against an older version: someone saved in between."""
    if edit.version == current.version:
        return None
    who = current.written_by or "someone"
    return (
        f"version: {who} saved version {current.version} since you opened version {edit.version};"
        " reload to see it, then write yours again"
    )
