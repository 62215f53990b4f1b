"""Council decisions over HTTP, and the freeze a CI/CD gate asks about.

    GET  /api/freezes?service=checkout     {"service", "frozen", "freezes": [...]}
    GET  /api/decisions[?state=open]        the newest first
    GET  /api/decisions/{id}
    POST /api/decisions                     propose a cross-cutting initiative (anyone)
    POST /api/decisions/{id}/decide         a council member decides
    POST /api/decisions/{id}/lift           a council member lifts a pause or a freeze by hand

Reads come from the record; a decision or a lift is followthrough/actions.py's, taken as the
token's person, and refused in the workflow's words (403, 409, 422).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from followthrough.api.auth import Person
from followthrough.api.people import answer
from followthrough.api.services import Using
from followthrough.domain import limits
from followthrough.domain.decisions import (
    DECISION_ID,
    SERVICE_NAME,
    Choice,
    Decision,
    DecisionRequest,
    DecisionState,
    FreezeStatus,
    InitiativeProposal,
    LiftCondition,
    LiftRequest,
    initiative_opening,
    proposal_problems,
    unknown_services,
)
from followthrough.temporal.client import StartResult, start_decision

router = APIRouter(
    prefix="/api",
    tags=["council"],
    responses={
        400: {"description": "the body is not readable (e.g. not UTF-8)"},
        401: {"description": "no API token, or an unknown or revoked one"},
    },
)

DecisionId = Annotated[
    str, Path(pattern=DECISION_ID.pattern, max_length=160, examples=["decision-theme-deploy"])
]
Service = Annotated[
    str,
    Query(
        pattern=SERVICE_NAME.pattern,
        max_length=64,
        description="a service named in the policy's `services`",
        examples=["checkout"],
    ),
]


@router.get(
    "/freezes",
    responses={404: {"description": "the service is not one the policy or a freeze names"}},
)
async def freezes(service: Service, person: Person, using: Using) -> FreezeStatus:
    """Whether releases (or feature work) of a service are frozen by the council, and why: for
    CI/CD gates. A service the policy does not name is refused (404), so a typo never passes a
    gate as "not frozen"."""
    reader = using.policy.reader(person)
    active = await asyncio.to_thread(lambda: using.store.decisions.freezes(service, reader=reader))
    if not active and service not in using.policy.services:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"service '{service}' is not in the policy's services (followthrough policy check)",
        )
    return FreezeStatus(service=service, frozen=bool(active), freezes=active)


@router.get("/decisions")
async def list_decisions(
    person: Person, using: Using, state: DecisionState | None = None
) -> list[Decision]:
    """The council's decisions, newest first (at most 200): open, in force, lifted, decided."""
    reader = using.policy.reader(person)
    return await asyncio.to_thread(lambda: using.store.decisions.all(state, reader=reader))


@router.get("/decisions/{decision_id}", responses={404: {"description": "no such decision"}})
async def read_decision(decision_id: DecisionId, person: Person, using: Using) -> Decision:
    reader = using.policy.reader(person)
    found = await asyncio.to_thread(lambda: using.store.decisions.get(decision_id, reader=reader))
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no decision '{decision_id}'")
    return found


@router.post(
    "/decisions",
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"description": "a service the policy does not name"},
        422: {"description": "the proposal is refused; the message names the field"},
    },
)
async def propose(body: InitiativeProposal, person: Person, using: Using) -> StartResult:
    """Propose a cross-cutting initiative to the council (anyone in the directory). The same
    title proposed again finds the same decision ("already open")."""
    if problems := proposal_problems(body):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "; ".join(problems))
    if unknown := unknown_services(body.services, using.policy):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "; ".join(unknown))
    opening = initiative_opening(body, person, using.clock())
    return await start_decision(using.client, opening, using.policy, task_queue=using.task_queue)


class DecideBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    choice: Choice
    services: list[str] = Field(default_factory=list, max_length=limits.LIST_ENTRIES)
    lifts_when: LiftCondition | None = None
    alert: str | None = Field(default=None, max_length=limits.TITLE_CHARS)
    reason: str = Field(default="", max_length=limits.PARAGRAPH_CHARS)


class LiftBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=limits.PARAGRAPH_CHARS)


_ACTED = {
    403: {"description": "only the reliability council decides"},
    404: {"description": "no such decision"},
    409: {"description": "decided already, or nothing to lift"},
    422: {"description": "the decision is refused; the message names the field"},
}


@router.post("/decisions/{decision_id}/decide", responses=_ACTED)  # type: ignore[arg-type]
async def decide(
    decision_id: DecisionId, body: DecideBody, person: Person, using: Using
) -> Decision:
    """Decide: pause feature work or freeze releases for services until `lifts_when` holds,
    approve the initiative, retire an alert, or decline with a reason."""
    request = DecisionRequest(by=person, **body.model_dump())
    return await answer(using.actions.decide(decision_id, request))


@router.post("/decisions/{decision_id}/lift", responses=_ACTED)  # type: ignore[arg-type]
async def lift(decision_id: DecisionId, body: LiftBody, person: Person, using: Using) -> Decision:
    """Lift a pause or a freeze by hand, before its condition holds."""
    return await answer(using.actions.lift(decision_id, LiftRequest(by=person, reason=body.reason)))
