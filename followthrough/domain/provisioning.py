"""The directory as the identity provider provisions it (SCIM), laid over the policy file's.

The policy file names teams, their managers and members, and people's addresses. An identity
provider that provisions people and groups over SCIM (followthrough/api/scim.py) overrides the
file for the people and teams it provisions; everything else stays as the file says. One pure
function, `provisioned_policy`, makes the effective policy the API, the worker and the starters
all read.

Decisions, in users' words:

* A provisioned user is the person `person_name` gives: the local part of their email (or of a
  userName that is an email) when it is at the policy's email_domain, else their userName made
  lower case with anything but letters, digits, '.', '_' and '-' turned into '-'. The name is
  fixed when the user is first provisioned (tokens and records are kept by it), so renaming the
  user at the provider changes their email, not who they are here.
* A group is the team of its displayName; its active members are the team's members.
* A team's manager is the manager most of its members report to (the enterprise extension's
  `manager`), ties going to the name first in alphabetical order; with no reported manager
  among its members, the manager the policy file gives a team of that name; with neither, the
  group is not a team (it is reported by `provisioned_policy`'s problems).
* Someone deprovisioned (active false, or deleted) is in no team, on no list (reviewers, council,
  operators, audiences, the restricted postmortems' groups); a team they managed goes to the
  manager they reported to, else to the team's first member; a group left empty goes to the
  council. The council and the default owner are never left empty: a council of
  deprovisioned people only keeps them when no one else would be left, and the default owner
  becomes the first council member.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from followthrough.domain.policy import Policy, Team

PERSON_CHARS = 64
_NOT_IN_NAME = re.compile(r"[^a-z0-9._-]+")


class ProvisionedPerson(BaseModel):
    """A user the identity provider provisioned, as Followthrough names them."""

    model_config = ConfigDict(frozen=True)

    person: str
    email: str | None = None
    manager: str | None = None  # the person they report to, by our name
    active: bool = True


class ProvisionedTeam(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    members: list[str] = Field(default_factory=list)  # by our names


class Provisioned(BaseModel):
    """Everything SCIM provisioned: people (active or not) and groups."""

    model_config = ConfigDict(frozen=True)

    people: list[ProvisionedPerson] = Field(default_factory=list)
    teams: list[ProvisionedTeam] = Field(default_factory=list)

    @property
    def departed(self) -> set[str]:
        return {p.person for p in self.people if not p.active}


def person_name(user_name: str, email: str | None, email_domain: str) -> str:
    """Who a provisioned user is here (see the module's notes); '' when nothing is left of it."""
    for candidate in (email, user_name):
        if candidate and "@" in candidate:
            local, _, domain = candidate.rpartition("@")
            if domain.lower() == email_domain.lower() and local:
                return _normalised(local)
    return _normalised(user_name)


def _normalised(text: str) -> str:
    return _NOT_IN_NAME.sub("-", text.strip().lower()).strip("-")[:PERSON_CHARS]


def team_manager(members: list[str], managers: dict[str, str], fallback: str | None) -> str | None:
    """The manager most of `members` report to (ties: alphabetical), else `fallback`."""
    counts = Counter(managers[m] for m in members if managers.get(m) and managers[m] != m)
    if not counts:
        return fallback
    most = max(counts.values())
    return min(name for name, n in counts.items() if n == most)


def provisioned_policy(policy: Policy, provisioned: Provisioned) -> Policy:
    """The policy file's policy with what SCIM provisioned laid over it (see the module)."""
    return overlay(policy, provisioned)[0]


def overlay(policy: Policy, provisioned: Provisioned) -> tuple[Policy, list[str]]:
    """`provisioned_policy`, and the groups that could not be teams and why."""
    if not provisioned.people and not provisioned.teams:
        return policy, []
    gone = provisioned.departed
    active = {p.person: p for p in provisioned.people if p.active}
    managers = {p.person: p.manager for p in active.values() if p.manager and p.manager not in gone}
    problems: list[str] = []
    teams: dict[str, Team] = {}
    for name, team in policy.teams.items():
        teams[name] = team
    for group in provisioned.teams:
        members = sorted({m for m in group.members if m in active})
        known = policy.teams.get(group.name)
        fallback = known.manager if known is not None else None  # if gone: replaced below
        manager = team_manager(members, managers, fallback)
        if not members:
            problems.append(f"group '{group.name}': no active members, so no team")
            continue
        if manager is None:
            problems.append(
                f"group '{group.name}': none of its members has a manager, and the policy file "
                "has no team of that name to take one from"
            )
            continue
        teams[group.name] = Team(
            manager=manager,
            members=members,
            wip_cap=known.wip_cap if known is not None else None,
            slack_channel=known.slack_channel if known is not None else None,
        )
    for name, team in list(teams.items()):
        members = [m for m in team.members if m not in gone]
        manager = team.manager
        if manager in gone:
            manager = next((m for m in [managers.get(manager, "")] if m and m not in gone), "")
            manager = manager or (members[0] if members else "")
        if not manager:
            problems.append(f"team '{name}': everyone in it is deprovisioned; kept as it was")
            continue
        teams[name] = team.model_copy(update={"manager": manager, "members": members or [manager]})
    data: dict[str, Any] = policy.model_dump(by_alias=True)
    data["teams"] = {name: team.model_dump() for name, team in teams.items()}
    data["reviewers"] = [p for p in policy.reviewers if p not in gone]
    data["council"] = [p for p in policy.council if p not in gone] or list(policy.council)
    people = set(data["reviewers"]) | set(data["council"])
    for team in teams.values():
        people |= {team.manager, *team.members}
    data["operators"] = [p for p in policy.operators if p in people]
    if data["default_owner"] not in people:
        data["default_owner"] = data["council"][0]
    # Someone the file named in an audience who is no longer a person of the policy keeps
    # hearing at their address, unless they were deprovisioned.
    data["audiences"] = {
        name: [
            m if m in people or m not in policy.people else policy.email_of(m)
            for m in members
            if m not in gone
        ]
        or list(data["council"])
        for name, members in policy.audiences.items()
    }
    # A restricted postmortem's readers: whoever of a group is still a person of the policy. A
    # group left with nobody falls to the council, so that a restricted postmortem always has a
    # reader (never anyone wider).
    data["groups"] = {}
    for name, members in policy.groups.items():
        kept = [m for m in members if m in people]
        if not kept:
            problems.append(
                f"group '{name}': nobody in it is left; the council reads its postmortems"
            )
        data["groups"][name] = kept or list(data["council"])
    emails = dict(policy.emails)
    for person in active.values():
        if person.email and person.email.lower() != f"{person.person}@{policy.email_domain}":
            emails[person.person] = person.email
    data["emails"] = {p: address for p, address in emails.items() if p in people}
    data["people"] = {p: d for p, d in data["people"].items() if p in people}
    return Policy.model_validate(data), problems


def manager_of(person: str, policy: Policy, provisioned: Provisioned, team: str) -> str | None:
    """Whom a deprovisioned person's item in `team` goes to: the manager they reported to when
    that manager is still here, else the team's manager in `policy` (the effective one), else
    the first council member; never the person themselves."""
    gone = provisioned.departed
    reported = next((p.manager for p in provisioned.people if p.person == person), None)
    candidates = [reported, policy.teams[team].manager if team in policy.teams else None]
    candidates += list(policy.council)
    for candidate in candidates:
        if candidate and candidate != person and candidate not in gone:
            return candidate
    return None
