"""The severity policy and the people directory, loaded from a YAML file.

A policy says, per severity, whether a postmortem is required, when its draft and review are due
and how many approvals it needs; it names the teams (members, manager, WIP cap), which team owns
which service, the reviewers and the reliability council, their email addresses, the business
calendar deadlines are counted on, the escalation ladder for overdue action items, and the
taxonomy of contributing-factor tags with the rule that turns a recurring tag into a theme,
what a postmortem's SLO review demands, per severity the communication contract (how soon
the first status update is due, and how often the next), how the incident channel's chat
is read, and where each team's tickets go (its tracker, objectives, tech-debt backlog).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from followthrough.domain.alert_quality import AlertPolicy
from followthrough.domain.calendar import BusinessCalendar
from followthrough.domain.changes import ChangePolicy
from followthrough.domain.chat import ChatPolicy
from followthrough.domain.communication import StatusUpdateContract
from followthrough.domain.decisions import DecisionPolicy
from followthrough.domain.directory import IdentityPolicy
from followthrough.domain.draft_templates import DraftTemplate, template_problems
from followthrough.domain.escalation import EscalationPolicy
from followthrough.domain.impact import FailureClass, ImpactPolicy, impact_problems
from followthrough.domain.outbound import OutboundPolicy
from followthrough.domain.problems import Problems, format_validation_error
from followthrough.domain.publishing import PublishingPolicy
from followthrough.domain.restricted import GROUP_NAME, Reader, RestrictionRule
from followthrough.domain.routing import Backlog, Objective, Routing, routing_problems
from followthrough.domain.slo import SloReviewPolicy
from followthrough.domain.themes import ThemePolicy

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "default_policy.yaml"

# Shape checks only, to catch typos such as a missing '@'; the mail server has the final word.
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
_ADDRESS = re.compile(r"[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")


class SeverityPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    postmortem_required: bool
    draft_due_days: int = Field(ge=1, description="days after resolution the draft is due")
    review_due_days: int = Field(ge=1, description="days after submission the review is due")
    approvals_required: int = Field(ge=1, description="distinct reviewers who must approve")
    optional_window_days: int = Field(
        default=14, ge=1, description="how long a not-required postmortem waits for an opt-in"
    )
    status_updates: StatusUpdateContract | None = Field(
        default=None,
        description="the communication contract: the first status update within N minutes of "
        "detection, then one every M until mitigation; none: no contract",
    )
    audiences: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="the audiences (top-level `audiences`) told when its postmortem is approved",
    )


# Slack's ids: a user (U..., W... on Enterprise Grid), a channel (C..., G...) or '#name'.
SLACK_USER = r"^[UW][A-Z0-9]{2,20}$"
SLACK_CHANNEL = r"^([CG][A-Z0-9]{2,20}|#[a-z0-9._-]{1,80})$"
# A GitHub login: letters, digits and inner hyphens, at most 39 characters.
GITHUB_LOGIN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$"


class Team(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    manager: str
    members: list[str] = Field(min_length=1)
    wip_cap: int | None = Field(
        default=None, ge=1, description="most open action items the team may hold; none: no cap"
    )
    slack_channel: str | None = Field(
        default=None,
        pattern=SLACK_CHANNEL,
        description="the channel that also hears of the team's work, when Slack is configured",
    )


class PersonDetails(BaseModel):
    """What the directory knows of a person beyond their name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slack: str | None = Field(
        default=None, pattern=SLACK_USER, description="Slack user id; none: looked up by email"
    )
    github: str | None = Field(
        default=None,
        pattern=GITHUB_LOGIN,
        description="GitHub login their issues are assigned to; none: left unassigned",
    )


class Policy(BaseModel):
    """Who owns what, who reviews, and what each severity demands."""

    # `people:` in the file is `directory` here (`people` names everyone the policy knows).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    severities: dict[str, SeverityPolicy] = Field(
        min_length=1, description="worst first; the order is the severity ranking"
    )
    teams: dict[str, Team] = Field(min_length=1)
    services: dict[str, str] = Field(default_factory=dict, description="service -> owning team")
    reviewers: list[str] = Field(default_factory=list)
    council: list[str] = Field(min_length=1, description="the reliability council")
    operators: list[str] = Field(
        default_factory=list,
        description="who runs Followthrough: told of stuck work and policy gaps; default: council",
    )
    default_owner: str = Field(description="owns a postmortem with no commander and no team")
    source_severities: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="per webhook source: its severity/urgency/priority value -> our severity",
    )
    source_default_severity: dict[str, str] = Field(
        default_factory=dict,
        description="per webhook source: our severity for a value source_severities does not "
        "map, or when the source gives none (the incident is marked and the operators told)",
    )
    default_severity: str | None = Field(
        default=None,
        description="the same for a source not in source_default_severity; none: the least "
        "severe severity",
    )
    calendar: BusinessCalendar = Field(default_factory=BusinessCalendar)
    escalation: EscalationPolicy = Field(default_factory=EscalationPolicy)
    max_extensions: int = Field(
        default=2, ge=0, description="approved due-date extensions an action item may have"
    )
    contributing_factor_tags: list[str] = Field(
        default_factory=list,
        description="the controlled taxonomy for contributing factors' tags; empty: any tag",
    )
    themes: ThemePolicy = Field(default_factory=ThemePolicy)
    impact: ImpactPolicy = Field(
        default_factory=ImpactPolicy,
        description="how open action items are ranked by user impact (the reliability backlog)",
    )
    failure_classes: dict[str, FailureClass] = Field(
        default_factory=dict,
        description="class name -> what it is and the factor tags it covers; an action item "
        "that removes one (removes_class) ranks higher than one patching a single defect",
    )
    council_decisions: DecisionPolicy = Field(default_factory=DecisionPolicy)
    templates: dict[str, DraftTemplate] = Field(
        default_factory=dict,
        description="per severity or service name: extra required sections, suggested items",
    )
    slo_review: SloReviewPolicy = Field(default_factory=SloReviewPolicy)
    alerts: AlertPolicy = Field(
        default_factory=AlertPolicy,
        description="how firing and resolved alerts are kept (retention) and judged monthly",
    )
    chat: ChatPolicy = Field(
        default_factory=ChatPolicy,
        description="finding the incident's Slack channel, and the marks that make a message "
        "a decision or a status update on the timeline",
    )
    outbound: OutboundPolicy = Field(
        default_factory=OutboundPolicy,
        description="the non-public hosts acceptance-criterion checks may call",
    )
    changes: ChangePolicy = Field(
        default_factory=ChangePolicy,
        description="deploys: the suspect window before an incident, the environments counted",
    )
    publishing: PublishingPolicy | None = Field(
        default=None,
        description="where approved postmortems are published (a Confluence space, per team); "
        "none: nowhere",
    )
    audiences: dict[str, list[str]] = Field(
        default_factory=dict,
        max_length=50,
        description="audience -> its people or email addresses, told of approved postmortems "
        "of the severities that name it",
    )
    groups: dict[str, list[str]] = Field(
        default_factory=dict,
        max_length=50,
        description="group -> its people; a `restricted` rule names the group that may read",
    )
    restricted: list[RestrictionRule] = Field(
        default_factory=list,
        max_length=50,
        description="severities and labels whose postmortems only a group (and the people on "
        "them) may read; the first rule that matches decides",
    )
    email_domain: str = Field(default="example.com", description="person -> person@email_domain")
    emails: dict[str, str] = Field(
        default_factory=dict, description="person -> address, where it is not the default"
    )
    directory: dict[str, PersonDetails] = Field(
        default_factory=dict, alias="people", description="person -> details (a Slack id)"
    )
    identity: IdentityPolicy = Field(
        default_factory=IdentityPolicy,
        description="the identity provider's groups whose members review or sit on the council "
        "(added to reviewers and council at each sign-in through the provider)",
    )
    routing: Routing = Field(
        default_factory=Routing,
        description="per team (or service) the tracker and project its tickets go to",
    )
    objectives: dict[str, Objective] = Field(
        default_factory=dict,
        description="objective -> its title and, per tracker, its epic key or milestone",
    )
    tech_debt: Backlog = Field(
        default_factory=Backlog,
        description="the tech-debt backlog's epic key (jira) or milestone (github); a team's "
        "route may name its own",
    )

    @model_validator(mode="before")
    @classmethod
    def _severity_shares_by_rank(cls, data: Any) -> Any:
        """Without `impact.severities`, the worst severity counts in full and each next one a
        step less (four: 1, 0.75, 0.5, 0.25), so a policy written before the impact score
        still ranks a SEV1's items above a SEV4's."""
        if not isinstance(data, dict) or not isinstance(data.get("severities"), dict):
            return data
        impact = data.get("impact", {})
        if not isinstance(impact, dict) or "severities" in impact:
            return data
        names = list(data["severities"])
        shares = {name: (len(names) - i) / len(names) for i, name in enumerate(names)}
        return {**data, "impact": {**impact, "severities": shares}}

    @model_validator(mode="after")
    def _references_resolve(self) -> Policy:
        problems: list[str] = []
        people = self.people
        for service, team in self.services.items():
            if team not in self.teams:
                problems.append(f"services.{service}: unknown team '{team}'")
        for person in self.operators:
            if person not in people:
                problems.append(
                    f"operators: '{person}' is not a member, manager, reviewer or council member"
                )
        if self.default_owner not in people:
            problems.append(
                f"default_owner: '{self.default_owner}' is not a member or manager of any team"
            )
        for source, mapping in self.source_severities.items():
            for value, severity in mapping.items():
                if severity not in self.severities:
                    problems.append(
                        f"source_severities.{source}.{value}: unknown severity '{severity}'"
                    )
        for source, severity in self.source_default_severity.items():
            if severity not in self.severities:
                problems.append(f"source_default_severity.{source}: unknown severity '{severity}'")
        if self.default_severity is not None and self.default_severity not in self.severities:
            problems.append(f"default_severity: unknown severity '{self.default_severity}'")
        tags = self.contributing_factor_tags
        for tag in sorted({t for t in tags if tags.count(t) > 1}):
            problems.append(f"contributing_factor_tags: '{tag}' is listed more than once")
        for tag in tags:
            if not tag.strip() or tag != tag.strip():
                problems.append(
                    f"contributing_factor_tags: '{tag}' must be non-empty, without spaces around"
                )
        problems += impact_problems(self.impact, self.failure_classes, list(self.severities), tags)
        problems += template_problems(self.templates, self.severities, self.services, self.teams)
        for severity in self.slo_review.high_severities or []:
            if severity not in self.severities:
                problems.append(f"slo_review.high_severities: unknown severity '{severity}'")
        if not _DOMAIN.fullmatch(self.email_domain):
            problems.append(
                f"email_domain: '{self.email_domain}' is not a domain (write it without '@')"
            )
        for person, address in self.emails.items():
            if person not in people:
                problems.append(
                    f"emails.{person}: '{person}' is not a member, manager, reviewer "
                    "or council member"
                )
            if not _ADDRESS.fullmatch(address):
                problems.append(f"emails.{person}: '{address}' is not an email address")
        for person in self.directory:
            if person not in people:
                problems.append(
                    f"people.{person}: '{person}' is not a member, manager, reviewer "
                    "or council member"
                )
        problems += routing_problems(
            self.routing, self.objectives, self.tech_debt, self.teams, self.services
        )
        problems += self._audience_problems(people)
        problems += self._restriction_problems(people)
        if self.publishing is not None:
            for team in self.publishing.by_team:
                if team not in self.teams:
                    problems.append(f"publishing.by_team.{team}: unknown team '{team}'")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _audience_problems(self, people: set[str]) -> list[str]:
        problems = []
        for name, members in self.audiences.items():
            if not re.fullmatch(r"[a-z0-9_-]{1,50}", name):
                problems.append(
                    f"audiences.{name}: a name of lower-case letters, digits, '-' or '_' "
                    "(at most 50)"
                )
            if not members or len(members) > 200:
                problems.append(f"audiences.{name}: between 1 and 200 people or addresses")
            for member in members:
                if member not in people and not _ADDRESS.fullmatch(member):
                    problems.append(
                        f"audiences.{name}: '{member}' is neither a person of the policy "
                        "nor an email address"
                    )
        for severity, rules in self.severities.items():
            for name in rules.audiences:
                if name not in self.audiences:
                    problems.append(f"severities.{severity}.audiences: unknown audience '{name}'")
        return problems

    def _restriction_problems(self, people: set[str]) -> list[str]:
        problems = []
        for name, members in self.groups.items():
            if not re.fullmatch(GROUP_NAME[1:-1], name):
                problems.append(
                    f"groups.{name}: a name of lower-case letters, digits, '-' or '_' (at most 64)"
                )
            if not members or len(members) > 500:
                problems.append(f"groups.{name}: between 1 and 500 people")
            for member in members:
                if member not in people:
                    problems.append(
                        f"groups.{name}: '{member}' is not a member, manager, reviewer "
                        "or council member"
                    )
        settings: dict[str, tuple[str | None, str | None]] = {}
        for i, rule in enumerate(self.restricted):
            where = f"restricted[{i}]"
            if rule.group not in self.groups:
                problems.append(f"{where}.group: unknown group '{rule.group}'")
            if not rule.severities and not rule.labels:
                problems.append(f"{where}: name at least one severity or label")
            for severity in rule.severities:
                if severity not in self.severities:
                    problems.append(f"{where}.severities: unknown severity '{severity}'")
            chosen = (rule.jira_security_level, rule.confluence_space)
            if settings.setdefault(rule.group, chosen) != chosen:
                problems.append(
                    f"{where}: the rules of group '{rule.group}' must agree on "
                    "jira_security_level and confluence_space"
                )
        return problems

    def restriction_for(self, severity: str, labels: list[str]) -> str | None:
        """The group an incident of this severity and these labels is restricted to, if any."""
        for rule in self.restricted:
            if rule.matches(severity, labels):
                return rule.group
        return None

    def restriction_rule(self, group: str | None) -> RestrictionRule | None:
        """The rule restricting postmortems to `group` (its Jira level, its Confluence space)."""
        return next((r for r in self.restricted if r.group == group), None) if group else None

    def reader(self, person: str) -> Reader:
        """`person` with the groups they are in, as the record's reads filter for them."""
        groups = frozenset(name for name, members in self.groups.items() if person in members)
        return Reader(person=person, groups=groups)

    @property
    def people(self) -> set[str]:
        """Everyone the policy knows: team members and managers, reviewers, the council."""
        known = set(self.reviewers) | set(self.council)
        for team in self.teams.values():
            known.add(team.manager)
            known.update(team.members)
        return known

    def severity(self, name: str) -> SeverityPolicy:
        return self.severities[name]

    def is_high_severity(self, name: str) -> bool:
        """Listed in slo_review.high_severities; by default, one of the two worst severities."""
        high = self.slo_review.high_severities
        return name in (high if high is not None else list(self.severities)[:2])

    def default_severity_for(self, source: str) -> str:
        """Our severity for an incident from `source` whose own is missing or not mapped."""
        return (
            self.source_default_severity.get(source)
            or self.default_severity
            or list(self.severities)[-1]
        )

    def team_of_service(self, service: str) -> str | None:
        return self.services.get(service)

    def may_review(self, person: str) -> bool:
        return person in self.reviewers or person in self.council

    def is_in_team(self, person: str, team: str) -> bool:
        found = self.teams.get(team)
        return found is not None and (person in found.members or person == found.manager)

    def teams_of(self, person: str) -> list[str]:
        """The teams `person` is a member or the manager of, in the policy's order."""
        return [name for name in self.teams if self.is_in_team(person, name)]

    def email_of(self, person: str) -> str:
        """The person's override from `emails`, else person@email_domain."""
        return self.emails.get(person, f"{person}@{self.email_domain}")

    def slack_id_of(self, person: str) -> str | None:
        """The person's Slack user id from `people`, if the policy names one."""
        found = self.directory.get(person)
        return found.slack if found else None

    def github_logins(self) -> dict[str, str]:
        """Person -> GitHub login, for everyone the directory gives one."""
        return {person: d.github for person, d in self.directory.items() if d.github}

    def manager_of_team(self, team: str) -> str:
        """The team's manager; KeyError naming the team when the policy has no such team."""
        found = self.teams.get(team)
        if found is None:
            raise KeyError(f"unknown team '{team}'")
        return found.manager

    def unknown_tags(self, tags: list[str]) -> list[str]:
        """The tags not in the taxonomy (none when the taxonomy is empty: tags are free)."""
        known = self.contributing_factor_tags
        return [t for t in tags if known and t not in known]

    def audiences_of(self, severity: str) -> dict[str, list[tuple[str, str]]]:
        """The audiences a severity tells, each as (name, address) pairs: a person of the
        policy at their address, a plain address as itself."""
        rules = self.severities.get(severity)
        names = rules.audiences if rules is not None else []
        people = self.people
        return {
            name: [(m, self.email_of(m) if m in people else m) for m in self.audiences[name]]
            for name in names
            if name in self.audiences
        }

    def council_emails(self) -> list[str]:
        return [self.email_of(person) for person in self.council]

    @property
    def operator_names(self) -> list[str]:
        """Who hears of stuck work and policy gaps: the operators, else the council."""
        return list(self.operators or self.council)


# A policy, or what gives today's (the policy file's with the provisioned directory over it):
# long-lived readers (the worker's activities) take the latter, so a directory change reaches them.
PolicySource = Policy | Callable[[], Policy]


def current(source: PolicySource) -> Policy:
    return source if isinstance(source, Policy) else source()


class InvalidPolicy(Problems):
    """A policy file that cannot be used, with every problem found."""


def parse_policy(data: Any, *, origin: str = "policy") -> Policy:
    if not isinstance(data, dict):
        raise InvalidPolicy(origin, ["the policy must be a YAML mapping"])
    try:
        return Policy.model_validate(data)
    except ValidationError as err:
        raise InvalidPolicy(origin, format_validation_error(err)) from None


def load_policy(path: Path | None = None) -> Policy:
    """Load and validate a policy file; the shipped default when no path is given."""
    source = path or DEFAULT_POLICY_PATH
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as err:
        raise InvalidPolicy(str(source), [f"cannot read the file: {err.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InvalidPolicy(str(source), [f"not valid YAML: {err}"]) from None
    return parse_policy(data, origin=str(source))
