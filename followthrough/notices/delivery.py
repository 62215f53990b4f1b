"""Delivering rendered messages: SMTP through an async client, or the local outbox.

Without SMTP settings (the embedded default) every message is kept in the outbox table and as an
.eml file under the data directory, where `followthrough outbox` shows it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from followthrough.domain.notice import OutboxMessage, OutboxStatus
from followthrough.notices.render import Links, one_line


class PermanentDeliveryError(Exception):
    """Retrying cannot help (bad credentials, a refused sender or recipient)."""


@dataclass(frozen=True)
class SmtpServer:
    hostname: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False  # implicit TLS (smtps://)
    start_tls: bool | None = None  # None: upgrade when the server offers it

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """smtp://[user:password@]host[:port][?starttls=true|false] or smtps://..."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(
                f"FOLLOWTHROUGH_SMTP_URL '{url}' must look like smtp://user:password@host:587"
            )
        query = parse_qs(parts.query)
        start_tls = None
        if "starttls" in query:
            start_tls = query["starttls"][0].lower() in ("1", "true", "yes")
        implicit = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname,
            port=parts.port or (465 if implicit else 587),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit,
            start_tls=False if implicit else start_tls,
        )


@dataclass(frozen=True)
class Mailer:
    sender: str
    outbox_dir: Path
    links: Links
    smtp: SmtpServer | None = None

    async def deliver(self, message: OutboxMessage) -> OutboxStatus:
        try:
            email = build_email(message, self.sender)
        except (ValueError, TypeError) as err:  # the same message fails the same way every time
            raise PermanentDeliveryError(f"the message cannot be built: {err}") from err
        if self.smtp is None:
            self.outbox_dir.mkdir(parents=True, exist_ok=True)
            (self.outbox_dir / f"{safe_name(message.dedupe_key)}.eml").write_bytes(bytes(email))
            return OutboxStatus.KEPT
        try:
            await aiosmtplib.send(
                email,
                hostname=self.smtp.hostname,
                port=self.smtp.port,
                username=self.smtp.username,
                password=self.smtp.password,
                use_tls=self.smtp.use_tls,
                start_tls=self.smtp.start_tls,
                timeout=30,
            )
        except (
            aiosmtplib.SMTPAuthenticationError,
            aiosmtplib.SMTPSenderRefused,
            aiosmtplib.SMTPRecipientsRefused,
        ) as err:
            raise PermanentDeliveryError(f"the SMTP server refused the message: {err}") from err
        except aiosmtplib.SMTPResponseException as err:
            if 500 <= err.code < 600:
                raise PermanentDeliveryError(f"the SMTP server refused the message: {err}") from err
            raise
        return OutboxStatus.SENT


def build_email(message: OutboxMessage, sender: str) -> EmailMessage:
    """multipart/alternative, text first; the Message-ID comes from the dedupe key so a copy that
    slipped through twice (a crash between SMTP's OK and our record) threads as one."""
    # The default policy refuses a header value with a line break, so nothing a title holds can
    # add a header; one_line makes every value one line first, so such a title is still sent.
    email = EmailMessage(policy=email_policy.default)
    email["Subject"] = one_line(message.subject)
    email["From"] = one_line(sender)
    email["To"] = one_line(", ".join(message.recipients))
    email["Date"] = format_datetime(message.created_at)
    digest = hashlib.sha256(message.dedupe_key.encode()).hexdigest()[:32]
    email["Message-ID"] = f"<{digest}@followthrough>"  # the same for every copy of this notice
    email["X-Followthrough-Key"] = one_line(message.dedupe_key)
    email["X-Followthrough-Kind"] = message.kind.value  # lets mail rules (and tests) sort them
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email


def safe_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:200]
