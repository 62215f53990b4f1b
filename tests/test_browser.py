"""The dashboard in a real browser: headless Chromium (Debian's), driven by Playwright.

The service runs as `followthrough api` serves it (uvicorn on a loopback port) over a real
Temporal server, a real worker and SQLite, seeded with a realistic history plus one live
postmortem whose action items people act on. Every step saves a screenshot under
test-artifacts/browser/ (FOLLOWTHROUGH_TEST_ARTIFACTS moves it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from followthrough.seed import seed
from followthrough.storage import Store
from tests.api_support import Api, api_for, api_served, api_settings, link_mailer
from tests.conftest import eventually, running_worker
from tests.debian import ensure_debian_package
from tests.factories import draft_data
from tests.processes import ROOT, free_port
from tests.test_api import open_postmortem, stored_item

ARTIFACTS = Path(os.environ.get("FOLLOWTHROUGH_TEST_ARTIFACTS", ROOT / "test-artifacts"))
ARTIFACTS /= "browser"
# Chromium as root in a sandbox-less container on a closed network (see the env notes): no
# sandbox, no GPU, and none of the background calls home that would be refused.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    executable = ensure_debian_package("chromium", "chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


class Service:
    def __init__(self, url: str, api: Api, pm_id: str, bob_item: str) -> None:
        self.url, self.api, self.pm_id, self.bob_item = url, api, pm_id, bob_item


@pytest.fixture
async def service(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> AsyncIterator[Service]:
    """The running service: a seeded history, one live postmortem with two action items."""
    client = time_skipping.client
    now = await time_skipping.get_current_time()
    seed(sqlite_store, api_settings(tmp_path, "unused").loaded_policy, postmortems=120, now=now)
    async with running_worker(client, sqlite_store, link_mailer(tmp_path / "outbox")) as queue:
        settings = api_settings(tmp_path, queue, api_port=free_port())
        async with (
            api_for(client, sqlite_store, settings) as api,
            api_served(client, sqlite_store, settings) as url,
        ):
            pm_id, bob_item = await live_postmortem(api, time_skipping)
            yield Service(url, api, pm_id, bob_item)


async def live_postmortem(api: Api, env: WorkflowEnvironment) -> tuple[str, str]:
    """Approved through the API, its items' workflows running. Its incident hit `monitoring`,
    which has no seeded SLO (an SLO's review would ask the draft for more)."""
    pm_id = await open_postmortem(api, env, services=["monitoring"])
    now = await env.get_current_time()
    assert (await api.post(f"/api/postmortems/{pm_id}/draft", "alice", draft_data(now))).is_success
    assert (await api.post(f"/api/postmortems/{pm_id}/approve", "erin", {})).is_success
    bob_item = f"{pm_id}-item-1"
    await eventually(lambda: api.services.store.records.action_item(bob_item))
    return pm_id, bob_item


async def snap(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def signed_in(chromium: Browser, service: Service, person: str) -> Page:
    context = await chromium.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{service.url}/")
    await expect(page).to_have_url(f"{service.url}/login?next=%2F")
    await page.fill("input[name=token]", service.api.token(person))
    await page.click("button:has-text('Sign in')")
    await expect(page.locator("h1")).to_have_text("My work")
    return page


async def test_people_find_filter_search_and_act_in_a_browser(
    chromium: Browser, service: Service
) -> None:
    page = await signed_in(chromium, service, "bob")
    await snap(page, "0-my-work")
    await page.click("nav >> text=Overview")
    # The overview: the seeded history has open postmortems and overdue items.
    await expect(page.locator("#open-postmortems .card")).to_have_count(5)
    await expect(page.locator("#overdue tbody tr").first).to_be_visible()
    await snap(page, "1-overview")

    # Action items, filtered to bob's open ones.
    await page.click("nav >> text=Action items")
    await page.select_option("select[name=owner]", "bob")
    await page.select_option("select[name=state]", "open")
    await page.click("#filters button")
    filtered = "/action-items?team=&owner=bob&state=open&priority="
    await expect(page).to_have_url(service.url + filtered)
    rows = page.locator("#items tbody tr")
    count = await rows.count()
    expected = service.api.services.store.facts.count_items(owner="bob", state="open")
    assert count == min(expected, 50) and count > 0
    for n in range(count):
        await expect(rows.nth(n).locator("td").nth(3)).to_have_text("bob")
    await snap(page, "2-action-items-bob-open")

    # Search from the header: matches are highlighted.
    await page.fill("header input[type=search]", "canary")
    await page.press("header input[type=search]", "Enter")
    await expect(page.locator("#hits li").first).to_be_visible()
    await expect(page.locator("#hits mark").first).to_have_text("canary", ignore_case=True)
    await snap(page, "3-search-canary")

    # The live postmortem: bob acknowledges his item, then claims it done.
    await page.goto(f"{service.url}/postmortems/{service.pm_id}")
    item = page.locator(f"[id='{service.bob_item}']")
    await item.locator("button:has-text('Acknowledge')").click()
    await expect(page.locator(".flash.done")).to_contain_text("Acknowledged.")
    await snap(page, "4-acknowledged")
    assert stored_item(service.api, service.bob_item).acknowledged_by == "bob"

    item = page.locator(f"[id='{service.bob_item}']")
    await item.locator("input[name=text]").fill("PR 42 pages on the 5xx ratio")
    await item.locator("button:has-text('Claim done')").click()
    await expect(page.locator(".flash.done")).to_contain_text("Claimed done.")
    await eventually(
        lambda: stored_item(service.api, service.bob_item).state.value == "done_claimed"
    )
    await snap(page, "5-claimed-done")

    # Metrics and the outbox render with their charts.
    await page.click("nav >> text=Metrics")
    await expect(page.locator("#headline .card").first).to_be_visible()
    assert await page.locator("svg[role=img]").count() >= 10
    await snap(page, "6-metrics")
    await page.click("nav >> text=Outbox")
    await expect(page.locator("h1")).to_have_text("Outbox")
    await snap(page, "7-outbox")
    await page.context.close()


async def test_a_refused_action_is_explained_on_the_page(
    chromium: Browser, service: Service
) -> None:
    page = await signed_in(chromium, service, "carol")
    await page.goto(f"{service.url}/postmortems/{service.pm_id}")
    # carol does not own bob's item, so the page offers her no acknowledge button; a stale tab
    # that still had one would be refused by the workflow. Her verify of an open item likewise:
    await expect(page.locator(f"[id='{service.bob_item}'] button")).to_have_count(0)
    response = await page.request.post(
        f"{service.url}/action-items/{service.bob_item}/acknowledge",
        form={"csrf": "not-the-token", "back": "/"},
    )
    assert response.status == 403
    await snap(page, "8-carol-no-buttons")
    await page.context.close()


async def test_an_owner_writes_a_draft_from_scratch_in_a_browser(
    chromium: Browser, service: Service, time_skipping: WorkflowEnvironment
) -> None:
    """The editor's autosave and its live list of refusals, from the server, in Chromium."""
    pm_id = await open_postmortem(service.api, time_skipping, services=["monitoring"])
    now = await time_skipping.get_current_time()
    page = await signed_in(chromium, service, "alice")
    await page.goto(f"{service.url}/postmortems/{pm_id}")
    await page.click("text=Write the draft")
    await expect(page.locator("h1")).to_contain_text("Draft")
    await expect(page.locator("#refusals")).to_contain_text("impact: missing")

    # The incident's milestones fill the first rows; a decision goes in the first empty one.
    rows = await page.locator("#timeline tr").count()
    decision = rows - 1 - 3  # less the header and the three empty rows
    zone = ZoneInfo(service.api.services.policy.calendar.timezone)
    at = (now - timedelta(hours=2)).astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")
    await page.fill(f"[name=timeline-{decision}-at]", at)
    await page.select_option(f"[name=timeline-{decision}-kind]", "decision")
    await page.fill(f"[name=timeline-{decision}-description]", "Rolled back instead of scaling")
    await page.fill("#impact", "12% of dashboard loads failed for 40 minutes.")
    await page.fill("[name=factor-0-description]", "The deploy skipped the canary stage")
    await page.fill("[name=factor-0-tags]", "deploy")
    await page.fill("#detection_gaps", "No alert on the dashboard's error ratio")
    await page.fill("#recovery_steps", "Rolled back to the previous release")
    await page.fill("[name=item-0-title]", "Alert on the dashboard error ratio")
    await page.fill("[name=item-0-owner]", "bob")
    await page.select_option("[name=item-0-team]", "payments")
    await page.fill("[name=item-0-due]", (now + timedelta(days=20)).date().isoformat())
    await page.select_option("[name=item-0-priority]", "P1")
    await page.fill("[name=item-0-criterion_description]", "Improve the monitoring of dashboards")
    # Saved as it goes; the list is the server's answer: the vague criterion is refused.
    await expect(page.locator("#refusals")).to_contain_text("is not measurable")
    await expect(page.locator("#save-status")).to_contain_text("Saved version")
    await snap(page, "14-draft-refused")

    await page.fill(
        "[name=item-0-criterion_description]",
        "A page fires within 5 minutes when the dashboard error ratio exceeds 2%",
    )
    await expect(page.locator("#refusals li")).to_have_count(0)
    await expect(page.locator("#refusal-summary")).to_contain_text("would be accepted")
    saved = service.api.services.store
    await snap(page, "15-draft-clean")

    await page.click("button:has-text('Submit for review')")
    await expect(page.locator(".flash.done")).to_contain_text("Submitted draft version 1")
    await snap(page, "16-draft-submitted")
    pm = saved.records.postmortem(pm_id)
    assert pm is not None and pm.state.value == "in_review"
    assert pm.draft is not None and pm.draft.impact.startswith("12% of dashboard loads")


async def test_more_time_is_asked_decided_and_the_item_reassigned_through_the_forms(
    chromium: Browser, service: Service
) -> None:
    item_id = service.bob_item
    due = stored_item(service.api, item_id).due
    until = (due + timedelta(days=5)).isoformat()

    bob = await signed_in(chromium, service, "bob")
    await expect(bob.locator("#items-due")).to_be_visible()  # the seeded history's, soonest first
    await bob.goto(f"{service.url}/postmortems/{service.pm_id}")
    item = bob.locator(f"[id='{item_id}']")
    await item.locator("input[name=until]").fill(until)
    await item.locator("input[name=reason]").first.fill("the vendor ships the fix next week")
    await item.locator("button:has-text('Ask for more time')").click()
    await expect(bob.locator(".flash.done")).to_contain_text("Asked.")
    await eventually(lambda: stored_item(service.api, item_id).pending_extension is not None)
    # Bob asked: he is not offered the decision.
    await expect(bob.locator(f"[id='{item_id}'] button:has-text('Decide')")).to_have_count(0)
    await snap(bob, "9-extension-asked")
    await bob.context.close()

    maria = await signed_in(chromium, service, "maria")  # bob's manager
    await expect(maria.locator(f"#decisions a[href$='#{item_id}']")).to_be_visible()
    await snap(maria, "10-my-work-decision-waiting")
    await maria.locator(f"#decisions a[href$='#{item_id}']").click()
    item = maria.locator(f"[id='{item_id}']")
    await expect(item.locator(".pending-extension")).to_contain_text(until)
    await item.locator("select[name=decision]").select_option("grant")
    await item.locator("button:has-text('Decide extension')").click()
    await expect(maria.locator(".flash.done")).to_contain_text("Extension granted.")
    await eventually(lambda: stored_item(service.api, item_id).due.isoformat() == until)
    await snap(maria, "11-extension-granted")

    item = maria.locator(f"[id='{item_id}']")
    await item.locator("select[name=to]").select_option("alice")
    await item.locator("button:has-text('Reassign')").click()
    await expect(maria.locator(".flash.done")).to_contain_text("Reassigned.")
    await eventually(lambda: stored_item(service.api, item_id).owner == "alice")
    await snap(maria, "12-reassigned")

    # The postmortem as a document for readers outside engineering, from its page.
    await maria.click("text=printable document")
    await expect(maria.locator("h2#follow-ups")).to_have_text("What we are doing about it")
    await expect(maria.locator("#follow-up-items tbody tr").first).to_contain_text("alice")
    await snap(maria, "13-document")
    await maria.context.close()
