"""The dashboard's forms for an item's remaining actions: what was typed, read into the action's
own message. A field that cannot be read is refused by name, before anything is sent; the
action's bounds (domain/bounds.py) and its workflow's rules judge the rest."""

from __future__ import annotations

from datetime import date

from starlette.datastructures import FormData

from followthrough.domain.postmortem import (
    ExtensionDecision,
    ExtensionRequest,
    Reassignment,
    RiskAcceptanceRequest,
)

_DATE_CHARS = 10  # YYYY-MM-DD
DECISIONS = {"grant": True, "deny": False}


class FormRefused(ValueError):
    """A field of a form could not be read; the message names it."""


def field(form: FormData, name: str) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):
        raise FormRefused(f"{name}: expected text, not a file")
    return value


def day(form: FormData, name: str) -> date:
    return day_of(name, field(form, name))


def day_of(name: str, typed: str) -> date:
    """A date as typed (or picked) in any form, the dashboard's or a Slack modal's."""
    value = typed.strip()
    if not value:
        raise FormRefused(f"{name}: a date is required (YYYY-MM-DD)")
    if len(value) > _DATE_CHARS:
        raise FormRefused(f"{name}: not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FormRefused(f"{name}: '{value}' is not a date (YYYY-MM-DD)") from None


def extension_request(form: FormData, by: str) -> ExtensionRequest:
    return ExtensionRequest(by=by, until=day(form, "until"), reason=field(form, "reason"))


def extension_decision(form: FormData, by: str) -> ExtensionDecision:
    chosen = field(form, "decision")
    if chosen not in DECISIONS:
        raise FormRefused("decision: choose grant or deny")
    return ExtensionDecision(by=by, approve=DECISIONS[chosen], reason=field(form, "reason"))


def reassignment(form: FormData, by: str) -> Reassignment:
    to = field(form, "to").strip()
    if not to:
        raise FormRefused("to: say who the new owner is")
    return Reassignment(
        by=by, to=to, team=field(form, "team").strip() or None, reason=field(form, "reason")
    )


def risk_acceptance(form: FormData, by: str) -> RiskAcceptanceRequest:
    return RiskAcceptanceRequest(by=by, reason=field(form, "reason"))
