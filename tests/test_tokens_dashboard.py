"""API tokens in the browser and over the API: each person lists, creates and revokes their own;
an administrator (the policy's operators: sam) sees and revokes anyone's and reads the audit log.
A read token reads and is refused (403, naming its scope) anything else before its body is read;
an expired one is refused as expired. Driven in-process with httpx, as a browser and a script."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape

import httpx
from temporalio.testing import WorkflowEnvironment

from followthrough.api.auth import create_token
from followthrough.domain.access import ApiToken, TokenScope, hash_token
from followthrough.domain.audit_log import AdminActionKind
from followthrough.domain.notice import NoticeDelivery
from tests.api_support import Api
from tests.conftest import eventually
from tests.test_api import tracked_postmortem
from tests.test_dashboard import browser, csrf_of, flash, sign_in, text_of


def made(api: Api, person: str, scope: TokenScope, days: int = 30) -> tuple[str, ApiToken]:
    services = api.services
    return create_token(
        services.store, services.policy, person, "script", services.clock(), scope=scope, days=days
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit_kinds(api: Api) -> list[tuple[AdminActionKind, str, str]]:
    return [(e.kind, e.actor, e.target) for e in api.services.store.audit.page(200)]


async def test_a_read_token_reads_and_is_refused_anything_else_before_its_body(api: Api) -> None:
    raw, _ = made(api, "dan", TokenScope.READ)
    http = api.http
    me = await http.get("/api/me", headers=bearer(raw))
    assert me.status_code == 200 and me.json()["person"] == "dan"
    assert (await http.get("/metrics", headers=bearer(raw))).status_code == 200

    store = api.services.store
    before = store.preferences.delivery("dan")
    # Not even JSON: a 403, not a 422, shows the body was never read.
    for method, path in [
        ("PUT", "/api/me/notices"),
        ("POST", "/api/action-items/INC-1-item-1/acknowledge"),
        ("POST", "/api/tokens"),
        ("DELETE", "/api/tokens/abcd"),
    ]:
        refused = await http.request(method, path, headers=bearer(raw), content=b"{not json")
        assert refused.status_code == 403, (method, path, refused.text)
        assert "scope is 'read'" in refused.json()["detail"] and method in refused.json()["detail"]
    assert store.preferences.delivery("dan") == before

    act, _ = made(api, "dan", TokenScope.ACT)
    chosen = await http.put("/api/me/notices", headers=bearer(act), json={"digest": "daily"})
    assert chosen.status_code == 200
    assert store.preferences.delivery("dan") is NoticeDelivery.DAILY


async def test_an_expired_token_is_refused_as_expired(api: Api) -> None:
    services = api.services
    raw = "ft_" + "e" * 43
    long_ago = services.clock() - timedelta(days=100)
    services.store.tokens.add(
        ApiToken(
            id="expired1",
            person="dan",
            name="old",
            created_at=long_ago,
            expires_at=long_ago + timedelta(days=90),
        ),
        hash_token(raw),
        "dan",
    )
    refused = await api.http.get("/api/me", headers=bearer(raw))
    assert refused.status_code == 401 and "expired on" in refused.json()["detail"]
    async with browser(api) as anonymous:
        page = await sign_in(anonymous, raw)
        assert page.status_code == 401 and "has expired" in text_of(page)


async def test_a_read_token_opens_no_dashboard_session(api: Api) -> None:
    raw, _ = made(api, "dan", TokenScope.READ)
    async with browser(api) as anonymous:
        page = await sign_in(anonymous, raw)
        assert page.status_code == 401
        assert "scope is 'read'" in text_of(page)
        assert (await anonymous.get("/")).status_code == 303


def shown_token(page: httpx.Response) -> str | None:
    found = re.search(r'id="token-value">(ft_[A-Za-z0-9_-]+)<', page.text)
    return found.group(1) if found else None


async def test_a_person_creates_lists_and_revokes_their_own_tokens(api: Api) -> None:
    async with browser(api, "dan") as dan:
        settings = await dan.get("/settings")
        assert 'href="/settings/tokens"' in settings.text
        page = await dan.get("/settings/tokens")
        assert page.status_code == 200 and "Everyone's" not in page.text
        csrf = csrf_of(page)

        # Refused by name, and nothing made.
        count = len(api.services.store.tokens.all("dan"))
        for fields, expected in [
            ({"name": "", "scope": "read", "expires_in": "30"}, "name: say what the token is for"),
            ({"name": "ci", "scope": "admin", "expires_in": "30"}, "scope: choose read or act"),
            ({"name": "ci", "scope": "read", "expires_in": "400"}, "at most 365 days"),
            ({"name": "ci", "scope": "read", "expires_in": "soon"}, "not a number of days"),
            ({"name": "x" * 65, "scope": "act", "expires_in": "30"}, "name: one line"),
        ]:
            refused = await dan.post("/settings/tokens", data={"csrf": csrf, **fields})
            assert refused.status_code == 422, fields
            assert expected in text_of(refused), fields
            assert shown_token(refused) is None
        stale = await dan.post("/settings/tokens", data={"csrf": "0" * 64, "name": "ci"})
        assert stale.status_code == 403
        assert len(api.services.store.tokens.all("dan")) == count

        created = await dan.post(
            "/settings/tokens",
            data={"csrf": csrf, "name": "nightly report", "scope": "read", "expires_in": "7"},
        )
        assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
        token = shown_token(created)
        assert token is not None
        (new,) = [t for t in api.services.store.tokens.all("dan") if t.name == "nightly report"]
        assert new.scope is TokenScope.READ
        assert new.expires_at == new.created_at + timedelta(days=7)
        # It works for reading as dan, and it is shown this once.
        me = await api.http.get("/api/me", headers=bearer(token))
        assert me.json()["person"] == "dan"
        again = await dan.get("/settings/tokens")
        assert shown_token(again) is None and token not in again.text
        row = re.search(rf'<tr id="token-{new.id}">(.*?)</tr>', again.text, re.S)
        assert row and "nightly report" in row.group(1) and ">read<" in row.group(1)

        said = await flash(
            dan, await dan.post(f"/settings/tokens/{new.id}/revoke", data={"csrf": csrf})
        )
        assert said["done"].startswith(f"Token {new.id} (nightly report) is revoked")
        assert (await api.http.get("/api/me", headers=bearer(token))).status_code == 401
    assert (AdminActionKind.TOKEN_REVOKED, "dan", f"token {new.id} of dan") in audit_kinds(api)
    assert (AdminActionKind.TOKEN_CREATED, "dan", f"token {new.id} of dan") in audit_kinds(api)


async def test_only_an_administrator_sees_and_revokes_others_tokens(api: Api) -> None:
    bobs, bob_token = made(api, "bob", TokenScope.ACT)
    async with browser(api, "dan") as dan, browser(api, "sam") as sam:
        # dan cannot revoke bob's, nor tell it from a token that does not exist.
        page = await dan.get("/settings/tokens")
        said = await flash(
            dan,
            await dan.post(f"/settings/tokens/{bob_token.id}/revoke", data={"csrf": csrf_of(page)}),
        )
        assert said["error"] == f"you have no token '{bob_token.id}'"
        assert (await api.http.get("/api/me", headers=bearer(bobs))).status_code == 200
        assert (await dan.get("/audit")).status_code == 403

        admin = await sam.get("/settings/tokens")
        assert 'id="all-tokens"' in admin.text and f'id="token-{bob_token.id}"' in admin.text
        said = await flash(
            sam,
            await sam.post(
                f"/settings/tokens/{bob_token.id}/revoke", data={"csrf": csrf_of(admin)}
            ),
        )
        assert said["done"].startswith(f"Token {bob_token.id} of bob (script) is revoked")
        assert (await api.http.get("/api/me", headers=bearer(bobs))).status_code == 401

        log = await sam.get("/audit")
        assert log.status_code == 200
        assert 'href="/audit"' in log.text  # in the administrator's navigation
        text = text_of(log)
        assert f"sam token.revoked token {bob_token.id} of bob" in text
        assert f"bob token.created token {bob_token.id} of bob" in text


async def test_the_audit_log_pages_newest_first_in_the_browser(api: Api) -> None:
    for n in range(55):  # more than a page (50)
        made(api, "carol", TokenScope.READ, days=1 + n)
    async with browser(api, "sam") as sam:
        first = await sam.get("/audit")
        older = re.search(r'href="(/audit\?after=[^"]+)" rel="next"', first.text)
        assert older is not None
        second = await sam.get(unescape(older.group(1)))
        assert second.status_code == 200
        rows = sum(len(re.findall(r"<tr>\s*<td>", page.text)) for page in (first, second))
        assert rows == len(api.services.store.audit.page(200))
        assert (await sam.get("/audit?after=not-a-cursor")).status_code == 422


async def test_the_json_api_for_tokens_and_the_audit_log(api: Api) -> None:
    created = await api.post("/api/tokens", "erin", {"name": "backup job", "scope": "read"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["scope"] == "read" and body["person"] == "erin" and body["token"].startswith("ft_")
    listed = (await api.get("/api/tokens", "erin")).json()
    assert body["id"] in [t["id"] for t in listed]
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert (await api.get("/api/tokens?everyone=true", "erin")).status_code == 403
    everyone = (await api.get("/api/tokens?everyone=true", "sam")).json()
    assert body["id"] in [t["id"] for t in everyone]

    for sent, field in [
        ({"name": "x", "scope": "root"}, "scope"),
        ({"name": "x", "scope": "read", "expires_in_days": 366}, "expires_in_days"),
        ({"name": "x", "scope": "read", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "x" * 65, "scope": "read"}, "name"),
        ({"name": "x", "scope": "read", "owner": "sam"}, "owner"),
    ]:
        refused = await api.post("/api/tokens", "erin", sent)
        assert refused.status_code == 422 and field in refused.text, sent

    # A token made through the API lives no longer than the one that made it.
    short, maker = made(api, "erin", TokenScope.ACT, days=10)
    assert maker.expires_at is not None
    for asked in ({"expires_in_days": 90}, {}):
        capped = await api.http.post(
            "/api/tokens", headers=bearer(short), json={"name": "renewal", "scope": "act", **asked}
        )
        assert capped.status_code == 201
        assert datetime.fromisoformat(capped.json()["expires_at"]) == maker.expires_at
    sooner = await api.http.post(
        "/api/tokens",
        headers=bearer(short),
        json={"name": "renewal", "scope": "read", "expires_in_days": 2},
    )
    assert datetime.fromisoformat(sooner.json()["expires_at"]) < maker.expires_at

    assert (await api.http.delete(f"/api/tokens/{body['id']}", headers=bearer(short))).json()[
        "revoked_at"
    ]
    other = await api.http.delete(f"/api/tokens/{body['id']}x", headers=bearer(short))
    assert other.status_code == 404

    assert (await api.get("/api/audit", "erin")).status_code == 403
    page = (await api.get("/api/audit?limit=2", "sam")).json()
    assert len(page["entries"]) == 2 and page["next"]
    following = (await api.get(f"/api/audit?limit=200&after={page['next']}", "sam")).json()
    keys = [e["key"] for e in page["entries"] + following["entries"]]
    assert len(keys) == len(set(keys)) == len(api.services.store.audit.page(200))
    assert (await api.get("/api/audit?after=%21%21", "sam")).status_code == 422


async def test_an_item_closed_by_the_council_is_in_the_audit_log(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    _, _, carol_item = await tracked_postmortem(api, time_skipping)
    reason = "canary tooling is a Q3 project"
    accepted = await api.post(
        f"/api/action-items/{carol_item}/accept-risk", "grace", {"reason": reason}
    )
    assert accepted.status_code == 200, accepted.text
    closed = await eventually(
        lambda: [
            e
            for e in api.services.store.audit.page(200)
            if e.kind is AdminActionKind.ITEM_RISK_ACCEPTED
        ]
    )
    assert [(e.actor, e.target, e.detail) for e in closed] == [("grace", carol_item, reason)]
    async with browser(api, "sam") as sam:
        assert f"grace item.risk_accepted {carol_item} {reason}" in text_of(await sam.get("/audit"))
