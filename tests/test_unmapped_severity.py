"""An authentic delivery is never dropped for a policy gap: a severity the policy does not map, or
none at all, starts the postmortem with the source's default severity, marked on the postmortem
and its dashboard pages, and the operators are emailed once per source and value.

Real Temporal (time-skipping server), a real worker and SQLite; webhooks go through the real app.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from html import unescape
from typing import Any

from temporalio.testing import WorkflowEnvironment

from followthrough.domain.incident import UnmappedSeverity, parse_incident
from followthrough.domain.notice import NoticeKind, OutboxMessage
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    AuditEvent,
    Postmortem,
    PostmortemChange,
    open_postmortem,
)
from followthrough.storage import Store
from tests.api_support import WEBHOOK_SECRETS, Api
from tests.conftest import eventually
from tests.factories import incident_data
from tests.faults import quiet
from tests.test_dashboard import browser
from tests.webhook_signing import load_payload, signed_request

NOT_MAPPED = "severity 'pageteam' is not mapped; mapped to SEV3 by default"


def alerts(source: str, group: str, severities: list[str | None]) -> bytes:
    """The source's resolved group under its own group key, each alert with the given severity
    label (None: without one); the group has no common severity label."""
    data: dict[str, Any] = json.loads(load_payload(f"{source}_resolved"))
    data["groupKey"] = group
    data["commonLabels"].pop("severity", None)
    for alert, severity in zip(data["alerts"], severities, strict=True):
        alert["labels"].pop("severity", None)
        if severity is not None:
            alert["labels"]["severity"] = severity
    return json.dumps(data).encode()


async def delivered(api: Api, source: str, body: bytes) -> Postmortem:
    """Posted as the source sends it; the postmortem it started, once recorded."""
    headers = signed_request(source, WEBHOOK_SECRETS[source], body, datetime.now(UTC))
    response = await api.http.post(
        f"/webhooks/{source}", content=body, headers={"Content-Type": "application/json", **headers}
    )
    assert response.status_code == 202 and response.json()["status"] == "started", response.text
    pm_id = response.json()["workflow_id"]
    return await eventually(lambda: api.services.store.records.postmortem(pm_id))  # type: ignore[no-any-return]


async def settled(api: Api, *postmortems: Postmortem) -> None:
    """Every notice the postmortems' workflows sent has been handled (none in flight)."""
    for _ in range(200):
        if await quiet(api.services.client, [pm.id for pm in postmortems]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the workflows never settled")


def policy_gap_mail(api: Api) -> list[OutboxMessage]:
    return [
        m for m in api.services.store.outbox.messages() if m.kind is NoticeKind.SEVERITY_UNMAPPED
    ]


async def test_an_unmapped_severity_starts_a_marked_postmortem_and_tells_the_operators_once(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    first = await delivered(api, "alertmanager", alerts("alertmanager", "g1", ["pageteam"] * 2))
    assert first.severity == "SEV3"
    assert [gap.note for gap in first.incident.unmapped_severities] == [NOT_MAPPED]
    # the same value again, beside a mapped one: the worst wins, and it is marked again
    second = await delivered(
        api, "alertmanager", alerts("alertmanager", "g2", ["pageteam", "critical"])
    )
    assert second.severity == "SEV2"
    assert [gap.note for gap in second.incident.unmapped_severities] == [NOT_MAPPED]

    await settled(api, first, second)
    (mail,) = policy_gap_mail(api)  # once per source and value, whichever incident brought it
    assert mail.recipients == ["sam@example.com"]  # the policy's operators
    assert NOT_MAPPED in mail.subject
    assert "source_severities.alertmanager" in mail.text and first.incident.title in mail.text

    async with browser(api, "dan") as dan:
        listed = unescape((await dan.get("/postmortems")).text)
        shown = unescape((await dan.get(f"/postmortems/{first.id}")).text)
    assert listed.count(NOT_MAPPED) == 2 and NOT_MAPPED in shown


async def test_a_grafana_alert_without_a_severity_starts_its_postmortem(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm = await delivered(api, "grafana", alerts("grafana", "g3", [None]))
    assert pm.severity == "SEV3"
    note = "grafana gave no severity; mapped to SEV3 by default"
    assert [gap.note for gap in pm.incident.unmapped_severities] == [note]
    (mail,) = await eventually(lambda: policy_gap_mail(api))
    assert mail.dedupe_key == "policy-gap/grafana/severity/none" and note in mail.subject


def test_the_postmortem_list_reads_the_marks_on_either_database(
    store: Store, policy: Policy
) -> None:
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    gap = UnmappedSeverity(source="alertmanager", value="pageteam", default="SEV3")
    marked = parse_incident(incident_data(now, id="INC-1"), policy).model_copy(
        update={"unmapped_severities": [gap]}
    )
    plain = parse_incident(incident_data(now, id="INC-2"), policy)
    for incident in (marked, plain):
        pm = open_postmortem(incident, policy, now)
        event = AuditEvent(
            workflow_id=pm.id, postmortem_id=pm.id, seq=1, at=now, actor="t", action="opened"
        )
        store.records.record_postmortem(
            PostmortemChange(postmortem=pm.model_copy(update={"last_seq": 1}), event=event)
        )

    found = store.facts.unmapped_severities([marked.postmortem_id, plain.postmortem_id])
    assert found == {marked.postmortem_id: [gap]}
