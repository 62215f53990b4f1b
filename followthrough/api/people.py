"""The human API: read postmortems and action items, and act on them.

Reads come from the record (the database); every action is followthrough/actions.py's, taken as
the person the API token belongs to. Its refusal comes back verbatim: 403 when this person may
not, 409 when not now, 422 when what was sent is wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import date
from typing import Annotated, TypeVar

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from followthrough.actions import ActionRefused
from followthrough.api.auth import Person
from followthrough.api.services import Services, Using
from followthrough.domain.draft import Draft
from followthrough.domain.evidence import as_seen_by
from followthrough.domain.metrics import ReliabilityMetrics, period_of
from followthrough.domain.postmortem import (
    Acknowledgement,
    ActionItem,
    ActionItemState,
    Approval,
    AuditEvent,
    ChangeRequest,
    CollectAgain,
    DoneClaim,
    DraftSubmission,
    ExtensionDecision,
    ExtensionRequest,
    OptIn,
    Postmortem,
    PostmortemState,
    Reassignment,
    Rejection,
    RiskAcceptanceRequest,
    Verification,
)
from followthrough.domain.problems import RefusalKind
from followthrough.reporting.backlog import ItemImpact, item_impact

router = APIRouter(
    prefix="/api",
    tags=["people"],
    responses={
        400: {"description": "the body is not readable (e.g. not UTF-8)"},
        401: {"description": "no API token, or an unknown or revoked one"},
        403: {"description": "not yours to do; the detail says why"},
        404: {"description": "no such postmortem or action item"},
        409: {"description": "not now; the detail says why"},
    },
)
Result = TypeVar("Result", bound=BaseModel)

STATUS_OF_REFUSAL = {
    RefusalKind.FORBIDDEN: status.HTTP_403_FORBIDDEN,
    RefusalKind.CONFLICT: status.HTTP_409_CONFLICT,
    RefusalKind.INVALID: status.HTTP_422_UNPROCESSABLE_CONTENT,
}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- what people send (the acting person comes from the token, never from the body) -----------


class ApprovalBody(Body):
    comment: str = Field(default="", max_length=10_000)


class ChangeRequestBody(Body):
    reason: str = Field(max_length=10_000, description="what needs to change")


class DoneClaimBody(Body):
    evidence: str = Field(max_length=10_000, description="the change, dashboard or test")


class VerificationBody(Body):
    note: str = Field(default="", max_length=10_000)


class RejectionBody(Body):
    reason: str = Field(max_length=10_000, description="why the criterion is not met")


class ExtensionRequestBody(Body):
    until: date = Field(description="the new due date")
    reason: str = Field(max_length=10_000)


class ExtensionDecisionBody(Body):
    approve: bool
    reason: str = Field(default="", max_length=10_000, description="required to deny")


class ReassignmentBody(Body):
    to: str = Field(max_length=128, description="the new owner")
    team: str | None = Field(default=None, max_length=64, description="if it changes")
    reason: str = Field(default="", max_length=10_000)


class RiskAcceptanceBody(Body):
    reason: str = Field(max_length=10_000, description="why the risk is acceptable, in writing")


# --- what people read --------------------------------------------------------------------------


class Me(BaseModel):
    person: str
    email: str
    teams: list[str]
    manages: list[str]
    reviewer: bool
    council: bool


class PostmortemView(BaseModel):
    postmortem: Postmortem
    action_items: list[ActionItem]
    audit: list[AuditEvent]


class ActionItemView(BaseModel):
    action_item: ActionItem
    audit: list[AuditEvent]
    impact: ItemImpact | None = Field(
        default=None, description="its impact score now, explained; the ticket priority it earns"
    )


@router.get("/me")
def me(person: Person, using: Using) -> Me:
    policy = using.policy
    return Me(
        person=person,
        email=policy.email_of(person),
        teams=policy.teams_of(person),
        manages=[name for name, team in policy.teams.items() if team.manager == person],
        reviewer=policy.may_review(person),
        council=person in policy.council,
    )


@router.get("/postmortems")
async def list_postmortems(
    person: Person, using: Using, state: PostmortemState | None = None
) -> list[Postmortem]:
    reader = using.policy.reader(person)
    return await asyncio.to_thread(
        lambda: using.store.records.postmortems(state.value if state else None, reader=reader)
    )


# One parameter, its form in the schema: every request the schema admits names one period.
PERIOD_PATTERN = r"^(20\d\dQ[1-4]|20\d\d-(0[1-9]|1[0-2]))?$"


@router.get("/reliability")
async def reliability(
    person: Person,
    using: Using,
    period: Annotated[
        str,
        Query(
            pattern=PERIOD_PATTERN,
            description="a quarter (2026Q4) or a month (2026-10); none: the last 12 months",
        ),
    ] = "",
) -> ReliabilityMetrics:
    """The reliability page's figures for a quarter, a month or the last 12 months. Each
    response figure has its count beside it: `coverage[].count` of `incidents` overall, and
    per severity `severities[].<duration>.count` of `severities[].incidents`; `reviewed` says
    how many incidents' figures come from an approved postmortem's reviewed timeline."""
    policy, now = using.policy, using.clock()
    quarter, month = (period, "") if "Q" in period else ("", period)
    chosen = period_of(
        policy.calendar.local_date(now), policy.calendar, quarter=quarter, month=month
    )
    return await asyncio.to_thread(using.reliability.measure, using.store, policy, chosen, now)


@router.get("/postmortems/{postmortem}")
async def show_postmortem(postmortem: str, person: Person, using: Using) -> PostmortemView:
    """A postmortem by id or unique tail (e.g. INC-2041), with its action items and audit trail."""
    pm_id = await postmortem_id_of(using, postmortem, person)
    store = using.store
    found = await asyncio.to_thread(store.records.postmortem, pm_id)
    assert found is not None
    items = await asyncio.to_thread(lambda: store.records.action_items(postmortem_id=pm_id))
    trail = await asyncio.to_thread(store.records.audit_trail, pm_id)
    seen = [as_seen_by(person, item, using.policy) for item in items]
    return PostmortemView(postmortem=found, action_items=seen, audit=trail)


@router.post("/postmortems/{postmortem}/draft")
async def submit_draft(postmortem: str, draft: Draft, person: Person, using: Using) -> Postmortem:
    """Submit the draft for review (the owner; anyone may opt in to an optional postmortem)."""
    pm_id = await postmortem_id_of(using, postmortem, person)
    submission = DraftSubmission(by=person, draft=draft)
    return await answer(using.actions.submit_draft(pm_id, submission))


@router.post("/postmortems/{postmortem}/opt-in")
async def opt_in(postmortem: str, person: Person, using: Using) -> Postmortem:
    """Take on an optional postmortem: it becomes yours to write, due as a required one's."""
    pm_id = await postmortem_id_of(using, postmortem, person)
    return await answer(using.actions.opt_in(pm_id, OptIn(by=person)))


@router.post("/postmortems/{postmortem}/collect")
async def collect_again(postmortem: str, person: Person, using: Using) -> Postmortem:
    """Collect the incident's timeline from its sources again (the owner or a reviewer)."""
    pm_id = await postmortem_id_of(using, postmortem, person)
    return await answer(using.actions.collect_again(pm_id, CollectAgain(by=person)))


@router.post("/postmortems/{postmortem}/approve")
async def approve(postmortem: str, body: ApprovalBody, person: Person, using: Using) -> Postmortem:
    pm_id = await postmortem_id_of(using, postmortem, person)
    approval = Approval(by=person, **body.model_dump())
    return await answer(using.actions.approve(pm_id, approval))


@router.post("/postmortems/{postmortem}/request-changes")
async def request_changes(
    postmortem: str, body: ChangeRequestBody, person: Person, using: Using
) -> Postmortem:
    pm_id = await postmortem_id_of(using, postmortem, person)
    request = ChangeRequest(by=person, **body.model_dump())
    return await answer(using.actions.request_changes(pm_id, request))


@router.get("/action-items")
async def list_action_items(
    person: Person,
    using: Using,
    postmortem: str | None = None,
    state: ActionItemState | None = None,
    owner: Annotated[str | None, Query(max_length=128)] = None,
    team: Annotated[str | None, Query(max_length=64)] = None,
) -> list[ActionItem]:
    pm_id = await postmortem_id_of(using, postmortem, person) if postmortem else None
    items = await asyncio.to_thread(
        lambda: using.store.records.action_items(
            postmortem_id=pm_id,
            state=state.value if state else None,
            owner=owner,
            team=team,
            reader=using.policy.reader(person),
        )
    )
    return [as_seen_by(person, item, using.policy) for item in items]


@router.get("/action-items/{item}")
async def show_action_item(item: str, person: Person, using: Using) -> ActionItemView:
    item_id = await item_id_of(using, item, person)
    found = await asyncio.to_thread(using.store.records.action_item, item_id)
    assert found is not None
    trail = await asyncio.to_thread(using.store.records.audit_trail, found.postmortem_id)
    impact = await asyncio.to_thread(
        item_impact, using.store, using.policy, item_id, found.postmortem_id
    )
    return ActionItemView(
        action_item=as_seen_by(person, found, using.policy),
        audit=[e for e in trail if e.workflow_id == found.id],
        impact=impact,
    )


@router.post("/action-items/{item}/acknowledge")
async def acknowledge(item: str, person: Person, using: Using) -> ActionItem:
    """The owner has seen it."""
    acknowledgement = Acknowledgement(by=person)
    item_id = await item_id_of(using, item, person)
    return await answer_seen_by(person, using, using.actions.acknowledge(item_id, acknowledgement))


@router.post("/action-items/{item}/claim-done")
async def claim_done(item: str, body: DoneClaimBody, person: Person, using: Using) -> ActionItem:
    """The owner says it is done; verification comes next."""
    claim = DoneClaim(by=person, **body.model_dump())
    item_id = await item_id_of(using, item, person)
    return await answer_seen_by(person, using, using.actions.claim_done(item_id, claim))


@router.post("/action-items/{item}/verify")
async def verify(item: str, body: VerificationBody, person: Person, using: Using) -> ActionItem:
    """Someone who is not the owner confirms the acceptance criterion holds."""
    verification = Verification(by=person, **body.model_dump())
    item_id = await item_id_of(using, item, person)
    return await answer_seen_by(person, using, using.actions.verify(item_id, verification))


@router.post("/action-items/{item}/reject")
async def reject(item: str, body: RejectionBody, person: Person, using: Using) -> ActionItem:
    rejection = Rejection(by=person, **body.model_dump())
    item_id = await item_id_of(using, item, person)
    return await answer_seen_by(person, using, using.actions.reject(item_id, rejection))


@router.post("/action-items/{item}/extension")
async def request_extension(
    item: str, body: ExtensionRequestBody, person: Person, using: Using
) -> ActionItem:
    """The owner asks for a later due date; the manager or the council decides."""
    request = ExtensionRequest(by=person, **body.model_dump())
    item_id = await item_id_of(using, item, person)
    return await answer_seen_by(person, using, using.actions.request_extension(item_id, request))


@router.post("/action-items/{item}/extension/decision")
async def decide_extension(
    item: str, body: ExtensionDecisionBody, person: Person, using: Using
) -> ActionItem:
    decision = ExtensionDecision(by=person, **body.model_dump())
    item_id = await item_id_of(using, item, person)
    return await answer_seen_by(person, using, using.actions.decide_extension(item_id, decision))


@router.post("/action-items/{item}/reassign")
async def reassign(item: str, body: ReassignmentBody, person: Person, using: Using) -> ActionItem:
    change = Reassignment(by=person, **body.model_dump())
    item_id = await item_id_of(using, item, person)
    return await answer_seen_by(person, using, using.actions.reassign(item_id, change))


@router.post("/action-items/{item}/accept-risk")
async def accept_risk(
    item: str, body: RiskAcceptanceBody, person: Person, using: Using
) -> ActionItem:
    """The reliability council closes it without the fix, in writing."""
    request = RiskAcceptanceRequest(by=person, **body.model_dump())
    item_id = await item_id_of(using, item, person)
    return await answer_seen_by(person, using, using.actions.accept_risk(item_id, request))


# --- one way to find a thing and to act on it ---------------------------------------------------


async def answer(action: Awaitable[Result]) -> Result:
    """The action's result, or its refusal as 403, 409 or 422 with the message people read."""
    try:
        return await action
    except ActionRefused as refused:
        raise HTTPException(STATUS_OF_REFUSAL[refused.kind], detail=str(refused)) from None


async def answer_seen_by(person: str, using: Services, action: Awaitable[ActionItem]) -> ActionItem:
    """An action on an item answered as answer() does, the item as `person` may see it."""
    return as_seen_by(person, await answer(action), using.policy)


async def postmortem_id_of(using: Services, reference: str, person: str) -> str:
    """The postmortem's id, if `person` may read it; 404 otherwise, as if there were none (a
    403 would confirm that a restricted one exists)."""
    return await _known(using, reference, person, action_item=False)


async def item_id_of(using: Services, reference: str, person: str) -> str:
    return await _known(using, reference, person, action_item=True)


async def _known(using: Services, reference: str, person: str, *, action_item: bool) -> str:
    store, reader = using.store, using.policy.reader(person)
    what = "action item" if action_item else "postmortem"
    try:
        found = await asyncio.to_thread(
            lambda: store.records.resolve(reference, action_item=action_item, reader=reader)
        )
    except LookupError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(err)) from None
    read = store.records.action_item if action_item else store.records.postmortem
    if await asyncio.to_thread(lambda: read(found, reader=reader)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no {what} '{reference}'")
    return found
