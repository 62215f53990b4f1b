"""Issue 18's proof, end to end: a signed PagerDuty resolution webhook opens a postmortem; its
timeline is collected from the PagerDuty and Slack test servers and a real Prometheus; the owner
keeps, edits and drops the proposed entries in the draft editor's form and submits; a reviewer
approves; the reliability figures then take the time to acknowledge from PagerDuty's own
acknowledgement, which the webhook never carried.

Real Temporal (time-skipping), a real worker with the three collectors, SQLite, the real app.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from temporalio.testing import WorkflowEnvironment

from followthrough.domain.timeline import SourceReport
from followthrough.integrations.slack import SlackApi, SlackConfig
from followthrough.integrations.timeline.pagerduty import PagerDutyCollector
from followthrough.integrations.timeline.prometheus import PrometheusAlerts
from followthrough.integrations.timeline.slack_chat import SlackChatCollector
from followthrough.storage import Store
from tests.api_support import (
    WEBHOOK_SECRETS,
    Api,
    api_for,
    api_settings,
    link_mailer,
    loopback_policy,
)
from tests.conftest import eventually, running_worker
from tests.factories import draft_data
from tests.servers.pagerduty_server import PagerDutyIncident, PagerDutyServer, log_entry, note
from tests.servers.prometheus import Prometheus, openmetrics_family
from tests.servers.slack_server import SlackServer
from tests.servers.tls import loopback_certificate, trusting
from tests.test_api import expect, stored_postmortem
from tests.test_dashboard import browser, flash, text_of
from tests.test_drafting import form_of, with_kinds
from tests.test_webhook_api import deliver
from tests.webhook_signing import load_payload, signed_request

PD_ID = "Q2NSZ4VNSQ6AQN"  # the incident in tests/webhook_payloads/pagerduty_resolved.json
PM_ID = f"postmortem-pagerduty-{PD_ID}"
PD_TOKEN, SLACK_TOKEN = "pd-e2e-token", "xoxb-e2e"
ALICE, BOB = "U0ALICE", "U0BOB"
CHANNEL = "C0INCPD"
# A day ago, on a whole minute: Prometheus's backfilled history is all in the past, and the
# alerts query's 15 s steps from 30 min before the start land on the alert's first sample.
START = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)
RESOLVED = START + timedelta(minutes=50)
FIRED = START + timedelta(minutes=3)  # the Prometheus alert: what the owner calls the detection
ACKNOWLEDGED = START + timedelta(minutes=7, seconds=20)  # PagerDuty's acknowledgement
DECIDED_AT = START + timedelta(minutes=9)  # the Slack message marked DECISION:
STATUS_UPDATE = START + timedelta(minutes=12)  # the Slack message marked UPDATE:
MITIGATED = START + timedelta(minutes=15)  # the PagerDuty note: the rollback


def slack_ts(at: datetime) -> str:
    """A Slack message's ts (its id in the channel) for a whole second."""
    return f"{int(at.timestamp())}.000000"


DECIDED = slack_ts(DECIDED_AT)


def pd_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def resolution_webhook() -> bytes:
    """PagerDuty's documented incident.resolved payload, moved to this incident's times, P2."""
    payload = json.loads(load_payload("pagerduty_resolved"))
    payload["event"]["occurred_at"] = pd_time(RESOLVED)
    payload["event"]["data"]["created_at"] = pd_time(START)
    payload["event"]["data"]["priority"]["summary"] = "P2"  # SEV2: one approval
    return json.dumps(payload).encode()


def pagerduty_log() -> PagerDutyIncident:
    def entry(entry_id: str, kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
        return log_entry(entry_id, kind, pd_time(at), incident=PD_ID, **fields)

    return PagerDutyIncident(
        log_entries=[
            entry(
                "Q0TRIGGER",
                "trigger_log_entry",
                START,
                agent="Checkout Prometheus",
                summary="Triggered through the API",
                event_details={"description": "Checkout 5xx ratio above 2%"},
            ),
            entry("Q0NOTIFY1", "notify_log_entry", START + timedelta(seconds=5), agent=None),
            entry("Q0ESCALAT", "escalate_log_entry", START + timedelta(minutes=5), agent=None),
            entry("Q0ACKNOWL", "acknowledge_log_entry", ACKNOWLEDGED, agent="Bob Example"),
            entry("Q0RESOLVE", "resolve_log_entry", RESOLVED, agent="Alice Example"),
        ],
        notes=[note("PNOTE01", "Rolled back config 42.", pd_time(MITIGATED), user="Bob")],
    )


def incident_channel(slack: SlackServer) -> None:
    """The channel the shipped policy's pattern names (inc-{id}), as people used it."""
    slack.add_channel(CHANNEL, f"inc-{PD_ID.lower()}")

    def said(at: datetime, text: str, user: str) -> None:
        slack.add_message(CHANNEL, slack_ts(at), text, user=user)

    said(START + timedelta(minutes=1), "checkout 5xx climbing, who is on it?", ALICE)
    said(DECIDED_AT, "DECISION: roll back config 42", ALICE)
    said(STATUS_UPDATE, "UPDATE: checkout failing for some customers; next in 30 min", BOB)


def alert_history() -> str:
    """ALERTS for checkout's error-ratio alert, firing from FIRED until 45 min after the start."""
    labels = {
        "alertname": "CheckoutErrorRatioHigh",
        "alertstate": "firing",
        "service": "checkout",
        "severity": "page",
    }
    first, last = FIRED.timestamp(), (START + timedelta(minutes=45)).timestamp()
    samples = [(first + 30 * i, 1.0) for i in range(int((last - first) // 30) + 1)]
    return openmetrics_family("ALERTS", "gauge", [(labels, samples)])


class _Form(HTMLParser):
    """The fields a browser would post from one form: inputs, selected options, text areas."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside = form_id, False
        self.fields: dict[str, str] = {}
        self._select = self._textarea = ""
        self._option: tuple[str | None, bool, list[str]] | None = None  # value, selected, text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        name = a.get("name") or ""
        if not self.inside:
            return
        if tag == "input" and name and a.get("type") not in ("checkbox", "submit"):
            self.fields[name] = a.get("value") or ""
        elif tag == "input" and name and "checked" in a:
            self.fields[name] = a.get("value") or "on"
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select:
            self._option = (a.get("value"), "selected" in a, [])
        elif tag == "textarea":
            self._textarea, self.fields[name] = name, ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea] += data
        elif self._option is not None:
            self._option[2].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "option" and self._option is not None:
            value, selected, text = self._option
            if selected or self._select not in self.fields:  # the first, unless one is chosen
                self.fields[self._select] = "".join(text) if value is None else value
            self._option = None
        elif tag == "select":
            self._select = ""
        elif tag == "textarea":
            self._textarea = ""


def draft_form(page: httpx.Response) -> dict[str, str]:
    reader = _Form("draft-form")
    reader.feed(page.text)
    return reader.fields


def proposed(form: dict[str, str]) -> dict[str, dict[str, str]]:
    """The proposed rows of the editor's form by source id: {field: value}, with "row"."""
    rows: dict[str, dict[str, str]] = {}
    for key in form:
        if key.startswith("proposed-") and key.endswith("-source_id"):
            n = key.split("-")[1]
            row = {k.split("-", 2)[2]: v for k, v in form.items() if k.startswith(f"proposed-{n}-")}
            rows[form[key]] = row | {"row": f"proposed-{n}-"}
    return rows


async def test_a_pagerduty_incident_times_its_acknowledgement_from_pagerduty(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    client, store = time_skipping.client, sqlite_store
    certificate = loopback_certificate(tmp_path)
    prom = Prometheus(tmp_path / "prometheus")
    prom.backfill(alert_history())
    users = {ALICE: "alice@example.com", BOB: "bob@example.com"}
    with (
        PagerDutyServer(token=PD_TOKEN, tls=certificate) as pd,
        SlackServer(token=SLACK_TOKEN, users=users, names={ALICE: "Alice Ng"}) as slack,
    ):
        pd.incidents[PD_ID] = pagerduty_log()
        incident_channel(slack)
        async with prom:
            collectors = [
                PagerDutyCollector(PD_TOKEN, pd.base_url, verify=trusting(certificate[0])),
                SlackChatCollector(
                    SlackApi(SlackConfig(token=SLACK_TOKEN, api_url=slack.api_url)),
                    loopback_policy().chat,  # the shipped policy's: inc-{id}, UPDATE: ...
                ),
                PrometheusAlerts(prom.base_url),
            ]
            mailer = link_mailer(tmp_path / "outbox")
            async with (
                running_worker(client, store, mailer, collectors=collectors) as queue,
                api_for(client, store, api_settings(tmp_path, queue)) as api,
            ):
                await _the_proof(api, time_skipping)


async def _the_proof(api: Api, env: WorkflowEnvironment) -> None:
    store = api.services.store
    # 1. The signed resolution opens the postmortem (PagerDuty sends no acknowledgement time).
    body = resolution_webhook()
    headers = signed_request("pagerduty", WEBHOOK_SECRETS["pagerduty"], body, datetime.now(UTC))
    started = await deliver(api, "pagerduty", body, headers)
    assert (started["code"], started["status"], started["workflow_id"]) == (202, "started", PM_ID)
    pm = await eventually(lambda: store.records.postmortem(PM_ID))
    assert (pm.severity, pm.team, pm.owner) == ("SEV2", "payments", "maria")
    assert pm.incident.acknowledged_at is None and pm.incident.started_at == START

    # 2. Collected when it opened, from each source.
    await eventually(lambda: len(store.timeline.reports(PM_ID)) == 3, seconds=60)
    assert store.timeline.reports(PM_ID) == [
        SourceReport(source="pagerduty", status="collected", events=5),  # notify is not one
        SourceReport(source="prometheus", status="collected", events=1),
        SourceReport(source="slack", status="collected", events=2),  # the two marked messages
    ]
    transcript = [m.text for m in store.chat.transcript(PM_ID)]  # the unmarked words kept too
    assert len(transcript) == 3 and transcript[0].startswith("checkout 5xx climbing")

    coverage_before = _coverage(expect(await api.get("/api/reliability", "dan"), 200))
    assert coverage_before["acknowledge"] == (0, 1)  # the webhook alone: no acknowledgement

    # 3. The owner decides in the draft editor.
    editor = f"/postmortems/{PM_ID}/draft"
    now = await env.get_current_time()
    async with browser(api, "maria") as maria:
        page = await maria.get(editor)
        shown = text_of(page)
        for report in ("pagerduty: collected 5", "prometheus: collected 1", "slack: collected 2"):
            assert report in shown
        form = draft_form(page)
        rows = proposed(form)
        alert_id = next(i for i in rows if i.startswith("CheckoutErrorRatioHigh:"))
        assert sorted(rows) == sorted(
            [
                "Q0TRIGGER",
                alert_id,
                "Q0ESCALAT",
                "Q0ACKNOWL",
                DECIDED,
                slack_ts(STATUS_UPDATE),
                "PNOTE01",
                "Q0RESOLVE",
            ]
        )
        ack, alert, update = rows["Q0ACKNOWL"], rows[alert_id], rows[slack_ts(STATUS_UPDATE)]
        assert (ack["kind"], ack["author"], ack["at"]) == (
            "acknowledged",
            "Bob Example",
            _local(api, ACKNOWLEDGED),
        )
        assert ack["link"] == f"https://acme.pagerduty.com/incidents/{PD_ID}/log_entries/Q0ACKNOWL"
        assert (alert["kind"], alert["source"], alert["at"]) == (
            "alert",
            "prometheus",
            _local(api, FIRED),
        )
        assert alert["description"] == (
            "CheckoutErrorRatioHigh firing (service=checkout, severity=page)"
        )
        assert (update["kind"], update["source"], update["author"]) == (
            "status_update",
            "slack",
            "bob",
        )
        trigger = rows["Q0TRIGGER"]
        assert trigger["kind"] == "alert"

        # Written parts as the owner types them; the timeline and proposals as the page has them.
        written = form_of(with_kinds(draft_data(now, timeline=[])))
        form = {k: v for k, v in form.items() if not k.startswith(("item-", "factor-"))}
        form |= written | {"intent": "save"}
        decide = {
            "Q0TRIGGER": ("drop", {}),
            alert_id: ("keep", {"kind": "detected"}),  # the alert was the detection
            "Q0ACKNOWL": ("keep", {}),
            DECIDED: ("keep", {}),
            "PNOTE01": ("keep", {"kind": "mitigated"}),  # the rollback mitigated it
            slack_ts(STATUS_UPDATE): (
                "keep",
                {"description": "Customers see checkout errors; next update in 30 minutes"},
            ),
        }
        for source_id, (decision, edits) in decide.items():
            prefix = rows[source_id]["row"]
            form[f"{prefix}decision"] = decision
            form |= {f"{prefix}{k}": v for k, v in edits.items()}
        saved = await maria.post(editor, data=form)
        assert (await flash(maria, saved)) == {"done": "Saved version 1."}
        kept_ids = [e.source_id for e in store.timeline.events(PM_ID)]
        assert "Q0TRIGGER" not in kept_ids and len(kept_ids) == 7  # dropped: not proposed again

        # Submitted as the page now stands: the kept entries are timeline rows, their origin
        # carried in the form; the undecided ones are still proposed, and stay out.
        page = await maria.get(editor)
        form = draft_form(page)
        assert sorted(proposed(form)) == ["Q0ESCALAT", "Q0RESOLVE"]
        assert "Nothing: submitting now would be accepted" in text_of(page)
        submitted = await maria.post(editor, data=form | {"intent": "submit"})
        outcome = await flash(maria, submitted)
        assert "in review" in outcome.get("done", ""), outcome
        shown = text_of(await maria.get(f"/postmortems/{PM_ID}"))
        for origin in ("from pagerduty · Bob Example", "from slack · bob", "from prometheus"):
            assert origin in shown

    # The submitted timeline says where each entry came from.
    pm = stored_postmortem(api, PM_ID)
    assert pm.draft is not None and pm.state.value == "in_review"
    origins = [
        (e.kind, e.at, e.source, e.source_id, e.author, e.description)
        for e in pm.draft.timeline
        if e.source
    ]
    assert origins == [
        ("detected", FIRED, "prometheus", alert_id, None, alert["description"]),
        ("acknowledged", ACKNOWLEDGED, "pagerduty", "Q0ACKNOWL", "Bob Example", ack["description"]),
        ("decision", DECIDED_AT, "slack", DECIDED, "Alice Ng", "DECISION: roll back config 42"),
        (
            "status_update",
            STATUS_UPDATE,
            "slack",
            slack_ts(STATUS_UPDATE),
            "bob",
            "Customers see checkout errors; next update in 30 minutes",
        ),
        ("mitigated", MITIGATED, "pagerduty", "PNOTE01", "Bob", "Rolled back config 42."),
    ]
    pagerduty_links = [e.link for e in pm.draft.timeline if e.source == "pagerduty"]
    assert pagerduty_links == [ack["link"], pm.incident.url]  # a note links the incident
    assert all(e.link for e in pm.draft.timeline if e.source)

    # 4. A reviewer approves; the figures come from the reviewed timeline.
    expect(await api.post(f"/api/postmortems/{PM_ID}/approve", "erin", {}), 200)
    await eventually(lambda: stored_postmortem(api, PM_ID).state.value == "tracking")

    # By hand: acknowledged (PagerDuty, +7:20) - detected (the alert, +3:00) = 4 min 20 s;
    # communicated (the Slack update, +12:00) - started (+0) = 12 min; mitigated (the rollback
    # note, +15:00) - started = 15 min.
    figures = expect(await api.get("/api/reliability", "dan"), 200)
    assert _coverage(figures)["acknowledge"] == (1, 1)
    assert _coverage(figures)["communicate"] == (1, 1)
    assert figures["reviewed"] == 1
    sev2 = next(s for s in figures["severities"] if s["severity"] == "SEV2")
    assert sev2["incidents"] == 1
    assert (sev2["acknowledge"]["count"], sev2["acknowledge"]["median"]) == (1, "PT4M20S")
    assert sev2["detect"]["median"] == "PT3M" and sev2["communicate"]["median"] == "PT12M"
    assert sev2["mitigate"]["median"] == "PT15M"
    async with browser(api, "dan") as dan:
        shown = text_of(await dan.get("/reliability"))
    assert "Time to acknowledge: 1 of 1 incident" in shown
    assert "4 min / 4 min (1 of 1)" in shown  # SEV2's median / p90, rounded to the minute


def _coverage(figures: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {c["duration"]: (c["count"], c["incidents"]) for c in figures["coverage"]}


def _local(api: Api, at: datetime) -> str:
    """A time as the editor shows it: in the policy's zone, to the second."""
    zone = ZoneInfo(api.services.policy.calendar.timezone)
    return at.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")
