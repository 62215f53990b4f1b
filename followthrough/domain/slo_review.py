"""The SLO review of a submitted draft: what the incident cost each SLO, and what that demands.

An activity finds the incident's SLOs and asks Prometheus what the impact window cost each
(`SloEvidence`); everything else is judged here, from data:

- the budget consumed: measured (bad / total events) when Prometheus answered, else estimated
  from the draft's `slo_impact` (fraction of requests failing, traffic weight), else the draft
  must give that estimate;
- burn rate, budget consumed, budget remaining before and after, when each alert window would
  have fired, and the findings (slo.py) that follow;
- the rules a draft must meet because of them: a budget consumed at or above the policy's share
  needs a P0 action item; a late or missing SLO alert needs an action item that changes that
  SLO's alerting; a high-severity incident that burned almost nothing needs an item that reviews
  the SLI. An exhausted budget (a release freeze recommendation, told to the council) and a page
  window that can never fire are recorded, not refused: nothing the author writes can fix them.

The impact window is the timeline's 'started' to 'mitigated' (when users stopped hurting);
detection is 'started' to 'detected'. Both come from the merged timeline, which a valid draft has.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from followthrough.domain.draft import Draft, Priority, merged_timeline
from followthrough.domain.incident import Incident
from followthrough.domain.policy import Policy
from followthrough.domain.slo import (
    ALERTING_FINDINGS,
    BudgetMeasurement,
    IncidentImpact,
    Slo,
    SloFinding,
    budget_findings,
    detection_findings,
    incident_impact,
    paging_findings,
    sli_findings,
)
from followthrough.domain.slo_rules import alert_name, proposed_change


class SloQuestion(BaseModel):
    """What the SLO activity is asked: which SLOs, over which window."""

    postmortem_id: str
    services: list[str]
    slo_ids: list[str] | None = None  # the draft's own list; None: the services' SLOs
    start: AwareDatetime
    end: AwareDatetime


class SloEvidence(BaseModel):
    """One SLO of the incident, and what Prometheus said it cost (None: not measured, why)."""

    slo: Slo
    measurement: BudgetMeasurement | None = None
    problem: str = ""
    # The paging alerts of the SLO's service that fired around the impact (alert events).
    pages: list[str] = Field(default_factory=list, max_length=100)


class SloAssessment(BaseModel):
    """What the incident cost one SLO, the findings, and the alerting change proposed."""

    slo: Slo
    method: Literal["measured", "estimated"]
    impact: IncidentImpact
    findings: list[SloFinding] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    measurement: BudgetMeasurement | None = None
    proposed_change: str = ""  # Prometheus rules, when the alerting should change

    def has(self, *kinds: str) -> bool:
        return any(f.kind in kinds for f in self.findings)

    @property
    def freeze_recommended(self) -> bool:
        return self.has("budget_exhausted")

    def summary(self) -> str:
        """One line for the audit trail and the CLI."""
        i = self.impact
        line = (
            f"{self.slo.id} ({self.method}): burn rate {i.burn_rate:.1f}x, consumed "
            f"{i.budget_consumed:.1%} of the {_days(self.slo.period)} budget, remaining "
            f"{i.budget_remaining_before:.1%} -> {i.budget_remaining_after:.1%}"
        )
        if self.findings:
            line += "; " + ", ".join(f.kind for f in self.findings)
        return line


class SloReview(BaseModel):
    assessments: list[SloAssessment] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)  # each a reason to refuse the draft


def _days(period: timedelta) -> str:
    return f"{period.days}-day" if period.days else str(period)


def slo_question(postmortem_id: str, incident: Incident, draft: Draft) -> SloQuestion | None:
    """What to ask about this draft; None when its timeline has no impact window yet."""
    at = {e.kind: e.at for e in merged_timeline(incident, draft)}
    start, end = at.get("started"), at.get("mitigated", at.get("resolved"))
    if start is None or end is None or end <= start:
        return None
    return SloQuestion(
        postmortem_id=postmortem_id,
        services=list(incident.services),
        slo_ids=draft.slo_impact.slos if draft.slo_impact else None,
        start=start,
        end=end,
    )


def review_slos(
    draft: Draft,
    incident: Incident,
    policy: Policy,
    question: SloQuestion,
    evidence: list[SloEvidence],
) -> SloReview:
    """Assess every SLO found, and name every rule the draft does not yet meet."""
    review = SloReview()
    found = {e.slo.id for e in evidence}
    for slo_id in question.slo_ids or []:
        if slo_id not in found:
            review.problems.append(f"slo_impact.slos: there is no SLO '{slo_id}'")
    detected = {e.kind: e.at for e in merged_timeline(incident, draft)}.get("detected")
    detection = detected - question.start if detected is not None else None
    high = policy.is_high_severity(incident.severity)
    for item in evidence:
        assessment = _assess(item, draft, question, detection, high, policy)
        if isinstance(assessment, str):
            review.problems.append(assessment)
            continue
        review.assessments.append(assessment)
        review.problems.extend(_unmet(assessment, draft, policy))
    for i, action in enumerate(draft.action_items):
        change = action.slo_change
        if change is not None and change.slo not in found:
            review.problems.append(
                f"action_items[{i}] '{action.title}': slo_change names '{change.slo}', which is "
                f"not one of this incident's SLOs ({', '.join(sorted(found)) or 'none'})"
            )
    return review


def _assess(
    evidence: SloEvidence,
    draft: Draft,
    question: SloQuestion,
    detection: timedelta | None,
    high_severity: bool,
    policy: Policy,
) -> SloAssessment | str:
    slo, measured, estimate = evidence.slo, evidence.measurement, draft.slo_impact
    notes: list[str] = []
    stated_before = estimate.budget_remaining_before if estimate else None
    impact: IncidentImpact
    if measured is not None and measured.total_events_in_period > 0:
        if measured.error_ratio_before is not None:
            before = 1 - measured.error_ratio_before / slo.error_budget
        else:
            before = stated_before if stated_before is not None else 1.0
            notes.append("no traffic before the incident to measure the budget left")
        impact = incident_impact(
            slo,
            duration=measured.duration,
            error_ratio=measured.error_ratio,
            budget_remaining_before=before,
            bad_events=measured.bad_events,
            total_events_in_period=measured.total_events_in_period,
            actual_detection=detection,
        )
        method: Literal["measured", "estimated"] = "measured"
    elif estimate is not None and estimate.fraction_affected is not None:
        if evidence.problem:
            notes.append(f"estimated from the draft: {evidence.problem}")
        if stated_before is None:
            notes.append("budget remaining before the incident assumed whole")
        impact = incident_impact(
            slo,
            duration=question.end - question.start,
            error_ratio=estimate.fraction_affected,
            budget_remaining_before=1.0 if stated_before is None else stated_before,
            traffic_weight=estimate.traffic_weight,
            actual_detection=detection,
        )
        method = "estimated"
    else:
        why = evidence.problem or "not measured"
        return (
            f"slo_impact: SLO '{slo.id}' ({slo.service}) could not be measured ({why}); "
            "estimate it with slo_impact.fraction_affected (the share of requests that failed "
            "between 'started' and 'mitigated') and traffic_weight"
        )
    review = policy.slo_review
    findings = [
        *budget_findings(impact, slo, review.postmortem_budget),
        *detection_findings(impact, slo, timedelta(minutes=review.detection_slack_minutes)),
        *(sli_findings(impact, slo, review.negligible_budget) if high_severity else []),
        *paging_findings(impact, slo, evidence.pages, review.negligible_budget),
    ]
    proposing = ALERTING_FINDINGS | {"page_unreachable", "paged_too_early"}
    alerting_changes = any(f.kind in proposing for f in findings)
    return SloAssessment(
        slo=slo,
        method=method,
        impact=impact,
        findings=findings,
        notes=notes,
        measurement=measured,
        proposed_change=proposed_change(slo) if alerting_changes else "",
    )


def _unmet(assessment: SloAssessment, draft: Draft, policy: Policy) -> list[str]:
    """The draft's unmet duties for one SLO, each saying what to add."""
    slo, impact = assessment.slo, assessment.impact
    changes = {(a.slo_change.slo, a.slo_change.change) for a in draft.action_items if a.slo_change}
    problems = []
    if assessment.has("postmortem_required") and not any(
        a.priority == Priority.P0 for a in draft.action_items
    ):
        problems.append(
            f"slo '{slo.id}': the incident consumed {impact.budget_consumed:.1%} of the error "
            f"budget (>= {policy.slo_review.postmortem_budget:.0%}); at least one action item "
            "must be P0"
        )
    gaps = [f for f in assessment.findings if f.kind in ALERTING_FINDINGS]
    if gaps and (slo.id, "alerting") not in changes:
        problems.append(
            f"slo '{slo.id}': {'; '.join(f.evidence for f in gaps)}. Add an action item with "
            f"slo_change {{slo: {slo.id}, change: alerting}} (suggested criterion: kind "
            f"alert_rule_present, alert {alert_name(slo, 'page')}); the proposed Prometheus "
            "rules are attached to it"
        )
    if assessment.has("sli_misses_user_pain") and (slo.id, "sli") not in changes:
        [pain] = [f for f in assessment.findings if f.kind == "sli_misses_user_pain"]
        problems.append(
            f"slo '{slo.id}': {pain.evidence}, so the SLI misses user pain. Add an action item "
            f"with slo_change {{slo: {slo.id}, change: sli}} that reviews the SLI"
        )
    return problems


def proposed_changes(assessments: list[SloAssessment]) -> dict[str, str]:
    """SLO id -> the alerting rules proposed for it, for the action items that change it."""
    return {a.slo.id: a.proposed_change for a in assessments if a.proposed_change}
