"""The identity provider provisions people and groups over SCIM 2.0, as Okta and Entra ID send it.

Each request below has the shape the vendor documents for its SCIM provisioning (Okta's "SCIM 2.0
provisioning" reference; Microsoft Entra ID's "Tutorial: develop a SCIM endpoint" request
examples), sent over HTTP with httpx to the real app, on SQLite and PostgreSQL. What they provision
becomes the effective policy's directory (domain/provisioning.py), and a deprovisioned person's
access ends at once while their open items go to their manager with a notice.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from followthrough.domain.access import hash_token
from followthrough.domain.notice import NoticeKind
from followthrough.domain.policy import Policy, load_policy
from followthrough.domain.postmortem import Approval, PostmortemState
from followthrough.domain.provisioning import (
    person_name,
)
from followthrough.notices.delivery import Mailer
from followthrough.storage import Store
from followthrough.storage.directory import RECHECK_SECONDS, LivePolicy
from tests.api_support import Api, api_for, api_settings
from tests.conftest import SmtpCapture, eventually, running_worker
from tests.factories import draft_data
from tests.lifecycle import start, submit, wait_for_item
from workflows.action_item import ActionItemWorkflow
from workflows.postmortem import PostmortemWorkflow

SCIM_TOKEN = "scim-secret-for-tests-0123456789"
SCIM = "/scim/v2"
HEADERS = {
    "Authorization": f"Bearer {SCIM_TOKEN}",
    "Content-Type": "application/scim+json; charset=utf-8",
    "Accept": "application/scim+json",
}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
async def scim(
    time_skipping: WorkflowEnvironment, store: Store, tmp_path: Path
) -> AsyncIterator[Api]:
    """The app with SCIM on (no worker: nobody provisioned here owns an item)."""
    settings = api_settings(tmp_path, "scim-tests", scim_token=SCIM_TOKEN)
    async with api_for(time_skipping.client, store, settings) as api:
        yield api


def sent(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


async def post(api: Api, path: str, body: dict[str, Any]) -> httpx.Response:
    return await api.http.post(f"{SCIM}{path}", content=sent(body), headers=HEADERS)


async def patch(api: Api, path: str, *operations: dict[str, Any]) -> httpx.Response:
    body = {"schemas": [PATCH_OP], "Operations": list(operations)}
    return await api.http.patch(f"{SCIM}{path}", content=sent(body), headers=HEADERS)


async def put(api: Api, path: str, body: dict[str, Any]) -> httpx.Response:
    return await api.http.put(f"{SCIM}{path}", content=sent(body), headers=HEADERS)


async def get(api: Api, path: str, **params: Any) -> httpx.Response:
    return await api.http.get(f"{SCIM}{path}", params=params, headers=HEADERS)


def okta_user(user_name: str, given: str, family: str, **extra: Any) -> dict[str, Any]:
    """Okta's create-user request (its SCIM 2.0 reference, "Create the user")."""
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": f"00u{zlib.crc32(user_name.encode()):012d}",  # Okta's user id
        "groups": [],
        "password": "1mz050nq",
        "active": True,
        **extra,
    }


def entra_user(user_name: str, external_id: str, email: str) -> dict[str, Any]:
    """Entra ID's create-user request (its SCIM endpoint tutorial, "Create User")."""
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": external_id,
        "userName": user_name,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": email}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "g"},
        "roles": [],
        ENTERPRISE: {"employeeNumber": "701984", "department": "Payments"},
    }


def scim_json(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    found: dict[str, Any] = response.json()
    return found


# --- Okta ----------------------------------------------------------------------------------------


async def test_okta_provisions_people_and_a_group_that_becomes_a_team(scim: Api) -> None:
    # Okta first asks whether the user exists.
    missing = await get(scim, "/Users", filter='userName eq "ivan@example.com"', startIndex=1)
    assert scim_json(missing, 200) == {
        "schemas": [LIST],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }
    judy = scim_json(await post(scim, "/Users", okta_user("judy@example.com", "Judy", "Ng")), 201)
    ivan_body = okta_user(
        "Ivan@Example.com", "Ivan", "Petrov", **{ENTERPRISE: {"manager": {"value": judy["id"]}}}
    )
    ivan_body["schemas"].append(ENTERPRISE)
    created = await post(scim, "/Users", ivan_body)
    ivan = scim_json(created, 201)
    assert created.headers["location"] == ivan["meta"]["location"]
    assert ivan["userName"] == "Ivan@Example.com" and ivan["active"] is True
    assert "password" not in ivan
    assert ivan[ENTERPRISE]["manager"]["value"] == judy["id"]

    # userName is not case-sensitive (RFC 7643): Okta's lookup finds it either way.
    found = scim_json(await get(scim, "/Users", filter='userName eq "ivan@example.com"'), 200)
    assert [r["id"] for r in found["Resources"]] == [ivan["id"]]
    again = scim_json(await get(scim, f"/Users/{ivan['id']}"), 200)
    assert again["id"] == ivan["id"] and again["name"]["givenName"] == "Ivan"

    # A group of its own name becomes a team; its manager is whom its members report to.
    group = scim_json(
        await post(scim, "/Groups", {"schemas": [GROUP], "displayName": "billing", "members": []}),
        201,
    )
    member = {"value": ivan["id"], "display": "ivan@example.com"}
    scim_json(
        await patch(
            scim, f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [member]}
        ),
        200,
    )
    policy = scim.services.policy
    assert policy.teams["billing"].members == ["ivan"]
    assert policy.teams["billing"].manager == "judy"
    assert {"ivan", "judy"} <= policy.people

    # Okta renames a group with a replace that repeats its id.
    renamed = await patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "replace", "value": {"id": group["id"], "displayName": "billing-ops"}},
    )
    assert scim_json(renamed, 200)["displayName"] == "billing-ops"
    policy = scim.services.policy
    assert "billing" not in policy.teams and policy.teams["billing-ops"].members == ["ivan"]

    # A profile push is a PUT of the whole user.
    pushed = okta_user("Ivan@Example.com", "Ivan", "Petrov-Smith")
    pushed["id"] = ivan["id"]
    replaced = scim_json(await put(scim, f"/Users/{ivan['id']}", pushed), 200)
    assert replaced["name"]["familyName"] == "Petrov-Smith"
    assert replaced["meta"]["created"] == ivan["meta"]["created"]

    # Okta removes a member by a filter in the path.
    gone = await patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "remove", "path": f'members[value eq "{ivan["id"]}"]'},
    )
    assert scim_json(gone, 200).get("members", []) == []
    assert "billing-ops" not in scim.services.policy.teams  # no active members: no team


async def test_okta_deactivation_ends_the_persons_access_at_once(scim: Api) -> None:
    kim = scim_json(await post(scim, "/Users", okta_user("kim@example.com", "Kim", "Lee")), 201)
    group = {"schemas": [GROUP], "displayName": "payments", "members": [{"value": kim["id"]}]}
    scim_json(await post(scim, "/Groups", group), 201)
    assert "kim" in scim.services.policy.teams["payments"].members
    token = scim.token("kim")
    signed_in = {"Authorization": f"Bearer {token}"}
    assert (await scim.http.get("/api/postmortems", headers=signed_in)).status_code == 200
    now = datetime.now(UTC)
    scim.services.store.sessions.start(
        "a" * 64, "kim", hash_token(token), now, now + timedelta(hours=1)
    )

    # Okta deactivates with a path-less replace of `active`.
    deactivated = await patch(
        scim, f"/Users/{kim['id']}", {"op": "replace", "value": {"active": False}}
    )
    assert scim_json(deactivated, 200)["active"] is False

    assert (await scim.http.get("/api/postmortems", headers=signed_in)).status_code == 401
    assert scim.services.store.sessions.open("a" * 64, datetime.now(UTC)) is None
    assert all(t.revoked_at is not None for t in scim.services.store.tokens.all("kim"))
    policy = scim.services.policy
    assert "kim" not in policy.people
    assert policy.teams["payments"].members == ["alice", "bob"]  # the file's, as SCIM adds none

    # Reactivated: in the directory again, but the revoked token stays revoked.
    back = await patch(scim, f"/Users/{kim['id']}", {"op": "replace", "value": {"active": True}})
    assert scim_json(back, 200)["active"] is True
    assert "kim" in scim.services.policy.teams["payments"].members
    assert (await scim.http.get("/api/postmortems", headers=signed_in)).status_code == 401


# --- Entra ID ------------------------------------------------------------------------------------


async def test_entra_id_provisions_with_its_own_shapes(scim: Api) -> None:
    # Entra's connection test: a filter on a userName that does not exist.
    probe = await get(scim, "/Users", filter='userName eq "non-existent user"')
    assert scim_json(probe, 200)["totalResults"] == 0

    lead = scim_json(
        await post(scim, "/Users", entra_user("lena@example.com", "6f3a0f", "lena@example.com")),
        201,
    )
    outside = entra_user("Omar.Haddad@contoso.onmicrosoft.com", "8c1d2e", "omar@contoso.com")
    omar = scim_json(await post(scim, "/Users", outside), 201)
    found = await get(scim, "/Users", filter='externalId eq "8c1d2e"')
    assert [r["id"] for r in scim_json(found, 200)["Resources"]] == [omar["id"]]

    # Entra sets the manager by a bare id, and capitalises its ops.
    manager_op = {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": lead["id"]}
    with_manager = scim_json(await patch(scim, f"/Users/{omar['id']}", manager_op), 200)
    assert with_manager[ENTERPRISE]["manager"]["value"] == lead["id"]
    assert with_manager[ENTERPRISE]["department"] == "Payments"

    # Entra's email change: a filtered path, sent as Add or Replace.
    email_op = {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "o.h@contoso.com"}
    moved = scim_json(await patch(scim, f"/Users/{omar['id']}", email_op), 200)
    assert [e["value"] for e in moved["emails"]] == ["o.h@contoso.com"]

    # Entra's group: created without members, found by displayName without them, then members
    # added and removed by lists of values.
    created = await post(
        scim,
        "/Groups",
        {
            "externalId": "8aa1a0c0",
            "displayName": "Risk",
            "meta": {"resourceType": "Group"},
            "schemas": [GROUP],
        },
    )
    group = scim_json(created, 201)
    listed = await get(
        scim, "/Groups", excludedAttributes="members", filter='displayName eq "Risk"'
    )
    assert [g["id"] for g in scim_json(listed, 200)["Resources"]] == [group["id"]]
    add = {"op": "Add", "path": "members", "value": [{"value": omar["id"]}, {"value": lead["id"]}]}
    scim_json(await patch(scim, f"/Groups/{group['id']}", add), 200)
    policy = scim.services.policy
    omar_name = "omar.haddad-contoso.onmicrosoft.com"  # not at example.com: the userName
    assert person_name(outside["userName"], "o.h@contoso.com", "example.com") == omar_name
    assert policy.teams["Risk"].members == sorted(["lena", omar_name])
    assert policy.teams["Risk"].manager == "lena"
    assert policy.email_of(omar_name) == "o.h@contoso.com"
    assert policy.email_of("lena") == "lena@example.com"

    remove = {"op": "Remove", "path": "members", "value": [{"value": lead["id"]}]}
    after = scim_json(await patch(scim, f"/Groups/{group['id']}", remove), 200)
    assert [m["value"] for m in after["members"]] == [omar["id"]]

    # Entra (before its 2020 fix, still the default for some apps) sends "False" for false.
    off = {"op": "Replace", "path": "active", "value": "False"}
    assert scim_json(await patch(scim, f"/Users/{omar['id']}", off), 200)["active"] is False
    assert omar_name not in scim.services.policy.people

    # Deleted: gone from reads and lists, and from the group.
    assert (
        await scim.http.delete(f"{SCIM}/Users/{lead['id']}", headers=HEADERS)
    ).status_code == 204
    assert scim_json(await get(scim, f"/Users/{lead['id']}"), 404)["status"] == "404"
    assert scim_json(await get(scim, f"/Groups/{group['id']}"), 200)["members"] == [
        {
            "value": omar["id"],
            "$ref": f"http://followthrough.test{SCIM}/Users/{omar['id']}",
            "type": "User",
        }
    ]
    assert "lena" not in scim.services.policy.people


# --- the protocol around it ----------------------------------------------------------------------


async def test_discovery_paging_and_errors_in_scims_own_shape(scim: Api) -> None:
    config = scim_json(await get(scim, "/ServiceProviderConfig"), 200)
    assert config["patch"]["supported"] is True and config["bulk"]["supported"] is False
    types = scim_json(await get(scim, "/ResourceTypes"), 200)
    assert {t["id"] for t in types["Resources"]} == {"User", "Group"}
    schemas = scim_json(await get(scim, "/Schemas"), 200)
    assert ENTERPRISE in {s["id"] for s in schemas["Resources"]}

    for name in ("pia", "quinn", "rosa"):
        scim_json(await post(scim, "/Users", okta_user(f"{name}@example.com", name, "X")), 201)
    first = scim_json(await get(scim, "/Users", startIndex=1, count=2), 200)
    assert (first["totalResults"], first["itemsPerPage"]) == (3, 2)
    last = scim_json(await get(scim, "/Users", startIndex=3, count=2), 200)
    assert [r["userName"] for r in last["Resources"]] == ["rosa@example.com"]

    taken = await post(scim, "/Users", okta_user("PIA@example.com", "Pia", "Y"))
    assert scim_json(taken, 409) == {
        "schemas": [ERROR],
        "status": "409",
        "scimType": "uniqueness",
        "detail": scim_json(taken, 409)["detail"],
    }
    bad_filter = await get(scim, "/Users", filter='name.givenName co "p"')
    assert scim_json(bad_filter, 400)["scimType"] == "invalidFilter"
    control = await post(scim, "/Users", okta_user("tab\t@example.com", "T", "U"))
    refused = scim_json(control, 400)
    assert refused["scimType"] == "invalidValue" and "userName" in refused["detail"]
    long = await post(scim, "/Users", okta_user(f"{'x' * 300}@example.com", "T", "U"))
    assert "at most 256 characters" in scim_json(long, 400)["detail"]
    assert scim_json(await get(scim, "/Groups/no-such-group"), 404)["status"] == "404"
    reserved = await post(scim, "/Users", okta_user("identity-provider", "I", "P"))
    assert scim_json(reserved, 400)["scimType"] == "invalidValue"
    too_many = [{"op": "replace", "path": "displayName", "value": "x"}] * 1001
    pia = scim_json(await get(scim, "/Users", filter='userName eq "pia@example.com"'), 200)
    pia_id = pia["Resources"][0]["id"]
    refused = scim_json(await patch(scim, f"/Users/{pia_id}", *too_many), 400)
    assert "Operations: at most 1000 entries" in refused["detail"]
    deep: dict[str, Any] = {"value": "x"}
    for _ in range(8):
        deep = {"value": deep}
    nested = await patch(scim, f"/Users/{pia_id}", {"op": "replace", "path": "title", **deep})
    assert "nested more than 6 deep" in scim_json(nested, 400)["detail"]
    stranger = {"schemas": [GROUP], "displayName": "ghosts", "members": [{"value": "no-one"}]}
    assert (
        "no user with the id no-one"
        in scim_json(await post(scim, "/Groups", stranger), 400)["detail"]
    )
    assert scim_json(await get(scim, "/Users"), 200)["totalResults"] == 3  # nothing changed
    assert scim_json(await get(scim, "/Groups"), 200)["totalResults"] == 0
    assert scim_json(await get(scim, f"/Users/{pia_id}"), 200)["userName"] == "pia@example.com"

    lower = {**HEADERS, "Authorization": f"bearer {SCIM_TOKEN}"}  # the scheme is any case
    assert (await scim.http.get(f"{SCIM}/Users", headers=lower)).status_code == 200
    wrong = await scim.http.get(
        f"{SCIM}/Users", headers={**HEADERS, "Authorization": "Bearer not-it"}
    )
    assert scim_json(wrong, 401)["schemas"] == [ERROR]
    # Refused before the body is read: a body past the limit gets the same 401.
    huge = await scim.http.post(
        f"{SCIM}/Users", content=b"{" * 10, headers={**HEADERS, "Authorization": "Bearer x"}
    )
    assert huge.status_code == 401


async def test_without_a_scim_token_there_is_no_scim(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    settings = api_settings(tmp_path, "scim-tests")
    async with api_for(time_skipping.client, sqlite_store, settings) as api:
        answer = await api.http.get(f"{SCIM}/Users", headers=HEADERS)
        assert scim_json(answer, 404)["status"] == "404"


# --- deprovisioning hands open items over --------------------------------------------------------


async def test_a_deprovisioned_owners_open_item_goes_to_their_manager_with_a_notice(
    time_skipping: WorkflowEnvironment,
    store: Store,
    smtp_mailer: Mailer,
    smtp_server: SmtpCapture,
    tmp_path: Path,
) -> None:
    client = time_skipping.client
    now: datetime = await time_skipping.get_current_time()
    policy = load_policy()
    async with running_worker(client, store, smtp_mailer) as queue:
        settings = api_settings(tmp_path, queue, scim_token=SCIM_TOKEN)
        async with api_for(client, store, settings) as api:
            # The provider provisions bob, who reports to maria.
            maria = scim_json(
                await post(api, "/Users", okta_user("maria@example.com", "Maria", "S")), 201
            )
            bob_body = okta_user(
                "bob@example.com", "Bob", "B", **{ENTERPRISE: {"manager": {"value": maria["id"]}}}
            )
            bob = scim_json(await post(api, "/Users", bob_body), 201)

            pm_id = await start(client, policy, queue, now, commander="alice")
            await submit(client, pm_id, "alice", draft_data(now))
            handle = client.get_workflow_handle_for(PostmortemWorkflow.run, pm_id)
            pm = await handle.execute_update(PostmortemWorkflow.approve, Approval(by="erin"))
            assert pm.state is PostmortemState.TRACKING
            items = await _items(store, "bob")
            assert len(items) == 1
            item = await wait_for_item(client, items[0])
            assert item.owner == "bob"
            token = api.token("bob")
            mine = await api.http.get(
                "/api/postmortems", headers={"Authorization": f"Bearer {token}"}
            )
            assert mine.status_code == 200

            # Entra deprovisions bob.
            off = {"op": "Replace", "path": "active", "value": "False"}
            assert scim_json(await patch(api, f"/Users/{bob['id']}", off), 200)["active"] is False
            again = await api.http.get(
                "/api/postmortems", headers={"Authorization": f"Bearer {token}"}
            )
            assert again.status_code == 401

            item_handle = client.get_workflow_handle_for(ActionItemWorkflow.run, items[0])
            moved = await _owner_becomes(item_handle, "maria")
            assert moved.previous_owners == ["bob"]
            await eventually(
                lambda: any(
                    m["X-Followthrough-Kind"] == NoticeKind.REASSIGNED.value
                    for m in smtp_server.messages
                ),
                seconds=30,
            )
            notice = next(
                m
                for m in smtp_server.messages
                if m["X-Followthrough-Kind"] == NoticeKind.REASSIGNED.value
            )
            assert str(notice["To"]).strip() == policy.email_of("maria")
            body = notice.get_body(("plain",))
            assert body is not None
            assert "bob was deprovisioned by the identity provider" in body.get_content()
            assert store.directory.pending_departures() == []


async def _items(store: Store, owner: str) -> list[str]:
    found = await eventually(lambda: store.records.action_items(owner=owner), seconds=30)
    return [item.id for item in found]


async def _owner_becomes(handle: Any, owner: str) -> Any:
    for _ in range(300):
        item = await handle.query(ActionItemWorkflow.snapshot)
        if item.owner == owner:
            return item
        await asyncio.sleep(0.1)
    raise AssertionError(f"never handed to {owner}")


async def test_another_process_sees_the_change_at_its_next_version_check(
    scim: Api, policy: Policy
) -> None:
    """The worker's policy (its own LivePolicy on the same database) follows the directory: it
    asks the version at most every RECHECK_SECONDS, and rebuilds only when it moved."""
    now = [0.0]
    worker = LivePolicy(policy, scim.services.store.directory, clock=lambda: now[0])
    assert worker() == policy
    nia = scim_json(await post(scim, "/Users", okta_user("nia@example.com", "Nia", "O")), 201)
    group = {"schemas": [GROUP], "displayName": "sre", "members": [{"value": nia["id"]}]}
    scim_json(await post(scim, "/Groups", group), 201)
    assert "nia" not in worker().people  # asked a moment ago: not yet
    now[0] += RECHECK_SECONDS
    seen = worker()
    assert seen.teams["sre"].members == ["nia"] and seen.teams["sre"].manager == "sam"
    now[0] += RECHECK_SECONDS
    assert worker() is seen  # nothing moved: the same policy, not rebuilt
