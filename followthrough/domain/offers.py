"""What a person may do now to an action item or a postmortem: the buttons and forms a page shows.

Asked of the very refusal functions the workflows' validators call (domain/postmortem.py), with
an empty form: an action is offered when the only thing wrong is what the form will ask for (an
INVALID refusal: a missing reason, a due date, a new owner). Who may act, and when, is decided
there and only there.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    Acknowledgement,
    ActionItem,
    Approval,
    ChangeRequest,
    DoneClaim,
    ExtensionDecision,
    ExtensionRequest,
    OptIn,
    Postmortem,
    PostmortemState,
    Reassignment,
    Rejection,
    RiskAcceptanceRequest,
    acknowledgement_refusal,
    approval_refusal,
    change_request_refusal,
    claim_refusal,
    extension_decision_refusal,
    extension_request_refusal,
    opt_in_refusal,
    reassignment_refusal,
    rejection_refusal,
    risk_acceptance_refusal,
    room_refusal,
    submitter_refusal,
    verifier_refusal,
)
from followthrough.domain.problems import Refusal, RefusalKind


class ItemAction(StrEnum):
    """The dashboard's names for what can be done to an action item (its form's path)."""

    ACKNOWLEDGE = "acknowledge"
    CLAIM_DONE = "claim-done"
    VERIFY = "verify"
    REJECT = "reject"
    REQUEST_EXTENSION = "request-extension"
    DECIDE_EXTENSION = "decide-extension"
    REASSIGN = "reassign"
    ACCEPT_RISK = "accept-risk"


class PostmortemAction(StrEnum):
    APPROVE = "approve"
    REQUEST_CHANGES = "request-changes"
    WRITE_DRAFT = "write-draft"
    OPT_IN = "opt-in"


def _open(refusal: Refusal | None) -> bool:
    """Nothing refused but the form's own blanks."""
    return refusal is None or refusal.kind is RefusalKind.INVALID


def _with_room(record: Postmortem | ActionItem, action: BaseModel, refusal: Refusal | None) -> bool:
    return _open(refusal) and room_refusal(record, action) is None


def item_offers(item: ActionItem, person: str, policy: Policy) -> frozenset[ItemAction]:
    """What `person` may do to `item` now."""
    offered: set[ItemAction] = set()
    if acknowledgement_refusal(item, Acknowledgement(by=person)) is None:
        offered.add(ItemAction.ACKNOWLEDGE)
    claim = DoneClaim(by=person, evidence="")
    if _with_room(item, claim, claim_refusal(item, claim)):
        offered.add(ItemAction.CLAIM_DONE)
    if verifier_refusal(item, person, policy) is None:
        offered.add(ItemAction.VERIFY)
        rejection = Rejection(by=person, reason="")
        if _with_room(item, rejection, rejection_refusal(item, rejection, policy)):
            offered.add(ItemAction.REJECT)
    ask = ExtensionRequest(by=person, until=item.due, reason="")
    if _with_room(item, ask, extension_request_refusal(item, ask, policy)):
        offered.add(ItemAction.REQUEST_EXTENSION)
    decision = ExtensionDecision(by=person, approve=True)
    if _with_room(item, decision, extension_decision_refusal(item, decision, policy)):
        offered.add(ItemAction.DECIDE_EXTENSION)
    change = Reassignment(by=person, to="")
    if _with_room(item, change, reassignment_refusal(item, change, policy)):
        offered.add(ItemAction.REASSIGN)
    risk = RiskAcceptanceRequest(by=person, reason="")
    if _open(risk_acceptance_refusal(item, risk, policy)):
        offered.add(ItemAction.ACCEPT_RISK)
    return frozenset(offered)


def postmortem_offers(pm: Postmortem, person: str, policy: Policy) -> frozenset[PostmortemAction]:
    """What `person` may do to the postmortem now."""
    offered: set[PostmortemAction] = set()
    approval = Approval(by=person)
    if _with_room(pm, approval, approval_refusal(pm, approval, policy)):
        offered.add(PostmortemAction.APPROVE)
    request = ChangeRequest(by=person, reason="")
    if _with_room(pm, request, change_request_refusal(pm, request, policy)):
        offered.add(PostmortemAction.REQUEST_CHANGES)
    if opt_in_refusal(pm, OptIn(by=person), policy) is None:
        offered.add(PostmortemAction.OPT_IN)
    elif pm.state is not PostmortemState.OPTIONAL and submitter_refusal(pm, person, policy) is None:
        offered.add(PostmortemAction.WRITE_DRAFT)
    return frozenset(offered)
