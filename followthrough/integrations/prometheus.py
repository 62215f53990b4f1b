"""The one client of Prometheus's HTTP API, for the checkers and for SLO measurement.

    answer = await prometheus_get(base, "/api/v1/query", {"query": q}, timeout, outbound)
    if answer.ok: answer.data   # Prometheus's `data`
    else: answer.reason         # what went wrong, in words

It never raises for what Prometheus or the network does: every outcome is a PrometheusAnswer
that keeps Prometheus's own words and the body as it came, for the evidence.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from followthrough.domain.outbound import OutboundPolicy
from followthrough.integrations.outbound import OutboundRefused, Target, network_failure, pin


@dataclass(frozen=True)
class PrometheusAnswer:
    """One API call's outcome: `data` when Prometheus said success, else what went wrong."""

    ok: bool
    data: Any
    status: int | None  # HTTP status; None when nothing came back
    error_type: str  # Prometheus's errorType, or unreachable, timeout, not_json
    error: str  # in words, Prometheus's own when it gave one
    text: str  # the body as it came, for the evidence

    @property
    def shown(self) -> str:
        return f"HTTP {self.status}\n{self.text}" if self.status is not None else ""

    @property
    def reason(self) -> str:
        """Why there is no data, in words (for evidence and for MeasurementFailed)."""
        if self.error_type in ("timeout", "unreachable", "not_json", "refused"):
            return self.error  # nothing from Prometheus itself: already in words
        return f"Prometheus answered {self.status} {self.error_type}: {self.error}"


async def prometheus_get(
    base: str,
    path: str,
    params: dict[str, str],
    timeout: float,
    outbound: OutboundPolicy | None = None,
) -> PrometheusAnswer:
    """GET base + path: never raises for what Prometheus (or the network) does. With `outbound`,
    only to an address it allows (redirects are not followed either way)."""
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=httpx.Timeout(timeout)) as client,
        ):
            target = Target(url=httpx.URL(f"{base}{path}"))
            if outbound is not None:
                target = await pin(f"{base}{path}", outbound, timeout)
            response = await client.get(
                target.url, params=params, headers=target.headers, extensions=target.extensions
            )
    except OutboundRefused as err:
        return PrometheusAnswer(False, None, None, "refused", f"not asked: {err.reason}", "")
    except (httpx.TimeoutException, TimeoutError):
        error = f"Prometheus at {base} did not answer within {timeout:g}s"
        return PrometheusAnswer(False, None, None, "timeout", error, "")
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as err:
        error = f"could not reach Prometheus at {base}: {network_failure(err)}"
        return PrometheusAnswer(False, None, None, "unreachable", error, "")
    text = response.text
    try:
        body = response.json()
    except ValueError:
        body = None
    if (
        not isinstance(body, dict)
        or body.get("status") not in ("success", "error")
        or (body["status"] == "success" and not isinstance(body.get("data"), dict))
    ):
        error = (
            f"{base}{path} answered {response.status_code} {response.reason_phrase}, "
            "not a Prometheus API answer (is the URL Prometheus's, without /api/v1?)"
        )
        return PrometheusAnswer(False, None, response.status_code, "not_json", error, text)
    if body["status"] != "success" or response.status_code != 200:
        error_type = str(body.get("errorType") or "error")
        error = str(body.get("error") or f"{response.status_code} {response.reason_phrase}")
        return PrometheusAnswer(False, None, response.status_code, error_type, error, text)
    return PrometheusAnswer(True, body.get("data"), response.status_code, "", "", text)
