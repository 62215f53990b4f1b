"""A person's own notice preference: each hand-off at once, or one digest a day.

Only the person the token (or session) belongs to reads or changes their own; nobody chooses for
someone else. Escalations and overdue notices come at once whatever is chosen.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from followthrough.api.auth import Person
from followthrough.api.services import Using
from followthrough.domain.notice import NoticeDelivery

router = APIRouter(
    prefix="/api",
    tags=["people"],
    responses={
        400: {"description": "the body is not readable (e.g. not UTF-8)"},
        401: {"description": "no API token, or an unknown or revoked one"},
    },
)


class NoticePreference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    digest: NoticeDelivery = Field(
        description="immediate: each hand-off as it happens; daily: one digest a day"
    )


@router.get("/me/notices")
async def my_notices(person: Person, using: Using) -> NoticePreference:
    delivery = await asyncio.to_thread(using.store.preferences.delivery, person)
    return NoticePreference(digest=delivery)


@router.put("/me/notices")
async def choose_notices(body: NoticePreference, person: Person, using: Using) -> NoticePreference:
    await asyncio.to_thread(using.store.preferences.choose, person, body.digest, using.clock())
    return body
