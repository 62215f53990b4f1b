"""The dashboard's forms for an item's remaining actions: what was typed, read into the action's
own message. A field that cannot be read is refused by name, before anything is sent; the
action's bounds (domain/bounds.py) and its workflow's rules judge the rest."""

from __future__ import annotations

from datetime import date, datetime, time, tzinfo

from pydantic import ValidationError
from starlette.datastructures import FormData

from followthrough.domain.decisions import (
    HOLDS,
    Choice,
    DecisionRequest,
    LiftCondition,
    LiftKind,
    LiftRequest,
)
from followthrough.domain.postmortem import (
    ExtensionDecision,
    ExtensionRequest,
    Reassignment,
    RiskAcceptanceRequest,
)
from followthrough.domain.problems import format_validation_error

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


def council_decision(form: FormData, by: str, zone: tzinfo) -> DecisionRequest:
    """The /council decide form: a choice, services (comma-separated), what lifts a pause or a
    freeze (a budget level in percent, item ids, or a date, midnight in the policy's zone)."""
    chosen = field(form, "choice")
    try:
        choice = Choice(chosen)
    except ValueError:
        raise FormRefused("choice: choose one of " + ", ".join(c.value for c in Choice)) from None
    lifts_when = None
    if choice in HOLDS:
        lifts_when = _lift_condition(form, zone)
    alert = field(form, "alert").strip() or None
    try:
        return DecisionRequest(
            by=by,
            choice=choice,
            services=_names(field(form, "services")),
            lifts_when=lifts_when,
            alert=alert,
            reason=field(form, "reason"),
        )
    except ValidationError as err:
        raise FormRefused("; ".join(format_validation_error(err))) from None


def _names(typed: str) -> list[str]:
    return [n.strip() for n in typed.replace("\n", ",").split(",") if n.strip()]


def _lift_condition(form: FormData, zone: tzinfo) -> LiftCondition:
    kind = field(form, "lift")
    if kind == LiftKind.BUDGET_ABOVE:
        typed = field(form, "level").strip().removesuffix("%")
        try:
            level = float(typed) / 100
        except ValueError:
            raise FormRefused(f"level: '{typed[:20]}' is not a percentage (e.g. 50)") from None
        slo_id = field(form, "slo_id").strip()
        return LiftCondition(kind=LiftKind.BUDGET_ABOVE, slo_id=slo_id or None, level=level)
    if kind == LiftKind.ITEMS_VERIFIED:
        return LiftCondition(kind=LiftKind.ITEMS_VERIFIED, item_ids=_names(field(form, "items")))
    if kind == LiftKind.DATE:
        on = datetime.combine(day(form, "on"), time(), tzinfo=zone)
        return LiftCondition(kind=LiftKind.DATE, on=on)
    raise FormRefused("lift: choose budget_above, items_verified or date")


def council_lift(form: FormData, by: str) -> LiftRequest:
    return LiftRequest(by=by, reason=field(form, "reason"))
