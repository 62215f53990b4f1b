"""Deploy events: three senders, one normalized `Deploy` (followthrough/domain/changes.py).

Each is authenticated on the raw bytes before anything is parsed, then read field by field so
every complaint names its field, then bounded (`deploy_problems`). (source, id) names a deploy:
a redelivery is stored once and a later status of the same deploy updates it.

**Generic** (`POST /webhooks/deploy`, secret FOLLOWTHROUGH_WEBHOOK_SECRET_DEPLOY), signed exactly
as the generic incident webhook is (X-Followthrough-Timestamp and X-Followthrough-Signature:
v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>, followthrough/webhooks/generic.py). The
body: required `id`, `service`, `version`, `environment`, `status` (pending, in_progress,
succeeded, failed, cancelled) and `started_at` or `finished_at` (ISO 8601 with an offset);
optional `rollback_of` (the version this deploy rolls back), `by`, `link`.

**GitHub** `deployment_status` events on `/webhooks/github` (X-Hub-Signature-256, checked there
first). The deploy is `deployment.id`; its service is `deployment.payload.service` when the
deployment was created with one, else the repository's name; its version `deployment.sha`; its
environment `deployment.environment`; `deployment.payload.rollback_of` marks a rollback. The
status's `state`: success -> succeeded, failure and error -> failed, queued and pending ->
pending, in_progress -> in_progress; `inactive` (a later deploy superseded it) is ignored, since
it says nothing about how this one went.

**Argo CD** (`POST /webhooks/argocd`, secret FOLLOWTHROUGH_WEBHOOK_SECRET_ARGOCD): Argo CD's
notifications webhook service cannot sign, so it sends the secret as `Authorization: Bearer
<secret>` (a `headers` entry) or as the Basic password (`basicAuth`). Its body is what the
README's template renders from the Application: `app`, `revision`, `phase` (the sync
operation's: Running, Succeeded, Failed, Error, Terminating), `started_at`, optional
`finished_at`, `service` (default: the app), `environment`, `by`, `link`, `rollback_of`. The
deploy is "{app}@{started_at}": the sync operation's notifications share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from followthrough.domain.changes import DEPLOY_STATUSES, Deploy, DeployStatus, deploy_problems
from followthrough.webhooks.base import Ignored
from followthrough.webhooks.errors import Malformed
from followthrough.webhooks.fields import Fields, parse_body, parse_time, shown
from followthrough.webhooks.generic import SIGNATURE, TIMESTAMP
from followthrough.webhooks.signatures import (
    check_hex_signatures,
    check_timestamp,
    check_token,
    hmac_sha256,
    raw,
    required_header,
)

# A deploy this far in our future is refused: a clock that wrong would put it on no timeline.
FUTURE_TOLERANCE = timedelta(hours=1)

GITHUB_STATES: dict[str, DeployStatus] = {
    "success": "succeeded",
    "failure": "failed",
    "error": "failed",
    "queued": "pending",
    "pending": "pending",
    "in_progress": "in_progress",
}
ARGO_PHASES: dict[str, DeployStatus] = {
    "Running": "in_progress",
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Error": "failed",
    "Terminating": "cancelled",
}


def read_generic_deploy(
    headers: Mapping[str, str], body: bytes, secret: str, now: datetime
) -> Deploy:
    timestamp = required_header(headers, TIMESTAMP)
    signature = required_header(headers, SIGNATURE)
    check_timestamp(timestamp, TIMESTAMP, now)
    check_hex_signatures(
        signature, hmac_sha256(raw(secret), raw(f"{timestamp}.") + body), SIGNATURE, "v1="
    )
    payload = parse_body(body)
    status = payload.text("status")
    if status not in DEPLOY_STATUSES:
        raise Malformed(f"status: {shown(status)} is not one of {', '.join(DEPLOY_STATUSES)}")
    return _bounded(
        {
            "source": "generic",
            "id": payload.text("id"),
            "service": payload.text("service"),
            "version": payload.text("version"),
            "environment": payload.text("environment"),
            "status": status,
            "started_at": payload.maybe_time("started_at"),
            "finished_at": payload.maybe_time("finished_at"),
            "rollback_of": payload.maybe_text("rollback_of"),
            "by": payload.maybe_text("by"),
            "link": payload.maybe_text("link"),
        },
        now,
    )


def read_github_deployment(
    headers: Mapping[str, str], body: bytes, secret: str, now: datetime
) -> Deploy | Ignored:
    """A `deployment_status` event (the caller dispatched on X-GitHub-Event)."""
    check_hex_signatures(
        required_header(headers, "X-Hub-Signature-256"),
        hmac_sha256(raw(secret), body),
        "X-Hub-Signature-256",
        "sha256=",
    )
    payload = parse_body(body)
    status = payload.obj("deployment_status")
    deployment = payload.obj("deployment")
    state = status.text("state")
    if state == "inactive":
        return Ignored("deployment_status inactive: a later deploy superseded it", None)
    if state not in GITHUB_STATES:
        raise Malformed(f"deployment_status.state: {shown(state)} is not a GitHub state")
    number = deployment.data.get("id")
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 10**15:
        raise Malformed("deployment.id: must be a positive whole number")
    extra = deployment.maybe_obj("payload") or Fields({}, "deployment.payload")
    service = extra.maybe_text("service") or payload.obj("repository").text("name")
    creator = deployment.maybe_obj("creator")
    mapped = GITHUB_STATES[state]
    finished = mapped in ("succeeded", "failed")
    link = status.maybe_text("log_url") or status.maybe_text("target_url")
    return _bounded(
        {
            "source": "github",
            "id": str(number),
            "service": service,
            "version": deployment.text("sha"),
            "environment": deployment.text("environment"),
            "status": mapped,
            "started_at": deployment.time("created_at"),
            "finished_at": status.time("created_at") if finished else None,
            "rollback_of": extra.maybe_text("rollback_of"),
            "by": creator.maybe_text("login") if creator else None,
            "link": link,
        },
        now,
    )


def _argo_text(payload: Fields, key: str) -> str | None:
    """Go's templates print a field the Application lacks as "<no value>" (or "<nil>")."""
    found = payload.maybe_text(key)
    return None if found in ("<no value>", "<nil>") else found


def read_argocd_deploy(
    headers: Mapping[str, str], body: bytes, secret: str, now: datetime
) -> Deploy:
    check_token(headers, secret)
    payload = parse_body(body)
    phase = payload.text("phase")
    if phase not in ARGO_PHASES:
        raise Malformed(f"phase: {shown(phase)} is not one of {', '.join(ARGO_PHASES)}")
    app = payload.text("app")
    started = payload.time("started_at")
    status = ARGO_PHASES[phase]
    return _bounded(
        {
            "source": "argocd",
            "id": f"{app}@{payload.text('started_at')}",
            "service": _argo_text(payload, "service") or app,
            "version": payload.text("revision"),
            "environment": payload.text("environment"),
            "status": status,
            "started_at": started,
            "finished_at": _argo_time(payload, "finished_at") if status != "in_progress" else None,
            "rollback_of": _argo_text(payload, "rollback_of"),
            "by": _argo_text(payload, "by"),
            "link": _argo_text(payload, "link"),
        },
        now,
    )


def _argo_time(payload: Fields, key: str) -> datetime | None:
    text = _argo_text(payload, key)
    return None if text is None else parse_time(text, payload.where(key))


def _bounded(fields: dict[str, Any], now: datetime) -> Deploy:
    deploy = Deploy.model_validate(fields)
    problems = deploy_problems(deploy)
    for name in ("started_at", "finished_at"):
        moment: datetime | None = fields[name]
        if moment is not None and moment > now + FUTURE_TOLERANCE:
            problems.append(f"{name}: {moment.isoformat()} is in the future")
    if problems:
        raise Malformed("; ".join(problems))
    return deploy
