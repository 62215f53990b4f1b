"""SCIM 2.0 (RFC 7643/7644): the identity provider provisions people and groups at /scim/v2.

The edge (api/edge.py) admits a request here only with FOLLOWTHROUGH_SCIM_TOKEN as its bearer
secret, compared in constant time before a byte of the body is read; unset, every SCIM path
answers 404. Resources are scim2-models' `User` (with the enterprise extension) and `Group`;
what Okta and Microsoft Entra ID send that the RFC words differently is taken as they send it:
Entra's capitalised ops ("Replace") and "False" for false, a manager given as a bare id, members
removed by a list of values, and Okta's whole-resource replace that repeats the id.

Who a user is here, how groups become teams and who manages them: followthrough/domain/
provisioning.py. Deprovisioning (active false, or DELETE) revokes the person's API tokens and ends
their dashboard sessions in the same transaction as the change; their open action items are then
handed to their manager in the background (`hand_over_departures`), a hand-over that is retried
after every later SCIM change, and when the API starts, until it is done.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
import weakref
from datetime import datetime
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request, Response
from pydantic import ValidationError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    Error,
    ETag,
    Filter,
    Group,
    Meta,
    Patch,
    PatchOp,
    ResourceType,
    SCIMException,
    ServiceProviderConfig,
    Sort,
    User,
)

from followthrough.actions import ActionRefused
from followthrough.api.services import Services, Using
from followthrough.domain import limits
from followthrough.domain.bounds import Bounds
from followthrough.domain.postmortem import IDENTITY_PROVIDER, ActionItemState, Reassignment
from followthrough.domain.problems import RefusalKind
from followthrough.domain.provisioning import manager_of, person_name
from followthrough.logging import get_logger
from followthrough.storage.directory import (
    GROUP_FILTERS,
    USER_FILTERS,
    ScimGroup,
    ScimUser,
    Taken,
)

log = get_logger(__name__)

SCIM_MEDIA_TYPE = "application/scim+json"
PREFIX = "/scim/v2"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
MANAGER_PATH = f"{ENTERPRISE}:manager".lower()
UserResource = User[EnterpriseUser]

# What one SCIM request may carry (the edge already bounds the body to REQUEST_BODY_BYTES).
SCIM_TEXT_CHARS = limits.SCIM_TEXT_CHARS
SCIM_LIST_ENTRIES = limits.SCIM_LIST_ENTRIES
SCIM_DEPTH = limits.SCIM_DEPTH
PAGE_MOST = limits.SCIM_PAGE
GROUP_MEMBERS = limits.SCIM_GROUP_MEMBERS
# Not taken from a provider: who reassigns a departed person's items, and the policy's words.
RESERVED_PEOPLE = {IDENTITY_PROVIDER, "ci-gate"}

router = APIRouter(prefix=PREFIX, tags=["SCIM (identity provider)"], include_in_schema=False)


class ScimRefusal(Exception):
    """An answer in SCIM's error shape: status as a string, scimType where RFC 7644 names one."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


def scim_error(status: int, detail: str, scim_type: str | None = None) -> Response:
    error = Error(status=status, detail=detail, scim_type=scim_type)
    return scim_response(error.model_dump(), status)


def scim_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, default=str),
        status_code=status,
        media_type=SCIM_MEDIA_TYPE,
        headers=headers,
    )


async def refused(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ScimRefusal)
    return scim_error(exc.status, exc.detail, exc.scim_type)


# --- discovery ---------------------------------------------------------------------------------


@router.get("/ServiceProviderConfig")
async def service_provider_config(found: Using) -> Response:
    config = ServiceProviderConfig(
        documentation_uri=f"{found.settings.effective_public_url}/docs",
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=PAGE_MOST),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="Bearer token",
                description="FOLLOWTHROUGH_SCIM_TOKEN as 'Authorization: Bearer ...'",
                primary=True,
            )
        ],
    )
    return scim_response(config.model_dump())


def _resource_types() -> list[dict[str, Any]]:
    user = ResourceType.from_resource(UserResource).model_dump()
    group = ResourceType.from_resource(Group).model_dump()
    return [user, group]


@router.get("/ResourceTypes")
async def resource_types() -> Response:
    types = _resource_types()
    return scim_response(_list(types, len(types), 1))


@router.get("/ResourceTypes/{name}")
async def resource_type(name: str) -> Response:
    for found in _resource_types():
        if found["id"] == name:
            return scim_response(found)
    raise ScimRefusal(404, f"no resource type '{name[:64]}'")


def _schemas() -> list[dict[str, Any]]:
    return [
        User.to_schema().model_dump(),
        EnterpriseUser.to_schema().model_dump(),
        Group.to_schema().model_dump(),
    ]


@router.get("/Schemas")
async def schemas() -> Response:
    found = _schemas()
    return scim_response(_list(found, len(found), 1))


@router.get("/Schemas/{schema_id}")
async def schema(schema_id: str) -> Response:
    for found in _schemas():
        if found["id"] == schema_id:
            return scim_response(found)
    raise ScimRefusal(404, f"no schema '{schema_id[:128]}'")


# --- reading the body: bounded before it is parsed into a resource ------------------------------


async def _payload(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ScimRefusal(400, f"the body is not JSON: {err}", "invalidSyntax") from None
    if not isinstance(data, dict):
        raise ScimRefusal(400, "the body must be a JSON object", "invalidSyntax")
    bounds = Bounds()
    _bound(bounds, "", data, 0)
    if bounds.problems:
        raise ScimRefusal(400, "; ".join(bounds.problems[:10]), "invalidValue")
    return data


def _bound(bounds: Bounds, where: str, value: Any, depth: int) -> None:
    """Every string one line of at most SCIM_TEXT_CHARS, every list at most SCIM_LIST_ENTRIES,
    numbers finite, nesting at most SCIM_DEPTH: refused with the field's path."""
    if depth > SCIM_DEPTH:
        bounds.problems.append(f"{where or 'body'}: nested more than {SCIM_DEPTH} deep")
    elif isinstance(value, str):
        bounds.text(where or "body", value, SCIM_TEXT_CHARS)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        bounds.number(where, float(value) if abs(value) < 1e300 else float("inf"))
    elif isinstance(value, list):
        if bounds.count(where or "body", value, SCIM_LIST_ENTRIES):
            for i, entry in enumerate(value):
                _bound(bounds, f"{where}[{i}]", entry, depth + 1)
    elif isinstance(value, dict) and bounds.count(where or "body", value, 100):
        for key, entry in value.items():
            bounds.text(f"{where}.{key}" if where else str(key), key, SCIM_TEXT_CHARS)
            _bound(bounds, f"{where}.{key}" if where else str(key), entry, depth + 1)


def _invalid(err: ValidationError | SCIMException | ValueError) -> ScimRefusal:
    if isinstance(err, ValidationError):
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in err.errors()[:10]
        )
        scim_type = "invalidValue"
        for e in err.errors():
            ctx = e.get("ctx") or {}
            if isinstance(ctx.get("scim_type"), str):
                scim_type = ctx["scim_type"]
        return ScimRefusal(400, detail, scim_type)
    if isinstance(err, SCIMException):
        return ScimRefusal(err.status, str(err.detail or err), err.scim_type)
    return ScimRefusal(400, str(err), "invalidValue")


# --- users -------------------------------------------------------------------------------------


def _take_manager(payload: dict[str, Any]) -> tuple[dict[str, Any], str | None, bool]:
    """The payload without the enterprise manager (Okta sends {"value": id}, Entra a bare id
    in PATCH; scim2-models wants a $ref neither sends), that manager, and whether one was sent."""
    extension = payload.get(ENTERPRISE)
    if not isinstance(extension, dict) or "manager" not in extension:
        return payload, None, False
    rest = {k: v for k, v in extension.items() if k != "manager"}
    return {**payload, ENTERPRISE: rest}, _manager_value(extension["manager"]), True


def _manager_value(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("value")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ScimRefusal(400, 'manager: a user id (or {"value": id})', "invalidValue")
    return value


def _email(user: User[Any]) -> str | None:
    emails = [e for e in user.emails or [] if e.value]
    for chosen in (
        [e for e in emails if e.primary],
        [e for e in emails if str(e.type or "").lower() == "work"],
        emails,
    ):
        if chosen:
            return str(chosen[0].value)
    return user.user_name if user.user_name and "@" in user.user_name else None


def _user_resource(
    user: User[Any], user_id: str, manager: str | None, created: datetime, at: datetime, base: str
) -> dict[str, Any]:
    user.id = user_id
    user.meta = Meta(
        resource_type="User",
        created=created,
        last_modified=at,
        location=f"{base}{PREFIX}/Users/{user_id}",
    )
    body = user.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    if manager is not None:
        extension = body.setdefault(ENTERPRISE, {})
        extension["manager"] = {"value": manager, "$ref": f"{base}{PREFIX}/Users/{manager}"}
        if ENTERPRISE not in body["schemas"]:
            body["schemas"].append(ENTERPRISE)
    return body


def _parse_user(payload: dict[str, Any], context: Context) -> tuple[User[Any], str | None, bool]:
    rest, manager, sent = _take_manager(payload)
    try:
        user = UserResource.model_validate(rest, scim_ctx=context)
    except (ValidationError, SCIMException) as err:
        raise _invalid(err) from None
    if not user.user_name or not user.user_name.strip():
        raise ScimRefusal(400, "userName: required", "invalidValue")
    return user, manager, sent


def _person(found: Services, user: User[Any]) -> str:
    assert user.user_name is not None
    person = person_name(user.user_name, _email(user), found.policy.email_domain)
    if not person or person in RESERVED_PEOPLE:
        raise ScimRefusal(
            400, f"userName: '{user.user_name}' names no one Followthrough can use", "invalidValue"
        )
    return person


def _stored_user(found: Services, user_id: str) -> ScimUser:
    stored = found.store.directory.user(user_id)
    if stored is None:
        raise ScimRefusal(404, f"no user '{user_id[:64]}'")
    return stored


async def _save_user(
    found: Services, user: ScimUser, *, new: bool, background: BackgroundTasks
) -> ScimUser:
    try:
        saved = await asyncio.to_thread(found.store.directory.save_user, user, new=new)
    except Taken:
        raise ScimRefusal(
            409,
            f"userName '{user.user_name}' (or the person '{user.person}' it names) is taken",
            "uniqueness",
        ) from None
    _changed(found, background)
    return saved


def _changed(found: Services, background: BackgroundTasks) -> None:
    found.settings.directory_changed()
    background.add_task(hand_over_departures, found)


@router.post("/Users")
async def create_user(request: Request, found: Using, background: BackgroundTasks) -> Response:
    payload = await _payload(request)
    user, manager, _ = _parse_user(payload, Context.RESOURCE_CREATION_REQUEST)
    person = _person(found, user)
    user_id, at = str(uuid.uuid4()), found.clock()
    base = found.settings.effective_public_url
    stored = ScimUser(
        id=user_id,
        person=person,
        user_name=str(user.user_name),
        external_id=user.external_id,
        active=user.active is not False,
        manager=manager,
        email=_email(user),
        resource=_user_resource(user, user_id, manager, at, at, base),
        created_at=at,
        updated_at=at,
    )
    saved = await _save_user(found, stored, new=True, background=background)
    log.info("scim user provisioned", person=person, active=saved.active)
    location = saved.resource["meta"]["location"]
    return scim_response(saved.resource, 201, headers={"Location": location})


def _filtered(request: Request, attributes: dict[str, Any]) -> tuple[str, str] | None:
    text = request.query_params.get("filter")
    if text is None or not text.strip():
        return None
    if len(text) > 2 * SCIM_TEXT_CHARS:
        raise ScimRefusal(400, f"filter: at most {2 * SCIM_TEXT_CHARS} characters", "invalidFilter")
    match = re.fullmatch(r'\s*([A-Za-z.:0-9]+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*', text, re.I)
    if match is None or match.group(1).lower() not in attributes:
        names = ", ".join(sorted(attributes))
        raise ScimRefusal(
            400, f"filter: only '<attribute> eq \"value\"' on {names} is supported", "invalidFilter"
        )
    value = json.loads(f'"{match.group(2)}"')
    return match.group(1).lower(), value


def _paging(request: Request) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        text = request.query_params.get(name)
        if text is None:
            return default
        try:
            return int(text)
        except ValueError:
            shown = text[:20]
            raise ScimRefusal(400, f"{name}: an integer, not '{shown}'", "invalidValue") from None

    start = max(1, number("startIndex", 1))
    count = min(PAGE_MOST, max(0, number("count", 100)))
    return start, count


def _list(resources: list[dict[str, Any]], total: int, start: int) -> dict[str, Any]:
    """A ListResponse (RFC 7644 3.4.2) of resources already in their SCIM shape."""
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


@router.get("/Users")
async def list_users(request: Request, found: Using) -> Response:
    where = _filtered(request, USER_FILTERS)
    start, count = _paging(request)
    total, users = await asyncio.to_thread(found.store.directory.users, where, start, count)
    return scim_response(_list([u.resource for u in users], total, start))


@router.get("/Users/{user_id}")
async def get_user(user_id: str, found: Using) -> Response:
    return scim_response(_stored_user(found, user_id).resource)


@router.put("/Users/{user_id}")
async def replace_user(
    user_id: str, request: Request, found: Using, background: BackgroundTasks
) -> Response:
    stored = _stored_user(found, user_id)
    payload = await _payload(request)
    user, manager, _ = _parse_user(payload, Context.RESOURCE_REPLACEMENT_REQUEST)
    replaced = _updated(stored, user, manager, found)
    saved = await _save_user(found, replaced, new=False, background=background)
    return scim_response(saved.resource)


def _updated(
    stored: ScimUser, user: UserResource, manager: str | None, found: Services
) -> ScimUser:
    """The stored user as a PUT or PATCH left it (one way for both)."""
    at = found.clock()
    base = found.settings.effective_public_url
    return stored.model_copy(
        update={
            "user_name": str(user.user_name),
            "external_id": user.external_id,
            "active": user.active is not False,
            "manager": manager,
            "email": _email(user),
            "resource": _user_resource(user, stored.id, manager, stored.created_at, at, base),
            "updated_at": at,
        }
    )


def _operations(payload: dict[str, Any]) -> list[dict[str, Any]]:
    operations = payload.get("Operations", payload.get("operations"))
    if not isinstance(operations, list) or not operations:
        raise ScimRefusal(400, "Operations: a list of at least one operation", "invalidSyntax")
    if not all(isinstance(op, dict) for op in operations):
        raise ScimRefusal(400, "Operations: each one an object", "invalidSyntax")
    return [dict(op) for op in operations]


def _patch_op(operations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}


def _apply(model: Any, resource: Any, operations: list[dict[str, Any]]) -> None:
    if not operations:
        return
    try:
        patch = PatchOp[model].model_validate(
            _patch_op(operations), scim_ctx=Context.RESOURCE_PATCH_REQUEST
        )
        patch.patch(resource)
    except (ValidationError, SCIMException, ValueError) as err:
        raise _invalid(err) from None


@router.patch("/Users/{user_id}")
async def patch_user(
    user_id: str, request: Request, found: Using, background: BackgroundTasks
) -> Response:
    stored = _stored_user(found, user_id)
    operations = _operations(await _payload(request))
    manager, kept = stored.manager, []
    for op in operations:
        path = str(op.get("path") or "").lower()
        kind = str(op.get("op", "")).lower()
        if path == MANAGER_PATH:  # Entra: the manager's id, bare
            manager = None if kind == "remove" else _manager_value(op.get("value"))
            continue
        value = op.get("value")
        if not path and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "id"}  # Okta repeats the id
            for key in [k for k in value if k.lower() == MANAGER_PATH]:
                manager = _manager_value(value.pop(key))
            value, taken, sent = _take_manager(value)
            manager = taken if sent else manager
            if not value:
                continue
            op = {**op, "value": value}
        kept.append(op)
    rest, _, _ = _take_manager(stored.resource)
    try:
        user = UserResource.model_validate(
            {k: v for k, v in rest.items() if k not in ("id", "meta")}
        )
    except (ValidationError, SCIMException) as err:  # what we stored ourselves: not the caller's
        raise ScimRefusal(500, f"the stored user does not read back: {err}") from None
    _apply(UserResource, user, kept)
    if not user.user_name:
        raise ScimRefusal(400, "userName: required", "invalidValue")
    patched = _updated(stored, user, manager, found)
    saved = await _save_user(found, patched, new=False, background=background)
    if stored.active and not saved.active:
        log.info("scim user deprovisioned", person=saved.person)
    return scim_response(saved.resource)


@router.delete("/Users/{user_id}")
async def delete_user(user_id: str, found: Using, background: BackgroundTasks) -> Response:
    gone = await asyncio.to_thread(found.store.directory.delete_user, user_id, found.clock())
    if gone is None:
        raise ScimRefusal(404, f"no user '{user_id[:64]}'")
    log.info("scim user deleted", person=gone.person)
    _changed(found, background)
    return Response(status_code=204)


# --- groups ------------------------------------------------------------------------------------


def _stored_group(found: Services, group_id: str) -> ScimGroup:
    stored = found.store.directory.group(group_id)
    if stored is None:
        raise ScimRefusal(404, f"no group '{group_id[:64]}'")
    return stored


def _parse_group(payload: dict[str, Any], context: Context) -> Group:
    try:
        group = Group.model_validate(payload, scim_ctx=context)
    except (ValidationError, SCIMException) as err:
        raise _invalid(err) from None
    if not group.display_name or not group.display_name.strip():
        raise ScimRefusal(400, "displayName: required", "invalidValue")
    return group


def _members(found: Services, group: Group) -> list[str]:
    members = list(dict.fromkeys(str(m.value) for m in group.members or [] if m.value))
    if len(members) > GROUP_MEMBERS:
        raise ScimRefusal(400, f"members: at most {GROUP_MEMBERS}", "invalidValue")
    unknown = sorted(set(members) - found.store.directory.existing_users(members))
    if unknown:
        shown = ", ".join(unknown[:5])
        raise ScimRefusal(400, f"members: no user with the id {shown}", "invalidValue")
    return members


def _group_resource(
    group: Group, group_id: str, members: list[str], created: datetime, at: datetime, base: str
) -> dict[str, Any]:
    group.id = group_id
    group.meta = Meta(
        resource_type="Group",
        created=created,
        last_modified=at,
        location=f"{base}{PREFIX}/Groups/{group_id}",
    )
    body = group.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    body["members"] = [
        {"value": m, "$ref": f"{base}{PREFIX}/Users/{m}", "type": "User"} for m in members
    ]
    return body


async def _save_group(
    found: Services, group: ScimGroup, *, new: bool, background: BackgroundTasks
) -> ScimGroup:
    try:
        saved = await asyncio.to_thread(found.store.directory.save_group, group, new=new)
    except Taken:
        raise ScimRefusal(
            409, f"displayName '{group.display_name}' is another group's", "uniqueness"
        ) from None
    _changed(found, background)
    return saved


def _shown(group: ScimGroup, request: Request) -> dict[str, Any]:
    excluded = request.query_params.get("excludedAttributes", "")
    if "members" in {a.strip().lower() for a in excluded.split(",")}:
        return {k: v for k, v in group.resource.items() if k != "members"}
    return group.resource


@router.post("/Groups")
async def create_group(request: Request, found: Using, background: BackgroundTasks) -> Response:
    group = _parse_group(await _payload(request), Context.RESOURCE_CREATION_REQUEST)
    members = _members(found, group)
    group_id, at = str(uuid.uuid4()), found.clock()
    base = found.settings.effective_public_url
    stored = ScimGroup(
        id=group_id,
        display_name=str(group.display_name).strip(),
        external_id=group.external_id,
        members=members,
        resource=_group_resource(group, group_id, members, at, at, base),
        created_at=at,
        updated_at=at,
    )
    saved = await _save_group(found, stored, new=True, background=background)
    location = saved.resource["meta"]["location"]
    return scim_response(saved.resource, 201, headers={"Location": location})


@router.get("/Groups")
async def list_groups(request: Request, found: Using) -> Response:
    where = _filtered(request, GROUP_FILTERS)
    start, count = _paging(request)
    total, groups = await asyncio.to_thread(found.store.directory.groups, where, start, count)
    return scim_response(_list([_shown(g, request) for g in groups], total, start))


@router.get("/Groups/{group_id}")
async def get_group(group_id: str, request: Request, found: Using) -> Response:
    return scim_response(_shown(_stored_group(found, group_id), request))


@router.put("/Groups/{group_id}")
async def replace_group(
    group_id: str, request: Request, found: Using, background: BackgroundTasks
) -> Response:
    stored = _stored_group(found, group_id)
    group = _parse_group(await _payload(request), Context.RESOURCE_REPLACEMENT_REQUEST)
    return await _replace_group(found, stored, group, background)


async def _replace_group(
    found: Services, stored: ScimGroup, group: Group, background: BackgroundTasks
) -> Response:
    members = _members(found, group)
    at = found.clock()
    base = found.settings.effective_public_url
    replaced = stored.model_copy(
        update={
            "display_name": str(group.display_name).strip(),
            "external_id": group.external_id,
            "members": members,
            "resource": _group_resource(group, stored.id, members, stored.created_at, at, base),
            "updated_at": at,
        }
    )
    saved = await _save_group(found, replaced, new=False, background=background)
    return scim_response(saved.resource)


def _group_operations(operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entra removes members by a list of values; RFC 7644 by a filter in the path. Okta's
    whole-group replace repeats the (read-only) id."""
    kept: list[dict[str, Any]] = []
    for op in operations:
        kind, path, value = str(op.get("op", "")).lower(), op.get("path"), op.get("value")
        if kind == "remove" and str(path).lower() == "members" and isinstance(value, list):
            for member in value:
                chosen = member.get("value") if isinstance(member, dict) else None
                if not isinstance(chosen, str):
                    detail = "members: each one removed as {value: id}"
                    raise ScimRefusal(400, detail, "invalidValue")
                kept.append({"op": "remove", "path": f'members[value eq "{_quoted(chosen)}"]'})
            continue
        if not path and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "id"}
            if not value:
                continue
            op = {**op, "value": value}
        kept.append(op)
    return kept


def _quoted(text: str) -> str:
    return json.dumps(text)[1:-1]


@router.patch("/Groups/{group_id}")
async def patch_group(
    group_id: str, request: Request, found: Using, background: BackgroundTasks
) -> Response:
    stored = _stored_group(found, group_id)
    operations = _group_operations(_operations(await _payload(request)))
    kept = {k: v for k, v in stored.resource.items() if k not in ("id", "meta")}
    try:
        group = Group.model_validate(kept)
    except (ValidationError, SCIMException) as err:
        raise ScimRefusal(500, f"the stored group does not read back: {err}") from None
    _apply(Group, group, operations)
    if not group.display_name:
        raise ScimRefusal(400, "displayName: required", "invalidValue")
    return await _replace_group(found, stored, group, background)


@router.delete("/Groups/{group_id}")
async def delete_group(group_id: str, found: Using, background: BackgroundTasks) -> Response:
    if not await asyncio.to_thread(found.store.directory.delete_group, group_id):
        raise ScimRefusal(404, f"no group '{group_id[:64]}'")
    _changed(found, background)
    return Response(status_code=204)


# --- a departure's open items go to their manager -----------------------------------------------

# One pass at a time (a second would find the same items); a lock belongs to its event loop.
_handing_over: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def hand_over_departures(found: Services) -> None:
    """Every pending departure's open action items to the manager `manager_of` names, each with
    the reassigned notice; a departure stays pending until all of its items are handed over
    (an item that cannot be now is tried again after the next SCIM change). Never raises: the
    provider's request has been answered already."""
    async with _handing_over.setdefault(asyncio.get_running_loop(), asyncio.Lock()):
        try:
            await _hand_over(found)
        except Exception as err:  # retried after the next change; never the request's failure
            log.error("hand-over of departed people's items failed", error=repr(err))


async def _hand_over(found: Services) -> None:
    directory = found.store.directory
    for person in await asyncio.to_thread(directory.pending_departures):
        provisioned = await asyncio.to_thread(directory.provisioned)
        policy = found.policy
        items = await asyncio.to_thread(found.store.records.action_items, owner=person)
        done = True
        for item in items:
            if item.resolved or item.state is ActionItemState.RISK_ACCEPTED:
                continue
            to = manager_of(person, policy, provisioned, item.team)
            if to is None:
                log.warning("no one to hand a departed person's item to", item=item.id)
                done = False
                continue
            change = Reassignment(
                by=IDENTITY_PROVIDER,
                to=to,
                reason=f"{person} was deprovisioned by the identity provider",
            )
            try:
                await found.actions.reassign(item.id, change)
            except ActionRefused as err:
                if err.kind is not RefusalKind.CONFLICT:  # closed, or theirs already: done
                    log.warning("item not handed over", item=item.id, error=str(err)[:300])
                    done = False
            except Exception as err:  # Temporal away: the next pass tries again
                log.warning("item not handed over yet", item=item.id, error=str(err)[:300])
                done = False
        if done:
            await asyncio.to_thread(directory.handed_over, person, found.clock())
            log.info("departed person's items handed over", person=person, items=len(items))
