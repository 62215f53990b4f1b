"""`POST /webhooks/{source}`: a resolved incident starts its postmortem, by itself.

The signature is checked on the raw bytes before anything is parsed. A resolution starts (or finds)
the postmortem, idempotently per incident, so a flood of duplicate deliveries starts one workflow;
the delivery is remembered only after the start succeeded, so a delivery that failed here is
retried by its source and never lost. The alerts a notification reports (Alertmanager's and
Grafana's, firing or resolved; PagerDuty's, Opsgenie's and incident.io's pages and alerts,
triggered, acknowledged or resolved) are kept as alert events before anything else
(api/group_commit.py, storage/alerts.py), for the alert-quality review.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Literal, TypeVar

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel
from temporalio.service import RPCError, RPCStatusCode

from followthrough.api.services import Services, Using
from followthrough.domain.changes import Deploy
from followthrough.domain.incident import incident_time_problems
from followthrough.domain.tickets import TicketDone
from followthrough.logging import get_logger
from followthrough.storage.deliveries import Delivery
from followthrough.temporal.client import start_postmortem
from followthrough.webhooks import SOURCES, Ignored, Malformed, Resolved, WebhookRejected, receive
from followthrough.webhooks.deploys import (
    read_argocd_deploy,
    read_generic_deploy,
    read_github_deployment,
)
from followthrough.webhooks.github import EVENT as GITHUB_EVENT
from followthrough.webhooks.github import github_delivery, read_github_event
from followthrough.webhooks.jira import jira_delivery, read_jira_event
from workflows import TICKET_DONE

router = APIRouter(tags=["webhooks"])
log = get_logger(__name__)


class WebhookAnswer(BaseModel):
    status: Literal["started", "already open", "already closed", "ignored"]
    workflow_id: str | None = None
    reason: str | None = None
    duplicate_delivery: bool = False
    alerts_kept: int = 0  # the notification's alerts (or page) kept as alert events
    alerts_refused: list[str] = []  # alerts not kept, each naming its field (the first few)


class DeployAnswer(BaseModel):
    status: Literal["recorded", "updated", "duplicate", "ignored"]
    deploy_id: str | None = None
    reason: str | None = None


class TicketAnswer(BaseModel):
    status: Literal["claimed done", "ignored", "duplicate"]
    action_item_id: str | None = None
    reason: str | None = None


@router.post(
    "/webhooks/jira",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"model": TicketAnswer, "description": "authentic, but nothing for us to do"},
        401: {"description": "missing or wrong X-Hub-Signature"},
        422: {"description": "not a Jira webhook payload; the message names the field"},
    },
)
async def jira_webhook(request: Request, response: Response, using: Using) -> TicketAnswer:
    """Jira (admin webhook with a secret): a ticket moved to a done status claims its action
    item done, which starts verification. Deduplicated on X-Atlassian-Webhook-Identifier."""
    event = await _authentic(request, using, "jira", read_jira_event)
    return await _ticket_done(using, response, "jira", event, jira_delivery(request.headers))


@router.post(
    "/webhooks/github",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"model": TicketAnswer, "description": "authentic, but nothing for us to do"},
        401: {"description": "missing or wrong X-Hub-Signature-256"},
        422: {"description": "not a GitHub webhook payload; the message names the field"},
    },
)
async def github_webhook(
    request: Request, response: Response, using: Using
) -> TicketAnswer | DeployAnswer:
    """GitHub (a repository's or organization's webhook with a secret, `issues` and
    `deployment_status` events): an issue closed as completed claims its action item done,
    which starts verification; a deployment's status records the deploy; a ping is answered.
    Deduplicated on X-GitHub-Delivery (issues) and on the deployment's id (deploys)."""
    if request.headers.get(GITHUB_EVENT) == "deployment_status":
        deploy = await _authentic(request, using, "github", _at(read_github_deployment, using))
        return await _record_deploy(using, response, "github", deploy)
    event = await _authentic(request, using, "github", read_github_event)
    return await _ticket_done(using, response, "github", event, github_delivery(request.headers))


async def _ticket_done(
    using: Services,
    response: Response,
    source: str,
    event: TicketDone | Ignored,
    delivery: str | None,
) -> TicketAnswer:
    """Signal the item whose ticket it is, as its tracker's reconciliation would."""
    response.status_code = status.HTTP_200_OK
    if isinstance(event, Ignored):
        using.metrics.webhooks.labels(source=source, outcome="ignored").inc()
        return TicketAnswer(status="ignored", reason=event.reason)
    found = await asyncio.to_thread(using.store.records.items_with_tickets, [event.key])
    item_id = found.get(event.key)
    if item_id is None:
        using.metrics.webhooks.labels(source=source, outcome="ignored").inc()
        return TicketAnswer(status="ignored", reason=f"{event.key} is not a Followthrough ticket")
    try:  # the item's workflow judges it: only an open item becomes done claimed
        await using.client.get_workflow_handle(item_id).signal(TICKET_DONE, event)
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
        return TicketAnswer(status="ignored", action_item_id=item_id, reason="the item is closed")
    first = delivery is None or await asyncio.to_thread(
        using.store.deliveries.record, source, delivery[:200], using.clock(), "claimed", item_id
    )
    outcome = "accepted" if first else "duplicate"
    using.metrics.webhooks.labels(source=source, outcome=outcome).inc()
    log.info(
        "ticket done", source=source, key=event.key, action_item_id=item_id, duplicate=not first
    )
    response.status_code = status.HTTP_202_ACCEPTED
    return TicketAnswer(status="claimed done" if first else "duplicate", action_item_id=item_id)


@router.post(
    "/webhooks/deploy",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"model": DeployAnswer, "description": "seen before: nothing changed"},
        401: {"description": "missing or wrong signature or timestamp"},
        422: {"description": "not a deploy we can read; the message names the field"},
    },
)
async def deploy_webhook(request: Request, response: Response, using: Using) -> DeployAnswer:
    """A deploy from any pipeline, signed as the generic incident webhook is (see the README's
    "Changes"): stored once per id; a later status of the same deploy updates it."""
    deploy = await _authentic(request, using, "deploy", _at(read_generic_deploy, using))
    return await _record_deploy(using, response, "deploy", deploy)


@router.post(
    "/webhooks/argocd",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"model": DeployAnswer, "description": "seen before: nothing changed"},
        401: {"description": "missing or wrong Authorization (Bearer or Basic)"},
        422: {"description": "not the README's template's JSON; the message names the field"},
    },
)
async def argocd_webhook(request: Request, response: Response, using: Using) -> DeployAnswer:
    """Argo CD's notifications webhook service, with the README's template: a sync operation of
    an Application is a deploy; its later notifications update it."""
    deploy = await _authentic(request, using, "argocd", _at(read_argocd_deploy, using))
    return await _record_deploy(using, response, "argocd", deploy)


async def _record_deploy(
    using: Services, response: Response, source: str, deploy: Deploy | Ignored
) -> DeployAnswer:
    """Store the deploy (no workflow: the timeline and the metrics read the table)."""
    response.status_code = status.HTTP_200_OK
    if isinstance(deploy, Ignored):
        using.metrics.webhooks.labels(source=source, outcome="ignored").inc()
        return DeployAnswer(status="ignored", reason=deploy.reason)
    outcome = await asyncio.to_thread(using.store.deploys.record, deploy, using.clock())
    first = outcome != "duplicate"
    using.metrics.webhooks.labels(source=source, outcome="accepted" if first else "duplicate").inc()
    log.info(
        "deploy",
        source=deploy.source,
        deploy_id=deploy.id,
        service=deploy.service,
        status=deploy.status,
        outcome=outcome,
    )
    if first:
        response.status_code = status.HTTP_202_ACCEPTED
    return DeployAnswer(status=outcome, deploy_id=deploy.id)


@router.post(
    "/webhooks/{source}",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"model": WebhookAnswer, "description": "authentic, but not a resolution"},
        401: {"description": "missing or wrong signature, token or timestamp"},
        404: {"description": "no such source"},
        422: {"description": "not a payload we can read; the message names the field"},
    },
)
async def incident_webhook(
    source: str, request: Request, response: Response, using: Using
) -> WebhookAnswer:
    """Receive a PagerDuty, Opsgenie, incident.io, Alertmanager, Grafana, FireHydrant or generic
    webhook. The body is the source's own JSON; authentication is the source's own scheme."""
    bound = log.bind(source=source)
    if source not in SOURCES:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no webhook source '{source}'; known: {', '.join(sorted(SOURCES))}",
        )
    secret = _secret(using, source)
    body = await _body(request, using, source)
    now = using.clock()
    try:
        result = receive(source, request.headers, body, secret, using.policy, now)
        untimely = (
            incident_time_problems(result.incident, now) if isinstance(result, Resolved) else []
        )
        if untimely:
            raise Malformed("; ".join(untimely))  # the clock is known here, not in the parser
    except WebhookRejected as rejected:
        raise _rejected(using, source, rejected) from None
    kept = await _keep_alerts(using, source, result)
    if isinstance(result, Ignored):
        using.metrics.webhooks.labels(source=source, outcome="ignored").inc()
        bound.info("webhook ignored", reason=result.reason, delivery_id=result.delivery_id)
        response.status_code = status.HTTP_200_OK  # authentic, understood, nothing to start
        return WebhookAnswer(
            status="ignored",
            reason=result.reason,
            alerts_kept=kept,
            alerts_refused=list(result.alerts_refused),
        )
    incident = result.incident
    started = await start_postmortem(
        using.client, incident, using.policy, task_queue=using.task_queue
    )
    first = True
    if result.delivery_id:  # with the others that arrive meanwhile, in one write
        delivery = Delivery(
            source, result.delivery_id[:200], now, started.outcome, started.workflow_id
        )
        first = delivery in (await using.delivery_intake.add([delivery]) or [])
    using.metrics.webhooks.labels(source=source, outcome="accepted" if first else "duplicate").inc()
    bound.info(
        "incident resolved",
        workflow_id=started.workflow_id,
        outcome=started.outcome,
        delivery_id=result.delivery_id,
        duplicate_delivery=not first,
    )
    return WebhookAnswer(
        status=started.outcome,
        workflow_id=started.workflow_id,
        duplicate_delivery=not first,
        alerts_kept=kept,
        alerts_refused=list(result.alerts_refused),
    )


async def _keep_alerts(using: Services, source: str, result: Resolved | Ignored) -> int:
    """Keep the notification's alerts as alert events (one row per episode, however often it
    is delivered); no workflow is started for an alert. How many the notification held."""
    if result.alerts_dropped:
        dropped, why = result.alerts_dropped, list(result.alerts_refused)
        log.warning("alerts not kept", source=source, dropped=dropped, refused=why)
    if not result.alerts:
        return 0
    await using.alert_intake.add(list(result.alerts))
    return len(result.alerts)


# --- what every webhook does first ----------------------------------------------------------


Read = TypeVar("Read")
Headers = Mapping[str, str]


async def _authentic(
    request: Request,
    using: Services,
    source: str,
    read: Callable[[Headers, bytes, str], Read],
) -> Read:
    """The delivery as `read` makes it of the raw body (which checks the signature first), or
    the refusal's HTTP answer, counted and logged as every source's is."""
    secret = _secret(using, source)
    body = await _body(request, using, source)
    try:
        return read(request.headers, body, secret)
    except WebhookRejected as rejected:
        raise _rejected(using, source, rejected) from None


def _at(
    read: Callable[[Headers, bytes, str, datetime], Read], using: Services
) -> Callable[[Headers, bytes, str], Read]:
    """A reader that also judges times (a deploy's) against the API's clock, now."""
    return lambda headers, body, secret: read(headers, body, secret, using.clock())


def _secret(using: Services, source: str) -> str:
    """The source's secret; a source without one is not enabled (401, counted as rejected)."""
    secret = using.settings.webhook_secret(source)
    if secret is None:
        using.metrics.webhooks.labels(source=source, outcome="rejected").inc()
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"webhooks from {source} are not enabled: set "
            f"FOLLOWTHROUGH_WEBHOOK_SECRET_{source.upper()}",
        )
    return secret


async def _body(request: Request, using: Services, source: str) -> bytes:
    """The raw body for the signature check: the edge (api/edge.py) stops reading it past
    REQUEST_BODY_BYTES (413) or past its deadline (408), so no more than that is ever held."""
    try:
        return await request.body()
    except HTTPException:
        using.metrics.webhooks.labels(source=source, outcome="rejected").inc()
        raise


def _rejected(using: Services, source: str, rejected: WebhookRejected) -> HTTPException:
    """A bad signature or payload: counted, logged, and answered with what is wrong."""
    using.metrics.webhooks.labels(source=source, outcome="rejected").inc()
    log.warning("webhook rejected", source=source, status=rejected.status, reason=str(rejected))
    return HTTPException(rejected.status, detail=str(rejected))
