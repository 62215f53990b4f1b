"""Who is asking: personal API tokens and signed one-click links in emails.

Tokens are random and long, so a plain SHA-256 is enough to keep them unusable at rest (no
password-style stretching needed). Each has a scope (`read`: look, never change; `act`: all its
person may do) and an expiry, at most MAX_TOKEN_DAYS away: a forgotten token is the leak that
lasts, so none is made to live for ever (tokens from before scopes keep `act` and no expiry).

A one-click link carries what it may do (acknowledge, or ask for more time), on which item, for
whom and until when, signed with HMAC-SHA256; its nonce can be used once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from followthrough.domain.limits import MAX_TOKEN_DAYS, TOKEN_NAME_CHARS
from followthrough.domain.restricted import Readable

if TYPE_CHECKING:  # the types only: notices/render.py imports this module from the workflows' side
    from followthrough.domain.policy import Policy
    from followthrough.domain.postmortem import ActionItem, Postmortem

TOKEN_PREFIX = "ft_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenScope(StrEnum):
    READ = "read"  # GET and HEAD only: reads, never a change
    ACT = "act"  # everything its person may do


# HTTP methods a read-scoped token may use: they change nothing on this server.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_EXPIRES_IN = re.compile(r"([1-9][0-9]{0,3})([dw]?)")
# A token's name: one line (no control characters, no line separators) with something in it; the
# JSON API's schema says the same, so what it documents as valid is accepted.
_LINE = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
TOKEN_NAME = rf"^{_LINE}*[^\s\x00-\x1f\x7f-\x9f\u2028\u2029]{_LINE}*$"


class ApiToken(BaseModel):
    """What is kept of a personal API token (never the token itself)."""

    model_config = ConfigDict(frozen=True)

    id: str
    person: str
    name: str
    created_at: AwareDatetime
    last_used_at: AwareDatetime | None = None
    revoked_at: AwareDatetime | None = None
    scope: TokenScope = TokenScope.ACT
    expires_at: AwareDatetime | None = None  # None: a token from before expiries

    def expired(self, at: datetime) -> bool:
        return self.expires_at is not None and at >= self.expires_at

    def status(self, at: datetime) -> str:
        """In a word, for lists: live, expired or revoked."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expired(at) else "live"


class TokenRefused(Exception):
    """A token that may not do what it was sent to do; `status` is the HTTP answer (401, 403)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def token_refusal(token: ApiToken, method: str, at: datetime) -> TokenRefused | None:
    """Why this live (unrevoked) token may not make a request with this method, if it may not."""
    if token.expired(at):
        assert token.expires_at is not None
        return TokenRefused(
            f"this API token expired on {token.expires_at:%Y-%m-%d %H:%M} UTC; create a new one",
            401,
        )
    if token.scope is TokenScope.READ and method.upper() not in READ_METHODS:
        return TokenRefused(
            f"this API token's scope is 'read': it may only read (GET); {method.upper()} needs "
            "a token with scope 'act'",
            403,
        )
    return None


def expires_in_days(typed: str) -> int:
    """How many days a new token lives, from '90', '90d' or '12w'; ValueError names the bound."""
    found = _EXPIRES_IN.fullmatch(typed.strip().lower())
    if found is None:
        raise ValueError(
            f"expires_in: '{typed[:20]}' is not a number of days or weeks (e.g. 90d or 12w)"
        )
    days = int(found.group(1)) * (7 if found.group(2) == "w" else 1)
    if days > MAX_TOKEN_DAYS:
        raise ValueError(f"expires_in: at most {MAX_TOKEN_DAYS} days ({days} asked)")
    return days


def new_token_problems(name: str, days: int) -> list[str]:
    """What is wrong with a token to be made, each problem naming its field."""
    problems = []
    if not name.strip():
        problems.append("name: say what the token is for (e.g. the script or machine)")
    elif len(name) > TOKEN_NAME_CHARS or re.fullmatch(TOKEN_NAME, name) is None:
        problems.append(f"name: one line of at most {TOKEN_NAME_CHARS} characters")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        problems.append(f"expires_in: from 1 to {MAX_TOKEN_DAYS} days")
    return problems


def token_expiry(now: datetime, days: int) -> datetime:
    return now + timedelta(days=days)


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
