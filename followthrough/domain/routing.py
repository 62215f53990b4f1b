"""Where each team plans: the policy's `routing:`, `objectives:` and `tech_debt:` sections, and
the one function that decides an action item's TicketRoute from them.

    routing:
      teams:                                # a team left out: FOLLOWTHROUGH_JIRA_PROJECT
        payments:
          tracker: {kind: jira, project: PAY, labels: [team-payments], board: 12}
          tech_debt: PAY-7                  # the team's own tech-debt epic (or milestone)
      services:                             # wins over its owning team's route
        checkout:
          tracker: {kind: jira, project: CHK, board: 14}
    objectives:
      checkout-availability: {title: Checkout at 99.95%, jira: REL-100, github: Checkout 99.95%}
    tech_debt: {jira: REL-7, github: Tech debt}

An item names an objective (a key above, or "tech-debt") and may ask for "this sprint"; its
ticket goes where its team's (or its service's) route says, under that objective's epic (Jira) or
milestone (GitHub), into the board's active sprint when asked.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from followthrough.domain.tickets import TicketRoute

if TYPE_CHECKING:
    from followthrough.domain.policy import Policy

TrackerKind = Literal["jira", "github"]
TECH_DEBT = "tech-debt"  # the objective an item names for the tech-debt backlog
# Jira's default project key pattern: a capital letter, then capitals, digits or _, 2-10 in all.
JIRA_PROJECT = re.compile(r"[A-Z][A-Z0-9_]{1,9}")
JIRA_ISSUE_KEY = re.compile(r"[A-Z][A-Z0-9_]{1,9}-[1-9][0-9]{0,9}")
# GitHub: an owner (39 characters: letters, digits, hyphens) and a repository name.
GITHUB_REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
# A label both trackers take: no spaces or commas (Jira splits on spaces), at most 50 (GitHub).
LABEL = re.compile(r"[^\s,\x00-\x1f\x7f]{1,50}")
OBJECTIVE_KEY = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MILESTONE_CHARS = 200
LABELS_PER_ROUTE = 20


class TrackerChoice(BaseModel):
    """A team's (or service's) tracker: `tracker: {kind, project, labels, board}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: TrackerKind = "jira"
    project: str = Field(description="a Jira project key (PAY), or a GitHub repository owner/name")
    labels: list[str] = Field(default_factory=list, description="put on each ticket, beside ours")
    board: int | None = Field(
        default=None, ge=1, description="the Jira Agile board whose active sprint 'this sprint' is"
    )


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tracker: TrackerChoice
    tech_debt: str | None = Field(
        default=None,
        description="the tech-debt backlog in this tracker: an epic's key or a milestone's title; "
        "none: the policy's tech_debt",
    )


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    teams: dict[str, Route] = Field(default_factory=dict, description="team -> its route")
    services: dict[str, Route] = Field(
        default_factory=dict, description="service -> its route (wins over its team's)"
    )

    def all(self) -> list[Route]:
        return [*self.teams.values(), *self.services.values()]


class Backlog(BaseModel):
    """Per tracker, where an objective's (or the tech-debt backlog's) tickets are linked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jira: str | None = Field(default=None, description="an epic's key")
    github: str | None = Field(default=None, description="a milestone's title")

    def in_tracker(self, kind: TrackerKind) -> str | None:
        return self.jira if kind == "jira" else self.github


class Objective(Backlog):
    title: str = Field(min_length=1, max_length=200)


def routing_problems(
    routing: Routing,
    objectives: Mapping[str, Objective],
    tech_debt: Backlog,
    teams: Collection[str],
    services: Collection[str],
) -> list[str]:
    """Every problem of the three sections, each naming its field; [] when they are usable."""
    problems: list[str] = []
    for section, routes, known in (
        ("teams", routing.teams, teams),
        ("services", routing.services, services),
    ):
        for name, route in routes.items():
            where = f"routing.{section}.{name}"
            if name not in known:
                what = "team" if section == "teams" else "service (not in services)"
                problems.append(f"{where}: unknown {what} '{name}'")
            problems += _route_problems(where, route)
    for key, objective in objectives.items():
        where = f"objectives.{key}"
        if key == TECH_DEBT:
            problems.append(
                f"{where}: '{TECH_DEBT}' is the tech-debt backlog's name; use tech_debt"
            )
        elif not OBJECTIVE_KEY.fullmatch(key):
            problems.append(
                f"{where}: a key is lowercase letters, digits, '.', '_' or '-' (at most 64)"
            )
        if "\n" in objective.title or not objective.title.strip():
            problems.append(f"{where}.title: one line of text")
        if objective.jira is None and objective.github is None:
            problems.append(f"{where}: name its jira epic, its github milestone, or both")
        problems += _backlog_problems(where, objective)
    problems += _backlog_problems("tech_debt", tech_debt)
    return problems


def _route_problems(where: str, route: Route) -> list[str]:
    problems = []
    tracker = route.tracker
    if tracker.kind == "jira" and not JIRA_PROJECT.fullmatch(tracker.project):
        problems.append(
            f"{where}.tracker.project: '{tracker.project}' is not a Jira project key "
            "(a capital letter, then capitals, digits or '_', 2 to 10 in all)"
        )
    if tracker.kind == "github" and not GITHUB_REPOSITORY.fullmatch(tracker.project):
        problems.append(
            f"{where}.tracker.project: '{tracker.project}' is not a GitHub repository (owner/name)"
        )
    if tracker.kind == "github" and tracker.board is not None:
        problems.append(f"{where}.tracker.board: a board is Jira's; GitHub has no sprints")
    if len(tracker.labels) > LABELS_PER_ROUTE:
        problems.append(f"{where}.tracker.labels: at most {LABELS_PER_ROUTE}")
    for i, label in enumerate(tracker.labels):
        if not LABEL.fullmatch(label):
            problems.append(
                f"{where}.tracker.labels[{i}]: '{label}' must be 1 to 50 characters without "
                "spaces or commas"
            )
    if route.tech_debt is not None:
        problems += _in_tracker_problems(f"{where}.tech_debt", tracker.kind, route.tech_debt)
    return problems


def _backlog_problems(where: str, backlog: Backlog) -> list[str]:
    problems = []
    if backlog.jira is not None:
        problems += _in_tracker_problems(f"{where}.jira", "jira", backlog.jira)
    if backlog.github is not None:
        problems += _in_tracker_problems(f"{where}.github", "github", backlog.github)
    return problems


def _in_tracker_problems(where: str, kind: TrackerKind, value: str) -> list[str]:
    if kind == "jira" and not JIRA_ISSUE_KEY.fullmatch(value):
        return [f"{where}: '{value}' is not a Jira issue key (like REL-7)"]
    if kind == "github" and (
        not value.strip() or len(value) > MILESTONE_CHARS or re.search(r"[\x00-\x1f]", value)
    ):
        return [f"{where}: a milestone's title is one line of 1 to {MILESTONE_CHARS} characters"]
    return []


def route_of(policy: Policy, team: str, services: Sequence[str] = ()) -> Route | None:
    """The route for a team's item: the first of the incident's services that the team owns and
    that has a route of its own, else the team's; None: the default Jira project."""
    routing = policy.routing
    for service in services:
        if policy.services.get(service) == team and service in routing.services:
            return routing.services[service]
    return routing.teams.get(team)


def objective_link(policy: Policy, route: Route | None, objective: str | None) -> str | None:
    """The epic key (Jira) or milestone title (GitHub) an objective's ticket is linked to."""
    if objective is None:
        return None
    kind: TrackerKind = route.tracker.kind if route else "jira"
    if objective == TECH_DEBT:
        own = route.tech_debt if route else None
        return own or policy.tech_debt.in_tracker(kind)
    found = policy.objectives.get(objective)
    return found.in_tracker(kind) if found else None


def ticket_route(
    policy: Policy,
    team: str,
    services: Sequence[str],
    objective: str | None,
    this_sprint: bool,
) -> TicketRoute | None:
    """Where an item's ticket goes, decided once (by the item's workflow: pure, never raises).

    None when nothing is routed: the team has no route, the item no objective and no sprint;
    the ticket goes to FOLLOWTHROUGH_JIRA_PROJECT as before routing.
    """
    route = route_of(policy, team, services)
    epic = objective_link(policy, route, objective)
    if route is None and epic is None and not this_sprint:
        return None
    if route is None:
        return TicketRoute(epic=epic, this_sprint=this_sprint)
    tracker = route.tracker
    return TicketRoute(
        tracker=tracker.kind,
        project=tracker.project,
        labels=list(tracker.labels),
        board=tracker.board,
        epic=epic,
        this_sprint=this_sprint,
    )


def item_routing_problems(
    name: str,
    policy: Policy,
    team: str,
    services: Sequence[str],
    objective: str | None,
    this_sprint: bool,
) -> list[str]:
    """Why an item's objective or sprint cannot be honoured (its team is known), each naming the
    item's field; [] when they can."""
    problems = []
    route = route_of(policy, team, services)
    kind = route.tracker.kind if route else "jira"
    tracker = "GitHub milestone" if kind == "github" else "Jira epic"
    if objective is not None and objective != TECH_DEBT and objective not in policy.objectives:
        known = ", ".join([*policy.objectives, TECH_DEBT])
        problems.append(
            f"{name}: objective '{objective}' is not one of the policy's objectives "
            f"(known: {known})"
        )
    elif objective is not None and objective_link(policy, route, objective) is None:
        problems.append(
            f"{name}: objective '{objective}' has no {tracker} in the policy, where team "
            f"'{team}' plans"
        )
    if this_sprint and (route is None or route.tracker.board is None):
        problems.append(
            f"{name}: this_sprint: team '{team}' has no Jira board in the policy's routing "
            "(routing.teams.<team>.tracker.board)"
        )
    return problems
