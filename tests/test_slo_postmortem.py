"""Every incident revisits its SLOs: the whole path through the API, the workflows and Prometheus.

A real Prometheus (Debian's package) holds 31 days of the checkout SLI (tests/servers/sli.py): the
reference's worked example, 45 minutes at 30 % errors, on top of background errors that had
already used 80 % of the 99.9 % budget. The owner's first draft is refused by the SLO review
(the incident cost 37.5 % of the budget, so a P0 item; the page came 21 minutes in, when the SLO
page fires after 2.9, so an alerting item); the second is accepted with the budget measured
through PromQL and recorded; the exhausted budget tells the council by email (a real SMTP server
on loopback) to freeze releases; the alerting item carries the proposed Prometheus rules, and
once those rules are loaded into Prometheus the item's alert_rule_present check verifies it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from followthrough.checks.config import CheckConfig
from followthrough.domain.notice import NoticeKind
from followthrough.domain.postmortem import PostmortemState
from followthrough.domain.slo_rules import alert_name
from followthrough.notices.delivery import Mailer
from followthrough.render import action_item_detail, postmortem_detail
from followthrough.storage import Store
from tests.api_support import Api, api_for, api_settings
from tests.conftest import SmtpCapture, eventually, running_worker
from tests.factories import draft_data
from tests.servers.prometheus import Prometheus
from tests.servers.sli import CHECKOUT, HOUR, INCIDENT, STEP, sli_history
from tests.test_api import expect, open_postmortem, stored_item, stored_postmortem

# Background errors that leave a fifth of the budget: 1 - 0.0008 / 0.001.
BACKGROUND_ERRORS = 0.0008
PAGE = alert_name(CHECKOUT, "page")


@dataclass
class Sli:
    prom: Prometheus
    start: datetime  # the incident's impact
    end: datetime


@pytest.fixture(scope="module")
async def sli(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sli]:
    end = int(time.time()) // STEP * STEP - 2 * HOUR
    incident_end = end - HOUR
    incident_start = incident_end - INCIDENT
    text, _ = sli_history(end, incident_start, incident_end, BACKGROUND_ERRORS)
    prom = Prometheus(tmp_path_factory.mktemp("prometheus"), rules_yaml="groups: []\n")
    prom.backfill(text, max_block_duration="168h")
    async with prom:
        yield Sli(
            prom,
            datetime.fromtimestamp(incident_start, UTC),
            datetime.fromtimestamp(incident_end, UTC),
        )


@pytest.fixture
async def api(
    time_skipping: WorkflowEnvironment,
    sqlite_store: Store,
    smtp_mailer: Mailer,
    sli: Sli,
    tmp_path: Path,
) -> AsyncIterator[Api]:
    client, url = time_skipping.client, sli.prom.base_url
    sqlite_store.slos.save([CHECKOUT], datetime.now(UTC))
    async with (
        running_worker(
            client, sqlite_store, smtp_mailer, checks=CheckConfig(prometheus_url=url)
        ) as queue,
        api_for(client, sqlite_store, api_settings(tmp_path, queue, prometheus_url=url)) as api,
    ):
        yield api


def budget_notices(smtp_server: SmtpCapture) -> list[EmailMessage]:
    """The council's error-budget emails, apart from the hand-off notices sent alongside."""
    kind = NoticeKind.BUDGET_EXHAUSTED
    return [m for m in smtp_server.messages if m["X-Followthrough-Kind"] == kind]


async def test_an_incident_revisits_its_slo(
    api: Api, time_skipping: WorkflowEnvironment, sli: Sli, smtp_server: SmtpCapture
) -> None:
    store = api.services.store
    minute = timedelta(minutes=1)
    pm_id = await open_postmortem(
        api,
        time_skipping,
        started_at=sli.start.isoformat(),
        detected_at=(sli.start + 21 * minute).isoformat(),
        acknowledged_at=(sli.start + 23 * minute).isoformat(),
        mitigated_at=sli.end.isoformat(),
        resolved_at=(sli.end + 10 * minute).isoformat(),
    )

    now = await time_skipping.get_current_time()
    draft = draft_data(now)
    draft["timeline"] = [
        {
            "at": (sli.start + 25 * minute).isoformat(),
            "kind": "decision",
            "description": "Rolled back the load-balancer config",
        }
    ]
    refused = expect(await api.post(f"/api/postmortems/{pm_id}/draft", "alice", draft), 422)
    detail = refused["detail"]
    assert "rejected by the SLO review" in detail
    assert "consumed 37.5% of the error budget (>= 20%); at least one action item must be P0" in (
        detail
    )
    assert "detected after 21.0 min; the SLO page would have fired after 2.9 min" in detail
    assert f"alert {PAGE}" in detail
    assert stored_postmortem(api, pm_id).state is PostmortemState.DRAFTING  # nothing changed
    assert not [e for e in store.records.audit_trail(pm_id) if e.action.startswith("slo.")]

    alerting = {
        **draft["action_items"][0],
        "title": "Page on the checkout SLO burn rate",
        "priority": "P0",
        "acceptance_criterion": {"kind": "alert_rule_present", "alert": PAGE},
        "slo_change": {"slo": CHECKOUT.id, "change": "alerting"},
    }
    draft["action_items"] = [alerting, draft["action_items"][1]]
    expect(await api.post(f"/api/postmortems/{pm_id}/draft", "alice", draft), 200)

    pm = stored_postmortem(api, pm_id)
    assert pm.state is PostmortemState.IN_REVIEW
    [assessment] = pm.slo_review
    impact = assessment.impact
    assert assessment.method == "measured" and impact.basis == "events"
    assert impact.error_ratio == pytest.approx(0.30, rel=1e-6)
    assert impact.burn_rate == pytest.approx(300, rel=1e-6)
    assert impact.budget_consumed == pytest.approx(0.375, abs=0.01)
    assert impact.budget_remaining_before == pytest.approx(0.2, abs=1e-6)
    assert impact.budget_remaining_after == pytest.approx(-0.175, abs=0.01)
    assert assessment.measurement is not None and len(assessment.measurement.queries) == 5
    assert {f.kind for f in assessment.findings} == {
        "postmortem_required",
        "budget_exhausted",
        "late_detection",
    }
    actions = [e.action for e in store.records.audit_trail(pm_id)]
    assert actions.count("slo.assessed") == 1 and actions.count("slo.budget_exhausted") == 1

    await eventually(lambda: budget_notices(smtp_server))
    [email] = budget_notices(smtp_server)
    assert str(email["To"]).split(", ") == ["grace@example.com", "heidi@example.com"]
    assert "Error budget exhausted: checkout-availability" in str(email["Subject"])
    body = email.get_body(preferencelist=("plain",))
    assert body is not None
    text = " ".join(body.get_content().split())
    assert "Freeze releases of checkout, except P0 and security fixes" in text
    assert "Remaining before 20.0 %" in text

    shown = postmortem_detail(pm, [], store.records.audit_trail(pm_id))
    assert "Error budgets" in shown and "release freeze recommended for checkout" in shown
    # The exhausted budget opens a council decision of its own (one per SLO and postmortem).
    [decision] = await eventually(store.decisions.all)
    assert decision.id == f"decision-budget-{CHECKOUT.id}-{pm_id}".lower()
    assert decision.opening.slo_id == CHECKOUT.id and decision.opening.services == ["checkout"]
    assert decision.state.value == "open"

    expect(await api.post(f"/api/postmortems/{pm_id}/approve", "erin", {}), 200)
    item_id, other_id = f"{pm_id}-item-1", f"{pm_id}-item-2"
    await eventually(
        lambda: store.records.action_item(item_id) and store.records.action_item(other_id)
    )
    item = stored_item(api, item_id)
    rules = item.spec.proposed_change
    assert f"alert: {PAGE}" in rules and rules.startswith("# Proposed SLO alerting")
    assert "Proposed change" in action_item_detail(item, [])
    assert stored_item(api, other_id).spec.proposed_change == ""

    # The fix: the proposed rules deployed. The check then finds the page rule in Prometheus.
    await sli.prom.reload(rules_yaml=rules)
    claim = {"evidence": "rules deployed from the proposal"}
    expect(await api.post(f"/api/action-items/{item_id}/claim-done", "bob", claim), 200)
    await eventually(lambda: stored_item(api, item_id).state.value == "verified", seconds=60)
    [check] = stored_item(api, item_id).checks
    assert check.result.passed and PAGE in check.result.reason
    assert len(budget_notices(smtp_server)) == 1  # the council heard once
