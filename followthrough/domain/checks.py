"""A check of an acceptance criterion: what was asked, what came back, and the verdict.

Evidence is kept with every attempt, pass or fail, so a verified item shows why it is verified and
a reopened one shows the owner exactly what failed.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from followthrough.domain.criteria import AcceptanceCriterion
from followthrough.domain.limits import EVIDENCE_EXCERPT_CHARS

# Enough of a body or query result to see what happened, not a whole payload.
EVIDENCE_LIMIT = EVIDENCE_EXCERPT_CHARS


def trimmed(text: str, limit: int = EVIDENCE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 20] + f"... ({len(text)} chars)"


class CheckRequest(BaseModel):
    """What the check activity is asked to do: one attempt at one item's criterion."""

    model_config = ConfigDict(frozen=True)

    action_item_id: str
    attempt: int = Field(ge=1, description="numbered across the item's life, for idempotency")
    criterion: AcceptanceCriterion


class CheckResult(BaseModel):
    """One attempt's evidence. A target that cannot be reached is a failed attempt, not an error."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    at: AwareDatetime
    asked: str = Field(description="what was asked, e.g. the request or the PromQL and its URL")
    answer: str = Field(description="what came back, trimmed")
    reason: str = Field(description="why it passed or failed, in words")


class CheckAttempt(BaseModel):
    """A check result as the item keeps it."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    round: int = Field(description="which done claim (or re-check) it belonged to")
    purpose: str = Field(default="verification", description="verification or recheck")
    result: CheckResult
