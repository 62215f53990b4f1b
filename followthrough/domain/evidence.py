"""Who sees what a check brought back.

A check's answer is an excerpt of whatever its URL or Prometheus served (EVIDENCE_EXCERPT_CHARS),
which may be an internal page. It is shown to the people who work on the item or judge it: its
owner and anyone who claimed it done or decided on it, the members and manager of its team,
the reviewers and the council (who may verify it or accept its risk), and the operators. Everyone
else sees the verdict and its reason, not the answer.
"""

from __future__ import annotations

from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItem

HIDDEN_ANSWER = (
    "(the answer is shown to the item's owner and team, reviewers, the council and operators)"
)


def sees_evidence(person: str, item: ActionItem, policy: Policy) -> bool:
    return (
        person == item.owner
        or policy.is_in_team(person, item.team)
        or policy.may_review(person)
        or person in policy.operator_names
        or any(claim.by == person for claim in item.claims)
        or any(decision.by == person for decision in item.decisions)
    )


def as_seen_by(person: str, item: ActionItem, policy: Policy) -> ActionItem:
    """The item with its checks' answers hidden unless `person` may see them."""
    if sees_evidence(person, item, policy) or not item.checks:
        return item
    checks = [
        attempt.model_copy(
            update={"result": attempt.result.model_copy(update={"answer": HIDDEN_ANSWER})}
        )
        for attempt in item.checks
    ]
    return item.model_copy(update={"checks": checks})
