"""The whole hand-off process, as the people in it live it: told by email and in Slack, acting in
the browser.

An incident resolves (a signed webhook); its owner is emailed and DM'd, follows the link, writes
the draft in the editor (a refusal shown live, then fixed) and submits it; a reviewer comments
and requests changes; the owner resubmits; a reviewer approves; an item owner asks for more
time and the manager grants it; the item is reassigned; its new owner claims it done and the
named verifier verifies it. Every message is asserted where people receive it: a real SMTP
server (aiosmtpd) and the Slack-Web-API-compatible server, and at the end each exactly once.

Headless Chromium (Debian's) over the real app on uvicorn, a real worker, the time-skipping
Temporal server and SQLite; a screenshot per step under test-artifacts/browser/journey-*.png.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect
from temporalio.testing import WorkflowEnvironment

from followthrough.domain.notice import NoticeKind
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItem, ActionItemState, PostmortemState
from followthrough.integrations.slack import SlackConfig
from followthrough.notices.delivery import Mailer, SmtpServer
from followthrough.notices.render import Links
from followthrough.storage import Store
from tests.api_support import (
    LINK_SECRET,
    WEBHOOK_SECRETS,
    Api,
    api_for,
    api_served,
    api_settings,
    loopback_policy,
)
from tests.conftest import SmtpCapture, eventually, running_worker
from tests.processes import free_port
from tests.servers.slack_server import SlackServer
from tests.test_browser import chromium, snap  # noqa: F401 (chromium: the fixture)
from tests.webhook_signing import load_payload, signed_request

TOKEN, SECRET = "xoxb-journey-token", "journey-signing-secret-0123456789"
K = NoticeKind
EMAIL, SLACK = "email", "slack"

# Who may decide an extension hears that one was asked for: the item team's manager today.
# (When the council hears of it too, add its members here; nothing else in this file changes.)
EXTENSION_DECIDERS = ["grace", "heidi", "maria"]  # the manager and the council


def slack_id(person: str) -> str:
    """Nobody is in the policy's directory: each is found in Slack by their email."""
    return f"U0{person.upper()}"


@dataclass
class Journey:
    url: str
    api: Api
    smtp: SmtpCapture
    slack: SlackServer

    @property
    def policy(self) -> Policy:
        return self.api.services.policy

    @property
    def store(self) -> Store:
        return self.api.services.store

    def item(self, item_id: str) -> ActionItem | None:
        return self.store.records.action_item(item_id)

    def person_of(self, address: str) -> str:
        """Who an email address or a DM channel (D0NAME) is."""
        for person in self.policy.people:
            if address in (self.policy.email_of(person), "D" + slack_id(person)[1:]):
                return person
        raise AssertionError(f"{address} is nobody in the policy")

    def emails(self, kind: NoticeKind) -> list[EmailMessage]:
        return [m for m in self.smtp.messages if m["X-Followthrough-Kind"] == kind.value]

    def dms(self, kind: NoticeKind) -> list[dict[str, Any]]:
        """What Slack shows for notices of `kind` (any DM or channel), as it was posted."""
        posted = {m.ts for m in self.store.slack.messages() if m.kind == kind.value and m.ts}
        return [m for m in self.slack.posted if m["ts"] in posted and not m.get("thread_ts")]

    def received(self) -> Counter[tuple[str, str, str]]:
        """(email or slack, kind, person) for every message anyone received."""
        got: Counter[tuple[str, str, str]] = Counter()
        for message in self.smtp.messages:
            for address in addresses(message):
                got[EMAIL, str(message["X-Followthrough-Kind"]), self.person_of(address)] += 1
        kinds = {m.ts: m.kind for m in self.store.slack.messages() if m.ts}
        for posted in self.slack.posted:
            assert not posted.get("thread_ts"), posted
            got[
                SLACK, kinds.get(posted["ts"], "unrecorded"), self.person_of(posted["channel"])
            ] += 1
        return got

    async def told(self, kind: NoticeKind, *people: str, count: int = 1) -> tuple[str, list[str]]:
        """Wait until the `count`th notice of `kind` to `people` reached them by email and by
        Slack DM; that email's text and their DMs' texts (mrkdwn, links as Slack shows them)."""
        to = {self.policy.email_of(p) for p in people}

        def email() -> EmailMessage | None:
            sent = [m for m in self.emails(kind) if addresses(m) == to]
            return sent[count - 1] if len(sent) >= count else None

        def dms() -> list[dict[str, Any]] | None:
            mine = {
                p: [m for m in self.dms(kind) if self.person_of(m["channel"]) == p] for p in people
            }
            return (
                [mine[p][count - 1] for p in people]
                if all(len(posted) >= count for posted in mine.values())
                else None
            )

        message = await eventually(email, seconds=30)
        posted = await eventually(dms, seconds=30)
        body = message.get_body(("plain",))
        assert body is not None
        return body.get_content(), [m["blocks"][0]["text"]["text"] for m in posted]


def addresses(message: EmailMessage) -> set[str]:
    return {a.strip() for a in str(message["To"]).split(",")}


@pytest.fixture
async def journey(
    time_skipping: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    smtp_server: SmtpCapture,
) -> AsyncIterator[Journey]:
    """The service with email on the SMTP server and Slack configured, links to where it runs."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    policy = loopback_policy()
    users = {slack_id(p): policy.email_of(p) for p in policy.people}
    client = time_skipping.client
    with SlackServer(token=TOKEN, users=users) as slack:
        links = Links(temporal_ui="http://127.0.0.1:8233", public_url=url, link_secret=LINK_SECRET)
        mailer = Mailer(
            sender="Followthrough <followthrough@localhost>",
            outbox_dir=tmp_path / "outbox",
            links=links,
            smtp=SmtpServer(hostname="127.0.0.1", port=smtp_server.port),
        )
        config = SlackConfig(token=TOKEN, signing_secret=SECRET, api_url=slack.api_url)
        async with running_worker(client, sqlite_store, mailer, slack=config) as queue:
            settings = api_settings(
                tmp_path,
                queue,
                api_port=port,
                public_url=url,
                slack_bot_token=TOKEN,
                slack_signing_secret=SECRET,
                slack_api_url=slack.api_url,
            )
            async with (
                api_for(client, sqlite_store, settings) as api,
                api_served(client, sqlite_store, settings) as served,
            ):
                assert served == url
                yield Journey(url, api, smtp_server, slack)


async def opens(browser: Browser, j: Journey, person: str, link: str) -> Page:
    """`person` follows `link` in a browser of their own: asked to sign in, then taken there."""
    assert link.startswith(j.url + "/"), link
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(link)
    await expect(page.locator("input[name=token]")).to_be_visible()
    await page.fill("input[name=token]", j.api.token(person))
    await page.click("button:has-text('Sign in')")
    await expect(page).to_have_url(link)
    return page


def link_in(text: str, label: str) -> str:
    found = re.search(rf"{re.escape(label)}:? (\S+)", text)
    assert found, text
    return found.group(1)


def dm_link(dm: str) -> str:
    found = re.search(r"<([^|>]+)\|Open in Followthrough>", dm)
    assert found, dm
    return found.group(1)


async def test_a_postmortem_goes_from_resolution_to_verified_telling_everyone_once(
    chromium: Browser,  # noqa: F811
    journey: Journey,
    time_skipping: WorkflowEnvironment,
) -> None:
    j = journey
    now = await time_skipping.get_current_time()
    zone = ZoneInfo(j.policy.calendar.timezone)

    # The incident resolves: its tool's signed webhook opens the postmortem, alice's to write.
    incident = json.loads(load_payload("generic_resolved"))
    incident.update(
        id="INC-JOURNEY-1",
        title="Checkout returned 5xx after a deploy",
        severity="SEV2",
        services=["checkout"],
        commander="alice",
        **{
            f"{milestone}_at": (now - timedelta(minutes=ago)).isoformat()
            for milestone, ago in [
                ("started", 180),
                ("detected", 170),
                ("acknowledged", 165),
                ("mitigated", 130),
                ("resolved", 120),
            ]
        },
    )
    body = json.dumps(incident).encode()
    headers = signed_request("generic", WEBHOOK_SECRETS["generic"], body, datetime.now(UTC))
    started = await j.api.http.post(
        "/webhooks/generic", content=body, headers={"Content-Type": "application/json", **headers}
    )
    assert started.status_code == 202, started.text
    pm_id = started.json()["workflow_id"]
    pm = await eventually(lambda: j.store.records.postmortem(pm_id))
    assert pm.owner == "alice" and pm.state is PostmortemState.DRAFTING

    # Told at once: what is due when, and a link to write it; by email and in Slack.
    due = pm.draft_due.strftime("%A %d %B %Y")
    text, (dm,) = await j.told(K.POSTMORTEM_OPENED, "alice")
    assert "postmortem is yours to write" in text and f"The draft is due {due}" in text
    editor = f"{j.url}/postmortems/{pm_id}/draft"
    assert link_in(text, "Open it") == editor
    assert "Yours to write" in dm and f"The draft is due {due}" in dm
    assert dm_link(dm) == editor

    # alice follows the link and writes the draft from scratch in the editor.
    alice = await opens(chromium, j, "alice", editor)
    await expect(alice.locator("#refusals")).to_contain_text("impact: missing")
    await snap(alice, "journey-01-owner-opens-the-editor")
    rows = await alice.locator("#timeline tr").count()
    decision = rows - 1 - 3  # less the header and the three empty rows
    at = (now - timedelta(minutes=150)).astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")
    await alice.fill(f"[name=timeline-{decision}-at]", at)
    await alice.select_option(f"[name=timeline-{decision}-kind]", "decision")
    await alice.fill(f"[name=timeline-{decision}-description]", "Rolled back instead of scaling")
    await alice.fill("#impact", "8% of checkouts failed with a 5xx for 50 minutes.")
    await alice.fill("[name=factor-0-description]", "The deploy skipped the canary stage")
    await alice.fill("[name=factor-0-tags]", "deploy")
    await alice.fill("#detection_gaps", "No alert on the checkout error ratio")
    await alice.fill("#recovery_steps", "Rolled back to the previous release")
    item_due = (now + timedelta(days=20)).date()
    await alice.fill("[name=item-0-title]", "Alert on the checkout 5xx ratio")
    await alice.fill("[name=item-0-owner]", "bob")
    await alice.select_option("[name=item-0-team]", "payments")
    await alice.fill("[name=item-0-due]", item_due.isoformat())
    await alice.select_option("[name=item-0-priority]", "P1")
    await alice.fill("[name=item-0-criterion_verifier]", "pat")
    # No acceptance criterion yet: the server's live list says submitting would refuse it.
    refusal = "'Alert on the checkout 5xx ratio': acceptance criterion '' is too short to check"
    await expect(alice.locator("#refusals li")).to_have_text([re.compile(re.escape(refusal))])
    await snap(alice, "journey-02-draft-refused-live")
    await alice.fill(
        "[name=item-0-criterion_description]",
        "A page fires within 5 minutes when the checkout 5xx ratio exceeds 2%",
    )
    await expect(alice.locator("#refusals li")).to_have_count(0)
    # A second item, in the row that saving adds.
    await alice.click("button:has-text('Save (adds empty rows)')")
    await expect(alice.locator(".flash.done")).to_contain_text("Saved version")
    await alice.fill("[name=item-1-title]", "Run the canary stage on every deploy")
    await alice.fill("[name=item-1-owner]", "carol")
    await alice.select_option("[name=item-1-team]", "platform")
    await alice.fill("[name=item-1-due]", item_due.isoformat())
    await alice.select_option("[name=item-1-priority]", "P2")
    await alice.fill(
        "[name=item-1-criterion_description]",
        "The deploy pipeline refuses a release without a canary",
    )
    await expect(alice.locator("#refusal-summary")).to_contain_text("would be accepted")
    await snap(alice, "journey-03-draft-clean")
    await alice.click("button:has-text('Submit for review')")
    await expect(alice.locator(".flash.done")).to_contain_text("Submitted draft version 1")
    await snap(alice, "journey-04-draft-submitted")

    # Each reviewer is told, with a link to the review page.
    reviewers = [r for r in j.policy.reviewers if r != "alice"]
    review = f"{j.url}/postmortems/{pm_id}/review"
    text, dms = await j.told(K.DRAFT_SUBMITTED, *reviewers)
    assert "alice submitted version 1 of the postmortem draft" in text
    assert link_in(text, "Open it") == review and {dm_link(d) for d in dms} == {review}

    # erin reads it whole, comments on a section and requests changes.
    erin = await opens(chromium, j, "erin", review)
    await expect(erin.locator(".proposed-item")).to_have_count(2)
    await expect(erin.locator("#section-action_items")).to_contain_text("A page fires within")
    await erin.select_option("#comment select[name=section]", "impact")
    await erin.fill("#comment input[name=text]", "Say how many customers that was")
    await erin.click("#comment button:has-text('Comment')")
    await expect(erin.locator(".flash.done")).to_contain_text("Comment on impact kept.")
    await erin.fill("#verdict input[name=text][required]", "Quantify the impact")
    await erin.click("#verdict button:has-text('Request changes')")
    await expect(erin.locator(".flash.done")).to_contain_text("Changes requested.")
    await snap(erin, "journey-05-reviewer-requests-changes")

    # alice is told why, with the comment, and a link back to the editor.
    text, (dm,) = await j.told(K.CHANGES_REQUESTED, "alice")
    assert "erin requested changes to version 1" in text and "Quantify the impact" in text
    assert "impact (erin): Say how many customers that was" in text
    assert link_in(text, "Open it") == editor
    assert "erin said: Quantify the impact" in dm and dm_link(dm) == editor

    # She revises and resubmits; the reviewers hear of version 2.
    await alice.goto(link_in(text, "Open it"))
    await alice.fill("#impact", "About 1,900 customers (8% of checkouts) failed for 50 minutes.")
    await snap(alice, "journey-06-draft-revised")
    await alice.click("button:has-text('Submit for review')")
    await expect(alice.locator(".flash.done")).to_contain_text("Submitted draft version 2")
    await j.told(K.DRAFT_SUBMITTED, *reviewers, count=2)

    # erin sees what changed since she looked, and approves.
    await erin.goto(review)
    await expect(erin.locator("#since")).to_contain_text("impact")
    await erin.click("#verdict button:has-text('Approve')")
    await expect(erin.locator(".flash.done")).to_contain_text("Approved.")
    await snap(erin, "journey-07-reviewer-approves")
    text, _ = await j.told(K.POSTMORTEM_APPROVED, "alice", "bob", "carol")
    assert "is approved; its 2 action items are now tracked" in text
    bob_item, carol_item = f"{pm_id}-item-1", f"{pm_id}-item-2"
    text, (dm,) = await j.told(K.ITEM_ASSIGNED, "bob")
    assert "'Alert on the checkout 5xx ratio' is yours" in text and "Alert on the" in dm
    await j.told(K.ITEM_ASSIGNED, "carol")

    # bob asks for more time on his item in the browser; who may decide is told.
    until = (item_due + timedelta(days=5)).isoformat()
    bob = await opens(chromium, j, "bob", f"{j.url}/postmortems/{pm_id}")
    item = bob.locator(f"[id='{bob_item}']")
    await item.locator("input[name=until]").fill(until)
    await item.locator("input[name=reason]").first.fill("the vendor ships the fix next week")
    await item.locator("button:has-text('Ask for more time')").click()
    await expect(bob.locator(".flash.done")).to_contain_text("Asked.")
    await snap(bob, "journey-08-owner-asks-for-more-time")
    text, dms = await j.told(K.EXTENSION_REQUESTED, *EXTENSION_DECIDERS)
    assert "the vendor ships the fix next week" in text
    assert all("the vendor ships the fix next week" in dm for dm in dms)

    # maria, bob's manager, follows her link and grants it; bob is told.
    maria = await opens(chromium, j, "maria", dm_link(dms[EXTENSION_DECIDERS.index("maria")]))
    item = maria.locator(f"[id='{bob_item}']")
    await expect(item.locator(".pending-extension")).to_contain_text(until)
    await item.locator("select[name=decision]").select_option("grant")
    await item.locator("button:has-text('Decide extension')").click()
    await expect(maria.locator(".flash.done")).to_contain_text("Extension granted.")
    await snap(maria, "journey-09-manager-grants-more-time")
    text, (dm,) = await j.told(K.EXTENSION_DECIDED, "bob")
    assert until in text and "Extension approved" in dm

    # maria hands the item to alice: both are told.
    item = maria.locator(f"[id='{bob_item}']")
    await item.locator("select[name=to]").select_option("alice")
    await item.locator("input[name=reason]").fill("bob is on leave")
    await item.locator("button:has-text('Reassign')").click()
    await expect(maria.locator(".flash.done")).to_contain_text("Reassigned.")
    await snap(maria, "journey-10-manager-reassigns")
    text, _ = await j.told(K.REASSIGNED, "alice")
    assert "bob" in text
    text, _ = await j.told(K.REASSIGNED_AWAY, "bob")
    assert "reassigned 'Alert on the checkout 5xx ratio' to alice: bob is on leave" in text

    # alice claims it done; pat, the named verifier, is told.
    await alice.goto(f"{j.url}/postmortems/{pm_id}")
    item = alice.locator(f"[id='{bob_item}']")
    await item.locator("input[name=text]").fill("PR 42 pages on the 5xx ratio")
    await item.locator("button:has-text('Claim done')").click()
    await expect(alice.locator(".flash.done")).to_contain_text("Claimed done.")
    await snap(alice, "journey-11-new-owner-claims-done")
    text, (dm,) = await j.told(K.DONE_CLAIMED, "pat")
    assert "alice claimed 'Alert on the checkout 5xx ratio' done, pointing to: PR 42" in text

    # pat verifies it in the browser; alice hears the check passed.
    pat = await opens(chromium, j, "pat", dm_link(dm))
    await pat.locator(f"[id='{bob_item}'] button:has-text('Verify')").click()
    await expect(pat.locator(".flash.done")).to_contain_text("Verified.")
    await snap(pat, "journey-12-verifier-verifies")
    text, _ = await j.told(K.ITEM_VERIFIED, "alice")
    assert "'Alert on the checkout 5xx ratio' is verified by pat" in text
    verified = j.item(bob_item)
    assert verified is not None and verified.state is ActionItemState.VERIFIED
    assert verified.owner == "alice" and verified.due.isoformat() == until
    assert j.item(carol_item) is not None

    # Each message reached each person once, by email and in Slack, and nothing else was sent.
    expected: list[tuple[NoticeKind, list[str]]] = [
        (K.POSTMORTEM_OPENED, ["alice"]),
        (K.DRAFT_SUBMITTED, reviewers * 2),
        (K.CHANGES_REQUESTED, ["alice"]),
        (K.POSTMORTEM_APPROVED, ["alice", "bob", "carol"]),
        (K.ITEM_ASSIGNED, ["bob", "carol"]),
        (K.EXTENSION_REQUESTED, EXTENSION_DECIDERS),
        (K.EXTENSION_DECIDED, ["bob"]),
        (K.REASSIGNED, ["alice"]),
        (K.REASSIGNED_AWAY, ["bob"]),
        (K.DONE_CLAIMED, ["pat"]),
        (K.ITEM_VERIFIED, ["alice"]),
    ]
    wanted = Counter(
        (channel, kind.value, person)
        for kind, people in expected
        for person in people
        for channel in (EMAIL, SLACK)
    )
    assert j.received() == wanted
    for page in (alice, erin, bob, maria, pat):
        await page.context.close()
