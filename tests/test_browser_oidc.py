"""Signing in through an OpenID Connect provider in a real browser: headless Chromium (Debian's),
driven by Playwright, against the app as `followthrough api` serves it (uvicorn on loopback) and
the test provider (tests/servers/oidc_server.py, Authlib's authorization server) on another
loopback port. Screenshots go to test-artifacts/browser/ (FOLLOWTHROUGH_TEST_ARTIFACTS moves it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from playwright.async_api import Browser, Page, expect
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from followthrough.storage import Store
from tests.api_support import api_served, api_settings
from tests.processes import free_port
from tests.servers.oidc_server import OidcServer, OidcUser, new_key
from tests.test_browser import chromium, snap  # noqa: F401  (the module's browser fixture)


class Site:
    def __init__(self, url: str, op: OidcServer, store: Store) -> None:
        self.url, self.op, self.store = url, op, store

    def sessions(self) -> list[str]:
        with self.store.engine.connect() as db:
            return [r[0] for r in db.execute(text("SELECT person FROM dashboard_sessions"))]


@pytest.fixture
async def site(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> AsyncIterator[Site]:
    with OidcServer(users={"dan": OidcUser("dan@example.com")}) as op:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        op.register(f"{url}/login/oidc/callback", f"{url}/login")
        settings = api_settings(
            tmp_path,
            "unused",
            api_port=port,
            public_url=url,
            oidc_issuer=op.issuer,
            oidc_client_id=op.client_id,
            oidc_client_secret=op.client_secret,
            oidc_name="Test IdP",
        )
        async with api_served(time_skipping.client, sqlite_store, settings) as served:
            assert served == url
            yield Site(url, op, sqlite_store)


async def through_the_provider(page: Page, site: Site) -> None:
    await page.click("text=Sign in with Test IdP")
    await expect(page).to_have_title("Test provider: sign in")
    assert page.url.startswith(f"{site.op.issuer}/authorize?")
    await page.fill("input[name=username]", "dan")
    await page.fill("input[name=password]", "correct horse")
    await page.click("button:has-text('Log in')")


async def test_signing_in_and_out_through_the_provider_in_a_browser(
    chromium: Browser,  # noqa: F811
    site: Site,
) -> None:
    context = await chromium.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{site.url}/postmortems")
    await expect(page).to_have_url(f"{site.url}/login?next=%2Fpostmortems")
    await expect(page.locator("input[name=token]")).to_have_count(0)
    await snap(page, "oidc-0-login")

    await through_the_provider(page, site)
    # Back from the provider, signed in, on the page asked for at first.
    await expect(page).to_have_url(f"{site.url}/postmortems")
    await expect(page.locator("header .who")).to_have_text("dan")
    assert site.sessions() == ["dan"]
    await snap(page, "oidc-1-signed-in")

    await page.click("header button:has-text('Sign out')")
    # Signed out here, then at the provider, which sends the browser back to the sign-in page.
    await expect(page).to_have_url(f"{site.url}/login")
    assert site.sessions() == []
    assert site.op.count("/logout") == 1
    assert site.op.logouts[-1]["claims"]["email"] == "dan@example.com"
    await page.goto(f"{site.url}/")
    await expect(page).to_have_url(f"{site.url}/login?next=%2F")

    # A forged ID token (signed by a key the provider never published) opens nothing.
    def forged(header: dict[str, Any], claims: dict[str, Any]) -> str:
        return jwt.encode(header, claims, new_key(), algorithms=["RS256"])

    site.op.tamper_next(forged)
    await through_the_provider(page, site)  # the provider's session ended: it asks again
    alert = page.locator("p.flash.error")
    await expect(alert).to_contain_text("The ID token's signature is not the provider's")
    assert site.sessions() == []
    await snap(page, "oidc-2-forged-refused")
    await context.close()
