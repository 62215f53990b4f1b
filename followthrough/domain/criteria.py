"""Acceptance criteria: how we will know an action item did what it promised.

One per action item, each of a kind that can be checked: a person who is not the owner signs off
(`manual`), the linked ticket is resolved (`ticket_resolved`), a URL answers as expected
(`http_check`), a PromQL query holds against a threshold (`prometheus_query`), or Prometheus has
an alerting rule (`alert_rule_present`). A new kind is one small class here and one checker in
followthrough/checks/. Criteria are validated when the draft is submitted, not when they run.

Any kind may ask for stability ("must pass N times over M hours") and for a later re-check
("still effective after 30 days").
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from followthrough.domain.problems import format_validation_error

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """Prometheus-style durations: 30s, 5m, 6h, 7d, 2w."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not a duration like 30s, 5m, 6h, 7d or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class Stability(BaseModel):
    """What every kind may add: pass N times over M hours; re-check after some days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(default="", description="what will be true, in words")
    passes_required: int = Field(
        default=1, ge=1, le=50, description="consecutive passing checks needed to verify"
    )
    over_hours: float | None = Field(
        default=None, gt=0, le=24 * 90, description="spread the passing checks over this long"
    )
    recheck_after_days: int | None = Field(
        default=None, ge=1, le=365, description="check again this long after verification"
    )

    @model_validator(mode="after")
    def _spread_needs_passes(self) -> Stability:
        if self.over_hours is not None and self.passes_required < 2:
            raise ValueError("over_hours needs passes_required of 2 or more")
        return self

    @property
    def automated(self) -> bool:
        return True

    @property
    def spacing(self) -> timedelta:
        """Time between two consecutive checks of one verification."""
        if self.over_hours is None or self.passes_required < 2:
            return timedelta(0)
        return timedelta(hours=self.over_hours) / (self.passes_required - 1)

    def summary(self) -> str:
        return self.description.strip() or self.what()

    def what(self) -> str:
        raise NotImplementedError

    def stability(self) -> str:
        parts = []
        if self.passes_required > 1:
            spread = f" over {self.over_hours:g} hours" if self.over_hours else ""
            parts.append(f"must pass {self.passes_required} times{spread}")
        if self.recheck_after_days:
            parts.append(f"re-checked {self.recheck_after_days} days after verification")
        return "; ".join(parts)


class Manual(Stability):
    """A person who is not the owner signs off, with a note."""

    kind: Literal["manual"] = "manual"
    verifier: str | None = Field(
        default=None, description="who signs off; anyone but the owner when not named"
    )
    role: Literal["reviewer", "council", "manager"] | None = Field(
        default=None, description="or: anyone in this role (never the owner)"
    )

    @model_validator(mode="after")
    def _one_way_to_name_who(self) -> Manual:
        if self.verifier is not None and self.role is not None:
            raise ValueError("name a verifier or a role, not both")
        if self.passes_required > 1 or self.recheck_after_days:
            raise ValueError("a manual sign-off happens once; stability needs an automated kind")
        return self

    @property
    def automated(self) -> bool:
        return False

    def what(self) -> str:
        return self.description.strip()


class TicketResolved(Stability):
    """The linked ticket reached a done status with a resolution."""

    kind: Literal["ticket_resolved"] = "ticket_resolved"
    ticket: str | None = Field(
        default=None, pattern=r"^[A-Z][A-Z0-9_]+-\d+$", description="default: the item's ticket"
    )

    def what(self) -> str:
        return f"ticket {self.ticket or 'of this item'} is done, with a resolution"


class HttpCheck(Stability):
    """A URL answers with an expected status, and optionally a body substring or a JSON value."""

    kind: Literal["http_check"] = "http_check"
    url: str
    expect_status: int = Field(default=200, ge=100, le=599)
    body_contains: str | None = Field(default=None, min_length=1)
    json_path: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+|\[\d+\])*$",
        description="e.g. status or checks[0].state",
    )
    json_equals: Any = None
    timeout_seconds: float = Field(default=10, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{url}' is not an http:// or https:// URL with a host")
        return url

    @model_validator(mode="before")
    @classmethod
    def _path_and_value_together(cls, data: Any) -> Any:
        # Judged on what was written: json_equals may rightly be null, so its absence counts.
        if not isinstance(data, dict):
            return data
        if data.get("json_path") is not None and "json_equals" not in data:
            raise ValueError("json_path needs json_equals, the value to expect there")
        if data.get("json_path") is None and data.get("json_equals") is not None:
            raise ValueError("json_equals needs json_path, where to look in the JSON")
        return data

    def what(self) -> str:
        text = f"GET {self.url} answers {self.expect_status}"
        if self.body_contains:
            text += f" with '{self.body_contains}' in the body"
        if self.json_path:
            text += f" with {self.json_path} == {self.json_equals!r}"
        return f"{text} within {self.timeout_seconds:g}s"


Comparison = Literal["<", "<=", ">", ">=", "=="]


def compare(value: float, op: Comparison, threshold: float) -> bool:
    return {
        "<": value < threshold,
        "<=": value <= threshold,
        ">": value > threshold,
        ">=": value >= threshold,
        "==": value == threshold,
    }[op]


class PrometheusQuery(Stability):
    """A PromQL query's value compared against a threshold, optionally over a whole range."""

    kind: Literal["prometheus_query"] = "prometheus_query"
    query: str = Field(min_length=1, max_length=4000)
    op: Comparison
    threshold: float
    hold_for: str | None = Field(default=None, description="e.g. 7d: every point of the range")
    prometheus_url: str | None = Field(
        default=None, description="default: FOLLOWTHROUGH_PROMETHEUS_URL"
    )

    @field_validator("hold_for")
    @classmethod
    def _duration(cls, text: str | None) -> str | None:
        if text is not None:
            span = parse_duration(text)
            if span > timedelta(days=90):
                raise ValueError("hold_for is at most 90d")
        return text

    @field_validator("prometheus_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is not None and urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"'{url}' is not an http:// or https:// URL")
        return url

    def what(self) -> str:
        held = f" for all of the last {self.hold_for}" if self.hold_for else ""
        return f"{self.query} {self.op} {self.threshold:g}{held}"


class AlertRulePresent(Stability):
    """Prometheus's rules API lists an alerting rule with this name (and these labels)."""

    kind: Literal["alert_rule_present"] = "alert_rule_present"
    alert: str = Field(pattern=r"^[A-Za-z_:][A-Za-z0-9_:]*$")
    labels: dict[str, str] = Field(default_factory=dict)
    prometheus_url: str | None = None

    def what(self) -> str:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return f"Prometheus has the alerting rule {self.alert}" + (f" ({labels})" if labels else "")


KINDS = ("manual", "ticket_resolved", "http_check", "prometheus_query", "alert_rule_present")


def _kind_of(value: Any) -> str:
    # A criterion written before kinds existed (description and verifier only) is manual.
    if isinstance(value, dict):
        return str(value.get("kind", "manual"))
    return str(getattr(value, "kind", "manual"))


AcceptanceCriterion = Annotated[
    Annotated[Manual, Tag("manual")]
    | Annotated[TicketResolved, Tag("ticket_resolved")]
    | Annotated[HttpCheck, Tag("http_check")]
    | Annotated[PrometheusQuery, Tag("prometheus_query")]
    | Annotated[AlertRulePresent, Tag("alert_rule_present")],
    Discriminator(_kind_of),
]

_criterion = TypeAdapter[AcceptanceCriterion](AcceptanceCriterion)


def parse_criterion(data: Any) -> tuple[AcceptanceCriterion | None, list[str]]:
    """A criterion from what the draft said, or every problem with it ('where: what')."""
    if not isinstance(data, dict):
        return None, ["must be a mapping with a kind and its fields"]
    kind = data.get("kind", "manual")
    if kind not in KINDS:
        return None, [f"kind '{kind}' is unknown (one of {', '.join(KINDS)})"]
    try:
        return _criterion.validate_python(data), []
    except ValidationError as err:
        # Drop the union tag pydantic puts first in each location: 'http_check.url' -> 'url'.
        lines = format_validation_error(err)
        return None, [line.removeprefix(f"{kind}.").removeprefix(f"{kind}: ") for line in lines]
