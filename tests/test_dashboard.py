"""The web dashboard, in-process: sign-in, pages over the real record, acting through forms.

Real Temporal (time-skipping server), a real worker and SQLite; requests go through the real app
as a browser would send them (cookies, form posts, redirects). tests/test_browser.py drives the
same pages in Chromium.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from html import unescape

import httpx
from temporalio.testing import WorkflowEnvironment

from followthrough.api.dashboard import SESSION_COOKIE
from followthrough.api.edge import CONTENT_SECURITY_POLICY
from followthrough.domain.metrics import format_duration, recent_quarters
from followthrough.domain.notice import NoticeKind
from tests.api_support import Api
from tests.conftest import eventually
from tests.factories import draft_data
from tests.test_api import open_postmortem, stored_item, stored_postmortem, tracked_postmortem


@asynccontextmanager
async def browser(api: Api, person: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own cookie jar, signed in as `person` through the sign-in form."""
    http = api.http
    async with httpx.AsyncClient(transport=http._transport, base_url=http.base_url) as client:
        if person is not None:
            signed_in = await sign_in(client, api.token(person))
            assert signed_in.status_code == 303, signed_in.text
        yield client


async def sign_in(client: httpx.AsyncClient, token: str, next: str = "/") -> httpx.Response:
    """What a person does: open the sign-in page, paste the token, press the button."""
    form = await client.get("/login")
    return await client.post("/login", data={"token": token, "next": next, "csrf": csrf_of(form)})


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, "no form on the page"
    return found.group(1)


async def flash(client: httpx.AsyncClient, response: httpx.Response) -> dict[str, str]:
    """What the page a form post went back to says about it ("done" or "error")."""
    assert response.status_code == 303, response.text
    page = await client.get(response.headers["location"])
    said = re.findall(r'<p class="flash (done|error)"[^>]*>(.*?)</p>', page.text, re.S)
    return {kind: unescape(text) for kind, text in said}


def text_of(page: httpx.Response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


async def test_pages_need_a_signed_in_person(api: Api) -> None:
    async with browser(api) as anonymous:
        page = await anonymous.get("/action-items?team=payments")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2Faction-items%3Fteam%3Dpayments"

        login = await anonymous.get("/login?next=/reliability")
        assert login.status_code == 200 and 'value="/reliability"' in login.text

        wrong = await sign_in(anonymous, "ft_nope")
        assert wrong.status_code == 401
        assert "unknown, revoked" in wrong.text
        assert SESSION_COOKIE not in anonymous.cookies

        # Only our own pages: an absolute or scheme-relative `next` goes to the overview.
        for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
            signed_in = await sign_in(anonymous, api.token("dan"), elsewhere)
            assert signed_in.headers["location"] == "/"
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie

        overview = await anonymous.get("/")
        assert overview.status_code == 200
        assert overview.headers["content-security-policy"] == CONTENT_SECURITY_POLICY

        out = await anonymous.post("/logout", data={"csrf": csrf_of(overview)})
        assert out.status_code == 303
        assert (await anonymous.get("/")).status_code == 303


async def test_a_revoked_token_signs_the_browser_out(api: Api) -> None:
    async with browser(api, "dan") as dan:
        assert (await dan.get("/")).status_code == 200
        token_id = api.services.store.tokens.all("dan")[0].id
        api.services.store.tokens.revoke(token_id, api.services.clock(), by="sam")
        assert (await dan.get("/")).status_code == 303


async def test_the_postmortem_page_shows_the_record_and_its_workflows(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id, bob_item, carol_item = await tracked_postmortem(api, time_skipping)
    pm = stored_postmortem(api, pm_id)
    async with browser(api, "dan") as dan:
        page = await dan.get(f"/postmortems/{pm.incident.id}")  # a unique tail finds it too
        assert page.status_code == 200
        text = text_of(page)
        assert pm.incident.title in text
        assert pm.draft is not None and pm.draft.impact in text
        for item_id in (bob_item, carol_item):
            item = stored_item(api, item_id)
            assert f'id="{item_id}"' in page.text
            assert item.spec.title in text and item.spec.acceptance_criterion.summary() in text
        assert "draft.approved" in text and "erin" in text  # the audit trail
        ui = api.services.settings.temporal_ui_url
        assert f'href="{ui}/namespaces/default/workflows/{pm_id}"' in page.text
        assert f'href="{ui}/namespaces/default/workflows/{bob_item}"' in page.text
        # dan owns neither item: no buttons for their owners' actions
        assert "/acknowledge" not in page.text

        missing = await dan.get("/postmortems/INC-nope")
        assert missing.status_code == 404


async def test_owners_act_from_the_page_with_the_apis_rules(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id, bob_item, _ = await tracked_postmortem(api, time_skipping)
    page_path = f"/postmortems/{pm_id}"
    async with browser(api, "bob") as bob, browser(api, "carol") as carol:
        page = await bob.get(page_path)
        assert f'action="/action-items/{bob_item}/acknowledge"' in page.text
        back = f"{page_path}#{bob_item}"

        # A post without the page's CSRF token is refused and changes nothing.
        forged = await bob.post(f"/action-items/{bob_item}/acknowledge", data={"back": back})
        assert forged.status_code == 403
        assert stored_item(api, bob_item).acknowledged_at is None

        # Carol may not acknowledge bob's item: the workflow's refusal comes back on the page.
        carol_page = await carol.get(page_path)
        refused = await carol.post(
            f"/action-items/{bob_item}/acknowledge",
            data={"csrf": csrf_of(carol_page), "back": back},
        )
        assert "only the owner (bob)" in (await flash(carol, refused))["error"]
        assert refused.headers["location"].endswith(f"#{bob_item}")
        assert stored_item(api, bob_item).acknowledged_at is None

        done = await bob.post(
            f"/action-items/{bob_item}/acknowledge", data={"csrf": csrf_of(page), "back": back}
        )
        assert (await flash(bob, done))["done"].startswith("Acknowledged.")
        assert stored_item(api, bob_item).acknowledged_by == "bob"
        shown_again = await bob.get(done.headers["location"])  # the message is shown once
        assert "Acknowledged." not in text_of(shown_again)

        empty = await bob.post(
            f"/action-items/{bob_item}/claim-done",
            data={"csrf": csrf_of(page), "back": back, "text": ""},
        )
        assert "evidence" in (await flash(bob, empty))["error"]
        claimed = await bob.post(
            f"/action-items/{bob_item}/claim-done",
            data={"csrf": csrf_of(page), "back": back, "text": "PR 42 adds the alert"},
        )
        assert "done claimed" in (await flash(bob, claimed))["done"].replace("_", " ")
        assert stored_item(api, bob_item).state.value == "done_claimed"

        # Carol (not the owner) now sees verify and reject, and verifies.
        carol_page = await carol.get(page_path)
        assert f'action="/action-items/{bob_item}/verify"' in carol_page.text
        # A note past its limit is refused by name, not cut short and sent.
        too_long = await carol.post(
            f"/action-items/{bob_item}/verify",
            data={"csrf": csrf_of(carol_page), "back": back, "text": "x" * 10_001},
        )
        assert "note" in (await flash(carol, too_long))["error"]
        assert stored_item(api, bob_item).state.value == "done_claimed"
        verified = await carol.post(
            f"/action-items/{bob_item}/verify",
            data={"csrf": csrf_of(carol_page), "back": back, "text": "alert fired in the drill"},
        )
        assert "Verified." in (await flash(carol, verified))["done"]
        await eventually(lambda: stored_item(api, bob_item).state.value == "verified")

        unknown = await bob.post(
            f"/action-items/{bob_item}/teleport", data={"csrf": csrf_of(page), "back": back}
        )
        assert unknown.status_code == 404


async def test_reviewers_approve_from_the_page(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id = await open_postmortem(api, time_skipping)
    now = await time_skipping.get_current_time()
    assert (await api.post(f"/api/postmortems/{pm_id}/draft", "alice", draft_data(now))).is_success
    page_path = f"/postmortems/{pm_id}"
    async with browser(api, "erin") as erin, browser(api, "dan") as dan:
        assert 'action="' + page_path + '/approve"' not in (await dan.get(page_path)).text
        page = await erin.get(page_path)
        assert f'action="{page_path}/approve"' in page.text
        approved = await erin.post(
            f"{page_path}/approve",
            data={"csrf": csrf_of(page), "back": page_path, "text": "clear and complete"},
        )
        assert "now tracking" in (await flash(erin, approved))["done"]
    await eventually(lambda: api.services.store.records.action_item(f"{pm_id}-item-1"))
    assert stored_postmortem(api, pm_id).state.value == "tracking"


async def test_action_items_filter_and_page(api: Api, time_skipping: WorkflowEnvironment) -> None:
    _, bob_item, carol_item = await tracked_postmortem(api, time_skipping)
    async with browser(api, "dan") as dan:
        everything = await dan.get("/action-items")
        assert bob_item in everything.text and carol_item in everything.text

        bobs = await dan.get("/action-items", params={"owner": "bob"})
        assert bob_item in bobs.text and carol_item not in bobs.text
        assert "Action items (1)" in text_of(bobs)

        nothing = await dan.get("/action-items", params={"owner": "bob", "state": "verified"})
        assert "No action items match" in nothing.text

        overdue = await dan.get("/action-items", params={"overdue": "true"})
        assert "No action items match" in overdue.text  # both are due weeks from now

        bogus = await dan.get("/action-items", params={"state": "bogus"})
        assert bogus.status_code == 422 and "not one of" in bogus.text


async def test_the_outbox_page_lists_what_was_sent(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    _, bob_item, _ = await tracked_postmortem(api, time_skipping)
    due = stored_item(api, bob_item).due
    ask = {"until": (due + timedelta(days=7)).isoformat(), "reason": "vendor <delay> & more"}
    assert (await api.post(f"/api/action-items/{bob_item}/extension", "bob", ask)).is_success
    outbox = api.services.store.outbox
    # The manager is asked by email (maria also reviews: the draft's hand-offs reach her too).
    await eventually(lambda: outbox.message(f"{bob_item}/extension-1/requested"))
    messages = outbox.messages(recipient="maria@example.com")
    assert any(m.kind is NoticeKind.EXTENSION_REQUESTED for m in messages)
    async with browser(api, "maria") as maria:  # a person sees the mail sent to them
        page = await maria.get("/outbox")
        for message in messages:
            assert message.subject in unescape(page.text)
            assert message.text in unescape(page.text)
        assert "vendor &lt;delay&gt; &amp; more" in page.text


async def test_what_people_typed_is_shown_escaped(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id = await open_postmortem(
        api, time_skipping, id="INC-xss", title='<script>alert("x")</script> & <b>bold</b>'
    )
    async with browser(api, "dan") as dan:
        page = await dan.get(f"/postmortems/{pm_id}")
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;" in page.text


async def test_the_metrics_page_measures_the_period(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id, _, _ = await tracked_postmortem(api, time_skipping)
    incident = stored_postmortem(api, pm_id).incident
    assert incident.started_at and incident.detected_at
    detect = incident.detected_at - incident.started_at
    async with browser(api, "dan") as dan:
        page = await dan.get("/reliability")
        assert page.status_code == 200, page.text
        text = text_of(page)
        assert "1 Incidents" in text  # the headline card: value, then label
        assert format_duration(detect) in text  # SEV2's median time to detect is its only one
        # Each figure says how many incidents it stands on, and where the times come from.
        assert "Time to detect: 1 of 1 incident" in text
        assert "Time to communicate: 0 of 1 incident" in text  # the incident never said
        assert f"{format_duration(detect)} / {format_duration(detect)} (1 of 1)" in text
        assert "The response times of 1 of 1 incident come from their approved" in text
        assert page.text.count("<svg") >= 10
        # Offline: nothing fetched from elsewhere, no scripts at all.
        assert not re.search(r"<script|<link|@import|src=\"http", page.text)

        quarter = recent_quarters(incident.resolved_at.date(), 1)[0]
        assert "1 Incidents" in text_of(await dan.get(f"/reliability?quarter={quarter}"))
        assert "0 Incidents" in text_of(await dan.get("/reliability?quarter=2019Q1"))

        for bad, problem in (("quarter=2026Q5", "is not a quarter"), ("month=26-1", "not a month")):
            refused = await dan.get(f"/reliability?{bad}")
            assert refused.status_code == 422 and problem in refused.text


async def test_search_highlights_matches_and_says_what_is_wrong(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id, _, canary_item = await tracked_postmortem(api, time_skipping)
    async with browser(api, "dan") as dan:
        page = await dan.get("/search", params={"q": "canaries"})  # stemmed: finds "canary"
        assert page.status_code == 200
        hits = re.findall(r'<li class="hit">.*?</li>', page.text, re.S)
        assert hits
        assert any(f'href="/postmortems/{pm_id}#{canary_item}"' in hit for hit in hits)
        assert any("contributing factor" in hit for hit in hits)
        assert all(re.search(r"<mark>canary</mark>", hit, re.I) for hit in hits)

        only_items = await dan.get("/search", params={"q": "canary", "kind": "action_item"})
        kinds = re.findall(r'<li class="hit">\s*<span class="pill">([^<]+)</span>', only_items.text)
        assert kinds == ["action item"]
        assert f"#{canary_item}" in only_items.text

        hostile = await dan.get("/search", params={"q": '"; DROP TABLE postmortems; -- <b>'})
        assert hostile.status_code == 200 and "<b>" not in hostile.text.split("<main>")[1]

        blank = await dan.get("/search", params={"q": "*** ()"})
        assert blank.status_code == 200 and "at least one word" in blank.text


async def test_prometheus_keeps_metrics_and_the_pages_their_own_paths(api: Api) -> None:
    """/metrics is the scrape endpoint (an API token, no sign-in); the Metrics page lives at
    /reliability."""
    scraped = await api.get("/metrics", "dan")
    assert scraped.status_code == 200 and "followthrough_http_requests_total" in scraped.text
    async with browser(api) as anonymous:
        assert (await anonymous.get("/reliability")).status_code == 303


async def test_postmortems_are_listed_by_state(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    tracked, _, _ = await tracked_postmortem(api, time_skipping)
    drafting = await open_postmortem(api, time_skipping, severity="SEV1")
    async with browser(api, "dan") as dan:
        overview = await dan.get("/overview")
        assert 'href="/postmortems?state=tracking"' in overview.text
        listed = await dan.get("/postmortems", params={"state": "tracking"})
        assert f'href="/postmortems/{tracked}"' in listed.text
        assert f'href="/postmortems/{drafting}"' not in listed.text
        assert "Postmortems (1)" in text_of(listed)
        sev1 = await dan.get("/postmortems", params={"severity": "SEV1"})
        assert f'href="/postmortems/{drafting}"' in sev1.text
        assert "Postmortems (1)" in text_of(sev1)
        everything = await dan.get("/postmortems")
        assert "Postmortems (2)" in text_of(everything)
        refused = await dan.get("/postmortems", params={"state": "lost"})
        assert refused.status_code == 422 and "not one of" in refused.text
