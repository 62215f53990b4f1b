"""The web dashboard: server-rendered pages people read and act from.

Pages are Jinja2 templates over the same record and the same actions as the HTTP API: a person
signs in with their API token (scope `act`), or through the identity provider
(followthrough/api/sign_in.py), which opens a server-side session (the HttpOnly, SameSite=Strict
cookie holds only a random session id, whose hash is stored; it ends at sign-out, after
SESSION_HOURS, or when the token is revoked or expires). The sign-in form carries a CSRF token
tied to a cookie of its own, every other form one derived from the session, and every action is
the API's (followthrough/actions.py), refused or accepted with the same message, which the next
page shows from the session (never from the address, which anyone can write). No scripts, fonts or
styles from elsewhere: the pages work offline, and the Content-Security-Policy says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from html import escape
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request, status
from fastapi import Path as InPath
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel
from starlette.datastructures import FormData

from followthrough.actions import Actions
from followthrough.api import forms
from followthrough.api.alerts import alert_quality
from followthrough.api.edge import CONTENT_SECURITY_POLICY
from followthrough.api.narratives import save_narrative
from followthrough.api.people import answer, item_id_of, postmortem_id_of
from followthrough.api.services import Services, Using
from followthrough.api.throttle import TOKENS
from followthrough.domain.access import TokenScope, hash_token, without_others_links
from followthrough.domain.backlog import InvalidCursor, backlog_page, of_team_or_service
from followthrough.domain.decisions import Choice, DecisionState, freezes_of
from followthrough.domain.draft import (
    communication_answers,
    communication_review,
    merged_timeline,
    prefilled_timeline,
)
from followthrough.domain.escalation import last_due_as_late
from followthrough.domain.incident import is_demo_record
from followthrough.domain.limits import FLASH_CHARS, SESSION_HOURS
from followthrough.domain.metrics import (
    DURATIONS,
    figures_basis,
    format_duration,
    format_percent,
    headline,
    period_of,
    recent_quarters,
    response_coverage,
    timing_cells,
)
from followthrough.domain.narrative import QUARTER, NarrativeEdit
from followthrough.domain.notice import NoticeDelivery
from followthrough.domain.offers import ItemAction, item_offers, postmortem_offers
from followthrough.domain.overview import SHOWN_OVERDUE, overview
from followthrough.domain.postmortem import (
    Acknowledgement,
    ActionItem,
    ActionItemState,
    Approval,
    ChangeRequest,
    CollectAgain,
    DoneClaim,
    OptIn,
    PostmortemState,
    Rejection,
    Verification,
)
from followthrough.domain.timeline import cause_in_words
from followthrough.domain.work import my_work
from followthrough.hrefs import linked, safe_url
from followthrough.notices.render import Links
from followthrough.render import item_history
from followthrough.reporting.backlog import backlog_csv, impacts_of, read_backlog
from followthrough.reporting.document import (
    PostmortemDocument,
    postmortem_document,
    render_html,
    render_markdown,
)
from followthrough.reporting.metrics_view import metric_charts
from followthrough.storage import work
from followthrough.storage.search import KINDS as SEARCH_KINDS
from followthrough.storage.search import RANKED_MOST as SEARCH_RANKED_MOST

router = APIRouter(include_in_schema=False)
Result = TypeVar("Result", bound=BaseModel)
# What a button does: its action on the postmortem or item whose id it is given.
Send = Callable[[str], Awaitable[Result]]

SESSION_COOKIE = "followthrough_session"
SIGN_IN_COOKIE = "followthrough_sign_in"  # ties the sign-in form's CSRF token to this browser
_NONCE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
PAGE_SIZE = 50

_pages = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates" / "dashboard"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_pages.filters["safe_url"] = safe_url  # only http(s) URLs become links
_pages.filters["cause_in_words"] = cause_in_words  # a draft's caused_by_change, in words
_pages.filters["linked"] = linked  # and only those inside people's text (evidence, notes)


# --- who is looking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    person: str
    csrf: str  # every form posts it back; a page elsewhere cannot know it
    session: str  # the hash of the session id: the record's key, never the cookie itself
    flash: tuple[str, str] | None = None  # ("done" or "error", text): the last form's outcome


class SignInRequired(Exception):
    def __init__(self, back_to: str) -> None:
        self.back_to = back_to


def csrf_token(secret: str, session_hash: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{session_hash}".encode(), hashlib.sha256).hexdigest()


def sign_in_csrf(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), f"sign-in:{nonce}".encode(), hashlib.sha256).hexdigest()


async def viewer(request: Request, using: Using) -> Viewer:
    """The signed-in person, or a redirect to the sign-in page and back."""
    session_id = request.cookies.get(SESSION_COOKIE, "")
    session_hash = hash_token(session_id)
    found = (
        await asyncio.to_thread(using.store.sessions.open, session_hash, using.clock())
        if _NONCE.fullmatch(session_id)
        else None
    )
    if found is None or found.person not in using.policy.people:
        back_to = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(back_to)
    return Viewer(
        person=found.person,
        csrf=csrf_token(using.link_secret, session_hash),
        session=session_hash,
        flash=found.flash,
    )


async def _token_holder(using: Services, token: str) -> tuple[str | None, str]:
    """The person an API token signs in, if it is live, may act and its person is in the
    directory; else why not. A `read` token opens no session: a session's forms act, and one
    that could not would be a page of refusals (sign in with an `act` token instead)."""
    now = using.clock()
    held = await asyncio.to_thread(using.store.tokens.used, hash_token(token), now)
    if held is None or held.person not in using.policy.people:
        return None, "That token is unknown, revoked, or its person has left the directory."
    if held.expired(now):
        return None, "That token has expired; create a new one with `followthrough token create`."
    if held.scope is not TokenScope.ACT:
        return None, (
            "That token's scope is 'read': it reads the API but cannot sign in to the dashboard. "
            "Sign in with a token whose scope is 'act'."
        )
    return held.person, ""


SignedIn = Annotated[Viewer, Depends(viewer)]


async def checked_form(request: Request, who: SignedIn) -> Viewer:
    """A form post from one of our pages: its CSRF token must match the session's."""
    form = await request.form()
    sent = str(form.get("csrf", ""))
    if not hmac.compare_digest(sent, who.csrf):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this form is stale; reload the page")
    return who


Posted = Annotated[Viewer, Depends(checked_form)]


def install(app: FastAPI) -> None:
    """Add the pages, and send a visitor who is not signed in to the sign-in page."""
    app.include_router(router)

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, err: SignInRequired) -> Response:
        return RedirectResponse(f"/login?{urlencode({'next': err.back_to})}", 303)


def _local_path(target: str, default: str = "/") -> str:
    """Only our own pages: an absolute or scheme-relative URL would be an open redirect."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


# --- rendering -----------------------------------------------------------------------------------


def render_page(
    request: Request, using: Services, template: str, who: Viewer | None, **context: Any
) -> HTMLResponse:
    calendar = using.policy.calendar
    kind, message = who.flash if who and who.flash else ("", "")
    html = _pages.get_template(template).render(
        viewer=who,
        path=request.url.path,
        done=message if kind == "done" else "",
        error=message if kind == "error" else "",
        today=calendar.local_date(using.clock()),
        zone=calendar.timezone,
        operator=who is not None and who.person in using.policy.operator_names,
        **context,
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def _local(using: Services, at: datetime | None) -> str:
    if at is None:
        return "—"
    return using.policy.calendar.local_time(at).strftime("%Y-%m-%d %H:%M")


async def _back(using: Services, who: Viewer, target: str, kind: str, message: str) -> Response:
    """Back to the page the form was on (POST, redirect, GET), which says what happened: the
    message waits in the session, shown once."""
    await asyncio.to_thread(using.store.sessions.flash, who.session, kind, message[:FLASH_CHARS])
    return RedirectResponse(_local_path(target), status.HTTP_303_SEE_OTHER)


# --- signing in and out --------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request, using: Using, next: Annotated[str, Query(max_length=2000)] = "/"
) -> HTMLResponse:
    return _sign_in_page(request, using, next)


@router.post("/login")
async def login(
    request: Request,
    using: Using,
    token: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = "/",
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    nonce = request.cookies.get(SIGN_IN_COOKIE, "")
    if not _NONCE.fullmatch(nonce) or not hmac.compare_digest(
        csrf, sign_in_csrf(using.link_secret, nonce)
    ):
        problem = "csrf: this sign-in form is stale or was not ours; sign in from this page."
        return _sign_in_page(request, using, next, problem, status.HTTP_403_FORBIDDEN)
    if using.oidc is not None and not using.settings.oidc_token_sign_in:
        problem = f"Sign in with {_provider_name(using)}: API tokens are for scripts here."
        return _sign_in_page(request, using, next, problem, status.HTTP_403_FORBIDDEN)
    person, problem = await _token_holder(using, token.strip())
    if person is None:
        using.throttle.failed(TOKENS, request.scope.get("client"))
        return _sign_in_page(request, using, next, problem, status.HTTP_401_UNAUTHORIZED)
    session_id = secrets.token_urlsafe(32)
    now = using.clock()
    await asyncio.to_thread(
        using.store.sessions.start,
        hash_token(session_id),
        person,
        hash_token(token.strip()),
        now,
        now + timedelta(hours=SESSION_HOURS),
    )
    response = RedirectResponse(_local_path(next), status.HTTP_303_SEE_OTHER)
    set_session_cookie(response, session_id, request, using)
    response.delete_cookie(SIGN_IN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(who: Posted, using: Using) -> Response:
    """The session ends here; one opened through the provider ends there too (RP-initiated
    logout), when the provider's metadata has an end_session_endpoint."""
    id_token = await asyncio.to_thread(using.store.sessions.end, who.session)
    after = f"{using.settings.effective_public_url}/login"
    elsewhere = (
        await using.oidc.logout_url(id_token, after)
        if using.oidc is not None and id_token is not None
        else None
    )
    response: Response = (
        RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
        if elsewhere is None
        else continue_to(elsewhere, "Signed out", "Signed out; signing out at the provider too.")
    )
    response.delete_cookie(SESSION_COOKIE)
    return response


def continue_to(url: str, title: str, said: str) -> HTMLResponse:
    """A page that moves on to `url` at once. Not a redirect: a cookie set with SameSite=Strict
    goes with the next request only if that starts on our own page (the provider's redirect back
    is cross-site), and our Content-Security-Policy's form-action 'self' stops a form's redirect
    to the provider."""
    target = escape(url, quote=True)
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={target}">'
        f"<title>{escape(title)}</title></head><body><p>{escape(said)} "
        f'<a href="{target}">Continue</a>.</p></body></html>'
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def _provider_name(using: Services) -> str:
    """What the sign-in button calls the provider: FOLLOWTHROUGH_OIDC_NAME, else its host."""
    return using.settings.oidc_name or urlsplit(using.settings.oidc_issuer or "").hostname or "SSO"


def _sign_in_page(
    request: Request,
    using: Services,
    next: str,
    problem: str = "",
    code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    """The sign-in form, its CSRF token bound to a cookie this browser keeps for the form."""
    nonce = request.cookies.get(SIGN_IN_COOKIE, "")
    if not _NONCE.fullmatch(nonce):
        nonce = secrets.token_urlsafe(32)
    page = render_page(
        request,
        using,
        "login.html.j2",
        None,
        next=_local_path(next),
        csrf=sign_in_csrf(using.link_secret, nonce),
        problem=problem,
        provider=_provider_name(using) if using.oidc is not None else None,
        provider_href=f"/login/oidc?{urlencode({'next': _local_path(next)})}",
        tokens=using.oidc is None or using.settings.oidc_token_sign_in,
    )
    page.status_code = code
    page.set_cookie(
        SIGN_IN_COOKIE,
        nonce,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=_secure(request, using),
    )
    return page


def set_session_cookie(
    response: Response, session_id: str, request: Request, using: Services
) -> None:
    """The session's cookie, as every way of signing in sets it (token or provider)."""
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="strict",
        secure=_secure(request, using),
    )


def _secure(request: Request, using: Services) -> bool:
    """Cookies only over https when people reach us by https."""
    return request.url.scheme == "https" or using.settings.effective_public_url.startswith(
        "https://"
    )


# --- pages ---------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def my_work_page(request: Request, who: SignedIn, using: Using) -> HTMLResponse:
    """What waits on the signed-in person: the landing page."""
    policy, today = using.policy, using.policy.calendar.local_date(using.clock())
    found = await asyncio.to_thread(work.candidates, using.store.db, who.person, policy)
    view = my_work(who.person, found, policy, today)
    return render_page(request, using, "my_work.html.j2", who, work=view, local=local_times(using))


@router.get("/overview", response_class=HTMLResponse)
async def overview_page(request: Request, who: SignedIn, using: Using) -> HTMLResponse:
    """What needs attention now."""
    store, policy = using.store, using.policy
    now = using.clock()
    today = policy.calendar.local_date(now)
    week_ago = now - timedelta(days=7)
    reader = policy.reader(who.person)  # counts count everything; what is named, they may read
    tied_through = partial(last_due_as_late, today=today, calendar=policy.calendar)
    counts, (overdue_counts, overdue), escalated, escalated_total, by_team = await asyncio.gather(
        asyncio.to_thread(store.facts.open_postmortem_counts),
        asyncio.to_thread(
            lambda: store.facts.most_overdue(
                today, most=SHOWN_OVERDUE, tied_through=tied_through, reader=reader
            )
        ),
        asyncio.to_thread(lambda: store.facts.escalations_since(week_ago, reader=reader)),
        asyncio.to_thread(store.facts.count_escalations_since, week_ago),
        asyncio.to_thread(store.facts.item_counts_by_team),
    )
    view = overview(
        open_postmortems=counts,
        overdue_counts=overdue_counts,
        overdue_items=overdue,
        escalated=escalated,
        escalated_total=escalated_total,
        items_by_team=by_team,
        policy=policy,
        today=today,
    )
    return render_page(request, using, "overview.html.j2", who, view=view, local=local_times(using))


@router.get("/postmortems", response_class=HTMLResponse)
async def postmortems_page(
    request: Request,
    who: SignedIn,
    using: Using,
    state: Annotated[str, Query(max_length=32)] = "",
    severity: Annotated[str, Query(max_length=32)] = "",
    team: Annotated[str, Query(max_length=64)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """Every postmortem, newest incident first, filtered by state, severity and team."""
    if state and state not in {s.value for s in PostmortemState}:
        known = ", ".join(s.value for s in PostmortemState)
        raise HTTPException(422, f"state: '{state}' is not one of {known}")
    found, total = await asyncio.to_thread(
        lambda: using.store.facts.postmortems(
            state=state or None,
            severity=severity or None,
            team=team or None,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
            reader=using.policy.reader(who.person),
        )
    )
    ids, now = [pm.postmortem_id for pm in found], using.clock()
    today = using.policy.calendar.local_date(now)
    unmapped, progress = await asyncio.gather(
        asyncio.to_thread(using.store.facts.unmapped_severities, ids),
        asyncio.to_thread(work.progress, using.store.db, ids, today, now),
    )
    chosen = {"state": state, "severity": severity, "team": team}
    query = {k: v for k, v in chosen.items() if v}
    return render_page(
        request,
        using,
        "postmortems.html.j2",
        who,
        postmortems=found,
        unmapped=unmapped,
        progress=progress,
        total=total,
        chosen=chosen,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        page_url=lambda n: "/postmortems?" + urlencode({**query, "page": n}),
        states=[s.value for s in PostmortemState],
        severities=list(using.policy.severities),
        teams=sorted(using.policy.teams),
        local=local_times(using),
    )


@router.get("/postmortems/{postmortem}", response_class=HTMLResponse)
async def postmortem_page(
    request: Request, postmortem: str, who: SignedIn, using: Using
) -> HTMLResponse:
    pm_id = await postmortem_id_of(using, postmortem, who.person)
    store = using.store
    pm = await asyncio.to_thread(store.records.postmortem, pm_id)
    assert pm is not None  # postmortem_id_of found it
    items = await asyncio.to_thread(lambda: store.records.action_items(postmortem_id=pm_id))
    trail = await asyncio.to_thread(store.records.audit_trail, pm_id)
    timeline = (
        merged_timeline(pm.incident, pm.draft) if pm.draft else prefilled_timeline(pm.incident)
    )
    chat = await asyncio.to_thread(store.chat.counts, pm_id)
    publication = await asyncio.to_thread(store.publications.of, pm_id)
    links = Links(temporal_ui=using.settings.temporal_ui_url, namespace=_namespace(using))
    return render_page(
        request,
        using,
        "postmortem.html.j2",
        who,
        pm=pm,
        items=items,
        trail=trail,
        timeline=timeline,
        histories={item.id: item_history(item) for item in items},
        # its Confluence page (http(s) only), when it is published
        published_url=safe_url(publication.url) if publication else None,
        not_published=publication.error if publication and publication.error else None,
        workflow_url=links.workflow,
        demo=is_demo_record(pm.id),
        local=local_times(using),
        offers={item.id: item_offers(item, who.person, using.policy) for item in items},
        pm_offers=postmortem_offers(pm, who.person, using.policy),
        people=sorted(using.policy.people),
        teams=sorted(using.policy.teams),
        chat=chat,
        # judged by the policy in force now, as the draft editor judges a draft
        communication=communication_review(pm.incident, pm.draft, using.policy)
        if pm.draft
        else None,
        communication_answered=communication_answers(pm.draft) if pm.draft else [],
        impacts=await asyncio.to_thread(impacts_of, store, using.policy, pm_id),
    )


@router.get("/postmortems/{postmortem}/chat", response_class=HTMLResponse)
async def chat_page(request: Request, postmortem: str, who: SignedIn, using: Using) -> HTMLResponse:
    """The incident channel's transcript kept with the postmortem, oldest first."""
    pm_id = await postmortem_id_of(using, postmortem, who.person)
    pm = await asyncio.to_thread(using.store.records.postmortem, pm_id)
    messages = await asyncio.to_thread(using.store.chat.transcript, pm_id)
    return render_page(
        request, using, "chat.html.j2", who, pm=pm, messages=messages, local=local_times(using)
    )


@router.get("/postmortems/{postmortem}/document", response_class=HTMLResponse)
async def document_page(postmortem: str, who: SignedIn, using: Using) -> HTMLResponse:
    """The postmortem as a printable document, for readers outside engineering."""
    html = render_html(await _document(using, postmortem, who.person))
    return HTMLResponse(html, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


@router.get("/postmortems/{postmortem}/document.md")
async def document_markdown(postmortem: str, who: SignedIn, using: Using) -> Response:
    markdown = render_markdown(await _document(using, postmortem, who.person))
    return Response(markdown, media_type="text/markdown; charset=utf-8")


async def _document(using: Services, postmortem: str, person: str) -> PostmortemDocument:
    pm_id = await postmortem_id_of(using, postmortem, person)
    pm = await asyncio.to_thread(using.store.records.postmortem, pm_id)
    assert pm is not None  # postmortem_id_of found it
    items = await asyncio.to_thread(lambda: using.store.records.action_items(postmortem_id=pm_id))
    publication = await asyncio.to_thread(using.store.publications.of, pm_id)
    document = postmortem_document(pm, items, using.policy, using.clock())
    published = safe_url(publication.url) if publication else None
    return document.model_copy(update={"published_url": published})


class ItemFilters(BaseModel):
    team: str = ""
    owner: str = ""
    state: str = ""
    priority: str = ""
    overdue: bool = False
    page: int = 1


@router.get("/action-items", response_class=HTMLResponse)
async def action_items_page(
    request: Request,
    who: SignedIn,
    using: Using,
    team: Annotated[str, Query(max_length=64)] = "",
    owner: Annotated[str, Query(max_length=128)] = "",
    state: Annotated[str, Query(max_length=32)] = "",
    priority: Annotated[str, Query(max_length=8)] = "",
    overdue: bool = False,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """Every action item, filtered; soonest due first, a page at a time."""
    if state and state not in {s.value for s in ActionItemState}:
        known = ", ".join(s.value for s in ActionItemState)
        raise HTTPException(422, f"state: '{state}' is not one of {known}")
    filters = ItemFilters(
        team=team, owner=owner, state=state, priority=priority, overdue=overdue, page=page
    )
    today = using.policy.calendar.local_date(using.clock())
    chosen: dict[str, Any] = {
        "team": team or None,
        "owner": owner or None,
        "state": state or None,
        "priority": priority or None,
        "overdue_on": today if overdue else None,
        "reader": using.policy.reader(who.person),
    }
    store = using.store
    items, total = await asyncio.gather(
        asyncio.to_thread(
            lambda: store.facts.items(**chosen, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        ),
        asyncio.to_thread(lambda: store.facts.count_items(**chosen)),
    )
    query = {k: v for k, v in filters.model_dump().items() if v and k != "page"}
    return render_page(
        request,
        using,
        "action_items.html.j2",
        who,
        items=items,
        total=total,
        filters=filters,
        pages=max(1, -(-total // PAGE_SIZE)),
        page_url=lambda n: "/action-items?" + urlencode({**query, "page": n}),
        teams=sorted(using.policy.teams),
        people=sorted(using.policy.people),
        states=[s.value for s in ActionItemState],
        priorities=["P0", "P1", "P2", "P3"],
    )


@router.get("/backlog", response_class=HTMLResponse)
async def backlog_page_view(
    request: Request,
    who: SignedIn,
    using: Using,
    team: Annotated[str, Query(max_length=64)] = "",
    service: Annotated[str, Query(max_length=128)] = "",
    cursor: Annotated[str, Query(max_length=400)] = "",
) -> HTMLResponse:
    """The reliability backlog: open items across postmortems, highest user impact first."""
    if team and team not in using.policy.teams:
        raise HTTPException(422, f"team: '{team}' is not a team of the policy")
    found = await asyncio.to_thread(
        read_backlog, using.store, using.policy, using.policy.reader(who.person)
    )
    try:
        page = backlog_page(
            found.items,
            list(using.policy.severities),
            team=team or None,
            service=service or None,
            cursor=cursor or None,
            limit=PAGE_SIZE,
            truncated=found.truncated,
        )
    except InvalidCursor as err:
        raise HTTPException(422, str(err)) from None
    query = {k: v for k, v in {"team": team, "service": service}.items() if v}
    return render_page(
        request,
        using,
        "backlog.html.j2",
        who,
        page=page,
        team=team,
        service=service,
        teams=sorted(using.policy.teams),
        csv_url="/backlog.csv" + ("?" + urlencode(query) if query else ""),
        next_url="/backlog?" + urlencode({**query, "cursor": page.next_cursor})
        if page.next_cursor
        else "",
        first_url="/backlog" + ("?" + urlencode(query) if query else ""),
        paged=bool(cursor),
    )


@router.get("/backlog.csv")
async def backlog_csv_page(
    who: SignedIn,
    using: Using,
    team: Annotated[str, Query(max_length=64)] = "",
    service: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    """The backlog's CSV for a signed-in browser (GET /api/backlog.csv is the same for a token)."""
    found = await asyncio.to_thread(
        read_backlog, using.store, using.policy, using.policy.reader(who.person)
    )
    chosen = of_team_or_service(found.items, team or None, service or None)
    return Response(
        backlog_csv(chosen),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="backlog.csv"'},
    )


@router.get("/reliability", response_class=HTMLResponse)
async def metrics_page(
    request: Request,
    who: SignedIn,
    using: Using,
    quarter: Annotated[str, Query(max_length=16)] = "",
    month: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """Reliability over a period: how fast incidents were handled, and whether follow-ups landed.

    Not /metrics: that is the Prometheus scrape endpoint.
    """
    policy, now = using.policy, using.clock()
    today = policy.calendar.local_date(now)
    try:
        period = period_of(today, policy.calendar, quarter=quarter, month=month)
    except ValueError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    measured = await asyncio.to_thread(using.reliability.measure, using.store, policy, period, now)
    return render_page(
        request,
        using,
        "metrics.html.j2",
        who,
        period=period,
        metrics=measured,
        headline=headline(measured),
        coverage=response_coverage(measured),
        basis=figures_basis(measured),
        timings=timing_cells,
        charts=metric_charts(measured),
        durations=DURATIONS,
        duration=format_duration,
        percent=format_percent,
        quarters=recent_quarters(today, 4),
        change_environments=", ".join(policy.changes.environments) or "any environment",
        suspect_hours=policy.changes.suspect_window_hours,
    )


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(
    request: Request,
    who: SignedIn,
    using: Using,
    month: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """The month's alert-quality review (this month unless one is asked for)."""
    today = using.policy.calendar.local_date(using.clock())
    chosen = month.strip() or f"{today.year:04d}-{today.month:02d}"
    review = await alert_quality(using, chosen)
    earlier = today.replace(day=1) - timedelta(days=1)
    return render_page(
        request,
        using,
        "alerts.html.j2",
        who,
        review=review,
        earlier=f"{earlier.year:04d}-{earlier.month:02d}",
        percent=format_percent,
    )


@router.get("/council/narrative", response_class=HTMLResponse)
async def narrative_page(
    request: Request,
    who: SignedIn,
    using: Using,
    quarter: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """The council's narrative of a quarter: council members write it, everyone reads it; it
    becomes a section of that quarter's report."""
    today = using.policy.calendar.local_date(using.clock())
    quarters = recent_quarters(today, 4)
    chosen = quarter.strip().upper() or quarters[0]
    if QUARTER.fullmatch(chosen) is None:
        problem = f"quarter: '{quarter}' is not a quarter; write e.g. '2026Q4'"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problem)
    current = await asyncio.to_thread(using.store.narratives.read, chosen)
    return render_page(
        request,
        using,
        "narrative.html.j2",
        who,
        narrative=current,
        quarters=quarters,
        writer=who.person in using.policy.council,
        local=local_times(using),
    )


@router.post("/council/narrative")
async def write_narrative_page(request: Request, who: Posted, using: Using) -> Response:
    form = await request.form()
    quarter = str(form.get("quarter", ""))[:16]
    back = "/council/narrative?" + urlencode({"quarter": quarter})
    try:
        version = int(str(form.get("version", "")))
    except ValueError:
        return await _back(using, who, back, "error", "version: reload the page and write again")
    edit = NarrativeEdit(
        quarter=quarter, text=str(form.get("text", "")), version=version, by=who.person
    )
    try:
        saved = await save_narrative(using, edit)
    except HTTPException as refused:
        return await _back(using, who, back, "error", str(refused.detail))
    said = f"Saved version {saved.version}: it is part of the {saved.quarter} report."
    return await _back(using, who, back, "done", said)


@router.get("/council", response_class=HTMLResponse)
async def council_page(request: Request, who: SignedIn, using: Using) -> HTMLResponse:
    """The council's decisions: open ones (with the form to decide, for council members),
    the freezes in force, and the latest decided."""
    reader = using.policy.reader(who.person)
    every = await asyncio.to_thread(lambda: using.store.decisions.all(reader=reader))
    active = await asyncio.to_thread(lambda: using.store.decisions.freezes(reader=reader))
    return render_page(
        request,
        using,
        "council.html.j2",
        who,
        open_decisions=[d for d in every if d.state is DecisionState.OPEN],
        recent=[d for d in every if d.state is not DecisionState.OPEN][:50],
        freezes=active,
        member=who.person in using.policy.council,
        choices=list(Choice),
        local=local_times(using),
    )


@router.get("/council/decisions/{decision_id}", response_class=HTMLResponse)
async def decision_page(
    request: Request,
    who: SignedIn,
    using: Using,
    decision_id: Annotated[str, InPath(max_length=160)],
) -> HTMLResponse:
    reader = using.policy.reader(who.person)
    found = await asyncio.to_thread(lambda: using.store.decisions.get(decision_id, reader=reader))
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no decision '{decision_id}'")
    return render_page(
        request,
        using,
        "decision.html.j2",
        who,
        decision=found,
        freezes=freezes_of(found),
        member=who.person in using.policy.council,
        choices=list(Choice),
        local=local_times(using),
    )


@router.post("/council/decisions/{decision_id}/{action}")
async def decision_form(
    request: Request,
    who: Posted,
    using: Using,
    decision_id: Annotated[str, InPath(max_length=160)],
    action: Annotated[str, InPath(max_length=16)],
) -> Response:
    """Decide (or lift) from the dashboard: the same action, and refusals, as the API's."""
    form = await request.form()
    back = f"/council/decisions/{quote(decision_id, safe='')}"
    zone = ZoneInfo(using.policy.calendar.timezone)
    try:
        if action == "decide":
            request_ = forms.council_decision(form, who.person, zone)
            done = await answer(using.actions.decide(decision_id, request_))
        elif action == "lift":
            done = await answer(
                using.actions.lift(decision_id, forms.council_lift(form, who.person))
            )
        else:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no action '{action}' on decisions")
    except forms.FormRefused as refused:
        return await _back(using, who, back, "error", str(refused))
    except HTTPException as refused:
        return await _back(using, who, back, "error", str(refused.detail))
    said = f"Recorded: {done.id} is {done.state.value.replace('_', ' ')}."
    return await _back(using, who, back, "done", said)


@router.get("/search", response_class=HTMLResponse)
async def search_page(
    request: Request,
    who: SignedIn,
    using: Using,
    q: Annotated[str, Query(max_length=500)] = "",
    kind: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    """Postmortems, action items and contributing factors matching the words, best first."""
    hits, problem = [], ""
    if q.strip():
        try:
            hits = await asyncio.to_thread(
                lambda: using.store.records.search(
                    q, reader=using.policy.reader(who.person), kinds={kind} if kind else None
                )
            )
        except ValueError as err:  # what was typed cannot be searched: say why, on the page
            problem = str(err)
    return render_page(
        request,
        using,
        "search.html.j2",
        who,
        q=q,
        kind=kind,
        kinds=SEARCH_KINDS,
        hits=hits,
        ranked=SEARCH_RANKED_MOST,
        problem=problem,
    )


@router.get("/outbox", response_class=HTMLResponse)
async def outbox_page(
    request: Request,
    who: SignedIn,
    using: Using,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """The emails the tracker sent (SMTP) or would send (the local outbox), newest first.

    A person sees the mail sent to them; operators see every message, to follow what was sent.
    A one-click link acts as its addressee for whoever holds it, so every view shows only the
    reader's own links: other people's are replaced by words saying whose they are.
    """
    store, policy = using.store, using.policy
    operator = who.person in policy.operator_names
    recipient = None if operator else policy.email_of(who.person)
    found = await asyncio.to_thread(
        lambda: store.outbox.messages(
            recipient=recipient,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE + 1,
            reader=policy.reader(who.person),
        )
    )
    messages = [
        m.model_copy(update={"text": without_others_links(m.text, who.person), "html": ""})
        for m in found[:PAGE_SIZE]
    ]
    return render_page(
        request,
        using,
        "outbox.html.j2",
        who,
        messages=messages,
        everyone=operator,
        page=page,
        more=len(found) > PAGE_SIZE,
        local=local_times(using),
    )


# --- acting from the pages (the HTTP API's updates, as the signed-in person) --------------------


@router.post("/action-items/{item}/{action}")
async def act_on_item_page(
    request: Request, item: str, action: str, who: Posted, using: Using
) -> Response:
    form = await request.form()
    back, text = str(form.get("back", "/")), str(form.get("text", ""))
    person, actions = who.person, using.actions
    try:
        remaining = _remaining_item_forms(action, form, person, actions)
    except forms.FormRefused as refused:
        return await _back(using, who, back, "error", str(refused))
    send, message = _chosen(
        action,
        "action items",
        remaining
        | {
            "acknowledge": (
                lambda item_id: actions.acknowledge(item_id, Acknowledgement(by=person)),
                "Acknowledged.",
            ),
            "claim-done": (
                lambda item_id: actions.claim_done(item_id, DoneClaim(by=person, evidence=text)),
                "Claimed done.",
            ),
            "verify": (
                lambda item_id: actions.verify(item_id, Verification(by=person, note=text)),
                "Verified.",
            ),
            "reject": (
                lambda item_id: actions.reject(item_id, Rejection(by=person, reason=text)),
                "Rejected.",
            ),
        },
    )
    try:
        done = await answer(send(await item_id_of(using, item, who.person)))
    except HTTPException as refused:
        return await _back(using, who, back, "error", str(refused.detail))
    return await _back(
        using, who, back, "done", f"{message} {done.spec.title}: now {done.state.value}."
    )


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, who: SignedIn, using: Using) -> HTMLResponse:
    """How the signed-in person gets non-urgent notices (only their own)."""
    chosen = await asyncio.to_thread(using.store.preferences.delivery, who.person)
    return render_page(request, using, "settings.html.j2", who, digest=chosen.value)


@router.post("/settings/notices")
async def choose_notices_page(request: Request, who: Posted, using: Using) -> Response:
    form = await request.form()
    try:
        delivery = NoticeDelivery(str(form.get("digest", "")))
    except ValueError:
        return await _back(using, who, "/settings", "error", "digest: choose immediate or daily")
    await asyncio.to_thread(using.store.preferences.choose, who.person, delivery, using.clock())
    said = "each as it happens" if delivery is NoticeDelivery.IMMEDIATE else "in a daily digest"
    return await _back(using, who, "/settings", "done", f"You now get hand-offs {said}.")


@router.post("/postmortems/{postmortem}/{action}")
async def act_on_postmortem_page(
    request: Request, postmortem: str, action: str, who: Posted, using: Using
) -> Response:
    back, text = await _form(request)
    person, actions = who.person, using.actions
    send, message = _chosen(
        action,
        "postmortems",
        {
            "approve": (
                lambda pm_id: actions.approve(pm_id, Approval(by=person, comment=text)),
                "Approved.",
            ),
            "collect": (
                lambda pm_id: actions.collect_again(pm_id, CollectAgain(by=person)),
                "Collecting the timeline again: reload in a moment to see what each source gave.",
            ),
            "opt-in": (
                lambda pm_id: actions.opt_in(pm_id, OptIn(by=person)),
                "Opted in: the postmortem is yours to write.",
            ),
            "request-changes": (
                lambda pm_id: actions.request_changes(pm_id, ChangeRequest(by=person, reason=text)),
                "Changes requested.",
            ),
        },
    )
    try:
        done = await answer(send(await postmortem_id_of(using, postmortem, who.person)))
    except HTTPException as refused:
        return await _back(using, who, back, "error", str(refused.detail))
    state = done.state.value.replace("_", " ")
    return await _back(using, who, back, "done", f"{message} The postmortem is now {state}.")


def _remaining_item_forms(
    action: str, form: FormData, person: str, actions: Actions
) -> dict[str, tuple[Send[ActionItem], str]]:
    """The chosen form beside the buttons, its fields read into its action's message
    (api/forms.py); a field that cannot be read is refused by name (FormRefused)."""
    if action == ItemAction.REQUEST_EXTENSION:
        ask = forms.extension_request(form, person)
        return {action: (lambda item_id: actions.request_extension(item_id, ask), "Asked.")}
    if action == ItemAction.DECIDE_EXTENSION:
        decision = forms.extension_decision(form, person)
        said = "Extension granted." if decision.approve else "Extension denied."
        return {action: (lambda item_id: actions.decide_extension(item_id, decision), said)}
    if action == ItemAction.REASSIGN:
        change = forms.reassignment(form, person)
        return {action: (lambda item_id: actions.reassign(item_id, change), "Reassigned.")}
    if action == ItemAction.ACCEPT_RISK:
        risk = forms.risk_acceptance(form, person)
        return {action: (lambda item_id: actions.accept_risk(item_id, risk), "Risk accepted.")}
    return {}


async def _form(request: Request) -> tuple[str, str]:
    """Where the form was (to go back to) and what the person typed; the action's own bounds
    judge the text (domain/bounds.py), so an over-long note is refused by name, never cut."""
    form = await request.form()
    return str(form.get("back", "/")), str(form.get("text", ""))


def _chosen(
    action: str, what: str, buttons: dict[str, tuple[Send[Result], str]]
) -> tuple[Send[Result], str]:
    """What a button does to the postmortem or item it is on, and what to say when it is done."""
    if action not in buttons:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no action '{action}' on {what}")
    return buttons[action]


# --- small shared pieces -------------------------------------------------------------------------


def local_times(using: Services) -> Any:
    return lambda at: _local(using, at)


def _namespace(using: Services) -> str:
    return using.client.namespace
