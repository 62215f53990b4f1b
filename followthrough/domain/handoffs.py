"""Hand-off notices: whoever work has just landed on hears of it at once.

Each is built from the record as it is after its step (domain/steps.py builds the step), with its
own dedupe key, so a retried activity or a restarted worker tells nobody twice. The workflows and
the seeder call these same functions; the templates (notices/templates/handoff.*.j2) word them.
"""

from __future__ import annotations

from datetime import datetime

from followthrough.domain.criteria import Manual
from followthrough.domain.notice import ItemFacts, Notice, NoticeKind, Recipient
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    SYSTEM_ACTOR,
    ActionItem,
    ChangeRequest,
    DoneClaim,
    ExtensionRequest,
    Postmortem,
    PostmortemState,
    Reassignment,
    Rejection,
    may_decide_for,
    verifier_refusal,
)
from followthrough.domain.steps import recipients


def _pm_notice(
    pm: Postmortem,
    policy: Policy,
    kind: NoticeKind,
    names: list[str],
    key: str,
    at: datetime,
    facts: ItemFacts | None = None,
) -> Notice:
    return Notice(
        dedupe_key=f"{pm.id}/{key}",
        kind=kind,
        at=at,
        to=recipients(policy, sorted(set(names))),
        postmortem_id=pm.id,
        step=pm.state.value,
        due=policy.calendar.local_date(pm.review_due or pm.draft_due),
        facts=facts,
    )


def _item_notice(
    item: ActionItem,
    policy: Policy,
    kind: NoticeKind,
    names: list[str],
    key: str,
    at: datetime,
    facts: ItemFacts | None = None,
) -> Notice:
    return Notice(
        dedupe_key=f"{item.id}/{key}",
        kind=kind,
        at=at,
        to=recipients(policy, sorted(set(names))),
        postmortem_id=item.postmortem_id,
        action_item_id=item.id,
        due=item.due,
        facts=facts,
    )


def opened_notice(pm: Postmortem, policy: Policy, at: datetime) -> Notice:
    """A required postmortem: its owner writes it. An optional one: its team may opt in."""
    if pm.state is PostmortemState.OPTIONAL:
        team = policy.teams.get(pm.team) if pm.team else None
        names = [*team.members, team.manager] if team else [pm.owner]
        return _pm_notice(pm, policy, NoticeKind.OPT_IN_OFFERED, names, "opt-in-offered", at)
    return _pm_notice(pm, policy, NoticeKind.POSTMORTEM_OPENED, [pm.owner], "opened", at)


def draft_submitted_notice(pm: Postmortem, policy: Policy, at: datetime) -> Notice | None:
    """Each reviewer (the owner never reviews their own draft), once per draft version."""
    names = [r for r in policy.reviewers if r != pm.owner]
    if not names:
        return None
    key = f"draft-v{pm.draft_version}/submitted"
    facts = ItemFacts(by=pm.owner, draft_version=pm.draft_version)
    return _pm_notice(pm, policy, NoticeKind.DRAFT_SUBMITTED, names, key, at, facts)


def changes_requested_notice(
    pm: Postmortem, policy: Policy, request: ChangeRequest, at: datetime
) -> Notice:
    """The owner hears the reviewer's reason; one per request on a draft version."""
    facts = ItemFacts(by=request.by, reason=request.reason, draft_version=pm.draft_version)
    key = f"draft-v{pm.draft_version}/changes-requested-by-{request.by}"
    return _pm_notice(pm, policy, NoticeKind.CHANGES_REQUESTED, [pm.owner], key, at, facts)


def approved_notice(pm: Postmortem, policy: Policy, at: datetime) -> Notice:
    """The owner and everyone who now owns one of its action items."""
    names = [pm.owner, *(spec.owner for spec in pm.action_item_specs())]
    key = f"draft-v{pm.draft_version}/approved"
    return _pm_notice(pm, policy, NoticeKind.POSTMORTEM_APPROVED, names, key, at)


def assigned_notice(item: ActionItem, policy: Policy, at: datetime) -> Notice:
    """An approved postmortem's item, to its owner: what, due when, how it will be checked."""
    return _item_notice(item, policy, NoticeKind.ITEM_ASSIGNED, [item.owner], "assigned", at)


def reassigned_away_notice(
    item: ActionItem, policy: Policy, change: Reassignment, previous: str, number: int, at: datetime
) -> Notice | None:
    """The previous owner hears it is no longer theirs (the new owner has `reassigned_notice`)."""
    if previous == item.owner:
        return None  # moved to another team, same owner: their own notice says it
    facts = ItemFacts(by=change.by, new_owner=item.owner, reason=change.reason)
    key = f"reassigned-{number}/previous"
    return _item_notice(item, policy, NoticeKind.REASSIGNED_AWAY, [previous], key, at, facts)


def verifiers(item: ActionItem, policy: Policy) -> list[str]:
    """Who is told that a done claim awaits a judgement: always a subset of the people
    `verifier_refusal` allows (so never the owner, never the claimant).

    A named verifier, or the people of a named role, are everyone the rule allows. With neither
    named the rule allows anyone but the owner; telling everyone would be noise, so only the
    team's manager, the one who answers for the item, is told (anyone else may still verify)."""
    allowed = [p for p in sorted(policy.people) if verifier_refusal(item, p, policy) is None]
    criterion = item.spec.acceptance_criterion
    if isinstance(criterion, Manual) and criterion.verifier is None and criterion.role is None:
        manager = policy.manager_of_team(item.team)
        return [p for p in allowed if p == manager]
    return allowed


def done_claimed_notice(
    item: ActionItem, policy: Policy, claim: DoneClaim, at: datetime
) -> Notice | None:
    """Whoever may verify a claim made by hand hears of it (a check needs nobody)."""
    names = verifiers(item, policy)
    if not names:
        return None
    facts = ItemFacts(by=claim.by, evidence=claim.evidence)
    key = f"claim-{len(item.claims)}/claimed"
    return _item_notice(item, policy, NoticeKind.DONE_CLAIMED, names, key, at, facts)


def verified_notice(item: ActionItem, policy: Policy, at: datetime) -> Notice:
    """The owner hears their claim held: verified by a person or by its checks."""
    judged = [d for d in item.decisions if d.verified]
    by = judged[-1].by if judged else None
    facts = ItemFacts(by=None if by == SYSTEM_ACTOR else by)
    key = f"claim-{len(item.claims)}/verified"
    return _item_notice(item, policy, NoticeKind.ITEM_VERIFIED, [item.owner], key, at, facts)


def rejected_notice(item: ActionItem, policy: Policy, rejection: Rejection, at: datetime) -> Notice:
    """The owner hears their claim was judged not done, and why: the item is open again."""
    facts = ItemFacts(by=rejection.by, reason=rejection.reason)
    key = f"claim-{len(item.claims)}/rejected"
    return _item_notice(item, policy, NoticeKind.CLAIM_REJECTED, [item.owner], key, at, facts)


def deciders(item: ActionItem, policy: Policy) -> list[str]:
    """Who may decide an extension on the item: everyone `may_decide_for` allows (the owner's
    manager and the council; never the owner, who is the one asking)."""
    return [person for person in sorted(policy.people) if may_decide_for(item, person, policy)]


def extension_requested_notice(
    item: ActionItem, policy: Policy, request: ExtensionRequest, at: datetime
) -> Notice:
    """Everyone who may decide hears of the request (the item's newest extension)."""
    facts = ItemFacts(by=request.by, until=request.until, reason=request.reason)
    key = f"extension-{len(item.extensions)}/requested"
    names = deciders(item, policy)
    return _item_notice(item, policy, NoticeKind.EXTENSION_REQUESTED, names, key, at, facts)


def audience_notices(
    pm: Postmortem, policy: Policy, page_url: str | None, at: datetime
) -> list[Notice]:
    """An approved postmortem's short summary, to each audience its severity names, once each
    (the dedupe key); with the published page's link when there is one."""
    return [
        Notice(
            dedupe_key=f"{pm.id}/audience-{name}/approved",
            kind=NoticeKind.AUDIENCE_SUMMARY,
            at=at,
            to=[Recipient(name=n, email=e) for n, e in members],
            postmortem_id=pm.id,
            step=pm.state.value,
            audience=name,
            page_url=page_url,
        )
        for name, members in policy.audiences_of(pm.severity).items()
        if members
    ]
