"""Who is calling: personal API tokens, created with `followthrough token create`.

A request carries `Authorization: Bearer ft_...`; the token's SHA-256 finds its person, who must
still be in the policy's directory. What that person may do is then the workflows' rule.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from followthrough.api.services import Services, services
from followthrough.domain.access import TOKEN_PREFIX, ApiToken, hash_token
from followthrough.domain.policy import Policy
from followthrough.storage import Store


def issue_token(store: Store, policy: Policy, person: str, name: str, now: datetime) -> str:
    """Create a token for a person in the directory; the token is shown once and never kept."""
    if person not in policy.people:
        raise LookupError(
            f"'{person}' is not in the policy's directory; tokens are for people in it"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(id=secrets.token_hex(4), person=person, name=name or "api", created_at=now)
    store.tokens.add(record, hash_token(token))
    return token


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


async def token_holder(found: Services, authorization: str) -> str:
    """The person an `Authorization: Bearer ft_...` header belongs to; 401 or 403 otherwise."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized(
            "send your API token as 'Authorization: Bearer ft_...' "
            "(create one with `followthrough token create --for NAME`)"
        )
    person = await asyncio.to_thread(
        found.store.tokens.person_with, hash_token(token.strip()), found.clock()
    )
    if person is None:
        raise _unauthorized("this API token is unknown or revoked")
    if person not in found.policy.people:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"'{person}' is no longer in the policy's directory",
        )
    return person


async def current_person(
    request: Request,
    found: Annotated[Services, Depends(services)],
    _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> str:
    """Who sent the request: decided by the edge already for /api, else here."""
    decided: str | None = getattr(request.state, "person", None)
    if decided is not None:
        return decided
    return await token_holder(found, request.headers.get("authorization", ""))


Person = Annotated[str, Depends(current_person)]
