"""One-click links from emails: acknowledge an action item, or ask for more time.

Opening a link only shows what it will do (mail scanners open links too); the person confirms with
a button, which posts back to the same address. A link is signed, expires, is for one person and
one item, and works once: its nonce is claimed before the action runs and given back only if the
action was refused, so a replayed or double-clicked link cannot act twice.

A link acts as its addressee. Opened in a browser signed in to the dashboard as someone else, it
is refused, so nobody acts as another person by holding their link (a forwarded email); signed in
as the addressee, or not signed in, it acts as the addressee.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from followthrough.actions import ActionRefused
from followthrough.api.dashboard import SignInRequired, viewer
from followthrough.api.people import STATUS_OF_REFUSAL
from followthrough.api.services import Services, Using
from followthrough.api.throttle import LINKS
from followthrough.domain.access import (
    LinkAction,
    LinkExpired,
    LinkRefused,
    LinkUse,
    OneClickLink,
    read_link,
)
from followthrough.domain.postmortem import Acknowledgement, ActionItem, ExtensionRequest
from followthrough.domain.problems import RefusalKind
from followthrough.logging import get_logger

router = APIRouter(
    tags=["one-click links"],
    responses={
        403: {"description": "a forged or damaged link, or the action is not this person's"},
        409: {"description": "the action cannot be done now; the page says why"},
        410: {"description": "the link has expired or was already used"},
    },
)
log = get_logger(__name__)
_pages = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(default=True),
)

HEADINGS = {
    LinkAction.ACKNOWLEDGE: "Acknowledge your action item",
    LinkAction.REQUEST_EXTENSION: "Ask for more time",
}


@router.get("/act/{token}", response_class=HTMLResponse)
async def show_link(request: Request, token: str, using: Using) -> HTMLResponse:
    """What the link will do, with a button to do it."""
    link = await _usable(request, using, token)
    if isinstance(link, HTMLResponse):
        return link
    item = await asyncio.to_thread(using.store.records.action_item, link.action_item_id)
    return _page(link, item, status.HTTP_200_OK, form=True, using=using)


@router.post("/act/{token}", response_class=HTMLResponse)
async def use_link(
    request: Request,
    token: str,
    using: Using,
    until: Annotated[date | None, Form()] = None,
    reason: Annotated[str, Form(max_length=10_000)] = "",
) -> HTMLResponse:
    """Do what the link says, once."""
    link = await _usable(request, using, token)
    if isinstance(link, HTMLResponse):
        return link
    use = LinkUse(
        nonce=link.nonce,
        action=link.action.value,
        action_item_id=link.action_item_id,
        person=link.person,
        used_at=using.clock(),
    )
    earlier = await asyncio.to_thread(using.store.links.claim, use)
    if earlier is not None:  # a double click or a replay racing the first use
        return _used(earlier)
    bound = log.bind(action_item_id=link.action_item_id, person=link.person, action=link.action)
    try:
        if link.action is LinkAction.ACKNOWLEDGE:
            acknowledgement = Acknowledgement(by=link.person)
            item = await using.actions.acknowledge(link.action_item_id, acknowledgement)
        elif until is None:
            raise ActionRefused("choose the new due date", RefusalKind.INVALID)
        else:
            asked = ExtensionRequest(by=link.person, until=until, reason=reason)
            item = await using.actions.request_extension(link.action_item_id, asked)
    except ActionRefused as refused:
        await asyncio.to_thread(using.store.links.release, link.nonce)  # nothing happened
        bound.info("one-click link refused", reason=str(refused))
        current = await asyncio.to_thread(using.store.records.action_item, link.action_item_id)
        return _page(
            link,
            current,
            STATUS_OF_REFUSAL[refused.kind],
            form=True,
            using=using,
            error=str(refused),
            until=until,
            reason=reason,
        )
    bound.info("one-click link used")
    message = (
        f"Acknowledged. {item.owner} owns it; it is due {item.due.isoformat()}."
        if link.action is LinkAction.ACKNOWLEDGE
        else f"Asked for {until}. {_decider(using, item)} decides; you will hear by email."
    )
    return _page(link, item, status.HTTP_200_OK, form=False, using=using, message=message)


async def _usable(request: Request, using: Services, token: str) -> OneClickLink | HTMLResponse:
    """The link, or the page that says why it cannot be used."""
    try:
        link = read_link(token, using.link_secret, using.clock())
    except LinkExpired as gone:
        return _problem(str(gone), status.HTTP_410_GONE)
    except LinkRefused as refused:
        log.warning("forged or damaged one-click link", reason=str(refused))
        using.throttle.failed(LINKS, request.scope.get("client"))  # guessing links: 429 soon
        return _problem(str(refused), status.HTTP_403_FORBIDDEN)
    signed_in = await _signed_in_as(request, using)
    if signed_in is not None and signed_in != link.person:
        log.warning("one-click link opened by someone else", person=link.person, by=signed_in)
        return _problem(
            f"this link is for {link.person}, and you are signed in as {signed_in}: it acts only "
            f"as {link.person}. Nothing was done; act on your own items from the dashboard.",
            status.HTTP_403_FORBIDDEN,
        )
    earlier = await asyncio.to_thread(using.store.links.use, link.nonce)
    return _used(earlier) if earlier is not None else link


async def _signed_in_as(request: Request, using: Services) -> str | None:
    """Who is signed in to the dashboard in this browser, if anyone."""
    try:
        return (await viewer(request, using)).person
    except SignInRequired:
        return None


def _used(earlier: LinkUse) -> HTMLResponse:
    return _problem(
        f"this link was already used on {earlier.used_at:%Y-%m-%d %H:%M} UTC; each link works once",
        status.HTTP_410_GONE,
    )


def _problem(error: str, code: int) -> HTMLResponse:
    html = _pages.get_template("one_click.html.j2").render(
        heading="This link cannot be used", error=error, form=False, item=None
    )
    return HTMLResponse(html, status_code=code)


def _decider(using: Services, item: ActionItem) -> str:
    return f"{using.policy.manager_of_team(item.team)} (or the reliability council)"


def _page(
    link: OneClickLink,
    item: ActionItem | None,
    code: int,
    *,
    form: bool,
    using: Services,
    error: str = "",
    message: str = "",
    until: date | None = None,
    reason: str = "",
) -> HTMLResponse:
    html = _pages.get_template("one_click.html.j2").render(
        heading=HEADINGS[link.action],
        item=item,
        action=link.action.value,
        person=link.person,
        expires=f"{link.expires_at:%Y-%m-%d %H:%M} UTC",
        decider=_decider(using, item) if item else "the manager",
        form=form and item is not None,
        error=error,
        message=message,
        until=until.isoformat() if until else "",
        reason=reason,
    )
    return HTMLResponse(html, status_code=code)
