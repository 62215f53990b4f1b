"""Who owns a postmortem and who may act on it: submitting, reviewing, claiming and verifying."""

from __future__ import annotations

from typing import Any

import pytest

from followthrough.domain.criteria import Manual
from followthrough.domain.draft import action_item_specs, parse_draft
from followthrough.domain.handoffs import verifiers
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    ActionItem,
    ActionItemState,
    Approval,
    ChangeRequest,
    Claim,
    DoneClaim,
    DraftSubmission,
    Postmortem,
    PostmortemState,
    Rejection,
    Review,
    Verdict,
    approval_refusal,
    change_request_refusal,
    claim_refusal,
    open_postmortem,
    rejection_refusal,
    submit_refusal,
    verifier_refusal,
)
from tests.domain.examples import NOW, TODAY, make_incident
from tests.factories import draft_data

# --- who owns a postmortem, and what its severity demands -----------------------------------------


def test_owner_is_the_commander(policy: Policy) -> None:
    pm = open_postmortem(make_incident(policy, commander="dan"), policy, NOW)
    assert (pm.owner, pm.team) == ("dan", "payments")


def test_owner_is_the_manager_of_the_first_services_team(policy: Policy) -> None:
    incident = make_incident(
        policy, commander=None, services=["unlisted", "api-gateway", "checkout"]
    )
    pm = open_postmortem(incident, policy, NOW)
    assert (pm.owner, pm.team) == ("pat", "platform")


def test_owner_falls_back_to_the_default_owner(policy: Policy) -> None:
    for services in ([], ["unlisted"]):
        pm = open_postmortem(make_incident(policy, commander=None, services=services), policy, NOW)
        assert (pm.owner, pm.team) == ("sam", None)


@pytest.mark.parametrize(
    ("severity", "required", "state", "approvals", "draft_days"),
    [
        ("SEV1", True, PostmortemState.DRAFTING, 2, 5),
        ("SEV2", True, PostmortemState.DRAFTING, 1, 7),
        ("SEV3", False, PostmortemState.OPTIONAL, 1, 10),
        ("SEV4", False, PostmortemState.OPTIONAL, 1, 14),
    ],
)
def test_severity_shapes_the_postmortem(
    policy: Policy,
    severity: str,
    required: bool,
    state: PostmortemState,
    approvals: int,
    draft_days: int,
) -> None:
    incident = make_incident(policy, severity=severity, id="INC-7")
    pm = open_postmortem(incident, policy, NOW)
    assert pm.id == "postmortem-generic-INC-7"
    assert (pm.required, pm.state, pm.approvals_required) == (required, state, approvals)
    # Counted in business days on the policy's calendar, due at the start of that workday.
    calendar = policy.calendar
    due_day = calendar.add_business_days(calendar.local_date(incident.resolved_at), draft_days)
    assert pm.draft_due == calendar.start_of(due_day)
    assert calendar.business_days_between(incident.resolved_at.date(), due_day) == draft_days
    assert pm.opened_at == NOW
    assert (pm.draft, pm.draft_version, pm.reviews, pm.last_seq) == (None, 0, [], 0)


# --- submitting -----------------------------------------------------------------------------------


def drafting(policy: Policy, **overrides: Any) -> Postmortem:
    return open_postmortem(make_incident(policy, **overrides), policy, NOW)


def submission(by: str) -> DraftSubmission:
    return DraftSubmission(by=by, draft=parse_draft(draft_data(NOW)))


def test_owner_may_submit_a_good_draft(policy: Policy) -> None:
    assert submit_refusal(drafting(policy), submission("alice"), policy, TODAY) is None


def test_only_the_owner_submits_a_required_postmortem(policy: Policy) -> None:
    refusal = submit_refusal(drafting(policy), submission("erin"), policy, TODAY)
    assert refusal == "only the postmortem owner (alice) can submit its draft"


def test_owner_may_resubmit_after_changes_requested(policy: Policy) -> None:
    pm = drafting(policy).model_copy(update={"state": PostmortemState.CHANGES_REQUESTED})
    assert submit_refusal(pm, submission("alice"), policy, TODAY) is None


def test_anyone_in_the_directory_may_opt_in(policy: Policy) -> None:
    pm = drafting(policy, severity="SEV3")
    assert pm.state is PostmortemState.OPTIONAL
    for person in ("erin", "grace", "maria", "alice"):
        assert submit_refusal(pm, submission(person), policy, TODAY) is None


def test_stranger_cannot_opt_in(policy: Policy) -> None:
    pm = drafting(policy, severity="SEV4")
    refusal = submit_refusal(pm, submission("mallory"), policy, TODAY)
    assert refusal == "'mallory' is not in the policy's directory and cannot opt in"


@pytest.mark.parametrize(
    "state",
    [
        PostmortemState.IN_REVIEW,
        PostmortemState.TRACKING,
        PostmortemState.CLOSED,
        PostmortemState.NOT_REQUIRED,
    ],
)
def test_no_submission_outside_drafting(policy: Policy, state: PostmortemState) -> None:
    pm = drafting(policy).model_copy(update={"state": state})
    refusal = submit_refusal(pm, submission("alice"), policy, TODAY)
    assert refusal == f"{pm.id} is {state.value}; a draft can be submitted only while drafting"


def test_bad_draft_is_refused_with_its_problems(policy: Policy) -> None:
    pm = drafting(policy)
    bad = DraftSubmission(by="alice", draft=parse_draft(draft_data(NOW, impact=" ")))
    refusal = submit_refusal(pm, bad, policy, TODAY)
    assert refusal is not None
    assert refusal.startswith(f"draft for {pm.id} rejected: 1 problem:")
    assert "impact: missing" in refusal


# --- reviewing ------------------------------------------------------------------------------------


def in_review(policy: Policy, *, commander: str = "alice", version: int = 1) -> Postmortem:
    return drafting(policy, commander=commander).model_copy(
        update={
            "state": PostmortemState.IN_REVIEW,
            "draft": parse_draft(draft_data(NOW)),
            "draft_version": version,
            "submitted_at": NOW,
        }
    )


def test_reviewers_and_council_may_approve(policy: Policy) -> None:
    pm = in_review(policy)
    for reviewer in ("erin", "pat", "grace", "heidi"):
        assert approval_refusal(pm, Approval(by=reviewer), policy) is None


def test_author_cannot_approve_own_draft(policy: Policy) -> None:
    pm = in_review(policy, commander="erin")  # a reviewer who wrote this one
    refusal = approval_refusal(pm, Approval(by="erin"), policy)
    assert refusal == "erin wrote this draft and cannot review it"


def test_non_reviewer_cannot_approve(policy: Policy) -> None:
    refusal = approval_refusal(in_review(policy), Approval(by="bob"), policy)
    assert refusal == "bob is not a reviewer in the policy"


def test_double_approval_is_refused(policy: Policy) -> None:
    review = Review(reviewer="erin", verdict=Verdict.APPROVED, at=NOW, draft_version=2)
    pm = in_review(policy, version=2).model_copy(update={"reviews": [review]})
    refusal = approval_refusal(pm, Approval(by="erin"), policy)
    assert refusal == "erin already approved draft version 2"
    assert approval_refusal(pm, Approval(by="frank"), policy) is None


def test_approval_of_an_older_version_does_not_count(policy: Policy) -> None:
    review = Review(reviewer="erin", verdict=Verdict.APPROVED, at=NOW, draft_version=1)
    pm = in_review(policy, version=2).model_copy(update={"reviews": [review]})
    assert pm.approvals() == set()
    assert approval_refusal(pm, Approval(by="erin"), policy) is None


@pytest.mark.parametrize(
    "state", [PostmortemState.DRAFTING, PostmortemState.CHANGES_REQUESTED, PostmortemState.TRACKING]
)
def test_approval_only_in_review(policy: Policy, state: PostmortemState) -> None:
    pm = in_review(policy).model_copy(update={"state": state})
    refusal = approval_refusal(pm, Approval(by="erin"), policy)
    assert refusal == f"{pm.id} is {state.value}, not in review"


def test_change_request_needs_a_reason(policy: Policy) -> None:
    pm = in_review(policy)
    refusal = change_request_refusal(pm, ChangeRequest(by="erin", reason="  "), policy)
    assert refusal == "say what needs to change (a reason is required)"
    ok = ChangeRequest(by="erin", reason="Name the config system")
    assert change_request_refusal(pm, ok, policy) is None


def test_change_request_follows_the_review_rules(policy: Policy) -> None:
    pm = in_review(policy)
    request = ChangeRequest(by="bob", reason="More detail")
    assert change_request_refusal(pm, request, policy) == "bob is not a reviewer in the policy"
    drafting_pm = pm.model_copy(update={"state": PostmortemState.DRAFTING})
    request = ChangeRequest(by="erin", reason="More detail")
    assert change_request_refusal(drafting_pm, request, policy) == (
        f"{pm.id} is drafting, not in review"
    )


# --- following through on action items ------------------------------------------------------------


def make_item(state: ActionItemState, number: int = 1) -> ActionItem:
    """Item 1 of the factory draft is bob's, anyone may verify; item 2 is carol's, pat verifies."""
    spec = action_item_specs(parse_draft(draft_data(NOW)))[number - 1]
    return ActionItem(
        id=f"postmortem-generic-INC-7-item-{number}",
        postmortem_id="postmortem-generic-INC-7",
        spec=spec,
        owner=spec.owner,
        team=spec.team,
        due=spec.due,
        state=state,
        opened_at=NOW,
    )


def test_owner_claims_done_with_evidence() -> None:
    item = make_item(ActionItemState.OPEN)
    assert claim_refusal(item, DoneClaim(by="bob", evidence="https://ci/run/42")) is None


def test_only_the_owner_can_claim() -> None:
    item = make_item(ActionItemState.OPEN)
    refusal = claim_refusal(item, DoneClaim(by="alice", evidence="https://ci/run/42"))
    assert refusal == f"only the owner (bob) can claim {item.id} done"


def test_claim_needs_evidence() -> None:
    refusal = claim_refusal(make_item(ActionItemState.OPEN), DoneClaim(by="bob", evidence=" "))
    assert refusal is not None and refusal.startswith("evidence is required")


@pytest.mark.parametrize("state", [ActionItemState.DONE_CLAIMED, ActionItemState.VERIFIED])
def test_claim_only_when_open(state: ActionItemState) -> None:
    item = make_item(state)
    refusal = claim_refusal(item, DoneClaim(by="bob", evidence="https://ci/run/42"))
    assert refusal == f"{item.id} is {state.value}; only an open item can be claimed done"


def test_owner_cannot_verify_own_work(policy: Policy) -> None:
    item = make_item(ActionItemState.DONE_CLAIMED)
    refusal = verifier_refusal(item, "bob", policy)
    assert refusal == f"bob owns {item.id} and cannot verify their own work"


def test_anyone_in_the_directory_verifies_when_none_is_named(policy: Policy) -> None:
    item = make_item(ActionItemState.DONE_CLAIMED)
    assert verifier_refusal(item, "maria", policy) is None
    assert verifier_refusal(item, "mallory", policy) == "'mallory' is not in the policy's directory"


def test_only_the_named_verifier_verifies(policy: Policy) -> None:
    item = make_item(ActionItemState.DONE_CLAIMED, number=2)
    criterion = item.spec.acceptance_criterion
    assert isinstance(criterion, Manual) and criterion.verifier == "pat"
    assert verifier_refusal(item, "pat", policy) is None
    refusal = verifier_refusal(item, "maria", policy)
    assert refusal == f"only the named verifier (pat) can verify {item.id}"


@pytest.mark.parametrize(
    ("criterion", "claimant", "told"),
    [
        ({}, "bob", ["maria"]),  # anyone may verify: the team's manager is the one told
        ({}, "maria", []),  # the manager claimed it before it was reassigned: nobody is told
        ({"verifier": "pat"}, "bob", ["pat"]),
        ({"role": "council"}, "bob", ["grace", "heidi"]),
        ({"role": "reviewer"}, "bob", ["erin", "frank", "grace", "heidi", "maria", "pat"]),
        ({"role": "reviewer"}, "pat", ["erin", "frank", "grace", "heidi", "maria"]),
        ({"role": "manager"}, "bob", ["maria"]),
    ],
)
def test_those_told_of_a_claim_may_verify_it(
    policy: Policy, criterion: dict[str, str], claimant: str, told: list[str]
) -> None:
    item = make_item(ActionItemState.DONE_CLAIMED)
    manual = Manual(description=item.spec.acceptance_criterion.description, **criterion)
    item = item.model_copy(
        update={
            "spec": item.spec.model_copy(update={"acceptance_criterion": manual}),
            "claims": [Claim(by=claimant, evidence="https://ci/run/42", at=NOW)],
        }
    )
    assert verifiers(item, policy) == told
    assert all(verifier_refusal(item, person, policy) is None for person in told)
    assert verifier_refusal(item, claimant, policy) is not None
    assert verifier_refusal(item, item.owner, policy) is not None


@pytest.mark.parametrize("state", [ActionItemState.OPEN, ActionItemState.VERIFIED])
def test_verify_only_when_done_claimed(policy: Policy, state: ActionItemState) -> None:
    item = make_item(state)
    refusal = verifier_refusal(item, "maria", policy)
    assert refusal == (
        f"{item.id} is {state.value}; only an item claimed done can be verified or rejected"
    )


def test_rejection_needs_a_reason(policy: Policy) -> None:
    item = make_item(ActionItemState.DONE_CLAIMED, number=2)
    refusal = rejection_refusal(item, Rejection(by="pat", reason=""), policy)
    assert refusal == "say why the acceptance criterion is not met (a reason is required)"
    assert rejection_refusal(item, Rejection(by="pat", reason="No canary yet"), policy) is None


def test_rejection_follows_the_verifier_rules(policy: Policy) -> None:
    item = make_item(ActionItemState.DONE_CLAIMED, number=2)
    refusal = rejection_refusal(item, Rejection(by="carol", reason="not done"), policy)
    assert refusal == f"carol owns {item.id} and cannot verify their own work"
