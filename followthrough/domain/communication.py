"""The communication contract: how soon the first status update is due, and how often the next.

The policy sets it per severity (`status_updates: {first_within_minutes: 15, every_minutes: 30}`).
Pure functions over timeline entries decide whether it held; no I/O.

- The updates are the timeline's `status_update` entries; when it has none, its `communicated`
  milestone stands for the first (and only) update.
- The clock starts at detection (falling back to the start): nobody can announce an incident
  before anyone knows of it, and the start is often set afterwards, from the impact.
- Updates are owed until mitigation (falling back to resolution): while users are hurt. After it
  the cadence ends; the resolution notice is a separate matter.
- The first update is late when it went out after detection + first_within (or never did while
  the window was still open then). A gap is a stretch longer than every_minutes without an update
  while the window was open: from an update to the next one, or to mitigation when none followed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from followthrough.domain.draft import TimelineEntry

# A day: a contract asking less often than this is no contract.
CONTRACT_MINUTES_MOST = 24 * 60


class StatusUpdateContract(BaseModel):
    """One severity's promise: the first status update within N minutes, then every M."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_within_minutes: int = Field(
        ge=1, le=CONTRACT_MINUTES_MOST, description="after detection, the first update is due"
    )
    every_minutes: int = Field(
        ge=1, le=CONTRACT_MINUTES_MOST, description="then one at least this often until mitigation"
    )

    @property
    def first_within(self) -> timedelta:
        return timedelta(minutes=self.first_within_minutes)

    @property
    def every(self) -> timedelta:
        return timedelta(minutes=self.every_minutes)


def status_updates(entries: Sequence[TimelineEntry]) -> list[datetime]:
    """When status updates went out, oldest first: the `status_update` entries, or else the
    `communicated` milestone."""
    updates = sorted(e.at for e in entries if e.kind == "status_update")
    if updates:
        return updates
    return sorted(e.at for e in entries if e.kind == "communicated")[:1]


def first_communication(entries: Sequence[TimelineEntry]) -> datetime | None:
    """When people were first told: the first status update, else the communicated milestone.

    Time to communicate is measured to this.
    """
    updates = status_updates(entries)
    return updates[0] if updates else None


class UpdateGap(BaseModel):
    """A stretch longer than the cadence without a status update, while users were hurt."""

    model_config = ConfigDict(frozen=True)

    after: AwareDatetime  # the update before it
    until: AwareDatetime  # the next update, or the end of the window when none came in it
    next_update: AwareDatetime | None  # None: none came before the end of the window

    @property
    def length(self) -> timedelta:
        return self.until - self.after


class CommunicationReview(BaseModel):
    """Whether one incident's status updates kept the contract."""

    model_config = ConfigDict(frozen=True)

    severity: str
    contract: StatusUpdateContract
    clock_start: AwareDatetime  # detection, or the start
    clock_start_kind: str  # 'detected' or 'started'
    window_end: AwareDatetime  # mitigation, or resolution
    window_end_kind: str  # 'mitigated' or 'resolved'
    updates: list[AwareDatetime]
    first_due: AwareDatetime
    first_late_by: timedelta | None  # None: on time, or not due before the window closed
    gaps: list[UpdateGap]

    @property
    def held(self) -> bool:
        return self.first_late_by is None and not self.gaps

    @property
    def first_update(self) -> datetime | None:
        return self.updates[0] if self.updates else None

    def findings(self) -> list[str]:
        """Each breach, in words: what the draft must answer."""
        rule = f"the {self.severity} contract"
        found = []
        if self.first_late_by is not None:
            first = self.first_update
            if first is None:
                found.append(
                    f"no status update is on the timeline; {rule} wants the first within "
                    f"{_minutes(self.contract.first_within)} of {self.clock_start_kind} "
                    f"({_at(self.clock_start)}), by {_at(self.first_due)}"
                )
            else:
                found.append(
                    f"the first status update went out at {_at(first)}, "
                    f"{_minutes(first - self.clock_start)} after {self.clock_start_kind}; {rule} "
                    f"wants it within {_minutes(self.contract.first_within)}: "
                    f"{_minutes(self.first_late_by)} late"
                )
        for gap in self.gaps:
            until = (
                f"the next at {_at(gap.until)}"
                if gap.next_update is not None and gap.next_update == gap.until
                else f"{self.window_end_kind} at {_at(gap.until)}"
            )
            found.append(
                f"no status update for {_minutes(gap.length)}, from {_at(gap.after)} until "
                f"{until}; {rule} wants one every {_minutes(self.contract.every)}"
            )
        return found


def _minutes(span: timedelta) -> str:
    minutes = span.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes == int(minutes) else f"{minutes:.1f} min"


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


def review_communication(
    entries: Sequence[TimelineEntry], severity: str, contract: StatusUpdateContract
) -> CommunicationReview | None:
    """Whether the timeline's status updates kept the contract; None when the timeline has no
    window to judge (no detection or start, or no mitigation or resolution after it)."""
    at: dict[str, datetime] = {}
    for entry in sorted(entries, key=lambda e: e.at):
        at.setdefault(entry.kind, entry.at)
    start_kind = "detected" if "detected" in at else "started"
    end_kind = "mitigated" if "mitigated" in at else "resolved"
    start, end = at.get(start_kind), at.get(end_kind)
    if start is None or end is None or end < start:
        return None
    updates = status_updates(entries)
    first_due = start + contract.first_within
    first = updates[0] if updates else None
    late_by = None
    if first is not None and first > first_due:
        late_by = first - first_due
    elif first is None and first_due < end:
        late_by = end - first_due  # still owed when users stopped hurting
    gaps = []
    for i, update in enumerate(updates):
        if update >= end:
            break
        following = updates[i + 1] if i + 1 < len(updates) else None
        until = end if following is None else min(following, end)
        if until - update > contract.every:
            gaps.append(UpdateGap(after=update, until=until, next_update=following))
    return CommunicationReview(
        severity=severity,
        contract=contract,
        clock_start=start,
        clock_start_kind=start_kind,
        window_end=end,
        window_end_kind=end_kind,
        updates=updates,
        first_due=first_due,
        first_late_by=late_by,
        gaps=gaps,
    )
