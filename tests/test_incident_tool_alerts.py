"""Pages and alerts from the incident tools are kept as alert events: PagerDuty V3
(`incident.triggered`, `.acknowledged`, `.resolved`), Opsgenie alert actions (Create,
Acknowledge, Close) and incident.io alerts (`public_alert.alert_created_v1`,
`.alert_resolved_v1`), each the vendor's documented payload signed as the vendor signs it.
One episode per page however its statuses arrive, the acknowledgement kept for the noisy-alert
rule, and nothing started for an alert that is not a resolution."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from followthrough.domain.alert_quality import AlertEvent, AlertPolicy, review_alert_quality
from followthrough.domain.policy import load_policy
from followthrough.webhooks import Ignored, Resolved, receive
from tests.api_support import WEBHOOK_SECRETS, Api
from tests.test_webhook_api import exists
from tests.webhook_signing import load_payload, signed_request

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
POLICY = load_policy()
EVERYTHING = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), 100)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _received(source: str, body: bytes, now: datetime = NOW) -> Resolved | Ignored:
    secret = WEBHOOK_SECRETS[source]
    return receive(source, signed_request(source, secret, body, now), body, secret, POLICY, now)


def _edited(payload: str, change: dict[str, object], *path: str) -> bytes:
    data = json.loads(load_payload(payload))
    node = data
    for key in path:
        node = node[key]
    node.update(change)
    return json.dumps(data).encode()


PD_ID, PD_START = "Q2NSZ4VNSQ6AQN", _at("2025-03-10T10:58:03+00:00")
OG_ID, OG_START = (
    "6d1f6f4c-6f4e-4b8b-9d8a-3f2c1b0a9e8d-1741602000123",
    _at("2025-03-10T10:20:00.123+00:00"),
)
IO_ID, IO_START = "01JNYG3C1R7ZP3V7B0XWQ4M6AL", _at("2025-03-10T09:03:12.401122+00:00")

# (source, payload) -> what the alert event says: fingerprint, name, service, severity,
# status, start, end, paged, acknowledged.
EXPECTED = {
    ("pagerduty", "pagerduty_triggered"): (
        PD_ID,
        "Checkout 5xx ratio above 2%",
        "checkout",
        "P1",
        "firing",
        PD_START,
        None,
        True,
        None,
    ),
    ("pagerduty", "pagerduty_acknowledged"): (
        PD_ID,
        "Checkout 5xx ratio above 2%",
        "checkout",
        "P1",
        "firing",
        PD_START,
        None,
        True,
        True,
    ),
    ("pagerduty", "pagerduty_resolved"): (
        PD_ID,
        "Checkout 5xx ratio above 2%",
        "checkout",
        "P1",
        "resolved",
        PD_START,
        _at("2025-03-10T11:42:17.508+00:00"),
        True,
        None,
    ),
    ("opsgenie", "opsgenie_create"): (
        OG_ID,
        "Billing: invoice emails failing to send",
        "billing",
        "P2",
        "firing",
        OG_START,
        None,
        None,
        None,
    ),
    ("opsgenie", "opsgenie_acknowledge"): (
        OG_ID,
        "Billing: invoice emails failing to send",
        "billing",
        None,  # the Acknowledge action data carries no priority
        "firing",
        OG_START,
        None,
        None,
        True,
    ),
    ("opsgenie", "opsgenie_close"): (
        OG_ID,
        "Billing: invoice emails failing to send",
        "billing",
        "P2",
        "resolved",
        OG_START,
        _at("2025-03-10T11:50:00.123456+00:00"),  # updatedAt, in nanoseconds
        None,
        None,
    ),
    ("incidentio", "incidentio_alert_created"): (
        IO_ID,
        "API gateway 502 ratio above 5%",
        "api-gateway",
        "critical",
        "firing",
        IO_START,
        None,
        None,
        None,
    ),
    ("incidentio", "incidentio_alert_resolved"): (
        IO_ID,
        "API gateway 502 ratio above 5%",
        "api-gateway",
        "critical",
        "resolved",
        IO_START,
        _at("2025-03-10T09:07:40+00:00"),
        None,
        None,
    ),
}


def _facts(event: AlertEvent) -> tuple[object, ...]:
    return (
        event.fingerprint,
        event.name,
        event.service,
        event.severity,
        event.status,
        event.starts_at,
        event.ends_at,
        event.paged,
        event.acknowledged,
    )


@pytest.mark.parametrize(("source", "payload"), sorted(EXPECTED))
def test_each_documented_payload_is_one_alert_event(source: str, payload: str) -> None:
    result = _received(source, load_payload(payload))
    [event] = result.alerts
    assert event.source == source and event.received_at == NOW
    assert _facts(event) == EXPECTED[(source, payload)]
    assert (result.alerts_dropped, result.alerts_refused) == (0, ())


def test_only_a_resolution_resolves_and_other_events_keep_no_alert() -> None:
    resolutions = {"pagerduty_resolved", "opsgenie_close"}
    for source, payload in EXPECTED:
        result = _received(source, load_payload(payload))
        assert isinstance(result, Resolved) is (payload in resolutions), payload
    # Events that are not about a page's status keep nothing, and are ignored as before.
    for source, body in [
        (
            "pagerduty",
            _edited("pagerduty_triggered", {"event_type": "incident.priority_updated"}, "event"),
        ),
        ("opsgenie", _edited("opsgenie_create", {"action": "AddNote"})),
        ("incidentio", load_payload("incidentio_accepted")),
    ]:
        ignored = _received(source, body)
        assert isinstance(ignored, Ignored) and ignored.alerts == (), source


def test_low_urgency_does_not_page() -> None:
    body = _edited("pagerduty_triggered", {"urgency": "low", "priority": None}, "event", "data")
    [event] = _received("pagerduty", body).alerts
    assert (event.severity, event.paged) == ("low", False)


@pytest.mark.parametrize(
    ("source", "payload", "change", "path", "named"),
    [
        (
            "pagerduty",
            "pagerduty_triggered",
            {"created_at": "1999-01-01T00:00:00Z"},
            ("event", "data"),
            "event.data.created_at",
        ),
        (
            "pagerduty",
            "pagerduty_resolved",
            {"created_at": None},
            ("event", "data"),
            "event.data.created_at",
        ),
        (
            "opsgenie",
            "opsgenie_acknowledge",
            {"createdAt": 99999999999999},
            ("alert",),
            "alert.createdAt",
        ),
        (
            "incidentio",
            "incidentio_alert_created",
            {"created_at": "2031-01-01T00:00:00Z"},
            ("public_alert.alert_created_v1",),
            "public_alert.alert_created_v1.created_at",
        ),
        (
            "incidentio",
            "incidentio_alert_created",
            {"attributes": "service"},
            ("public_alert.alert_created_v1",),
            "public_alert.alert_created_v1.attributes",
        ),
    ],
)
def test_an_alert_out_of_bounds_is_refused_alone_naming_it(
    source: str, payload: str, change: dict[str, object], path: tuple[str, ...], named: str
) -> None:
    """The page is left out, named; the delivery still counts (a resolution still resolves)."""
    result = _received(source, _edited(payload, change, *path))
    assert result.alerts == () and result.alerts_dropped == 1
    [why] = result.alerts_refused
    assert why.startswith(named), why
    assert isinstance(result, Resolved) is (payload == "pagerduty_resolved")


def test_long_and_odd_values_are_bounded() -> None:
    body = _edited(
        "pagerduty_triggered",
        {"id": "Q" * 300, "title": "line one\nline two\x00" + "x" * 500},
        "event",
        "data",
    )
    [event] = _received("pagerduty", body).alerts
    assert len(event.fingerprint) <= 128 and len(event.name) <= 128
    assert "\n" not in event.name and "\x00" not in event.name


async def _deliver(api: Api, source: str, payload: str) -> dict[str, object]:
    body = load_payload(payload)
    headers = signed_request(source, WEBHOOK_SECRETS[source], body, datetime.now(UTC))
    response = await api.http.post(
        f"/webhooks/{source}", content=body, headers={"Content-Type": "application/json", **headers}
    )
    return {"code": response.status_code, **response.json()}


async def test_through_the_api_each_page_is_one_episode_acknowledged_and_resolved(
    api: Api,
) -> None:
    store = api.services.store
    # Out of order and repeated, as webhooks arrive: the acknowledgement before the creation,
    # a redelivered trigger after the resolution.
    deliveries = [
        ("pagerduty", "pagerduty_triggered", 200, "ignored"),
        ("pagerduty", "pagerduty_acknowledged", 200, "ignored"),
        ("pagerduty", "pagerduty_resolved", 202, "started"),
        ("pagerduty", "pagerduty_triggered", 200, "ignored"),
        ("opsgenie", "opsgenie_acknowledge", 200, "ignored"),
        ("opsgenie", "opsgenie_create", 200, "ignored"),
        ("incidentio", "incidentio_alert_created", 200, "ignored"),
        ("incidentio", "incidentio_alert_resolved", 200, "ignored"),
        ("incidentio", "incidentio_alert_resolved", 200, "ignored"),
    ]
    for source, payload, code, status in deliveries:
        answer = await _deliver(api, source, payload)
        assert (answer["code"], answer["status"], answer["alerts_kept"]) == (code, status, 1), (
            payload,
            answer,
        )
    kept = {e.source: e for e in store.alerts.started_between(*EVERYTHING)}
    assert sorted(kept) == ["incidentio", "opsgenie", "pagerduty"]  # one episode each
    pd, og, io = kept["pagerduty"], kept["opsgenie"], kept["incidentio"]
    assert (pd.status, pd.acknowledged, pd.ends_at) == (
        "resolved",
        True,
        _at("2025-03-10T11:42:17.508+00:00"),
    )
    assert (og.status, og.acknowledged, og.severity) == ("firing", True, "P2")  # filled in
    assert (io.status, io.acknowledged) == ("resolved", None)
    # Only the PagerDuty incident's resolution started a postmortem (its answer said so, and
    # every other answer said "ignored"); no alert started anything.
    assert await exists(api.services.client, "postmortem-pagerduty-Q2NSZ4VNSQ6AQN")
    assert not await exists(api.services.client, f"postmortem-opsgenie-{OG_ID}")

    # The review: the incident.io alert, resolved in four and a half minutes and never
    # acknowledged, is noisy; the acknowledged pages are not.
    review = review_alert_quality(
        "2025-03", list(kept.values()), [], AlertPolicy(), negligible_budget=0.001
    )
    assert [(n.name, n.service, n.fired) for n in review.noisy] == [
        ("API gateway 502 ratio above 5%", "api-gateway", 1)
    ]
    assert (review.alerts, review.pages) == (3, 2)  # PagerDuty high urgency; severity critical
