"""The checks the sources share: hex HMAC-SHA256 signatures, Bearer or Basic tokens, and the
timestamp tolerance. Every comparison of a secret-derived value is constant-time."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from followthrough.webhooks.errors import Unauthorized
from followthrough.webhooks.fields import shown

# A signed timestamp this far from our clock, either way, is refused: an old one may be a
# replayed capture, a future one a sender whose clock is wrong (or a capture kept for later).
TOLERANCE = timedelta(minutes=5)

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, ignoring case (a plain dict may spell it any way)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def optional_header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, stripped; None when it is missing or blank."""
    value = header(headers, name)
    return value.strip() or None if value is not None else None


def required_header(headers: Mapping[str, str], name: str) -> str:
    value = header(headers, name)
    if value is None or not value.strip():
        raise Unauthorized(f"missing {name} header")
    return value.strip()


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def raw(text: str) -> bytes:
    """Text as bytes, losslessly (distinct strings stay distinct, even lone surrogates)."""
    return text.encode("utf-8", "surrogatepass")


def same(offered: bytes, expected: bytes) -> bool:
    return hmac.compare_digest(offered, expected)


def check_hex_signatures(value: str, expected: bytes, header_name: str, prefix: str = "") -> None:
    """`value` lists comma-separated `<prefix><hex>` signatures (several during a secret
    rotation); one matching the expected digest is enough."""
    offered = [
        part.strip()[len(prefix) :] for part in value.split(",") if part.strip().startswith(prefix)
    ]
    if not offered:
        raise Unauthorized(f"{header_name} holds no {prefix}<hex> signature")
    wanted = raw(expected.hex())
    if not any(same(raw(candidate.lower()), wanted) for candidate in offered):
        raise Unauthorized(
            f"{header_name} does not match the body (a different secret, or an altered body)"
        )


def check_timestamp(value: str, header_name: str, now: datetime) -> None:
    """A Unix-seconds timestamp within TOLERANCE of `now`, either way."""
    if not _UNIX_SECONDS.fullmatch(value):
        raise Unauthorized(f"{header_name}: {shown(value)} is not a Unix time in seconds")
    drift = now.timestamp() - int(value)
    limit = TOLERANCE.total_seconds()
    if drift > limit:
        raise Unauthorized(
            f"{header_name} is {drift / 60:.1f} minutes old; requests older than "
            f"{limit / 60:.0f} minutes are refused as possible replays"
        )
    if -drift > limit:
        raise Unauthorized(
            f"{header_name} is {-drift / 60:.1f} minutes in the future; more than "
            f"{limit / 60:.0f} minutes is refused (is the sender's clock wrong?)"
        )


def check_token(headers: Mapping[str, str], secret: str) -> None:
    """For senders that cannot sign: `Authorization: Bearer <secret>`, or Basic auth whose
    password is the secret (any user name)."""
    value = header(headers, "Authorization")
    if value is None or not value.strip():
        raise Unauthorized(
            "missing Authorization header (Bearer <secret>, or Basic with the secret as password)"
        )
    scheme, _, credentials = value.strip().partition(" ")
    if scheme.lower() == "bearer":
        offered = raw(credentials.strip())
    elif scheme.lower() == "basic":
        offered = _basic_password(credentials.strip())
    else:
        raise Unauthorized(f"Authorization scheme {shown(scheme)} is neither Bearer nor Basic")
    if not same(offered, raw(secret)):
        raise Unauthorized("the Authorization credentials do not match the configured secret")


def _basic_password(credentials: str) -> bytes:
    try:
        decoded = base64.b64decode(credentials, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("the Basic credentials in Authorization are not base64") from None
    _user, colon, password = decoded.partition(b":")
    if not colon:
        raise Unauthorized("the Basic credentials in Authorization have no ':' before a password")
    return password
