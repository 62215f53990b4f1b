"""The process steps (followthrough/domain/steps.py) are pure: each returns the record after the
step and its numbered audit event, and leaves the record it was given as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from followthrough.domain import steps
from followthrough.domain.draft import parse_draft
from followthrough.domain.escalation import business_deadline
from followthrough.domain.incident import parse_incident
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    ActionItemStart,
    ActionItemState,
    Approval,
    AuditAction,
    DoneClaim,
    DraftSubmission,
    OptIn,
    PostmortemState,
    open_action_item,
    open_postmortem,
    opt_in_refusal,
)
from tests.factories import draft_data, incident_data

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
ROOT = Path(__file__).parent.parent


def test_a_step_returns_the_new_record_and_its_event_and_changes_nothing_it_was_given(
    policy: Policy,
) -> None:
    pm = open_postmortem(parse_incident(incident_data(NOW), policy), policy, NOW)
    opened = steps.record_opening(pm, NOW)
    assert (opened.event.seq, opened.state.last_seq, pm.last_seq) == (1, 1, 0)
    assert opened.event.action == AuditAction.POSTMORTEM_OPENED
    assert (opened.event.workflow_id, opened.event.postmortem_id) == (pm.id, pm.id)

    submission = DraftSubmission(by="alice", draft=parse_draft(draft_data(NOW)))
    later = NOW + timedelta(hours=1)
    submitted = steps.submit_draft(opened.state, submission, [], policy, later)
    approved = steps.approve(submitted.state, Approval(by="erin"), later)
    assert (opened.state.state, opened.state.draft, opened.state.last_seq) == (
        PostmortemState.DRAFTING,
        None,
        1,
    )
    assert submitted.state.reviews == [] and submitted.state.state is PostmortemState.IN_REVIEW
    assert approved.state.state is PostmortemState.TRACKING
    assert [approved.event.seq, approved.event.actor, approved.event.detail] == [
        3,
        "erin",
        "approval 1 of 1",
    ]

    spec = approved.state.action_item_specs()[0]
    start = ActionItemStart(
        item_id=approved.state.action_item_id(spec.number),
        postmortem_id=pm.id,
        spec=spec,
        policy=policy,
    )
    item = steps.record_item_opening(open_action_item(start, later), later).state
    claimed = steps.claim_done(item, DoneClaim(by="bob", evidence="PR #812"), later)
    assert (item.state, item.claims, item.last_seq) == (ActionItemState.OPEN, [], 1)
    assert claimed.state.state is ActionItemState.DONE_CLAIMED and len(claimed.state.claims) == 1
    assert (claimed.event.workflow_id, claimed.event.postmortem_id) == (item.id, pm.id)


def test_no_audit_action_is_spelled_out_in_the_workflows_or_the_seeder() -> None:
    """Every audit event comes from a step; the actions' names live in AuditAction alone."""
    seeder = sorted((ROOT / "followthrough" / "seed").glob("*.py"))
    assert seeder, "the seeder's modules moved: point this test at them"
    for path in [*sorted((ROOT / "workflows").glob("*.py")), *seeder]:
        text = path.read_text()
        for action in AuditAction:
            assert f'"{action.value}"' not in text, (path.name, action.value)


def test_opting_in_makes_an_optional_postmortem_the_persons_to_write(policy: Policy) -> None:
    pm = open_postmortem(parse_incident(incident_data(NOW, severity="SEV3"), policy), policy, NOW)
    assert pm.state is PostmortemState.OPTIONAL
    later = NOW + timedelta(days=3)
    assert opt_in_refusal(pm, OptIn(by="nobody-known"), policy) is not None
    taken = steps.opt_in(pm, OptIn(by="dan"), policy, later)
    assert (taken.state.state, taken.state.owner) == (PostmortemState.DRAFTING, "dan")
    days = policy.severity("SEV3").draft_due_days
    assert taken.state.draft_due == business_deadline(later, days, policy.calendar)
    assert taken.event.action == AuditAction.POSTMORTEM_OPTED_IN and taken.event.actor == "dan"
    assert pm.state is PostmortemState.OPTIONAL  # the record it was given is as it was
    refused = opt_in_refusal(taken.state, OptIn(by="erin"), policy)
    assert refused is not None and "only an optional postmortem" in refused
