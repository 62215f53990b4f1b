"""Recurring themes: a contributing-factor tag that keeps coming back reaches the council.

Each approved postmortem's factor tags are recorded with its incident's resolution time. When
`threshold` distinct postmortems carrying one tag resolved within `window_days` of each other, that
tag becomes a theme: recorded once (per tag and window start) and mailed to the council once.
A postmortem counts towards at most one theme of a tag: one already inside a recorded theme's
window does not start another.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class ThemePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: int = Field(
        default=3, ge=2, description="distinct postmortems sharing a tag that make a theme"
    )
    window_days: int = Field(
        default=90, ge=1, description="how close together their incidents must have resolved"
    )


class FactorTags(BaseModel):
    """What an approved postmortem adds to the count (the NOTE_THEMES activity's input)."""

    model_config = ConfigDict(frozen=True)

    postmortem_id: str
    resolved_at: AwareDatetime  # the incident's time
    tags: list[str]
    team: str | None
    services: list[str] = Field(default_factory=list)
    severity: str
    at: AwareDatetime  # workflow time: when it was approved
    threshold: int = Field(ge=2)
    window_days: int = Field(ge=1)


class Theme(BaseModel):
    """A tag seen in `threshold` or more postmortems within one window."""

    model_config = ConfigDict(frozen=True)

    tag: str
    window_start: AwareDatetime  # the earliest member incident's resolution
    window_end: AwareDatetime
    reached_at: AwareDatetime
    reached_by: str  # the postmortem whose approval reached the threshold
    postmortem_ids: list[str] = Field(default_factory=list)  # every member, oldest first
    # The latest member incident's resolution (None: not read); the window may reach far beyond.
    last_resolved_at: AwareDatetime | None = None

    @property
    def resolved_between(self) -> str:
        """'on 2026-11-20', or '2026-11-20 to 2026-12-02': the days its incidents resolved."""
        first = self.window_start.date()
        last = (self.last_resolved_at or self.window_end).date()
        return f"on {first}" if first == last else f"{first} to {last}"

    @property
    def key(self) -> str:
        return f"theme/{self.tag}/{self.window_start.isoformat()}"


def theme_window(
    seen: list[tuple[str, datetime]], at: datetime, threshold: int, window: timedelta
) -> tuple[datetime, list[str]] | None:
    """The earliest window of length `window` holding `at` and at least `threshold` of `seen`
    (postmortem id, incident time): its start and members, or None."""
    ordered = sorted(seen, key=lambda s: (s[1], s[0]))
    for _, start in ordered:
        if start > at or start < at - window:
            continue
        members = [pm for pm, t in ordered if start <= t <= start + window]
        if len(members) >= threshold:
            return start, members
    return None
