"""The HTTP service: webhooks that start postmortems, the human API, the web dashboard, one-click
links, health and metrics. `create_app` builds it around the services it is given, so tests,
`followthrough api` and `followthrough up` run the very same app."""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI, Request, Response, status
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.service import RPCError, RPCStatusCode

from followthrough.api import dashboard, links, people, webhooks
from followthrough.api.metrics import Metrics
from followthrough.api.services import Services, Using
from followthrough.logging import get_logger

log = get_logger(__name__)

DESCRIPTION = """
Followthrough turns resolved incidents into postmortems whose follow-ups get done.

* **Webhooks** (`POST /webhooks/{source}`) start a postmortem for each resolved incident; each
  source authenticates with its own scheme (see the README).
* **People** act through `/api/...` with a personal token (`Authorization: Bearer ft_...`, from
  `followthrough token create --for NAME`). Refusals come back as 403 (not yours to do), 409
  (not now) or 422 (what you sent is wrong), with the reason.
"""


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Followthrough",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = services
    app.include_router(webhooks.router)
    app.include_router(people.router)
    app.include_router(links.router)
    dashboard.install(app)
    app.add_middleware(CountRequests, metrics=services.metrics)

    @app.exception_handler(RPCError)
    @app.exception_handler(RuntimeError)
    async def temporal_unavailable(request: Request, err: Exception) -> JSONResponse:
        """Temporal down or overloaded: the caller (or the webhook's source) should retry."""
        unreachable = isinstance(err, RuntimeError) and "Failed client connect" in str(err)
        overloaded = isinstance(err, RPCError) and err.status in (
            RPCStatusCode.UNAVAILABLE,
            RPCStatusCode.DEADLINE_EXCEEDED,
        )
        if not (unreachable or overloaded):
            raise err
        log.warning("temporal unavailable", error=str(err), path=request.url.path)
        return JSONResponse(
            {"detail": "Temporal is unavailable; nothing was done, try again shortly"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "30"},
        )

    @app.get("/healthz", tags=["operations"])
    async def healthz(using: Using) -> dict[str, str]:
        """Up, with the database answering."""
        await asyncio.to_thread(using.store.ping)
        return {"status": "ok"}

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def metrics(using: Using) -> Response:
        """Prometheus text format; the open and overdue gauges are read from the record."""
        text = await asyncio.to_thread(generate_latest, using.metrics.registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return app


class CountRequests:
    """Counts every request by method, route template and status, and logs each 5xx.

    Plain ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs every
    request in a task group and streams its response through, which cost 0.35 ms of CPU per
    request, a tenth of a webhook delivery's (bench/README.md, "Ingest").
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500  # should the app never start a response

        async def send_noting_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:  # an exception no handler caught is a 500 too: counted and logged
            route = scope.get("route")  # the router sets it in this very scope
            template = getattr(route, "path", "unmatched")  # a template, so labels stay few
            method = scope["method"]
            self.metrics.requests.labels(
                method=method, route=template, status=str(status_code)
            ).inc()
            if status_code >= 500:
                log.error(
                    "request failed",
                    method=method,
                    route=template,
                    status=status_code,
                    seconds=round(time.perf_counter() - started, 3),
                )


__all__ = ["Services", "create_app"]
