"""Our own format, the "generic" source, for any tool we have no built-in source for.

POST the incident as the generic incident JSON (what `parse_incident` takes: id, title,
severity as one of the policy's severities, resolved_at, and optionally services, started_at,
detected_at, acknowledged_at, mitigated_at, communicated_at, commander, summary, url,
chat_channel (the incident's Slack channel, C... or #name); `source`
may be left out or must be "generic"), with these headers:

    X-Followthrough-Timestamp: <Unix time in seconds>
    X-Followthrough-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>
    X-Followthrough-Delivery: <optional: an id for this delivery, the same on retries>

The signature covers the timestamp and the raw body bytes exactly as sent; a timestamp more
than 5 minutes from our clock, either way, is refused. Several comma-separated `v1=` signatures
may be sent while the secret is rotated; one matching is enough. Every delivery is a
resolution. In Python: `headers = sign_generic(secret, body, int(time.time()))`; with a shell:

    ts=$(date +%s)
    sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret" -hex | cut -d' ' -f2)
    curl -H "X-Followthrough-Timestamp: $ts" -H "X-Followthrough-Signature: v1=$sig" \\
         -H 'Content-Type: application/json' --data "$body" https://.../webhooks/generic
"""

from __future__ import annotations

from datetime import datetime

from followthrough.domain.incident import Incident, InvalidIncident, parse_incident
from followthrough.domain.policy import Policy
from followthrough.webhooks.base import Headers, NotResolution, WebhookSource
from followthrough.webhooks.errors import Malformed
from followthrough.webhooks.fields import Fields, shown
from followthrough.webhooks.signatures import (
    check_hex_signatures,
    check_timestamp,
    hmac_sha256,
    optional_header,
    raw,
    required_header,
)

TIMESTAMP = "X-Followthrough-Timestamp"
SIGNATURE = "X-Followthrough-Signature"
DELIVERY = "X-Followthrough-Delivery"


def sign_generic(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers that authenticate `body` to the generic source at `timestamp`."""
    digest = hmac_sha256(raw(secret), raw(f"{timestamp}.") + body)
    return {TIMESTAMP: str(timestamp), SIGNATURE: f"v1={digest.hex()}"}


class Generic(WebhookSource):
    name = "generic"

    def verify(self, headers: Headers, body: bytes, secret: str, now: datetime) -> None:
        timestamp = required_header(headers, TIMESTAMP)
        signature = required_header(headers, SIGNATURE)
        check_timestamp(timestamp, TIMESTAMP, now)
        expected = hmac_sha256(raw(secret), raw(f"{timestamp}.") + body)
        check_hex_signatures(signature, expected, SIGNATURE, prefix="v1=")

    def delivery_id(self, headers: Headers) -> str | None:
        return optional_header(headers, DELIVERY)

    def interpret(self, payload: Fields, policy: Policy) -> Incident | NotResolution:
        # The source names who reported the incident; a generic sender may not claim to be
        # another source, whose incident ids it would then share.
        claimed = payload.data.get("source", self.name)
        if claimed != self.name:
            raise Malformed(f"source: must be '{self.name}' or left out, not {shown(str(claimed))}")
        try:
            return parse_incident(dict(payload.data), policy, origin="incident")
        except InvalidIncident as err:
            raise Malformed("; ".join(err.problems)) from None
