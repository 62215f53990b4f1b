"""Who is calling: personal API tokens, created with `followthrough token create` or on the
dashboard's "Your API tokens" page.

A request carries `Authorization: Bearer ft_...`; the token's SHA-256 finds its person, who must
still be in the policy's directory. The token's own limits come next (expired: 401; scope `read`
on anything but GET or HEAD: 403), all before a body is read. What that person may do is then
the workflows' rule.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from followthrough.api.services import Services, services
from followthrough.domain.access import (
    TOKEN_PREFIX,
    ApiToken,
    TokenScope,
    hash_token,
    new_token_problems,
    token_expiry,
    token_refusal,
)
from followthrough.domain.limits import DEFAULT_TOKEN_DAYS
from followthrough.domain.policy import Policy
from followthrough.domain.problems import Problems
from followthrough.storage import Store


def issue_token(
    store: Store,
    policy: Policy,
    person: str,
    name: str,
    now: datetime,
    *,
    scope: TokenScope = TokenScope.ACT,
    days: int = DEFAULT_TOKEN_DAYS,
    by: str | None = None,
) -> str:
    """A new token (see create_token), for callers that need only the token itself."""
    return create_token(store, policy, person, name, now, scope=scope, days=days, by=by)[0]


def create_token(
    store: Store,
    policy: Policy,
    person: str,
    name: str,
    now: datetime,
    *,
    scope: TokenScope = TokenScope.ACT,
    days: int = DEFAULT_TOKEN_DAYS,
    by: str | None = None,
    not_after: datetime | None = None,
) -> tuple[str, ApiToken]:
    """Create a token for a person in the directory (`by` them, unless said), expiring in `days`
    or at `not_after` if sooner: the token, shown once and never kept, and what is kept of it.
    Problems names each field that is wrong."""
    if person not in policy.people:
        raise LookupError(
            f"'{person}' is not in the policy's directory; tokens are for people in it"
        )
    if problems := new_token_problems(name, days):
        raise Problems("token", problems)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = token_expiry(now, days)
    record = ApiToken(
        id=secrets.token_hex(4),
        person=person,
        name=name.strip(),
        created_at=now,
        scope=scope,
        expires_at=min(expires_at, not_after) if not_after else expires_at,
    )
    store.tokens.add(record, hash_token(token), by or person)
    return token, record


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"}
    )


# Declared in the OpenAPI document, so /docs's "Authorize" sends the token with "Try it out".
# The check itself is `token_holder`: the edge runs it before any body byte is read.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="api_token",
    description="a personal API token: `followthrough token create --for NAME`",
)


async def token_holder(found: Services, authorization: str, method: str) -> ApiToken:
    """The token an `Authorization: Bearer ft_...` header carries, if it may make a request with
    this method and its person is in the directory; 401 or 403 otherwise."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized(
            "send your API token as 'Authorization: Bearer ft_...' "
            "(create one with `followthrough token create --for NAME`)"
        )
    now = found.clock()
    held = await asyncio.to_thread(found.store.tokens.used, hash_token(token.strip()), now)
    if held is None:
        raise _unauthorized("this API token is unknown or revoked")
    if (refused := token_refusal(held, method, now)) is not None:
        if refused.status == status.HTTP_401_UNAUTHORIZED:
            raise _unauthorized(str(refused))
        raise HTTPException(refused.status, detail=str(refused))
    if held.person not in found.policy.people:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"'{held.person}' is no longer in the policy's directory",
        )
    return held


async def current_person(
    request: Request,
    found: Annotated[Services, Depends(services)],
    _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> str:
    """Who sent the request: decided by the edge already for /api, else here."""
    decided: str | None = getattr(request.state, "person", None)
    if decided is not None:
        return decided
    held = await token_holder(found, request.headers.get("authorization", ""), request.method)
    return held.person


Person = Annotated[str, Depends(current_person)]
