"""The HTTP service: webhooks that start postmortems, the human API, the web dashboard, one-click
links, health and metrics. `create_app` builds it around the services it is given, so tests,
`followthrough api` and `followthrough up` run the very same app."""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path
from temporalio.service import RPCError, RPCStatusCode

from followthrough.api import (
    alerts,
    backlog,
    dashboard,
    decisions,
    drafting,
    links,
    narratives,
    operations,
    people,
    preferences,
    scim,
    sign_in,
    slack,
    tokens,
    webhooks,
)
from followthrough.api.auth import token_holder
from followthrough.api.edge import Edge, SecurityHeaders
from followthrough.api.metrics import Metrics
from followthrough.api.services import Services, Using
from followthrough.logging import get_logger
from followthrough.temporal.operations import readiness

log = get_logger(__name__)

DESCRIPTION = """
Followthrough turns resolved incidents into postmortems whose follow-ups get done.

* **Webhooks** (`POST /webhooks/{source}`) start a postmortem for each resolved incident; each
  source authenticates with its own scheme (see the README).
* **People** act through `/api/...` with a personal token (`Authorization: Bearer ft_...`, from
  `followthrough token create --for NAME`). Refusals come back as 403 (not yours to do), 409
  (not now) or 422 (what you sent is wrong), with the reason.
"""


# What the edge (api/edge.py) may answer any request before the route sees it.
EDGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    408: {"description": "the body did not arrive within FOLLOWTHROUGH_REQUEST_BODY_SECONDS"},
    413: {"description": "the body is over the limit of 1 MiB"},
    429: {
        "description": "too many failed attempts at API tokens (/api, sign-in) or one-click "
        "links from this address; Retry-After says when to try again"
    },
}


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Followthrough",
        version="0.1.0",
        description=DESCRIPTION,
        responses=EDGE_RESPONSES,
        docs_url=None,  # served below from our own copy of Swagger UI: it works offline
        redoc_url=None,
    )
    app.state.services = services
    app.include_router(webhooks.router)
    app.include_router(people.router)
    app.include_router(backlog.router)
    app.include_router(preferences.router)
    app.include_router(narratives.router)
    app.include_router(decisions.router)
    app.include_router(alerts.router)
    app.include_router(links.router)
    app.include_router(drafting.router)  # before the dashboard's /postmortems/{id}/{action}
    app.include_router(slack.router)
    app.include_router(sign_in.router)  # the dashboard's sign-in through the provider
    app.include_router(scim.router)
    app.add_exception_handler(scim.ScimRefusal, scim.refused)
    app.include_router(tokens.api)
    dashboard.install(app)
    app.include_router(operations.router)
    app.include_router(tokens.pages)
    _install_docs(app)
    # The last added runs first: every request is counted, and every answer (the edge's
    # refusals too) carries the security headers.
    app.add_middleware(Edge, services=services)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(CountRequests, metrics=services.metrics)

    @app.exception_handler(RequestValidationError)
    async def refused_input(request: Request, err: RequestValidationError) -> JSONResponse:
        """422 naming each field and what is wrong with it, without echoing what was sent: a
        hostile value (a lone surrogate, NaN, 2 MB of text) must not come back, nor fail to."""
        return JSONResponse(
            {"detail": [_named_problem(error) for error in err.errors()]},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

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

    @app.get("/readyz", tags=["operations"])
    async def readyz(using: Using) -> JSONResponse:
        """Ready for work: Temporal answers and the database takes writes. 503 names the part
        that failed; /healthz stays the liveness check."""
        parts = await readiness(using.client, using.store)
        ready = all(state == "ok" for state in parts.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", **parts},
            status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=PlainTextResponse,
        responses={401: {"description": "no metrics token or API token, or a wrong one"}},
    )
    async def metrics(using: Using, _: Scraper) -> Response:
        """Prometheus text format; the open and overdue gauges are read from the record.
        Send FOLLOWTHROUGH_METRICS_TOKEN, or the API token of someone in the directory, as a
        bearer token."""
        text = await asyncio.to_thread(generate_latest, using.metrics.registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return app


async def scraper(request: Request, using: Using) -> str:
    """Who reads /metrics: Prometheus with the metrics token, or a person with their API token."""
    expected = using.settings.metrics_token
    sent = request.headers.get("authorization", "")
    if expected and hmac.compare_digest(sent.encode(), f"Bearer {expected}".encode()):
        return "prometheus"
    return (await token_holder(using, sent, request.method)).person


Scraper = Annotated[str, Depends(scraper)]


def _install_docs(app: FastAPI) -> None:
    """/docs from the Swagger UI files the swagger-ui-bundle package ships, not from a CDN."""
    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Followthrough API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )


def _named_problem(error: Any) -> dict[str, Any]:
    return {
        "loc": [part if isinstance(part, int) else _printable(str(part)) for part in error["loc"]],
        "msg": _printable(str(error["msg"])),
        "type": str(error["type"]),
    }


def _printable(text: str, limit: int = 200) -> str:
    """Text that JSON can carry: lone surrogates escaped, and never longer than `limit`."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


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
