"""Signing in to the dashboard through an OpenID Connect provider.

The real app in-process (httpx's ASGI transport is the browser's side towards us), a real
provider on loopback (tests/servers/oidc_server.py, Authlib's authorization server) that the
browser's side reaches over HTTP and our app calls as it calls Okta or Entra ID, and SQLite.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from followthrough.actions import ActionRefused, WorkflowNotRunning
from followthrough.api.auth import issue_token
from followthrough.api.dashboard import SESSION_COOKIE, SIGN_IN_COOKIE, sign_in_csrf
from followthrough.api.sign_in import OIDC_COOKIE
from followthrough.domain.access import hash_token
from followthrough.domain.decisions import Choice, DecisionRequest
from followthrough.domain.directory import (
    IdentityPolicy,
    Role,
    groups_problem,
    person_with_email,
    roles_of_groups,
    with_sign_in_roles,
)
from followthrough.domain.limits import FAILED_ATTEMPTS, OIDC_CODE_CHARS
from followthrough.domain.policy import load_policy
from followthrough.integrations.oidc import OidcProblem, OidcProvider
from followthrough.storage import Store
from followthrough.storage.identity import PendingSignIn
from tests.api_support import LINK_SECRET, PUBLIC_URL, Api, api_for, api_settings
from tests.servers.oidc_server import OidcServer, OidcUser, new_key
from tests.test_dashboard import csrf_of, sign_in, text_of

CALLBACK = f"{PUBLIC_URL}/login/oidc/callback"
USERS = {
    "dan": OidcUser("dan@example.com", groups=["engineering"]),
    "bob": OidcUser("BOB@example.com", groups=["engineering", "reliability-council"]),
    "mallory": OidcUser("mallory@elsewhere.test"),
}


# --- the directory and roles (pure) --------------------------------------------------------------


def test_the_email_names_one_person_of_the_directory_whatever_its_case() -> None:
    policy = load_policy()
    assert person_with_email(policy, "Dan@Example.com") == "dan"
    assert person_with_email(policy, "nobody@example.com") is None
    shared = policy.model_copy(
        update={"emails": {"dan": "ops@example.com", "bob": "ops@example.com"}}
    )
    assert person_with_email(shared, "ops@example.com") is None  # who would it be?


def test_groups_grant_roles_that_add_to_the_policy_and_never_take_away() -> None:
    policy = load_policy()
    identity = IdentityPolicy(reviewer_groups=["sre"], council_groups=["council"])
    assert roles_of_groups(identity, ["sre", "x"]) == {Role.REVIEWER}
    assert roles_of_groups(identity, []) == frozenset()
    granted = with_sign_in_roles(
        policy, {"dan": frozenset({Role.COUNCIL}), "ghost": frozenset({Role.COUNCIL})}
    )
    assert granted.council == [*policy.council, "dan"]  # ghost is not in the directory
    # The policy's own council holds whatever the provider says of them.
    assert with_sign_in_roles(policy, {"grace": frozenset()}).council == policy.council
    assert with_sign_in_roles(policy, {}) is policy


def test_a_groups_claim_is_a_bounded_list_of_names() -> None:
    assert groups_problem(["a", "b"], "groups") is None
    assert (
        groups_problem("a", "groups")
        == "the ID token's 'groups' claim is not a list of group names"
    )
    assert "more than" in str(groups_problem(["g"] * 501, "groups"))
    assert "over 256" in str(groups_problem(["g" * 257], "groups"))


# --- the app and the provider ---------------------------------------------------------------------


@pytest.fixture
def op() -> Iterator[OidcServer]:
    with OidcServer(users=dict(USERS)) as server:
        server.register(CALLBACK, f"{PUBLIC_URL}/login")
        yield server


def council_policy(directory: Path) -> Path:
    """The shipped policy, whose `identity:` makes reliability-council members council."""
    from tests.api_support import loopback_policy_file

    shipped = loopback_policy_file(directory).read_text(encoding="utf-8")
    path = directory / "council-groups-policy.yaml"
    granted = "identity: {reviewer_groups: [], council_groups: [reliability-council]}"
    assert "identity: {reviewer_groups: [], council_groups: []}" in shipped
    path.write_text(
        shipped.replace("identity: {reviewer_groups: [], council_groups: []}", granted),
        encoding="utf-8",
    )
    return path


@asynccontextmanager
async def app_with(
    env: WorkflowEnvironment, store: Store, tmp_path: Path, op: OidcServer, **settings: Any
) -> AsyncIterator[Api]:
    config = api_settings(
        tmp_path,
        "unused",
        policy=council_policy(tmp_path),
        oidc_issuer=op.issuer,
        oidc_client_id=op.client_id,
        oidc_client_secret=op.client_secret,
        oidc_name="Test IdP",
        **settings,
    )
    async with api_for(env.client, store, config) as api:
        yield api


@pytest.fixture
async def app(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path, op: OidcServer
) -> AsyncIterator[Api]:
    async with app_with(time_skipping, sqlite_store, tmp_path, op) as api:
        yield api


@asynccontextmanager
async def browser(api: Api) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """One browser: its side towards us (in-process) and towards the provider (HTTP)."""
    http = api.http
    async with (
        httpx.AsyncClient(transport=http._transport, base_url=http.base_url) as ours,
        httpx.AsyncClient() as theirs,
    ):
        yield ours, theirs


async def to_provider(ours: httpx.AsyncClient, next: str = "/") -> httpx.Response:
    start = await ours.get("/login/oidc", params={"next": next})
    assert start.status_code == 303, start.text
    return start


async def log_in_at_provider(
    theirs: httpx.AsyncClient, authorize: str, user: str, password: str = "correct horse"
) -> str:
    """The provider's login form, filled in: where it sends the browser back."""
    form = await theirs.get(authorize)
    assert form.status_code == 200, form.text
    fields = {k: unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', form.text)}
    back = await theirs.post(
        authorize.split("?")[0], data={**fields, "username": user, "password": password}
    )
    assert back.status_code == 302, back.text
    return back.headers["location"]


async def signed_in_through(
    api: Api, ours: httpx.AsyncClient, theirs: httpx.AsyncClient, user: str, next: str = "/"
) -> httpx.Response:
    start = await to_provider(ours, next)
    back = await log_in_at_provider(theirs, start.headers["location"], user)
    assert back.startswith(CALLBACK)
    return await ours.get(back)


def sessions(store: Store) -> list[tuple[str, str | None, bool]]:
    with store.engine.connect() as db:
        rows = db.execute(
            text("SELECT person, token_hash, id_token IS NOT NULL FROM dashboard_sessions")
        )
        return [(r[0], r[1], bool(r[2])) for r in rows]


async def test_signing_in_through_the_provider_opens_a_session(app: Api, op: OidcServer) -> None:
    async with browser(app) as (ours, theirs):
        login = await ours.get("/login?next=/postmortems")
        assert "Sign in with Test IdP" in login.text
        assert 'name="token"' not in login.text  # token sign-in is off with a provider
        start = await to_provider(ours, "/postmortems")
        asked = httpx.URL(start.headers["location"]).params
        assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
        assert asked["nonce"] and asked["state"] and asked["scope"] == "openid email profile"
        assert asked["redirect_uri"] == CALLBACK
        assert OIDC_COOKIE in ours.cookies

        back = await log_in_at_provider(theirs, start.headers["location"], "dan")
        done = await ours.get(back)
        assert done.status_code == 200
        assert 'http-equiv="refresh" content="0;url=/postmortems"' in done.text
        assert SESSION_COOKIE in ours.cookies
        page = await ours.get("/postmortems")
        assert page.status_code == 200
        assert ">dan<" in page.text
    # The code went with its PKCE verifier, and the session has no API token behind it.
    assert op.token_requests[-1]["code_verifier"]
    assert sessions(app.services.store) == [("dan", None, True)]


async def test_someone_not_in_the_directory_is_refused_without_a_session(app: Api) -> None:
    async with browser(app) as (ours, theirs):
        refused = await signed_in_through(app, ours, theirs, "mallory")
        assert refused.status_code == 403
        assert "mallory@elsewhere.test is not in Followthrough's directory" in text_of(refused)
        assert (await ours.get("/")).status_code == 303
    assert sessions(app.services.store) == []


def forged(op: OidcServer) -> Any:
    """Signed by a key the provider does not publish, under its current key id."""

    def tamper(header: dict[str, Any], claims: dict[str, Any]) -> str:
        return jwt.encode(header, claims, new_key(), algorithms=["RS256"])

    return tamper


def changed(**claims: Any) -> Any:
    def tamper(op: OidcServer) -> Any:
        return lambda header, genuine: op.sign(header, {**genuine, **claims})

    return tamper


def _part(value: dict[str, Any] | bytes) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_with_public_key(op: OidcServer) -> Any:
    """The classic confusion: HMAC keyed with the provider's public key, which anyone has
    (made by hand: joserfc itself refuses to use a public key as an HMAC key)."""
    public = op.signing_key.as_pem(private=False)

    def tamper(header: dict[str, Any], claims: dict[str, Any]) -> str:
        signed = f"{_part({**header, 'alg': 'HS256'})}.{_part(claims)}"
        mac = hmac.new(public, signed.encode(), hashlib.sha256).digest()
        return f"{signed}.{_part(mac)}"

    return tamper


def unsigned(op: OidcServer) -> Any:
    def tamper(header: dict[str, Any], claims: dict[str, Any]) -> str:
        return f"{_part({**header, 'alg': 'none'})}.{_part(claims)}."

    return tamper


@pytest.mark.parametrize(
    ("tamper", "said"),
    [
        (forged, "The ID token's signature is not the provider's"),
        (changed(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200), "'exp' claim"),
        (changed(aud="someone-else"), "'aud' claim"),
        (changed(iss="http://127.0.0.1:1"), "'iss' claim"),
        (changed(nonce="not-the-one-sent"), "'nonce' claim"),
        (hs256_with_public_key, "an algorithm the provider does not use"),
        (unsigned, "an algorithm the provider does not use"),
    ],
    ids=["forged", "expired", "wrong-audience", "wrong-issuer", "wrong-nonce", "hs256", "none"],
)
async def test_an_id_token_that_does_not_hold_is_refused(
    app: Api, op: OidcServer, tamper: Any, said: str
) -> None:
    op.tamper_next(tamper(op))
    async with browser(app) as (ours, theirs):
        refused = await signed_in_through(app, ours, theirs, "dan")
        assert refused.status_code == 401
        assert said in text_of(refused)
        assert SESSION_COOKIE not in ours.cookies
    assert sessions(app.services.store) == []


async def test_a_state_that_is_not_this_browsers_is_refused_and_a_callback_works_once(
    app: Api, op: OidcServer
) -> None:
    async with browser(app) as (ours, theirs), browser(app) as (victim, _):
        start = await to_provider(ours)
        back = await log_in_at_provider(theirs, start.headers["location"], "dan")
        # Login CSRF: the attacker's own callback, in the victim's browser, opens nothing.
        planted = await victim.get(back)
        assert planted.status_code == 400
        assert "not started from this browser" in text_of(planted)
        wrong_state = re.sub(r"state=[^&]+", "state=forged", back)
        refused = await ours.get(wrong_state)
        assert refused.status_code == 400
        assert "state: it is not the one this sign-in sent" in text_of(refused)
        again = await ours.get(back)  # the sign-in under way was used up by the refusal
        assert again.status_code == 400
    assert sessions(app.services.store) == []


async def test_the_callbacks_input_is_bounded_and_the_providers_errors_named(app: Api) -> None:
    async with browser(app) as (ours, _):
        await to_provider(ours)
        long = await ours.get(
            "/login/oidc/callback", params={"code": "c" * (OIDC_CODE_CHARS + 1), "state": "s"}
        )
        assert long.status_code == 400
        assert f"code: over {OIDC_CODE_CHARS} characters" in text_of(long)
        start = await to_provider(ours)
        state = httpx.URL(start.headers["location"]).params["state"]
        denied = await ours.get(
            "/login/oidc/callback",
            params={
                "error": "access_denied",
                "error_description": "<script>x</script>",
                "state": state,
            },
        )
        assert denied.status_code == 403
        assert "did not sign you in (access_denied)" in text_of(denied)
        assert "<script>x" not in denied.text


def bob_decides() -> DecisionRequest:
    return DecisionRequest(by="bob", choice=Choice.DECLINE, reason="not now")


async def test_groups_grant_council_until_a_sign_in_without_them(app: Api, op: OidcServer) -> None:
    assert "bob" not in app.services.policy.council
    with pytest.raises(ActionRefused, match="only the reliability council decides"):
        await app.services.actions.decide("decision-none", bob_decides())
    async with browser(app) as (ours, theirs):
        assert (await signed_in_through(app, ours, theirs, "bob")).status_code == 200
        # The council's narrative is theirs to write: the form is there for bob now.
        narrative = await ours.get("/council/narrative")
        assert narrative.status_code == 200 and 'id="narrative-form"' in narrative.text
        assert app.services.policy.council[-1] == "bob"
        # The actions' own preflight agrees: bob's decision goes on to the workflow (none here).
        with pytest.raises(WorkflowNotRunning, match="decision-none does not exist"):
            await app.services.actions.decide("decision-none", bob_decides())
    assert app.services.settings.loaded_policy.council == ["grace", "heidi"]  # the file's own
    op.users["bob"].groups = ["engineering"]
    async with browser(app) as (ours, theirs):
        assert (await signed_in_through(app, ours, theirs, "bob")).status_code == 200
        narrative = await ours.get("/council/narrative")
        assert narrative.status_code == 200 and 'id="narrative-form"' not in narrative.text
    assert "bob" not in app.services.policy.council


async def test_signing_out_ends_the_session_here_and_at_the_provider(
    app: Api, op: OidcServer
) -> None:
    async with browser(app) as (ours, theirs):
        await signed_in_through(app, ours, theirs, "dan")
        page = await ours.get("/")
        out = await ours.post("/logout", data={"csrf": csrf_of(page)})
        assert out.status_code == 200
        logout = re.search(r'content="0;url=([^"]+)"', out.text)
        assert logout
        url = httpx.URL(unescape(logout.group(1)))
        assert str(url).startswith(f"{op.issuer}/logout?")
        assert url.params["post_logout_redirect_uri"] == f"{PUBLIC_URL}/login"
        assert sessions(app.services.store) == []
        assert (await ours.get("/")).status_code == 303
        ended = await theirs.get(url)
        assert ended.status_code == 302 and ended.headers["location"] == f"{PUBLIC_URL}/login"
    assert op.logouts[-1]["claims"]["email"] == "dan@example.com"
    assert op.sessions == {}  # the provider's own session ended: the next sign-in asks again


async def test_keys_rotate_and_unknown_key_ids_refetch_within_the_bound(
    app: Api, op: OidcServer
) -> None:
    async with browser(app) as (ours, theirs):
        assert (await signed_in_through(app, ours, theirs, "dan")).status_code == 200
    assert op.count("/jwks") == 1
    op.rotate_keys(keep_old=False)
    # The provider's new key id refetches the keys (the minute's bound has passed).
    provider = app.services.oidc
    assert provider is not None
    provider._keys_at -= 120
    async with browser(app) as (ours, theirs):
        assert (await signed_in_through(app, ours, theirs, "dan")).status_code == 200
    assert op.count("/jwks") == 2
    # Tokens naming key ids nobody publishes: one refetch at most in the minute, then refused.
    for _ in range(3):
        stranger = new_key()
        token = jwt.encode(
            {"alg": "RS256", "kid": stranger.kid},
            {"iss": op.issuer},
            stranger,
            algorithms=["RS256"],
        )
        with pytest.raises(OidcProblem, match="a key the provider does not publish"):
            await provider.check_id_token(token, "n")
    assert op.count("/jwks") == 2


async def test_token_sign_in_only_where_a_setting_allows_it(
    app: Api,
    time_skipping: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    op: OidcServer,
) -> None:
    async with browser(app) as (ours, _):
        await ours.get("/login")  # no token form on it; a post made up anyway is refused
        csrf = sign_in_csrf(LINK_SECRET, ours.cookies[SIGN_IN_COOKIE])
        refused = await ours.post("/login", data={"token": app.token("dan"), "csrf": csrf})
        assert refused.status_code == 403
        assert "API tokens are for scripts here" in text_of(refused)
    async with (
        app_with(
            time_skipping, sqlite_store, tmp_path / "both", op, oidc_token_sign_in=True
        ) as both,
        browser(both) as (ours, _),
    ):
        page = await ours.get("/login")
        assert "Sign in with Test IdP" in page.text and 'name="token"' in page.text
        assert (await sign_in(ours, both.token("dan"))).status_code == 303


async def test_a_provider_whose_metadata_names_another_issuer_is_refused(op: OidcServer) -> None:
    # The same provider under another name: its metadata says 127.0.0.1, not localhost.
    provider = OidcProvider(f"http://localhost:{op.port}", op.client_id, op.client_secret)
    with pytest.raises(OidcProblem, match="names another issuer"):
        await provider.metadata()
    plain = OidcProvider("http://idp.example.com", "c", "s")
    with pytest.raises(OidcProblem, match="must be https"):
        await plain.metadata()


async def test_without_an_end_session_endpoint_sign_out_ends_here_only(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    with OidcServer(users=dict(USERS), end_session=False) as bare:
        bare.register(CALLBACK, f"{PUBLIC_URL}/login")
        async with app_with(time_skipping, sqlite_store, tmp_path, bare) as api:
            async with browser(api) as (ours, theirs):
                await signed_in_through(api, ours, theirs, "dan")
                page = await ours.get("/")
                out = await ours.post("/logout", data={"csrf": csrf_of(page)})
                assert out.status_code == 303 and out.headers["location"] == "/login"
                assert (await ours.get("/")).status_code == 303
            assert sessions(api.services.store) == []


async def test_a_provider_that_cannot_be_reached_is_named_and_not_asked_again_at_once(
    app: Api, op: OidcServer
) -> None:
    op.metadata_status = 503
    async with browser(app) as (ours, _):
        for _ in range(3):
            down = await ours.get("/login/oidc")
            assert down.status_code == 502
            assert "The provider's metadata answered 503." in text_of(down)
            assert OIDC_COOKIE not in ours.cookies
    assert op.count("/.well-known/openid-configuration") == 1  # then 10 s before it is asked again


async def test_failed_sign_ins_from_one_address_are_refused_before_the_provider_is_asked(
    app: Api, op: OidcServer
) -> None:
    async with browser(app) as (ours, _):
        for _ in range(FAILED_ATTEMPTS):
            await to_provider(ours)
            refused = await ours.get("/login/oidc/callback", params={"code": "c", "state": "guess"})
            assert refused.status_code == 400
        # Now even this browser's own state and a code would not reach the token endpoint.
        state = httpx.URL((await to_provider(ours)).headers["location"]).params["state"]
        tokens_asked = len(op.token_requests)
        limited = await ours.get("/login/oidc/callback", params={"code": "c", "state": state})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in text_of(limited)
        assert len(op.token_requests) == tokens_asked


# --- what is stored, on SQLite and PostgreSQL -----------------------------------------------------


def test_sessions_with_and_without_a_token_and_sign_ins_under_way_are_kept(store: Store) -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    later = now + timedelta(hours=1)
    policy = load_policy()
    token = issue_token(store, policy, "bob", "tests", now)
    store.sessions.start("a" * 64, "bob", hash_token(token), now, later)
    store.sessions.start("b" * 64, "dan", None, now, later, id_token="header.claims.signature")
    assert store.sessions.open("b" * 64, now) is not None  # no token behind it to revoke
    assert store.sessions.open("a" * 64, now) is not None
    (only,) = store.tokens.all("bob")
    store.tokens.revoke(only.id, now, by="sam")
    assert store.sessions.open("a" * 64, now) is None  # the token's session ends with it
    assert store.sessions.open("b" * 64, later) is None  # expired
    assert store.sessions.end("b" * 64) == "header.claims.signature"
    assert store.sessions.end("b" * 64) is None

    pending = PendingSignIn("state", "nonce", "verifier" * 6, "/postmortems")
    store.identity.begin("c" * 64, pending, now, now + timedelta(minutes=10))
    assert store.identity.take("c" * 64, now) == pending
    assert store.identity.take("c" * 64, now) is None  # used once
    store.identity.begin("c" * 64, pending, now, now + timedelta(minutes=10))
    assert store.identity.take("c" * 64, now + timedelta(minutes=11)) is None  # too late

    store.identity.grant("bob", frozenset({Role.COUNCIL, Role.REVIEWER}), now)
    store.identity.grant("dan", frozenset(), now)
    assert store.identity.roles() == {"bob": {Role.COUNCIL, Role.REVIEWER}}
    store.identity.grant("bob", frozenset({Role.REVIEWER}), later)
    assert store.identity.roles() == {"bob": {Role.REVIEWER}}
