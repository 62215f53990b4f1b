"""Alert events are kept: every firing and resolved alert from Alertmanager and Grafana, once per
episode, bounded, without starting anything, and pruned after the policy's retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from followthrough.domain.alert_quality import AlertEvent, AlertPolicy, alert_service
from followthrough.domain.limits import ALERTS_PER_DELIVERY
from followthrough.domain.policy import (
    DEFAULT_POLICY_PATH,
    InvalidPolicy,
    Policy,
    load_policy,
    parse_policy,
)
from followthrough.domain.stuck import StuckWorkSweep
from followthrough.storage import Store
from followthrough.webhooks import Ignored, Resolved, receive
from tests.api_support import WEBHOOK_SECRETS, Api, link_mailer
from tests.conftest import running_worker
from tests.test_dashboard import browser
from tests.webhook_signing import load_payload, signed_request
from workflows.stuck_work import StuckWorkWorkflow

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _event(fingerprint: str, status: str = "firing", **changes: object) -> AlertEvent:
    fields: dict[str, object] = {
        "source": "alertmanager",
        "fingerprint": fingerprint,
        "name": "HighLatency",
        "service": "checkout",
        "severity": "page",
        "status": status,
        "starts_at": NOW - timedelta(hours=1),
        "ends_at": NOW if status == "resolved" else None,
        "received_at": NOW,
    }
    return AlertEvent.model_validate({**fields, **changes})


def test_an_episode_is_kept_once_and_a_resolution_is_never_undone(store: Store) -> None:
    store.alerts.keep([_event("a"), _event("a"), _event("b")])  # a duplicate in one delivery
    store.alerts.keep([_event("a")])  # a redelivery
    assert store.alerts.count() == 2
    store.alerts.keep([_event("a", "resolved")])
    store.alerts.keep([_event("a")])  # a late redelivery of the firing notification
    day = store.alerts.started_between(NOW - timedelta(days=1), NOW, 10)
    found = {e.fingerprint: e for e in day}
    assert found["a"].status == "resolved" and found["a"].ends_at == NOW
    assert found["b"].status == "firing" and found["b"].ends_at is None
    # The same alert firing again later is a new episode.
    store.alerts.keep([_event("a", starts_at=NOW - timedelta(minutes=5))])
    assert store.alerts.count() == 3


def test_later_statuses_merge_in_any_order_and_any_batch(store: Store) -> None:
    """An acknowledgement sticks, resolved is final, a missing fact is filled in; the same
    whether the deliveries come one by one or together in one batch (api/group_commit.py)."""
    acked = _event("x", acknowledged=True, severity=None, paged=None)
    created = _event("x", acknowledged=False, severity="P2", paged=True)
    closed = _event("x", "resolved", acknowledged=None, severity=None)
    late_firing = _event("x", acknowledged=False)
    one_by_one = [[acked], [created], [closed], [late_firing]]
    for deliveries in (one_by_one, [[acked, created, closed, late_firing]]):
        for batch in deliveries:
            store.alerts.keep(batch)
        [kept] = store.alerts.started_between(NOW - timedelta(days=1), NOW, 10)
        assert (kept.status, kept.ends_at, kept.acknowledged) == ("resolved", NOW, True)
        assert (kept.severity, kept.paged) == ("P2", True)
        assert store.alerts.prune(NOW + timedelta(days=1), limit=10) == 1


def test_pruning_forgets_old_events_in_batches(store: Store) -> None:
    old = [_event(f"old-{i}", received_at=NOW - timedelta(days=500)) for i in range(5)]
    store.alerts.keep([*old, _event("new")])
    assert store.alerts.prune(NOW - timedelta(days=400), limit=3) == 3
    assert store.alerts.prune(NOW - timedelta(days=400), limit=3) == 2
    assert store.alerts.prune(NOW - timedelta(days=400), limit=3) == 0
    left = store.alerts.started_between(NOW - timedelta(days=1), NOW, 10)
    assert [e.fingerprint for e in left] == ["new"]


def _receive(source: str, payload: dict[str, object]) -> Ignored:
    body = json.dumps(payload).encode()
    secret = WEBHOOK_SECRETS[source]
    headers = signed_request(source, secret, body, NOW)
    result = receive(source, headers, body, secret, load_policy(None), NOW)
    assert isinstance(result, Ignored)
    return result


def test_a_firing_group_reports_each_alert_bounded() -> None:
    payload = json.loads(load_payload("alertmanager_firing"))
    first = _receive("alertmanager", payload)
    assert [(a.fingerprint, a.name, a.service, a.severity, a.status) for a in first.alerts] == [
        ("1a30ba71cca2921f", "KubePodCrashLooping", "kubernetes", "warning", "firing"),
        ("6f2b4c0e9d1a7b35", "KubePodCrashLooping", "kubernetes", "critical", "firing"),
    ]
    assert first.alerts[0].starts_at == datetime(2025, 3, 10, 9, 5, 30, 123456, tzinfo=UTC)
    assert all(a.ends_at is None for a in first.alerts)  # Go's zero time is no end

    many = dict(payload)
    alert = payload["alerts"][0]
    many["alerts"] = [
        {**alert, "fingerprint": f"f{i}", "labels": {**alert["labels"], "pod": "x" * 5000}}
        for i in range(ALERTS_PER_DELIVERY + 7)
    ]
    capped = _receive("alertmanager", many)
    assert (len(capped.alerts), capped.alerts_dropped) == (ALERTS_PER_DELIVERY, 7)

    unnamed = dict(payload, alerts=[{k: v for k, v in alert.items() if k != "fingerprint"}])
    hashed = _receive("alertmanager", unnamed).alerts[0].fingerprint
    assert len(hashed) == 16 and hashed == _receive("alertmanager", unnamed).alerts[0].fingerprint


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"startsAt": "1999-12-31T00:00:00Z"}, "alerts[0].startsAt"),
        ({"startsAt": "2026-11-22T00:00:00Z"}, "alerts[0].startsAt"),
        ({"status": "pending"}, "alerts[0].status"),
        ({"labels": ["not", "an", "object"]}, "alerts[0].labels"),
    ],
)
def test_an_alert_out_of_bounds_is_refused_alone_naming_it(
    change: dict[str, object], named: str
) -> None:
    payload = json.loads(load_payload("alertmanager_firing"))
    payload["alerts"][0].update(change)
    result = _receive("alertmanager", payload)
    assert [a.fingerprint for a in result.alerts] == ["6f2b4c0e9d1a7b35"]  # the other is kept
    assert result.alerts_dropped == 1
    [why] = result.alerts_refused
    assert why.startswith(named), why


def _policy_with(alerts: dict[str, object]) -> Policy:
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    data["alerts"] = alerts
    return parse_policy(data)


def _unlabelled(source: str) -> dict[str, Any]:
    """The source's resolution without the postmortem label (an Opsgenie tag) the test payload
    carries, and at severity (Opsgenie: priority) `warning`."""
    if source == "opsgenie":
        closed: dict[str, Any] = json.loads(load_payload("opsgenie_close"))
        closed["alert"]["tags"].remove("postmortem:true")
        closed["alert"]["priority"] = "warning"  # Opsgenie's P1-P5 read as the severity label
        return closed
    payload: dict[str, Any] = json.loads(load_payload(f"{source}_resolved"))
    for labels in [payload["commonLabels"], *(a["labels"] for a in payload["alerts"])]:
        labels.pop("postmortem", None)
    return payload


@pytest.mark.parametrize("source", ["alertmanager", "grafana", "opsgenie"])
@pytest.mark.parametrize(
    ("rule", "starts"),
    [
        (None, False),  # the default: only alerts labelled postmortem="true"
        ({"always": True}, True),  # every resolved group, as Followthrough first did
        ({"severities": ["warning"]}, True),
        ({"labels": {"team": "nobody"}, "severities": ["info"]}, False),
        ({"labels": {}}, False),
    ],
)
def test_a_resolved_group_starts_a_postmortem_only_when_the_policy_says_so(
    source: str, rule: dict[str, object] | None, starts: bool
) -> None:
    policy = load_policy(None) if rule is None else _policy_with({"postmortem_when": rule})
    payload = _unlabelled(source)
    body = json.dumps(payload).encode()
    secret = WEBHOOK_SECRETS[source]
    result = receive(source, signed_request(source, secret, body, NOW), body, secret, policy, NOW)
    assert isinstance(result, Resolved) is starts
    kept = len(payload.get("alerts", [None]))  # an Opsgenie delivery is one alert
    assert [a.status for a in result.alerts] == ["resolved"] * kept
    if isinstance(result, Ignored):
        assert "alerts.postmortem_when" in result.reason, result.reason


def test_an_opsgenie_alerts_tags_are_its_labels() -> None:
    """`key:value` tags are labels, as Alertmanager's would be: service:billing matches."""
    policy = _policy_with({"postmortem_when": {"labels": {"service": "billing"}}})
    body = json.dumps(_unlabelled("opsgenie")).encode()
    secret = WEBHOOK_SECRETS["opsgenie"]
    result = receive(
        "opsgenie", signed_request("opsgenie", secret, body, NOW), body, secret, policy, NOW
    )
    assert isinstance(result, Resolved)
    assert result.incident.services == ["billing"]


def test_the_rule_is_checked_when_the_policy_is_loaded() -> None:
    with pytest.raises(InvalidPolicy, match=r"alerts\.postmortem_when"):
        _policy_with({"postmortem_when": {"sometimes": True}})


def test_the_policy_names_the_service_by_its_labels() -> None:
    policy = AlertPolicy(service_labels=["app", "job"], service_names={"checkout-api": "checkout"})
    assert alert_service({"job": "checkout-api"}, policy) == "checkout"
    assert alert_service({"app": "search", "job": "checkout-api"}, policy) == "search"
    assert alert_service({"service": "search"}, policy) is None


async def _deliver(api: Api, source: str, payload: dict[str, object]) -> dict[str, object]:
    body = json.dumps(payload).encode()
    headers = signed_request(source, WEBHOOK_SECRETS[source], body, datetime.now(UTC))
    response = await api.http.post(
        f"/webhooks/{source}", content=body, headers={"Content-Type": "application/json", **headers}
    )
    return {"code": response.status_code, **response.json()}


@pytest.mark.parametrize("source", ["alertmanager", "grafana"])
async def test_firing_and_resolved_notifications_are_kept_and_start_nothing(
    api: Api, source: str
) -> None:
    firing = json.loads(load_payload(f"{source}_firing"))
    store = api.services.store
    for _ in range(2):  # a redelivery keeps nothing twice
        answer = await _deliver(api, source, firing)
        assert (answer["code"], answer["status"]) == (200, "ignored"), answer
        assert answer["alerts_kept"] == len(firing["alerts"])
    everything = store.alerts.started_between(datetime(2000, 1, 1, tzinfo=UTC), NOW, 100)
    assert len(everything) == len(firing["alerts"])
    assert {e.status for e in everything} == {"firing"}
    assert store.records.postmortems() == []  # a firing group never starts a postmortem

    # Resolved, without the label the policy asks for: kept, and no postmortem (an alert pair
    # is not an incident by itself).
    answer = await _deliver(api, source, _unlabelled(source))
    assert (answer["code"], answer["status"]) == (200, "ignored"), answer
    assert "alerts.postmortem_when" in str(answer["reason"])
    assert answer["alerts_kept"] == len(firing["alerts"])
    kept = store.alerts.started_between(datetime(2000, 1, 1, tzinfo=UTC), NOW, 100)
    assert {e.status for e in kept if e.ends_at is not None} == {"resolved"}

    resolved = json.loads(load_payload(f"{source}_resolved"))  # labelled postmortem="true"
    answer = await _deliver(api, source, resolved)
    assert (answer["code"], answer["status"]) == (202, "started"), answer


async def test_the_stuck_work_sweep_prunes_alert_events_past_retention(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    old = [_event(f"old-{i}", received_at=now - timedelta(days=401)) for i in range(3)]
    sqlite_store.alerts.keep([*old, _event("recent", received_at=now - timedelta(days=399))])
    client = time_skipping.client
    async with running_worker(client, sqlite_store, link_mailer(tmp_path / "outbox")) as queue:
        await client.execute_workflow(
            StuckWorkWorkflow.run,
            StuckWorkSweep(task_queue=queue, at=now),
            id=f"stuck-work-{queue}",
            task_queue=queue,
        )
    kept = sqlite_store.alerts.started_between(datetime(2000, 1, 1, tzinfo=UTC), now, 10)
    assert [e.fingerprint for e in kept] == ["recent"]  # the default policy keeps 400 days


async def test_the_review_over_http_and_on_its_page(api: Api) -> None:
    store = api.services.store
    quick = [
        _event(f"flap-{i}", "resolved", name="Flappy", starts_at=NOW - timedelta(hours=i + 2))
        for i in range(4)
    ]
    quick = [e.model_copy(update={"ends_at": e.starts_at + timedelta(minutes=2)}) for e in quick]
    store.alerts.keep([*quick, _event("other", service="search")])
    answer = await api.get("/api/alert-quality?month=2026-11", "dan")
    assert answer.status_code == 200, answer.text
    review = answer.json()
    assert (review["alerts"], review["pages"], review["dominant_service"]) == (5, 5, "checkout")
    assert [(n["name"], n["fired"]) for n in review["noisy"]] == [("Flappy", 4)]
    for bad in ("2026-13", "November", "2026-11-01", "9999-01"):
        refused = await api.get(f"/api/alert-quality?month={bad}", "dan")
        assert refused.status_code == 422 and "month" in refused.text, refused.text
    assert (await api.http.get("/api/alert-quality?month=2026-11")).status_code == 401

    async with browser(api, "dan") as client:
        page = await client.get("/alerts?month=2026-11")
        assert page.status_code == 200, page.text
        assert 'href="/alerts"' in page.text  # in the navigation
        assert "Flappy" in page.text and "checkout is behind 80% of the pages" in page.text
        assert (await client.get("/alerts?month=2026-99")).status_code == 422
