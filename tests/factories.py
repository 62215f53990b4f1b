"""Realistic incidents and drafts for the tests, relative to a given moment."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any


def incident_data(now: datetime, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": f"INC-{uuid.uuid4().hex[:8]}",
        "title": "Checkout returned 502s after a config push",
        "severity": "SEV2",
        "services": ["checkout"],
        "commander": "alice",
        "started_at": (now - timedelta(hours=4)).isoformat(),
        "detected_at": (now - timedelta(hours=3, minutes=40)).isoformat(),
        "acknowledged_at": (now - timedelta(hours=3, minutes=35)).isoformat(),
        "mitigated_at": (now - timedelta(hours=2)).isoformat(),
        "resolved_at": (now - timedelta(hours=1)).isoformat(),
        "summary": "A bad load-balancer config dropped half the checkout backends.",
    }
    data.update(overrides)
    return data


def draft_data(now: datetime, **overrides: Any) -> dict[str, Any]:
    today = now.date()
    data: dict[str, Any] = {
        "summary": "A config push removed half the checkout backends from the load balancer.",
        "impact": "38% of checkout requests failed with 502 for 2 hours; about 4,100 orders lost.",
        "timeline": [
            {
                "at": (now - timedelta(hours=3, minutes=20)).isoformat(),
                "kind": "decision",
                "description": "Rolled back the load-balancer config instead of scaling out.",
            },
        ],
        "contributing_factors": [
            {"description": "Config pushes skip canary for the load balancer", "tags": ["deploy"]},
        ],
        "detection_gaps": ["No alert on the checkout 5xx ratio; a customer reported it first."],
        "recovery_steps": ["Reverted lb-config to the previous revision", "Drained bad nodes"],
        "action_items": [
            {
                "title": "Alert on checkout 5xx ratio",
                "owner": "bob",
                "team": "payments",
                "due": (today + timedelta(days=14)).isoformat(),
                "priority": "P1",
                "acceptance_criterion": {
                    "description": "A page fires within 5 minutes when the checkout 5xx ratio "
                    "exceeds 2% for 5 minutes",
                },
            },
            {
                "title": "Canary load-balancer config pushes",
                "owner": "carol",
                "team": "platform",
                "due": (today + timedelta(days=21)).isoformat(),
                "priority": "P2",
                "acceptance_criterion": {
                    "description": "100% of lb-config pushes go through a 10% canary for at "
                    "least 15 minutes",
                    "verifier": "pat",
                },
            },
        ],
    }
    data.update(overrides)
    return data


def status_updates_data(now: datetime, *minutes_after_detection: int) -> list[dict[str, Any]]:
    """Status-update timeline entries, minutes after incident_data's detection (now - 3h40).

    With none given: 10, 40, 70 and 100 minutes, the last at mitigation (now - 2h), which keeps
    the default policy's SEV1 contract (the first within 15 minutes, then every 30).
    """
    detected = now - timedelta(hours=3, minutes=40)
    return [
        {
            "at": (detected + timedelta(minutes=m)).isoformat(),
            "kind": "status_update",
            "description": "Status page updated",
        }
        for m in minutes_after_detection or (10, 40, 70, 100)
    ]
