"""Who a person signing in through the identity provider is, and the roles their groups grant.

The provider names a person by an email address (or the claim FOLLOWTHROUGH_OIDC_EMAIL_CLAIM
says); the directory (the policy's people, at `emails:` or person@email_domain) says who that
is. Their groups may grant roles: the policy's `identity:` section lists the provider's groups
whose members review postmortems or sit on the reliability council. A grant only adds: the
policy's own `reviewers:` and `council:` always hold, and a person signing in without the group
loses what an earlier sign-in granted, never what the policy lists.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from followthrough.domain.limits import OIDC_GROUP_CHARS, OIDC_GROUPS

if TYPE_CHECKING:
    from followthrough.domain.policy import Policy


class Role(StrEnum):
    REVIEWER = "reviewer"
    COUNCIL = "council"


class IdentityPolicy(BaseModel):
    """The provider's groups that grant roles (the policy's `identity:` section)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reviewer_groups: list[str] = Field(
        default_factory=list,
        max_length=OIDC_GROUPS,
        description="members of any of these provider groups review postmortems",
    )
    council_groups: list[str] = Field(
        default_factory=list,
        max_length=OIDC_GROUPS,
        description="members of any of these provider groups sit on the reliability council",
    )


def person_with_email(policy: Policy, address: str) -> str | None:
    """The one person of the directory with this address (case does not matter); None when
    nobody has it, or more than one person does (the directory cannot say who is signing in)."""
    wanted = address.strip().lower()
    found = [p for p in sorted(policy.people) if policy.email_of(p).lower() == wanted]
    return found[0] if len(found) == 1 else None


def roles_of_groups(identity: IdentityPolicy, groups: list[str]) -> frozenset[Role]:
    """The roles the provider's groups grant, by the policy's `identity:` section."""
    held = set(groups)
    roles = set()
    if held & set(identity.reviewer_groups):
        roles.add(Role.REVIEWER)
    if held & set(identity.council_groups):
        roles.add(Role.COUNCIL)
    return frozenset(roles)


def groups_problem(value: object, claim: str) -> str | None:
    """Why an ID token's groups claim cannot be read (a list of names, bounded), or None."""
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        return f"the ID token's '{claim}' claim is not a list of group names"
    if len(value) > OIDC_GROUPS:
        return f"the ID token's '{claim}' claim lists more than {OIDC_GROUPS} groups"
    if any(len(g) > OIDC_GROUP_CHARS for g in value):
        return f"the ID token's '{claim}' claim has a group name over {OIDC_GROUP_CHARS} characters"
    return None


def with_sign_in_roles(policy: Policy, roles: dict[str, frozenset[Role]]) -> Policy:
    """The policy authorization uses: its own reviewers and council, plus the people whose last
    sign-in through the provider granted them the role (people no longer in the directory are
    left out). The only place sign-in roles reach the policy."""
    people = policy.people
    reviewers = [p for p in sorted(roles) if Role.REVIEWER in roles[p] and p in people]
    council = [p for p in sorted(roles) if Role.COUNCIL in roles[p] and p in people]
    added_reviewers = [p for p in reviewers if p not in policy.reviewers]
    added_council = [p for p in council if p not in policy.council]
    if not added_reviewers and not added_council:
        return policy
    return policy.model_copy(
        update={
            "reviewers": [*policy.reviewers, *added_reviewers],
            "council": [*policy.council, *added_council],
        }
    )
