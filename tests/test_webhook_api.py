"""Incidents arrive by themselves: every source's webhook through the real app, real Temporal.

For each source, the vendor's documented payload with a genuine signature starts exactly one
postmortem; a bad signature, a stale timestamp, a non-resolution or a malformed body starts
nothing. A real Alertmanager delivers a resolved notification over HTTP to a real server.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from followthrough.storage import Store
from followthrough.webhooks import Resolved, receive
from tests.api_support import (
    WEBHOOK_SECRETS,
    Api,
    api_for,
    api_served,
    api_settings,
    link_mailer,
)
from tests.conftest import eventually, running_worker
from tests.processes import free_port
from tests.servers.alertmanager import Alertmanager
from tests.webhook_signing import load_payload, signed_request

# source -> (its resolution payload, one of its events that is not a resolution)
EXAMPLES = {
    "pagerduty": ("pagerduty_resolved", "pagerduty_acknowledged"),
    "opsgenie": ("opsgenie_close", "opsgenie_create"),
    "incidentio": ("incidentio_resolved", "incidentio_accepted"),
    "alertmanager": ("alertmanager_resolved", "alertmanager_firing"),
    "grafana": ("grafana_resolved", "grafana_firing"),
    "firehydrant": ("firehydrant_resolved", "firehydrant_mitigated"),
    "generic": ("generic_resolved", None),
}
TIMESTAMPED = ("incidentio", "grafana", "generic")


async def exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def deliver(api: Api, source: str, body: bytes, headers: dict[str, str]) -> dict[str, object]:
    response = await api.http.post(
        f"/webhooks/{source}", content=body, headers={"Content-Type": "application/json", **headers}
    )
    return {"code": response.status_code, **response.json()}


@pytest.mark.parametrize("source", sorted(EXAMPLES))
async def test_each_source_starts_one_postmortem_and_refuses_bad_input(
    api: Api, source: str
) -> None:
    secret = WEBHOOK_SECRETS[source]
    now = datetime.now(UTC)
    resolution, other = EXAMPLES[source]
    body = load_payload(resolution)
    expected = receive(
        source, signed_request(source, secret, body, now), body, secret, api.services.policy, now
    )
    assert isinstance(expected, Resolved)
    workflow_id = expected.incident.postmortem_id
    client = api.services.client

    wrong = await deliver(api, source, body, signed_request(source, "not-the-secret", body, now))
    assert wrong["code"] == 401, wrong
    unsigned = await deliver(api, source, body, {})
    assert unsigned["code"] == 401, unsigned
    if source in TIMESTAMPED:
        stale = now - timedelta(minutes=6)
        late = await deliver(api, source, body, signed_request(source, secret, body, stale))
        assert late["code"] == 401 and "timestamp" in str(late["detail"]).lower(), late
    garbage = b'{"not": "what ' + source.encode() + b' sends"'
    malformed = await deliver(api, source, garbage, signed_request(source, secret, garbage, now))
    assert malformed["code"] == 422, malformed
    if other is not None:
        event = load_payload(other)
        ignored = await deliver(api, source, event, signed_request(source, secret, event, now))
        assert (ignored["code"], ignored["status"]) == (200, "ignored"), ignored
        assert "not a resolution" in str(ignored["reason"]), ignored
    assert not await exists(client, workflow_id)  # nothing above started anything

    started = await deliver(api, source, body, signed_request(source, secret, body, now))
    assert (started["code"], started["status"]) == (202, "started"), started
    assert started["workflow_id"] == workflow_id
    again = await deliver(api, source, body, signed_request(source, secret, body, now))
    assert (again["code"], again["status"]) == (202, "already open"), again
    assert again["workflow_id"] == workflow_id
    # Sources with delivery ids tell a redelivery from a new delivery of the same incident.
    assert again["duplicate_delivery"] is (expected.delivery_id is not None)
    store = api.services.store
    incident = await eventually(lambda: store.records.postmortem(workflow_id))
    assert incident.incident.source == source

    metrics = (await api.get("/metrics", "dan")).text
    assert f'followthrough_webhooks_total{{outcome="rejected",source="{source}"}}' in metrics


async def test_unknown_and_disabled_sources_are_refused(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    settings = api_settings(tmp_path, "unused", webhook_secret_pagerduty=None)
    async with api_for(time_skipping.client, sqlite_store, settings) as api:
        unknown = await api.http.post("/webhooks/statuspage", content=b"{}")
        assert unknown.status_code == 404 and "known: " in unknown.json()["detail"]
        body = load_payload("pagerduty_resolved")
        disabled = await api.http.post(
            "/webhooks/pagerduty",
            content=body,
            headers=signed_request("pagerduty", "anything", body, datetime.now(UTC)),
        )
        assert disabled.status_code == 401
        assert "FOLLOWTHROUGH_WEBHOOK_SECRET_PAGERDUTY" in disabled.json()["detail"]


async def test_a_flood_of_duplicates_starts_exactly_one_postmortem(api: Api) -> None:
    payload = json.loads(load_payload("generic_resolved"))
    payload["id"] = "INC-FLOOD-1"
    body = json.dumps(payload).encode()
    secret = WEBHOOK_SECRETS["generic"]
    now = datetime.now(UTC)
    headers = {**signed_request("generic", secret, body, now), "X-Followthrough-Delivery": "d-1"}
    answers = await asyncio.gather(*(deliver(api, "generic", body, headers) for _ in range(40)))
    assert {a["code"] for a in answers} == {202}
    assert {a["workflow_id"] for a in answers} == {"postmortem-generic-INC-FLOOD-1"}
    assert [a["status"] for a in answers].count("started") == 1
    assert [a["duplicate_delivery"] for a in answers].count(False) == 1  # one new delivery id
    store = api.services.store
    await eventually(lambda: store.records.postmortem("postmortem-generic-INC-FLOOD-1"))
    await asyncio.sleep(0.5)  # had a second workflow started, its record would land by now
    assert [pm.id for pm in store.records.postmortems()] == ["postmortem-generic-INC-FLOOD-1"]
    history = await api.services.client.get_workflow_handle(
        "postmortem-generic-INC-FLOOD-1"
    ).fetch_history()
    assert history.events[0].workflow_execution_started_event_attributes is not None


async def test_with_temporal_down_a_webhook_is_refused_for_a_retry_and_nothing_recorded(
    sqlite_store: Store, tmp_path: Path
) -> None:
    dead = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    body = load_payload("generic_resolved")
    headers = signed_request("generic", WEBHOOK_SECRETS["generic"], body, datetime.now(UTC))
    headers["X-Followthrough-Delivery"] = "retry-me"
    async with api_for(dead, sqlite_store, api_settings(tmp_path, "unused")) as api:
        answer = await api.http.post("/webhooks/generic", content=body, headers=headers)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "30"
    # The delivery is not remembered, so the source's retry is treated as new, not a duplicate.
    assert sqlite_store.deliveries.record("generic", "retry-me", datetime.now(UTC), "started", None)


async def test_a_severity_that_needs_no_postmortem_still_gets_an_optional_one(api: Api) -> None:
    payload = json.loads(load_payload("generic_resolved"))
    payload.update(id="INC-MINOR-1", severity="SEV4")
    body = json.dumps(payload).encode()
    headers = signed_request("generic", WEBHOOK_SECRETS["generic"], body, datetime.now(UTC))
    answer = await deliver(api, "generic", body, headers)
    assert (answer["code"], answer["status"]) == (202, "started")
    pm = await eventually(
        lambda: api.services.store.records.postmortem("postmortem-generic-INC-MINOR-1")
    )
    assert (pm.state.value, pm.required) == ("optional", False)


async def test_a_real_alertmanager_resolution_starts_a_postmortem(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    client = time_skipping.client
    port = free_port()
    async with running_worker(client, sqlite_store, link_mailer(tmp_path / "outbox")) as queue:
        settings = api_settings(tmp_path, queue, api_port=port)
        async with (
            api_served(client, sqlite_store, settings),
            Alertmanager(
                tmp_path / "alertmanager",
                webhook_url=f"http://127.0.0.1:{port}/webhooks/alertmanager",
                bearer_token=WEBHOOK_SECRETS["alertmanager"],
            ) as alertmanager,
        ):
            labels = {
                "alertname": "CheckoutErrorBudgetBurn",
                "severity": "critical",
                "service": "checkout",
                "postmortem": "true",  # the default policy's alerts.postmortem_when
            }
            annotations = {"summary": "Checkout 5xx ratio above 2% for 5 minutes"}
            started = datetime.now(UTC) - timedelta(minutes=20)
            await alertmanager.fire(labels, annotations, started)
            await asyncio.sleep(1.5)  # a fire and resolve within group_wait sends nothing
            assert sqlite_store.records.postmortems() == []  # firing starts nothing
            await alertmanager.resolve(labels, annotations, started)
            pm = await eventually(
                lambda: next(iter(sqlite_store.records.postmortems()), None), seconds=30
            )
    assert pm.id.startswith("postmortem-alertmanager-am-")
    assert pm.severity == "SEV2" and pm.team == "payments"  # critical -> SEV2; checkout's team
    assert pm.incident.title == "Checkout 5xx ratio above 2% for 5 minutes"
    assert pm.incident.started_at is not None and abs(pm.incident.started_at - started) < timedelta(
        seconds=1
    )
