"""`GET /api/alert-quality?month=YYYY-MM`: the month's alert-quality review, for anyone signed in.

The dashboard's /alerts page shows the same review through `alert_quality`, so a script and the
browser read the same figures.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from followthrough.api.auth import Person
from followthrough.api.services import Services, Using
from followthrough.domain.alert_quality import (
    MONTH,
    AlertQualityReview,
    month_bounds,
    review_alert_quality,
)
from followthrough.domain.limits import ALERTS_PER_REVIEW

router = APIRouter(
    prefix="/api",
    tags=["alerts"],
    responses={401: {"description": "no API token, or an unknown or revoked one"}},
)

Month = Annotated[
    str, Query(pattern=MONTH.pattern, max_length=7, examples=["2026-11"], description="YYYY-MM")
]

# Incidents resolved this long after the month still count for its alerts and detection gaps.
RESOLVED_AFTER = timedelta(days=31)


@router.get(
    "/alert-quality",
    responses={422: {"description": "month is not YYYY-MM between 2000-01 and 2099-12"}},
)
async def read_alert_quality(month: Month, person: Person, using: Using) -> AlertQualityReview:
    """Alerts and pages per service (the one behind most pages flagged), noisy alerts, pages
    that burned no error budget and incidents no alert caught, each with a proposal."""
    return await alert_quality(using, month)


async def alert_quality(using: Services, month: str) -> AlertQualityReview:
    """The review of `month` from the record; HTTPException 422 naming the field otherwise."""
    try:
        start, end = month_bounds(month)
    except ValueError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    store, policy = using.store, using.policy
    alerts = await asyncio.to_thread(
        store.alerts.started_between, start, end, ALERTS_PER_REVIEW + 1
    )
    incidents = await asyncio.to_thread(store.facts.incidents, start, end + RESOLVED_AFTER)
    review = review_alert_quality(
        month,
        alerts[:ALERTS_PER_REVIEW],
        incidents,
        policy.alerts,
        policy.slo_review.negligible_budget,
    )
    if len(alerts) > ALERTS_PER_REVIEW:
        review = review.model_copy(update={"cut_at": ALERTS_PER_REVIEW})
    return review
