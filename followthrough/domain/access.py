"""Who is asking: personal API tokens and signed one-click links in emails.

Tokens are random and long, so a plain SHA-256 is enough to keep them unusable at rest (no
password-style stretching needed). A one-click link carries what it may do (acknowledge, or ask for
more time), on which item, for whom and until when, signed with HMAC-SHA256; its nonce can be
used once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from followthrough.domain.restricted import Readable

if TYPE_CHECKING:  # the types only: notices/render.py imports this module from the workflows' side
    from followthrough.domain.policy import Policy
    from followthrough.domain.postmortem import ActionItem, Postmortem

TOKEN_PREFIX = "ft_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(BaseModel):
    """What is kept of a personal API token (never the token itself)."""

    model_config = ConfigDict(frozen=True)

    id: str
    person: str
    name: str
    created_at: AwareDatetime
    last_used_at: AwareDatetime | None = None
    revoked_at: AwareDatetime | None = None


class LinkAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    REQUEST_EXTENSION = "request_extension"


class OneClickLink(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: LinkAction
    action_item_id: str
    person: str
    expires_at: AwareDatetime
    nonce: str


class LinkUse(BaseModel):
    model_config = ConfigDict(frozen=True)

    nonce: str
    action: str
    action_item_id: str
    person: str
    used_at: AwareDatetime


class LinkRefused(Exception):
    """A link that cannot be used; the message says why in words the reader understands."""


class LinkExpired(LinkRefused):
    """A genuine link past its time (or already used): gone, rather than forbidden."""


def link_nonce(dedupe_key: str, action: LinkAction) -> str:
    """The same email always carries the same link, so a re-rendered retry changes nothing."""
    return hashlib.sha256(f"{dedupe_key}|{action.value}".encode()).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def sign_link(link: OneClickLink, secret: str) -> str:
    body = {
        "a": link.action.value,
        "i": link.action_item_id,
        "p": link.person,
        "e": int(link.expires_at.timestamp()),
        "n": link.nonce,
    }
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_signature(secret, payload)}"


# A one-click link as emails carry it, in text or in an href: the address up to /act/, the token.
_LINK_IN_MAIL = re.compile(r"(?:https?://[^\s\"'<>]*)?/act/([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+")


def link_addressee(token: str) -> str | None:
    """Whom a link token was made for, read without checking its signature (enough to decide
    whether to show it: a forged link acts for nobody); None when it cannot be read."""
    payload = token.partition(".")[0]
    try:
        person = json.loads(_unb64(payload)).get("p")
    except (ValueError, AttributeError):
        return None
    return person if isinstance(person, str) else None


def without_others_links(text: str, reader: str | None) -> str:
    """Mail text as `reader` may see it: every one-click link made for someone else is replaced
    by words saying whose it is, since a link acts as its addressee for whoever holds it.
    `reader` None (an operator's tool, not a person's view): every link is replaced."""

    def redacted(found: re.Match[str]) -> str:
        addressee = link_addressee(found.group(1))
        if reader is not None and addressee == reader:
            return found.group(0)
        return f"[one-click link for {addressee or 'its addressee'}, shown only to them]"

    return _LINK_IN_MAIL.sub(redacted, text)


def read_link(token: str, secret: str, now: datetime) -> OneClickLink:
    """The link a token stands for, if its signature holds and it has not expired."""
    payload, dot, signature = token.partition(".")
    # Bytes: compare_digest refuses non-ASCII str, and the token comes straight from a URL.
    expected = _signature(secret, payload).encode()
    if not dot or not hmac.compare_digest(signature.encode(), expected):
        raise LinkRefused("this link is not one Followthrough made (its signature does not match)")
    try:
        body = json.loads(_unb64(payload))
        link = OneClickLink(
            action=body["a"],
            action_item_id=body["i"],
            person=body["p"],
            expires_at=datetime.fromtimestamp(body["e"], UTC),
            nonce=body["n"],
        )
    except (ValueError, KeyError, TypeError, ValidationError):
        raise LinkRefused("this link is damaged; use the one in the email") from None
    if now >= link.expires_at:
        raise LinkExpired(
            f"this link expired on {link.expires_at:%Y-%m-%d %H:%M} UTC; act with "
            f"`followthrough action` or the API instead"
        )
    return link


# --- restricted postmortems (domain/restricted.py) ------------------------------------------------


def people_on_postmortem(pm: Postmortem) -> set[str]:
    """Its owner, the incident's commander, and the reviewers who reviewed it."""
    people = {pm.owner, *(review.reviewer for review in pm.reviews)}
    if pm.incident.commander:
        people.add(pm.incident.commander)
    return people


def people_on_item(item: ActionItem) -> set[str]:
    """Its owner now and before, and whoever verified or rejected it."""
    return {item.owner, *item.previous_owners, *(decision.by for decision in item.decisions)}


def readable_of(pm: Postmortem, items: Iterable[ActionItem] = ()) -> Readable:
    people = people_on_postmortem(pm)
    for item in items:
        people |= people_on_item(item)
    return Readable(restricted_to=pm.restricted_to, people=frozenset(people))


def may_read(readable: Readable, person: str, policy: Policy) -> bool:
    """May `person` read this postmortem (and its items, its pages, its notices)? Every read
    path asks this, or filters in SQL by the same rule (storage/restricted.py)."""
    return policy.reader(person).may_read(readable)
