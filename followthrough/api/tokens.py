"""Each person's API tokens, and the administrative audit log: dashboard pages and their JSON API.

A person lists, creates and revokes their own tokens (Settings, "Your API tokens"); an
administrator (the policy's operators, else the council: the people who see the operations page)
also sees everyone's and may revoke any, and reads the audit log. A token is shown once, on the
page (or in the answer) that created it, and never again: only its hash is kept. A token made
through the API lives no longer than the token that made it, so a stolen token cannot renew
itself for ever.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi import Path as InPath
from fastapi.responses import HTMLResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.datastructures import FormData

from followthrough.api.auth import Person, create_token
from followthrough.api.dashboard import Posted, SignedIn, Viewer, _back, local_times, render_page
from followthrough.api.forms import FormRefused, field
from followthrough.api.services import Services, Using
from followthrough.domain.access import (
    TOKEN_NAME,
    ApiToken,
    TokenScope,
    expires_in_days,
)
from followthrough.domain.audit_log import (
    AUDIT_PAGE_SIZE,
    CURSOR_CHARS,
    AdminAction,
    InvalidAuditCursor,
    audit_cursor,
    read_audit_cursor,
)
from followthrough.domain.limits import (
    AUDIT_PAGE_MOST,
    DEFAULT_TOKEN_DAYS,
    MAX_TOKEN_DAYS,
    TOKEN_NAME_CHARS,
    TOKENS_LISTED,
)
from followthrough.domain.problems import Problems

pages = APIRouter(include_in_schema=False)
api = APIRouter(
    prefix="/api",
    tags=["tokens"],
    responses={
        400: {"description": "the body is not readable (e.g. not UTF-8)"},
        401: {"description": "no API token, or an unknown, revoked or expired one"},
        403: {"description": "not yours to do, or a token of scope 'read'; the detail says why"},
    },
)
TOKEN_ID_CHARS = 16


def administrator(using: Services, person: str) -> bool:
    return person in using.policy.operator_names


# --- what both the pages and the API do ------------------------------------------------------


async def _tokens_seen_by(using: Services, person: str, everyone: bool) -> list[ApiToken]:
    if everyone and not administrator(using, person):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "only administrators (the policy's operators) see everyone's tokens",
        )
    return await asyncio.to_thread(
        using.store.tokens.all, None if everyone else person, TOKENS_LISTED
    )


async def _create(
    using: Services,
    person: str,
    name: str,
    scope: TokenScope,
    days: int,
    not_after: datetime | None = None,
) -> tuple[str, ApiToken]:
    try:
        return await asyncio.to_thread(
            lambda: create_token(
                using.store,
                using.policy,
                person,
                name,
                using.clock(),
                scope=scope,
                days=days,
                not_after=not_after,
            )
        )
    except (Problems, LookupError) as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None


async def _revoke(using: Services, person: str, token_id: str) -> ApiToken:
    """Revoke one's own token, or anyone's as an administrator; someone else's token is as
    unknown to a person as one that does not exist."""
    found = await asyncio.to_thread(using.store.tokens.get, token_id)
    if found is None or (found.person != person and not administrator(using, person)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"you have no token '{token_id}'")
    revoked = await asyncio.to_thread(
        lambda: using.store.tokens.revoke(token_id, using.clock(), by=person)
    )
    assert revoked is not None  # tokens are never deleted
    return revoked


def _audit_page(
    using: Services, person: str, after: str, limit: int
) -> tuple[list[AdminAction], str | None]:
    if not administrator(using, person):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "the audit log is for administrators (the policy's operators: "
            + ", ".join(using.policy.operator_names)
            + ")",
        )
    try:
        start = read_audit_cursor(after) if after else None
    except InvalidAuditCursor as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    entries = using.store.audit.page(limit + 1, start)
    more = len(entries) > limit
    return entries[:limit], audit_cursor(entries[limit - 1]) if more else None


# --- the dashboard -----------------------------------------------------------------------------


@pages.get("/settings/tokens", response_class=HTMLResponse)
async def tokens_page(request: Request, who: SignedIn, using: Using) -> HTMLResponse:
    return await _tokens_page(request, using, who)


async def _tokens_page(
    request: Request,
    using: Services,
    who: Viewer,
    created: tuple[str, ApiToken] | None = None,
    problem: str = "",
) -> HTMLResponse:
    admin = administrator(using, who.person)
    mine = await _tokens_seen_by(using, who.person, everyone=False)
    everyone = await _tokens_seen_by(using, who.person, everyone=True) if admin else []
    page = render_page(
        request,
        using,
        "tokens.html.j2",
        who,
        mine=mine,
        everyone=everyone,
        administrator=admin,
        created=created,
        problem=problem,
        now=using.clock(),
        scopes=list(TokenScope),
        default_days=DEFAULT_TOKEN_DAYS,
        max_days=MAX_TOKEN_DAYS,
        name_chars=TOKEN_NAME_CHARS,
        listed_most=TOKENS_LISTED,
        local=local_times(using),
    )
    if problem:
        page.status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
    return page


def _new_token_form(form: FormData) -> tuple[str, TokenScope, int]:
    name = field(form, "name")
    try:
        scope = TokenScope(field(form, "scope"))
    except ValueError:
        raise FormRefused("scope: choose read or act") from None
    try:
        days = expires_in_days(field(form, "expires_in") or str(DEFAULT_TOKEN_DAYS))
    except ValueError as err:
        raise FormRefused(str(err)) from None
    return name, scope, days


@pages.post("/settings/tokens", response_class=HTMLResponse)
async def create_token_page(request: Request, who: Posted, using: Using) -> HTMLResponse:
    """Shows the new token on this very page, once; it is not kept, nor put in a redirect."""
    form = await request.form()
    try:
        name, scope, days = _new_token_form(form)
        created = await _create(using, who.person, name, scope, days)
    except FormRefused as refused:
        return await _tokens_page(request, using, who, problem=str(refused))
    except HTTPException as refused:
        return await _tokens_page(request, using, who, problem=str(refused.detail))
    page = await _tokens_page(request, using, who, created=created)
    page.headers["Cache-Control"] = "no-store"  # the token is on it
    return page


@pages.post("/settings/tokens/{token_id}/revoke")
async def revoke_token_page(
    who: Posted, using: Using, token_id: Annotated[str, InPath(max_length=TOKEN_ID_CHARS)]
) -> Response:
    back = "/settings/tokens"
    try:
        revoked = await _revoke(using, who.person, token_id)
    except HTTPException as refused:
        return await _back(using, who, back, "error", str(refused.detail))
    whose = "" if revoked.person == who.person else f" of {revoked.person}"
    said = f"Token {revoked.id}{whose} ({revoked.name}) is revoked: it works no more."
    return await _back(using, who, back, "done", said)


@pages.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    who: SignedIn,
    using: Using,
    after: Annotated[str, Query(max_length=CURSOR_CHARS)] = "",
) -> HTMLResponse:
    """The administrative audit log, newest first, a page at a time (administrators only)."""
    try:
        entries, following = await asyncio.to_thread(
            _audit_page, using, who.person, after, AUDIT_PAGE_SIZE
        )
    except HTTPException as refused:
        if refused.status_code != status.HTTP_403_FORBIDDEN:
            raise
        page = render_page(
            request, using, "audit.html.j2", who, refused=str(refused.detail), entries=[]
        )
        page.status_code = refused.status_code
        return page
    return render_page(
        request,
        using,
        "audit.html.j2",
        who,
        refused="",
        entries=entries,
        following=following,
        first=not after,
        local=local_times(using),
    )


# --- the JSON API --------------------------------------------------------------------------------


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=TOKEN_NAME_CHARS,
        pattern=TOKEN_NAME,
        description="what the token is for: one line",
    )
    scope: TokenScope = Field(description="read: GET only; act: everything you may do")
    expires_in_days: int = Field(
        default=DEFAULT_TOKEN_DAYS,
        ge=1,
        le=MAX_TOKEN_DAYS,
        description="how long it lives; never past the expiry of the token this request is "
        "sent with",
    )


class CreatedToken(BaseModel):
    token: str = Field(description="shown this once; only its hash is kept")
    id: str
    person: str
    name: str
    scope: TokenScope
    created_at: AwareDatetime
    expires_at: AwareDatetime | None


class AuditPage(BaseModel):
    entries: list[AdminAction]
    next: str | None = Field(description="pass as `after` for the next (older) page")


@api.get("/tokens")
async def list_tokens(
    person: Person,
    using: Using,
    everyone: Annotated[bool, Query(description="every person's (administrators)")] = False,
) -> list[ApiToken]:
    """Your tokens (never the tokens themselves), oldest first; an administrator may ask for
    everyone's. At most the newest 1,000 (`TOKENS_LISTED`)."""
    return await _tokens_seen_by(using, person, everyone)


@api.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    responses={422: {"description": "the token is refused; the message names the field"}},
)
async def create_api_token(
    request: Request, body: NewToken, person: Person, using: Using
) -> CreatedToken:
    """A new token of yours, shown once. It expires no later than the token that made it (its
    `expires_at` says when): a stolen token cannot renew itself for ever."""
    sent_with: ApiToken | None = getattr(request.state, "token", None)
    not_after = sent_with.expires_at if sent_with is not None else None
    days = body.expires_in_days
    token, made = await _create(using, person, body.name, body.scope, days, not_after)
    return CreatedToken(token=token, **made.model_dump(exclude={"last_used_at", "revoked_at"}))


@api.delete("/tokens/{token_id}", responses={404: {"description": "you have no such token"}})
async def revoke_api_token(
    person: Person, using: Using, token_id: Annotated[str, InPath(max_length=TOKEN_ID_CHARS)]
) -> ApiToken:
    """Revoke one of your tokens (an administrator: anyone's); revoking again changes nothing."""
    return await _revoke(using, person, token_id)


@api.get("/audit", responses={422: {"description": "the cursor is not one the log gave"}})
async def audit_log(
    person: Person,
    using: Using,
    after: Annotated[str, Query(max_length=CURSOR_CHARS)] = "",
    limit: Annotated[int, Query(ge=1, le=AUDIT_PAGE_MOST)] = AUDIT_PAGE_SIZE,
) -> AuditPage:
    """The administrative audit log, newest first (administrators only)."""
    entries, following = await asyncio.to_thread(_audit_page, using, person, after, limit)
    return AuditPage(entries=entries, next=following)
