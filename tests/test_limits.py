"""Nothing anyone sends can wedge a follow-up: sizes, dates, titles and numbers at the edge.

The real API around a time-skipping Temporal server, a worker and SQLite (the `api` fixture);
each refusal names its field and changes nothing, and the postmortem carries on afterwards.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from followthrough.domain.calendar import BusinessCalendar
from followthrough.domain.escalation import DEFAULT_LADDER, days_overdue, plan_ladder
from followthrough.webhooks import sign_generic
from tests.api_support import WEBHOOK_SECRETS, Api
from tests.conftest import eventually
from tests.factories import draft_data, incident_data
from tests.test_api import expect, open_postmortem, stored_postmortem, tracked_postmortem
from tests.test_dashboard import browser
from tests.webhook_signing import load_payload, signed_request


async def deliver(api: Api, source: str, payload: dict[str, Any]) -> Any:
    body = json.dumps(payload).encode()
    if source == "generic":
        headers = sign_generic(WEBHOOK_SECRETS[source], body, int(datetime.now(UTC).timestamp()))
    else:
        headers = signed_request(source, WEBHOOK_SECRETS[source], body, datetime.now(UTC))
    return await api.http.post(
        f"/webhooks/{source}", content=body, headers={"Content-Type": "application/json", **headers}
    )


# --- 1. sizes ------------------------------------------------------------------------------------


async def test_a_draft_too_large_to_store_is_refused_naming_why_and_a_normal_one_goes_on(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id = await open_postmortem(api, time_skipping)
    now = await time_skipping.get_current_time()
    url = f"/api/postmortems/{pm_id}/draft"

    # Every field within its own limit, but 400 KB together: over the update budget.
    paragraph = "The load balancer dropped backends; " * 110  # ~4,000 characters
    bulky = draft_data(now, detection_gaps=[paragraph] * 50, recovery_steps=[paragraph] * 50)
    expect(await api.post(url, "alice", bulky), 422, r"draft: \d+ KiB serialized, over the 256 KiB")

    # Near Temporal's 2 MB payload limit: refused at the edge (413 by the body limit, or 422).
    huge = await api.post(url, "alice", draft_data(now, impact="x" * 1_900_000))
    assert huge.status_code in (413, 422), huge.text
    if huge.status_code == 422:
        assert "impact: at most 20000 characters" in huge.json()["detail"]

    assert stored_postmortem(api, pm_id).state.value == "drafting"  # nothing changed
    expect(await api.post(url, "alice", draft_data(now)), 200)
    assert stored_postmortem(api, pm_id).state.value == "in_review"


async def test_done_claims_past_the_items_limit_are_refused_so_its_state_stays_bounded(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    _, bob_item, _ = await tracked_postmortem(api, time_skipping)
    claim, reject = (
        f"/api/action-items/{bob_item}/claim-done",
        f"/api/action-items/{bob_item}/reject",
    )
    for round in range(20):
        expect(await api.post(claim, "bob", {"evidence": f"PR #{round}"}), 200)
        expect(await api.post(reject, "erin", {"reason": "the alert did not fire"}), 200)
    expect(await api.post(claim, "bob", {"evidence": "PR #21"}), 409, "already has 20 done claims")


# --- 2. dates at the edge of the calendar --------------------------------------------------------


async def test_incident_times_outside_the_window_are_refused_and_the_incident_can_still_start(
    api: Api,
) -> None:
    now = datetime.now(UTC)
    incident = incident_data(now, id=f"INC-{uuid.uuid4().hex[:8]}")
    for odd in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+00:00"):
        refused = await deliver(api, "generic", {**incident, "resolved_at": odd})
        expect(refused, 422, "resolved_at: .* is outside 2000-01-01 to 2099-12-31")
    future = (now + timedelta(days=30)).isoformat()
    expect(await deliver(api, "generic", {**incident, "resolved_at": future}), 422, "future")

    started = expect(await deliver(api, "generic", incident), 202)
    assert started["status"] == "started"  # the refusals started nothing


async def test_due_dates_and_extensions_past_the_window_are_refused_and_a_sane_one_is_decided(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id = await open_postmortem(api, time_skipping)
    now = await time_skipping.get_current_time()
    draft = draft_data(now)
    draft["action_items"][0]["due"] = "9999-12-31"
    expect(
        await api.post(f"/api/postmortems/{pm_id}/draft", "alice", draft),
        422,
        r"action_items\[0\]\.due: 9999-12-31 is outside",
    )

    _, bob_item, _ = await tracked_postmortem(api, time_skipping)
    extend = f"/api/action-items/{bob_item}/extension"
    expect(await api.post(extend, "bob", {"until": "9999-12-31", "reason": "x"}), 422, "until")
    later = (now.date() + timedelta(days=60)).isoformat()
    expect(await api.post(extend, "bob", {"until": later, "reason": "waiting on a vendor"}), 200)
    decided = await api.post(f"{extend}/decision", "maria", {"approve": True})
    assert expect(decided, 200)["due"] == later


def test_the_ladder_and_business_days_never_overflow_on_an_odd_stored_date() -> None:
    calendar = BusinessCalendar(timezone="America/New_York")
    last = plan_ladder(date(9999, 12, 31), DEFAULT_LADDER, calendar)[-1]
    assert last.day == date(9999, 12, 31)
    assert days_overdue(date(1, 1, 1), date(2026, 12, 2), calendar) > 500_000


# --- 3. titles are one line -----------------------------------------------------------------------


async def test_a_vendors_multi_line_title_is_made_one_line_and_a_persons_is_refused(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    payload = json.loads(load_payload("alertmanager_resolved"))
    payload["groupKey"] = f'{{}}:{{alertname="{uuid.uuid4().hex}"}}'
    payload["commonAnnotations"]["summary"] = "Pods crash looping\r\non the cluster\n" + "x" * 300
    started = expect(await deliver(api, "alertmanager", payload), 202)
    recorded = await eventually(
        lambda: api.services.store.records.postmortem(started["workflow_id"])
    )
    title = recorded.incident.title
    assert title.startswith("Pods crash looping on the cluster x") and title.endswith("…")
    assert len(title) == 200 and "\n" not in title

    pm_id = await open_postmortem(api, time_skipping)
    now = await time_skipping.get_current_time()
    draft = draft_data(now)
    draft["action_items"][0]["title"] = "Alert on 5xx\nBcc: everyone@example.com"
    expect(
        await api.post(f"/api/postmortems/{pm_id}/draft", "alice", draft),
        422,
        r"action_items\[0\]\.title: contains a line break",
    )


# --- 5. numbers that are not numbers ------------------------------------------------------------


async def test_numbers_out_of_range_are_refused_naming_the_field(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id = await open_postmortem(api, time_skipping)
    now = await time_skipping.get_current_time()
    url = f"/api/postmortems/{pm_id}/draft"
    weighty = draft_data(now, slo_impact={"fraction_affected": 0.4, "traffic_weight": 1e308})
    expect(await api.post(url, "alice", weighty), 422, r"slo_impact\.traffic_weight: 1e\+308")
    overspent = draft_data(now, slo_impact={"budget_remaining_before": -1e308})
    expect(await api.post(url, "alice", overspent), 422, "slo_impact.budget_remaining_before")
    assert stored_postmortem(api, pm_id).state.value == "drafting"


async def test_an_odd_number_already_in_the_record_does_not_break_the_reliability_page(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id = await open_postmortem(api, time_skipping)
    burn = '{"slo": "checkout-availability", "service": "checkout", "budget_consumed": %s, '
    burns = f'[{burn % "1e308"}"burn_rate": 1e308}}, {burn % "1e308"}"burn_rate": NaN}}]'
    with api.services.store.engine.begin() as db:  # as a record written before the limits
        db.execute(
            text("UPDATE postmortems SET slo_burns = :b WHERE id = :i"), {"b": burns, "i": pm_id}
        )
    async with browser(api, "dan") as dan:
        page = await dan.get("/reliability")
    assert page.status_code == 200, page.text[-2000:]
    assert "checkout-availability" in page.text
    # Kept before the record said what the SLO's budget is: not guessed.
    assert "100% = the whole error budget of this SLO for one SLO period" in page.text


# --- criteria that could never be checked --------------------------------------------------------


async def test_a_criterion_needing_prometheus_or_jira_is_refused_when_neither_is_configured(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id = await open_postmortem(api, time_skipping)
    now = await time_skipping.get_current_time()
    draft = draft_data(now)
    draft["action_items"][0]["acceptance_criterion"] = {"kind": "alert_rule_present", "alert": "Hi"}
    draft["action_items"][1]["acceptance_criterion"] = {"kind": "ticket_resolved"}
    refused = expect(await api.post(f"/api/postmortems/{pm_id}/draft", "alice", draft), 422)
    prometheus = "action_items[0] 'Alert on checkout 5xx ratio': acceptance criterion: "
    jira = "action_items[1] 'Canary load-balancer config pushes': acceptance criterion: "
    assert f"{prometheus}prometheus_url: no Prometheus is configured" in refused["detail"]
    assert f"{jira}kind: ticket_resolved needs Jira" in refused["detail"]
