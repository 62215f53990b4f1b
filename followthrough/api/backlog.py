"""The reliability backlog over HTTP: open action items ranked by user impact, as JSON or CSV.

Read like the other /api reads (a personal API token, decided by the edge before anything else).
Every value the schema admits is answered: a team the policy lacks or a cursor this backlog did not
hand out is 404, naming the parameter.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from followthrough.api.auth import Person
from followthrough.api.services import Services, Using
from followthrough.domain.backlog import (
    BacklogPage,
    InvalidCursor,
    backlog_page,
    of_team_or_service,
)
from followthrough.domain.limits import BACKLOG_PAGE
from followthrough.reporting.backlog import backlog_csv, read_backlog

router = APIRouter(
    prefix="/api",
    tags=["backlog"],
    responses={
        401: {"description": "no API token, or an unknown or revoked one"},
        404: {"description": "no such team in the policy, or a cursor not handed out"},
    },
)

# Names are the policy's (teams) and the incidents' (services): any text on one line.
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
Team = Annotated[
    str, Query(max_length=64, pattern=ONE_LINE, description="a team of the policy; none: all")
]
Service = Annotated[
    str,
    Query(max_length=128, pattern=ONE_LINE, description="an incident's service; none: all"),
]


class CsvResponse(Response):
    media_type = "text/csv"


def _known_team(using: Services, team: str) -> None:
    if team and team not in using.policy.teams:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"team: '{team}' is not a team of the policy"
        )


@router.get("/backlog")
async def backlog(
    person: Person,
    using: Using,
    team: Team = "",
    service: Service = "",
    limit: Annotated[int, Query(ge=1, le=BACKLOG_PAGE)] = 50,
    cursor: Annotated[
        str,
        Query(
            max_length=400,
            pattern=r"^[A-Za-z0-9_-]*$",
            description="next_cursor of the previous page; none: the first page",
        ),
    ] = "",
) -> BacklogPage:
    """Open action items across postmortems, highest impact first, each with its score, what it
    stands on, the ticket priority it earns and whether it is suggested for this sprint."""
    _known_team(using, team)
    found = await asyncio.to_thread(
        read_backlog, using.store, using.policy, using.policy.reader(person)
    )
    try:
        return backlog_page(
            found.items,
            list(using.policy.severities),
            team=team or None,
            service=service or None,
            cursor=cursor or None,
            limit=limit,
            truncated=found.truncated,
        )
    except InvalidCursor as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(err)) from None


@router.get(
    "/backlog.csv",
    response_class=CsvResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def backlog_as_csv(
    person: Person, using: Using, team: Team = "", service: Service = ""
) -> CsvResponse:
    """The whole ranked backlog (of a team or a service, if given) as CSV for a spreadsheet;
    a cell a spreadsheet would run as a formula starts with an apostrophe."""
    _known_team(using, team)
    found = await asyncio.to_thread(
        read_backlog, using.store, using.policy, using.policy.reader(person)
    )
    chosen = of_team_or_service(found.items, team or None, service or None)
    return CsvResponse(
        backlog_csv(chosen),
        headers={"Content-Disposition": 'attachment; filename="backlog.csv"'},
    )
