"""`POST /webhooks/{source}`: a resolved incident starts its postmortem, by itself.

The signature is checked on the raw bytes before anything is parsed. A resolution starts (or finds)
the postmortem, idempotently per incident, so a flood of duplicate deliveries starts one workflow;
the delivery is remembered only after the start succeeded, so a delivery that failed here is
retried by its source and never lost.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel

from followthrough.api.services import Using
from followthrough.logging import get_logger
from followthrough.temporal import start_postmortem
from followthrough.webhooks import SOURCES, Ignored, WebhookRejected, receive

router = APIRouter(tags=["webhooks"])
log = get_logger(__name__)

MAX_BODY = 1024 * 1024  # incident payloads are a few KiB; anything this big is not one


class WebhookAnswer(BaseModel):
    status: Literal["started", "already open", "already closed", "ignored"]
    workflow_id: str | None = None
    reason: str | None = None
    duplicate_delivery: bool = False


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
    secret = using.settings.webhook_secret(source)
    if secret is None:
        using.metrics.webhooks.labels(source=source, outcome="rejected").inc()
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"webhooks from {source} are not enabled: set "
            f"FOLLOWTHROUGH_WEBHOOK_SECRET_{source.upper()}",
        )
    body = await request.body()
    if len(body) > MAX_BODY:
        using.metrics.webhooks.labels(source=source, outcome="rejected").inc()
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail="payload over 1 MiB")
    now = using.clock()
    try:
        result = receive(source, request.headers, body, secret, using.policy, now)
    except WebhookRejected as rejected:
        using.metrics.webhooks.labels(source=source, outcome="rejected").inc()
        bound.warning("webhook rejected", status=rejected.status, reason=str(rejected))
        raise HTTPException(rejected.status, detail=str(rejected)) from None
    if isinstance(result, Ignored):
        using.metrics.webhooks.labels(source=source, outcome="ignored").inc()
        bound.info("webhook ignored", reason=result.reason, delivery_id=result.delivery_id)
        response.status_code = status.HTTP_200_OK  # authentic, understood, nothing to do
        return WebhookAnswer(status="ignored", reason=result.reason)
    incident = result.incident
    started = await start_postmortem(
        using.client, incident, using.policy, task_queue=using.task_queue
    )
    first = True
    if result.delivery_id:
        first = await asyncio.to_thread(
            using.store.record_delivery,
            source,
            result.delivery_id[:200],
            now,
            started.outcome,
            started.workflow_id,
        )
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
    )
