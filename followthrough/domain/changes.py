"""Changes: deploys as their sources report them, and the change metrics (issue 20).

A `Deploy` is one deployment of one service's version to one environment, normalized from the
generic deploy webhook, GitHub's `deployment_status` or an Argo CD notification; (source, id)
names it, and a later status of the same deploy replaces the earlier one. Nothing here does I/O.

These are the product's definitions, per service, per team (the policy's `services`) and per
month (UTC, of the deploy's finish, else its start):

- Counted deploys: those that reached the environments the policy counts
  (`changes.environments`, default production), status succeeded. Failed, cancelled and
  unfinished deploys changed nothing users saw, so they count in no figure.
- Deployment frequency: counted deploys in the month.
- A deploy led to an incident when a postmortem names it as the change that caused it; or,
  when the incident's postmortem names no change (not "none", not a deploy), when an incident of
  its service started within `changes.suspect_window_hours` after it finished.
- A deploy was rolled back when a later deploy of its service and environment is a rollback of
  its version (`rollback_of`).
- Change failure rate = deploys that led to an incident or were rolled back / counted deploys.
- Rollback frequency = rollbacks (counted deploys that roll a version back) in the month, and
  their share of the counted deploys.
Every figure carries the counts it stands on; a rate over no deploys is None, never 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, computed_field

from followthrough.domain import limits
from followthrough.domain.bounds import Bounds

DeployStatus = Literal["pending", "in_progress", "succeeded", "failed", "cancelled"]
DEPLOY_STATUSES: tuple[DeployStatus, ...] = (
    "pending",
    "in_progress",
    "succeeded",
    "failed",
    "cancelled",
)
# What a caused_by_change says when the postmortem found that no change caused the incident.
NO_CHANGE = "none"
DEPLOY_ID_CHARS = 200
SOURCE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


class ChangePolicy(BaseModel):
    """The policy's `changes:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suspect_window_hours: int = Field(
        default=6,
        ge=1,
        le=168,
        description="deploys of an incident's services this many hours before it started are "
        "on its timeline (the latest a suspect), and count as having led to it",
    )
    environments: list[str] = Field(
        default_factory=lambda: ["production"],
        max_length=limits.LIST_ENTRIES,
        description="the environments whose deploys the change metrics count; empty: all",
    )

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.suspect_window_hours)

    def counts(self, environment: str) -> bool:
        return not self.environments or environment in self.environments


class Deploy(BaseModel):
    """One deploy, as its source reported it last."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(pattern=SOURCE_PATTERN, description="generic, github, argocd")
    id: str = Field(min_length=1, description="the source's id for this deploy")
    service: str = Field(min_length=1)
    version: str = Field(min_length=1, description="what was deployed: a tag, a commit")
    environment: str = Field(min_length=1)
    status: DeployStatus
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    rollback_of: str | None = Field(default=None, description="the version this one rolls back")
    by: str | None = None
    link: str | None = None

    @property
    def at(self) -> datetime | None:
        """When it took effect: its finish, else its start."""
        return self.finished_at or self.started_at


def deploy_problems(deploy: Deploy) -> list[str]:
    """Each field past its limit, by name (the webhooks refuse such a deploy with a 422)."""
    check = Bounds()
    check.text("id", deploy.id, DEPLOY_ID_CHARS)
    check.name("service", deploy.service)
    check.name("version", deploy.version)
    check.name("environment", deploy.environment)
    check.name("rollback_of", deploy.rollback_of)
    check.name("by", deploy.by)
    check.text("link", deploy.link, limits.URL_CHARS)
    if deploy.link is not None and not deploy.link.startswith(("https://", "http://")):
        check.problems.append("link: must be an http(s) URL")
    check.moment("started_at", deploy.started_at)
    check.moment("finished_at", deploy.finished_at)
    if deploy.started_at and deploy.finished_at and deploy.finished_at < deploy.started_at:
        check.problems.append("finished_at: before started_at")
    if deploy.at is None:
        check.problems.append("started_at: missing (neither started_at nor finished_at given)")
    return check.problems


# --- the incidents the metrics and the timeline look at ----------------------------------------


class IncidentChange(BaseModel):
    """An incident as the change metrics see it: its services, its start (and end, for the time
    to restore), and the change its postmortem names (a deploy id, "none", or None: not said)."""

    model_config = ConfigDict(frozen=True)

    services: list[str]
    started_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    caused_by_change: str | None = None


def suspects(
    deploys: Iterable[Deploy], services: Sequence[str], started_at: datetime, policy: ChangePolicy
) -> list[Deploy]:
    """The deploys of the incident's services that took effect in the window before it
    started, oldest first (the last is the suspect). Only succeeded or unfinished deploys:
    a failed one changed nothing."""
    since = started_at - policy.window
    found = [
        d
        for d in deploys
        if d.service in services
        and d.status in ("succeeded", "in_progress")
        and d.at is not None
        and since <= d.at <= started_at
    ]
    return sorted(found, key=lambda d: (d.at or started_at, d.source, d.id))


def caused_by_change_problem(value: str | None, candidates: Iterable[Deploy]) -> str | None:
    """`caused_by_change` must be None, "none", or the id of one of the incident's deploys."""
    if value is None or value == NO_CHANGE:
        return None
    if any(d.id == value for d in candidates):
        return None
    shown = value if len(value) <= 80 else value[:80] + "..."
    return (
        f"caused_by_change: {shown!r} is not a deploy of the incident's services "
        f'(a deploy id, "{NO_CHANGE}", or leave it empty)'
    )


# --- metrics -----------------------------------------------------------------------------------


class ChangeFigures(BaseModel):
    """The change metrics of one service or team in one month, with what they stand on."""

    model_config = ConfigDict(frozen=True)

    month: str = Field(description="YYYY-MM, UTC")
    service: str | None = None
    team: str | None = None
    deploys: int = Field(description="counted deploys: the deployment frequency")
    led_to_incident: int
    rolled_back: int
    failed_changes: int = Field(description="led to an incident or rolled back (each once)")
    rollbacks: int = Field(description="counted deploys that rolled a version back")
    incidents: int = Field(default=0, description="incidents of the service (team) started")
    time_to_restore: timedelta | None = Field(
        default=None, description="the median of those incidents' resolved - started"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def change_failure_rate(self) -> float | None:
        return self.failed_changes / self.deploys if self.deploys else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rollback_rate(self) -> float | None:
        return self.rollbacks / self.deploys if self.deploys else None


class ChangeMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    by_service: list[ChangeFigures]
    by_team: list[ChangeFigures]


def month_of(moment: datetime, zone: str = "UTC") -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m")


def change_metrics(
    deploys: Sequence[Deploy],
    incidents: Sequence[IncidentChange],
    services: dict[str, str],
    policy: ChangePolicy,
    zone: str = "UTC",
) -> ChangeMetrics:
    """The figures per service and month, and per team (`services`: service -> team; a service
    without a team is in no team's figures) and month, months read in `zone`; sorted by month,
    then name. Beside them, the time to restore of the incidents that started in that month."""
    counted = [
        d
        for d in deploys
        if d.status == "succeeded" and d.at is not None and policy.counts(d.environment)
    ]
    failed_incident = _led_to_incident(counted, incidents, policy)
    rolled_back = _rolled_back(counted)
    per_service: dict[tuple[str, str], list[Deploy]] = defaultdict(list)
    per_team: dict[tuple[str, str], list[Deploy]] = defaultdict(list)
    for d in counted:
        month = month_of(d.at or datetime.min.replace(tzinfo=UTC), zone)
        per_service[(month, d.service)].append(d)
        team = services.get(d.service)
        if team is not None:
            per_team[(month, team)].append(d)

    restores_by_service: dict[tuple[str, str], list[IncidentChange]] = defaultdict(list)
    restores_by_team: dict[tuple[str, str], list[IncidentChange]] = defaultdict(list)
    for incident in incidents:
        month = month_of(incident.started_at, zone)
        for service in set(incident.services):
            restores_by_service[(month, service)].append(incident)
        for team in {services[s] for s in incident.services if s in services}:
            restores_by_team[(month, team)].append(incident)

    def figures(group: list[Deploy], restored: list[IncidentChange]) -> dict[str, Any]:
        keys = [(d.source, d.id) for d in group]
        incident = {k for k in keys if k in failed_incident}
        back = {k for k in keys if k in rolled_back}
        times = [i.resolved_at - i.started_at for i in restored if i.resolved_at is not None]
        return {
            "deploys": len(group),
            "led_to_incident": len(incident),
            "rolled_back": len(back),
            "failed_changes": len(incident | back),
            "rollbacks": sum(1 for d in group if d.rollback_of),
            "incidents": len(restored),
            "time_to_restore": _median(times),
        }

    return ChangeMetrics(
        by_service=[
            ChangeFigures(
                month=m, service=s, team=services.get(s), **figures(g, restores_by_service[(m, s)])
            )
            for (m, s), g in sorted(per_service.items())
        ],
        by_team=[
            ChangeFigures(month=m, team=t, **figures(g, restores_by_team[(m, t)]))
            for (m, t), g in sorted(per_team.items())
        ],
    )


def _median(values: list[timedelta]) -> timedelta | None:
    """The middle value, the mean of the two middle ones for an even count (domain/metrics.py's
    definition; that module imports this one, so it is not imported here)."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return None
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def _led_to_incident(
    counted: Sequence[Deploy], incidents: Sequence[IncidentChange], policy: ChangePolicy
) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for incident in incidents:
        if incident.caused_by_change == NO_CHANGE:
            continue
        if incident.caused_by_change is not None:
            found |= {
                (d.source, d.id)
                for d in counted
                if d.id == incident.caused_by_change and d.service in incident.services
            }
            continue
        found |= {
            (d.source, d.id)
            for d in suspects(counted, incident.services, incident.started_at, policy)
        }
    return found


def _rolled_back(counted: Sequence[Deploy]) -> set[tuple[str, str]]:
    """Deploys whose version a later deploy of the same service and environment rolled back."""
    found: set[tuple[str, str]] = set()
    for rollback in counted:
        if not rollback.rollback_of or rollback.at is None:
            continue
        for d in counted:
            if (
                d.service == rollback.service
                and d.environment == rollback.environment
                and d.version == rollback.rollback_of
                and d.at is not None
                and d.at <= rollback.at
                and d is not rollback
            ):
                found.add((d.source, d.id))
    return found
