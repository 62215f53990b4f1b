"""The council's quarterly narrative over HTTP: anyone signed in reads it; council members write it.

The dashboard's /council/narrative form saves through `save_narrative` too, so the browser and a
script are refused for the same reasons in the same words.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field

from followthrough.api.auth import Person
from followthrough.api.services import Services, Using
from followthrough.domain import limits
from followthrough.domain.narrative import (
    QUARTER,
    CouncilNarrative,
    NarrativeEdit,
    edit_problems,
    stale_edit_problem,
)

router = APIRouter(
    prefix="/api",
    tags=["council"],
    responses={
        400: {"description": "the body is not readable (e.g. not UTF-8)"},
        401: {"description": "no API token, or an unknown or revoked one"},
    },
)

Quarter = Annotated[str, Path(pattern=QUARTER.pattern, max_length=6, examples=["2026Q4"])]


class NarrativeText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=limits.LONG_TEXT_CHARS, description="paragraphs, blank-line apart")
    version: int = Field(ge=0, le=10**9, description="the version you read (0: none written yet)")


@router.get("/council/narratives/{quarter}")
async def read_narrative(quarter: Quarter, person: Person, using: Using) -> CouncilNarrative:
    """The council's narrative of a quarter, as last saved (version 0: none yet)."""
    return await asyncio.to_thread(using.store.narratives.read, quarter)


@router.put(
    "/council/narratives/{quarter}",
    responses={
        403: {"description": "only the reliability council writes its narrative"},
        409: {"description": "someone saved another version since the one you read"},
        422: {"description": "the text or version is refused; the message names the field"},
    },
)
async def write_narrative(
    quarter: Quarter, body: NarrativeText, person: Person, using: Using
) -> CouncilNarrative:
    """Save the quarter's narrative as the next version; it is part of that quarter's report."""
    edit = NarrativeEdit(quarter=quarter, text=body.text, version=body.version, by=person)
    return await save_narrative(using, edit)


async def save_narrative(using: Services, edit: NarrativeEdit) -> CouncilNarrative:
    """Save, or refuse (HTTPException) naming why: not on the council (403), a field (422),
    another version saved since the writer read theirs (409)."""
    if edit.by not in using.policy.council:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"only the reliability council writes its narrative ({edit.by} is not on it)",
        )
    problems = edit_problems(edit, using.policy)
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "; ".join(problems))
    saved = await asyncio.to_thread(using.store.narratives.save, edit, using.clock())
    if saved is None:
        current = await asyncio.to_thread(using.store.narratives.read, edit.quarter)
        raise HTTPException(status.HTTP_409_CONFLICT, stale_edit_problem(edit, current))
    return saved
