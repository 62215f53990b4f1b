"""Separation of duties: whoever claims work done, asks for time or owns the work never judges it,
however the item is reassigned meanwhile.

Real Temporal (time-skipping server), a real worker and SQLite; requests go through the real app.
"""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from tests.api_support import Api
from tests.test_api import expect, stored_item, tracked_postmortem


async def test_who_claimed_done_cannot_judge_the_claim_after_handing_the_item_on(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    _, bob_item, _ = await tracked_postmortem(api, time_skipping)
    item = f"/api/action-items/{bob_item}"
    expect(await api.post(f"{item}/claim-done", "bob", {"evidence": "PR 42"}), 200)
    expect(await api.post(f"{item}/reassign", "bob", {"to": "alice"}), 200)

    expect(await api.post(f"{item}/verify", "bob", {}), 403, "claimed .* done and cannot judge")
    expect(
        await api.post(f"{item}/reject", "bob", {"reason": "not really done"}),
        403,
        "claimed .* done and cannot judge",
    )
    unchanged = stored_item(api, bob_item)
    assert (unchanged.state.value, unchanged.owner, unchanged.decisions) == (
        "done_claimed",
        "alice",
        [],
    )

    verified = expect(await api.post(f"{item}/verify", "erin", {"note": "paged in drill"}), 200)
    assert verified["state"] == "verified"


async def test_who_asked_for_more_time_cannot_decide_it_after_handing_the_item_on(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    _, bob_item, _ = await tracked_postmortem(api, time_skipping)
    item = f"/api/action-items/{bob_item}"
    # maria manages payments, so she may own its items and decide its extensions
    expect(await api.post(f"{item}/reassign", "bob", {"to": "maria"}), 200)
    due = stored_item(api, bob_item).due
    later = due.replace(year=due.year + 1).isoformat()
    expect(await api.post(f"{item}/extension", "maria", {"until": later, "reason": "vendor"}), 200)
    expect(await api.post(f"{item}/reassign", "maria", {"to": "alice"}), 200)

    decide = f"{item}/extension/decision"
    expect(
        await api.post(decide, "maria", {"approve": True}),
        403,
        "maria asked for this extension and cannot decide it",
    )
    assert stored_item(api, bob_item).due == due  # nothing changed
    decided = expect(await api.post(decide, "grace", {"approve": True}), 200)
    assert decided["due"] == later


async def test_a_council_member_cannot_accept_the_risk_of_work_she_owns_owned_or_claimed(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    # grace sits on the council and, in this policy, also works in platform
    policy = api.services.policy.model_copy(deep=True)
    policy.teams["platform"].members.append("grace")
    api.services.settings.__dict__["loaded_policy"] = policy
    _, _, carol_item = await tracked_postmortem(api, time_skipping)
    item = f"/api/action-items/{carol_item}"
    risk = f"{item}/accept-risk"
    reason = {"reason": "canary tooling is a Q3 project"}

    expect(await api.post(f"{item}/reassign", "pat", {"to": "grace"}), 200)
    expect(await api.post(risk, "grace", reason), 403, "grace owns or owned .* cannot accept")
    expect(await api.post(f"{item}/claim-done", "grace", {"evidence": "canary PR 9"}), 200)
    expect(await api.post(f"{item}/reassign", "grace", {"to": "dan"}), 200)
    expect(await api.post(risk, "grace", reason), 403, "grace owns or owned .* cannot accept")
    assert stored_item(api, carol_item).risk_acceptance is None

    accepted = expect(await api.post(risk, "heidi", reason), 200)
    assert accepted["state"] == "risk_accepted"
