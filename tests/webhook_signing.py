"""What a genuine sender puts on a webhook request, for the tests: the vendor payloads in
tests/webhook_payloads/ and each source's signature or token, computed here from the vendors'
documented schemes with the standard library alone (not with followthrough.webhooks), so a
mistake in the receiver's verification cannot cancel out against the same mistake here.

    body = load_payload("pagerduty_resolved")
    headers = signed_request("pagerduty", "s3cret", body, now)
    receive("pagerduty", headers, body, "s3cret", policy, now)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from pathlib import Path

PAYLOADS = Path(__file__).resolve().parent / "webhook_payloads"

# Svix's webhook-id is the message id, repeated on retries; a fixed one keeps tests readable.
SVIX_MESSAGE_ID = "msg_2hWQ1yqYkcMZP0gVn1Q5Yt3x"


def load_payload(name: str) -> bytes:
    """The raw bytes of tests/webhook_payloads/<name>.json (".json" may be given or not)."""
    filename = name if name.endswith(".json") else f"{name}.json"
    return (PAYLOADS / filename).read_bytes()


def signed_request(source: str, secret: str, body: bytes, now: datetime) -> dict[str, str]:
    """The headers the source's genuine sender would send with `body` at `now`."""
    timestamp = str(int(now.timestamp()))
    if source == "pagerduty":
        return {
            "X-PagerDuty-Signature": f"v1={_hex_hmac(secret, body)}",
            "X-Webhook-Id": "9c1a3c1e-5b5e-4d4c-8f6e-2f1d2c3b4a59",
        }
    if source == "incidentio":
        # Svix: the key is the base64 after "whsec_"; the content is "{id}.{timestamp}.{body}".
        key = base64.b64decode(secret.removeprefix("whsec_"))
        content = f"{SVIX_MESSAGE_ID}.{timestamp}.".encode() + body
        signature = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
        return {
            "webhook-id": SVIX_MESSAGE_ID,
            "webhook-timestamp": timestamp,
            "webhook-signature": f"v1,{signature}",
        }
    if source == "grafana":
        # A contact point with an HMAC secret and a timestamp header configured.
        return {
            "X-Grafana-Alerting-Signature": _hex_hmac(secret, f"{timestamp}:".encode() + body),
            "X-Grafana-Alerting-Signature-Timestamp": timestamp,
        }
    if source == "firehydrant":
        return {"fh-signature": _hex_hmac(secret, body)}
    if source == "generic":
        return {
            "X-Followthrough-Timestamp": timestamp,
            "X-Followthrough-Signature": f"v1={_hex_hmac(secret, f'{timestamp}.'.encode() + body)}",
            "X-Followthrough-Delivery": "delivery-0001",
        }
    if source == "opsgenie":
        # A custom header on Opsgenie's webhook integration, Basic auth with any user name.
        return {"Authorization": f"Basic {_basic('opsgenie', secret)}"}
    if source == "alertmanager":
        # http_config: authorization: {credentials: <secret>} sends a Bearer token.
        return {"Authorization": f"Bearer {secret}"}
    raise ValueError(f"no signing recipe for source '{source}'")


def svix_secret(key: bytes) -> str:
    """A Svix signing secret as incident.io shows it: whsec_ and the key in base64."""
    return "whsec_" + base64.b64encode(key).decode()


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()
