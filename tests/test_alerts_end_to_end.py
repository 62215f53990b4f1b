"""End to end: a real Alertmanager sends a week of alerts (their startsAt spread over seven
days), they are kept as alert events through the real API, and the month's alert-quality review
names the noisy alert and the service behind at least 80% of the pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from followthrough.api.auth import issue_token
from followthrough.storage import Store
from tests.api_support import WEBHOOK_SECRETS, api_served, api_settings, link_mailer
from tests.conftest import eventually, running_worker
from tests.processes import free_port
from tests.servers.alertmanager import Alertmanager

# (alert name, service, minutes it fired): checkout pages 7 times of 8 (87.5%); Flappy fires
# three times for two minutes, nobody acknowledges it, and no incident was under way. Only
# PaymentsDeclines is labelled postmortem="true": its resolution alone starts a postmortem.
WEEK = [
    ("CheckoutLatency", "checkout", 45),
    ("Flappy", "checkout", 2),
    ("CheckoutLatency", "checkout", 30),
    ("Flappy", "checkout", 2),
    ("CheckoutErrors", "checkout", 60),
    ("Flappy", "checkout", 2),
    ("CheckoutLatency", "checkout", 40),
    ("PaymentsDeclines", "payments", 50),
]


def the_week(now: datetime) -> tuple[str, list[datetime]]:
    """A month and eight moments spread over seven days of it, all in the past."""
    if now.day >= 9:
        start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=8)
    else:  # early in a month: the last week of the one before
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(days=8)
    moments = [start + timedelta(days=i, hours=9) for i in range(7)]  # one a day
    moments.append(moments[6] + timedelta(hours=5))  # and one more on the seventh
    return f"{start.year:04d}-{start.month:02d}", moments


async def test_a_week_of_real_alertmanager_alerts_and_the_monthly_review(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    client = time_skipping.client
    port = free_port()
    now = datetime.now(UTC).replace(microsecond=0)
    month, moments = the_week(now)
    alerts = [
        (
            {
                "alertname": name,
                "service": service,
                "severity": "page",
                "instance": f"host-{i}",
                **({"postmortem": "true"} if name == "PaymentsDeclines" else {}),
            },
            {"summary": f"{name} on {service}"},
            moments[i],
            minutes,
        )
        for i, (name, service, minutes) in enumerate(WEEK)
    ]
    async with running_worker(client, sqlite_store, link_mailer(tmp_path / "outbox")) as queue:
        settings = api_settings(tmp_path, queue, api_port=port)
        async with (
            api_served(client, sqlite_store, settings) as base,
            Alertmanager(
                tmp_path / "alertmanager",
                webhook_url=f"{base}/webhooks/alertmanager",
                bearer_token=WEBHOOK_SECRETS["alertmanager"],
            ) as alertmanager,
        ):
            for labels, annotations, starts, _ in alerts:
                await alertmanager.fire(labels, annotations, starts)
            everything = (datetime(2000, 1, 1, tzinfo=UTC), now + timedelta(days=1), 100)
            await eventually(
                lambda: len(sqlite_store.alerts.started_between(*everything)) == len(WEEK),
                seconds=30,
            )
            assert sqlite_store.records.postmortems() == []  # firing starts nothing
            for labels, annotations, starts, minutes in alerts:
                ends = starts + timedelta(minutes=minutes)
                await alertmanager.resolve(labels, annotations, starts, ends)
            await eventually(
                lambda: all(
                    e.status == "resolved" for e in sqlite_store.alerts.started_between(*everything)
                ),
                seconds=30,
            )
            # Eight alert pairs, one incident: the one the policy names.
            postmortems = await eventually(lambda: sqlite_store.records.postmortems(), seconds=30)
            assert [pm.incident.services for pm in postmortems] == [["payments"]]
            token = issue_token(sqlite_store, settings.loaded_policy, "dan", "e2e", now)
            async with httpx.AsyncClient(base_url=base) as http:
                answer = await http.get(
                    "/api/alert-quality",
                    params={"month": month},
                    headers={"Authorization": f"Bearer {token}"},
                )
    assert answer.status_code == 200, answer.text
    review = answer.json()
    assert (review["alerts"], review["pages"]) == (8, 8)
    assert review["dominant_service"] == "checkout"
    [checkout] = [s for s in review["services"] if s["service"] == "checkout"]
    assert (checkout["pages"], checkout["page_share"], checkout["proposal"]) == (
        7,
        0.875,
        "stricter_slo",
    )
    assert [(n["name"], n["service"], n["fired"], n["proposal"]) for n in review["noisy"]] == [
        ("Flappy", "checkout", 3, "retire")
    ]
    assert review["detection_gaps"] == []  # PaymentsDeclines caught its own incident
