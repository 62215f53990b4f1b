"""Why a webhook request is refused, with the HTTP status the API answers."""

from __future__ import annotations

from typing import ClassVar


class WebhookRejected(Exception):
    """A request we refuse; the message says why in words the sender's admin can act on."""

    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthorized(WebhookRejected):
    """Missing, wrong or malformed signature or token, or a timestamp outside the tolerance."""

    status: ClassVar[int] = 401


class Malformed(WebhookRejected):
    """Authentic, but not JSON, not an object, or a field missing or of the wrong type; the
    message names the field, e.g. `event.data.id: missing`."""

    status: ClassVar[int] = 422
