"""Signing in to the dashboard through the identity provider (FOLLOWTHROUGH_OIDC_ISSUER).

`/login/oidc` sends the browser to the provider with a fresh state, nonce and PKCE challenge, kept
server-side under the hash of a cookie only this browser holds (SameSite=Lax: the provider's
redirect back is a cross-site navigation); `/login/oidc/callback` takes them back once, checks the
state, exchanges the code and checks the ID token (followthrough/integrations/oidc.py), finds the
person in the directory by email, records the roles their groups grant, and opens the same
server-side session a token sign-in opens. Every refusal is the sign-in page naming the problem.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
from datetime import timedelta

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from followthrough.api.dashboard import _local_path as local_path
from followthrough.api.dashboard import _secure as secure_cookies
from followthrough.api.dashboard import _sign_in_page as sign_in_page
from followthrough.api.dashboard import continue_to, set_session_cookie
from followthrough.api.services import Services, Using
from followthrough.api.throttle import TOKENS
from followthrough.domain.access import hash_token
from followthrough.domain.directory import groups_problem, person_with_email, roles_of_groups
from followthrough.domain.limits import (
    OIDC_CODE_CHARS,
    OIDC_ERROR_CHARS,
    OIDC_SIGN_IN_MINUTES,
    OIDC_STATE_CHARS,
    SESSION_HOURS,
    URL_CHARS,
)
from followthrough.integrations.oidc import OidcProblem, SignInRequest, new_request
from followthrough.logging import get_logger
from followthrough.storage.identity import PendingSignIn

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)

OIDC_COOKIE = "followthrough_oidc"  # ties a sign-in under way to this browser
CALLBACK = "/login/oidc/callback"
_BROWSER = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_ERROR_CODE = re.compile(r"[a-z_]{1,60}")  # RFC 6749 4.1.2.1's error codes
_EMAIL_CHARS = 320


def redirect_uri(using: Services) -> str:
    """Where the provider sends people back: register it with the provider as is."""
    return f"{using.settings.effective_public_url}{CALLBACK}"


def _sentence(problem: OidcProblem) -> str:
    said = str(problem)
    return f"{said[:1].upper()}{said[1:]}."


def _refused(request: Request, using: Services, problem: str, code: int) -> HTMLResponse:
    log.info("oidc sign-in refused", problem=problem)
    page = sign_in_page(request, using, "/", problem, code)
    page.delete_cookie(OIDC_COOKIE, path="/login/oidc")
    return page


@router.get("/login/oidc")
async def start_sign_in(request: Request, using: Using) -> Response:
    provider = using.oidc
    if provider is None:
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    next_path = local_path(request.query_params.get("next", "/")[:URL_CHARS])
    sign_in = new_request()
    try:
        url = await provider.authorization_url(sign_in, redirect_uri(using))
    except OidcProblem as problem:
        return _refused(request, using, _sentence(problem), status.HTTP_502_BAD_GATEWAY)
    browser = secrets.token_urlsafe(32)
    now = using.clock()
    pending = PendingSignIn(sign_in.state, sign_in.nonce, sign_in.code_verifier, next_path)
    expires = now + timedelta(minutes=OIDC_SIGN_IN_MINUTES)
    await asyncio.to_thread(using.store.identity.begin, hash_token(browser), pending, now, expires)
    response = RedirectResponse(url, status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        OIDC_COOKIE,
        browser,
        max_age=OIDC_SIGN_IN_MINUTES * 60,
        path="/login/oidc",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request, using),
    )
    return response


@router.get(CALLBACK)
async def finish_sign_in(request: Request, using: Using) -> Response:
    provider = using.oidc
    if provider is None:
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    bad = status.HTTP_400_BAD_REQUEST
    query = request.query_params
    code, state, error = query.get("code", ""), query.get("state", ""), query.get("error", "")
    for name, value, limit in (
        ("code", code, OIDC_CODE_CHARS),
        ("state", state, OIDC_STATE_CHARS),
        ("error", error, OIDC_ERROR_CHARS),
        ("error_description", query.get("error_description", ""), OIDC_ERROR_CHARS),
        ("iss", query.get("iss", ""), URL_CHARS),
    ):
        if len(value) > limit or len(query.getlist(name)) > 1:
            return _refused(request, using, f"{name}: over {limit} characters or repeated.", bad)
    client = request.scope.get("client")
    if (wait := using.throttle.retry_after(TOKENS, client)) is not None:
        # Before anything is asked of the provider: failed sign-ins from here count as failed
        # token attempts do (the 429 in the README's "Security and limits").
        problem = f"Too many failed sign-ins from your address; try again in {wait} seconds."
        page = _refused(request, using, problem, status.HTTP_429_TOO_MANY_REQUESTS)
        page.headers["Retry-After"] = str(wait)
        return page
    browser = request.cookies.get(OIDC_COOKIE, "")
    pending = (
        await asyncio.to_thread(using.store.identity.take, hash_token(browser), using.clock())
        if _BROWSER.fullmatch(browser)
        else None
    )
    if pending is None:
        problem = (
            "state: this sign-in was not started from this browser, was used already, or took "
            f"longer than {OIDC_SIGN_IN_MINUTES} minutes; sign in again."
        )
        return _refused(request, using, problem, bad)
    if not hmac.compare_digest(state.encode(), pending.state.encode()):
        using.throttle.failed(TOKENS, client)
        return _refused(request, using, "state: it is not the one this sign-in sent.", bad)
    if error:
        said = error if _ERROR_CODE.fullmatch(error) else "an error"
        log.info("oidc provider refused", error=said, description=query.get("error_description"))
        problem = f"The provider did not sign you in ({said}); try again or ask its administrator."
        return _refused(request, using, problem, status.HTTP_403_FORBIDDEN)
    if query.get("iss") and query.get("iss") != provider.issuer:  # RFC 9207, where sent
        return _refused(request, using, "iss: the answer came from another provider.", bad)
    if not code:
        return _refused(request, using, "code: the provider sent no sign-in code.", bad)
    request_sent = SignInRequest(pending.state, pending.nonce, pending.code_verifier)
    try:
        signed_in = await provider.sign_in(code, request_sent, redirect_uri(using))
    except OidcProblem as problem:
        using.throttle.failed(TOKENS, client)
        return _refused(request, using, _sentence(problem), status.HTTP_401_UNAUTHORIZED)
    return await _open_session(request, using, signed_in.claims, signed_in.id_token, pending)


async def _open_session(
    request: Request,
    using: Services,
    claims: dict[str, object],
    id_token: str,
    pending: PendingSignIn,
) -> Response:
    settings, policy = using.settings, using.settings.loaded_policy
    forbidden = status.HTTP_403_FORBIDDEN
    claim = settings.oidc_email_claim
    address = claims.get(claim)
    if not isinstance(address, str) or not address or len(address) > _EMAIL_CHARS:
        problem = f"The provider's ID token has no '{claim}' claim to tell who you are."
        return _refused(request, using, problem, forbidden)
    if claim == "email" and claims.get("email_verified") is False:
        problem = f"The provider has not verified the address {address}."
        return _refused(request, using, problem, forbidden)
    person = person_with_email(policy, address)
    if person is None:
        problem = (
            f"{address} is not in Followthrough's directory (or is shared by more than one "
            "person); ask an operator to add you."
        )
        return _refused(request, using, problem, forbidden)
    groups = claims.get(settings.oidc_groups_claim, [])
    if isinstance(groups, str):
        groups = [groups]
    if refusal := groups_problem(groups, settings.oidc_groups_claim):
        return _refused(request, using, f"{refusal}.", forbidden)
    assert isinstance(groups, list)
    roles = roles_of_groups(policy.identity, [str(g) for g in groups])
    now = using.clock()
    await asyncio.to_thread(using.store.identity.grant, person, roles, now)
    using.forget_sign_in_roles()
    session_id = secrets.token_urlsafe(32)
    await asyncio.to_thread(
        using.store.sessions.start,
        hash_token(session_id),
        person,
        None,
        now,
        now + timedelta(hours=SESSION_HOURS),
        id_token,
    )
    log.info("signed in through the provider", person=person, roles=sorted(roles))
    page = continue_to(local_path(pending.next_path), "Signed in", f"Signed in as {person}.")
    set_session_cookie(page, session_id, request, using)
    page.delete_cookie(OIDC_COOKIE, path="/login/oidc")
    return page
