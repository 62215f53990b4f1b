"""Writing and reviewing a postmortem in the browser (followthrough/api/drafting.py).

The real app (in-process), a real worker on the time-skipping server and SQLite: the owner writes
a draft from the editor's form, saves as it goes (versioned on the server, a stale save refused
with what changed), the live list equals draft_problems, the saved draft survives a new app
instance, submitting goes through the workflow's update; a reviewer sees each proposed item
whole, comments per section, requests changes (the comments reach the owner), sees what changed
in the resubmitted version and approves.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from followthrough.api.drafting import EDITOR_CONTENT_SECURITY_POLICY, drafts
from followthrough.domain.draft import Draft, draft_problems, parse_draft
from followthrough.domain.draft_form import draft_changes, draft_from_form, fresh_draft
from followthrough.domain.draft_templates import DraftTemplate, SuggestedItem
from followthrough.domain.policy import Policy, load_policy
from followthrough.storage import Store
from followthrough.storage.drafting import DraftStore, Seen, StaleDraft
from tests.api_support import Api, api_for
from tests.factories import draft_data, status_updates_data
from tests.test_api import open_postmortem, stored_postmortem
from tests.test_dashboard import browser, csrf_of, flash, text_of

JSON = {"Accept": "application/json"}


def form_of(data: dict[str, Any], zone: str = "UTC") -> dict[str, str]:
    """A draft as the editor's fields hold it (what a person types into the page)."""
    form: dict[str, str] = {
        "summary": data.get("summary", ""),
        "impact": data.get("impact", ""),
        "recovery_validation": data.get("recovery_validation", ""),
        "detection_gaps": "\n".join(data.get("detection_gaps", [])),
        "recovery_steps": "\n".join(data.get("recovery_steps", [])),
    }
    for i, entry in enumerate(data.get("timeline", [])):
        at = datetime.fromisoformat(entry["at"])
        form |= {
            f"timeline-{i}-at": at.isoformat(),
            f"timeline-{i}-kind": entry["kind"],
            f"timeline-{i}-description": entry["description"],
        }
    for i, factor in enumerate(data.get("contributing_factors", [])):
        form |= {
            f"factor-{i}-description": factor["description"],
            f"factor-{i}-tags": ", ".join(factor["tags"]),
        }
    for i, item in enumerate(data.get("action_items", [])):
        criterion = item["acceptance_criterion"]
        form |= {f"item-{i}-{k}": item[k] for k in ("title", "owner", "team", "due", "priority")}
        form |= {f"item-{i}-kind": criterion.get("kind", "manual")}
        form |= {f"item-{i}-criterion_{k}": str(v) for k, v in criterion.items() if k != "kind"}
    return form


def with_kinds(data: dict[str, Any]) -> dict[str, Any]:
    """The draft as the editor writes it: every criterion names its kind."""
    items = [
        item | {"acceptance_criterion": {"kind": "manual"} | item["acceptance_criterion"]}
        for item in data["action_items"]
    ]
    return data | {"action_items": items}


def test_the_form_reads_back_as_the_draft_it_shows() -> None:
    now = datetime.fromisoformat("2026-11-20T12:00:00+00:00")
    data = with_kinds(draft_data(now))
    assert draft_from_form(form_of(data), "UTC") == parse_draft(data)
    bad = form_of(data) | {"timeline-0-at": "yesterday", "item-1-due": "soon"}
    try:
        draft_from_form(bad, "UTC")
    except Exception as err:  # InvalidDraft names each field
        assert "timeline[0].at: 'yesterday' is not a date and time" in str(err)
        assert "action_items[1].due: 'soon' is not a date" in str(err)
    else:
        raise AssertionError("a bad date was read")
    too_many = form_of(data) | {"item-30-title": "one too many"}
    try:
        draft_from_form(too_many, "UTC")
    except Exception as err:
        assert "item-30-title: at most 30 rows" in str(err)
    else:
        raise AssertionError("a 31st action item was read")


def test_templates_add_required_sections_and_suggest_items() -> None:
    policy = load_policy()
    template = DraftTemplate(
        required_sections=["recovery_validation"],
        suggested_action_items=[SuggestedItem(title="Add a runbook entry", team="payments")],
    )
    templated = policy.model_copy(update={"templates": {"SEV2": template}})
    now = datetime.fromisoformat("2026-11-20T12:00:00+00:00")
    from followthrough.domain.incident import parse_incident
    from tests.factories import incident_data

    incident = parse_incident(incident_data(now), policy)
    assert incident.severity == "SEV2"
    draft = parse_draft(draft_data(now))
    today = now.date()
    required = "recovery_validation: missing; the policy's template 'SEV2' requires it"
    assert required in draft_problems(draft, incident, templated, today=today)
    assert required not in draft_problems(draft, incident, policy, today=today)
    validated = draft.model_copy(update={"recovery_validation": "Error ratio 0% for 2 hours"})
    assert required not in draft_problems(validated, incident, templated, today=today)

    fresh = fresh_draft(incident, templated)
    assert [i.title for i in fresh.action_items] == ["Add a runbook entry"]
    assert {e.kind for e in fresh.timeline} >= {"started", "detected", "resolved"}
    assert fresh_draft(incident, policy).action_items == []

    # A template keyed by nothing the policy knows would never apply: `policy check` says so.
    with pytest.raises(ValueError, match=r"templates\.chekout: neither a severity nor a service"):
        Policy.model_validate(policy.model_dump() | {"templates": {"chekout": {}}})


def test_what_changed_is_said_per_section_and_item() -> None:
    now = datetime.fromisoformat("2026-11-20T12:00:00+00:00")
    before = parse_draft(draft_data(now))
    items = [before.action_items[0].model_copy(update={"priority": "P0"})]
    after = before.model_copy(update={"impact": "more", "action_items": items})
    assert draft_changes(before, after) == [
        "impact changed",
        "action item 'Canary load-balancer config pushes' removed",
        "action item 'Alert on checkout 5xx ratio' changed",
    ]
    assert draft_changes(before, before) == []


async def test_a_draft_is_written_reviewed_and_approved_in_the_browser(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id = await open_postmortem(api, time_skipping)
    now = await time_skipping.get_current_time()
    policy, store = api.services.policy, api.services.store
    editor = f"/postmortems/{pm_id}/draft"
    data = with_kinds(draft_data(now))
    vague = {"kind": "manual", "description": "Improve monitoring of the checkout service"}
    first = data | {"action_items": [data["action_items"][0] | {"acceptance_criterion": vague}]}

    async with browser(api, "alice") as alice, browser(api, "dan") as dan:
        page = await alice.get(editor)
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == EDITOR_CONTENT_SECURITY_POLICY
        assert "started (from the incident)" in page.text  # the timeline comes pre-filled
        assert "impact: missing" in text_of(page)
        csrf = csrf_of(page)

        # Someone who may not submit it may not save it either; nothing is kept.
        refused = await dan.post(editor, data={"csrf": csrf_of(await dan.get("/"))}, headers=JSON)
        assert refused.status_code == 403, refused.text
        assert "only the postmortem owner (alice)" in refused.json()["detail"]
        assert drafts(api.services).latest(pm_id) is None

        saved = await alice.post(
            editor, data=form_of(first) | {"csrf": csrf, "version": "0"}, headers=JSON
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["version"] == 1
        kept = drafts(api.services).latest(pm_id)
        assert kept is not None and kept.saved_by == "alice"
        draft = Draft.model_validate(kept.draft)
        pm = stored_postmortem(api, pm_id)
        today = policy.calendar.local_date(api.services.clock())
        # The live list is the workflow's own rules, and it names the vague criterion.
        assert saved.json()["problems"] == draft_problems(draft, pm.incident, policy, today=today)
        assert any("is not measurable" in p for p in saved.json()["problems"])

        # A save based on a version someone replaced is refused with what changed.
        stale = await alice.post(
            editor, data=form_of(data) | {"csrf": csrf, "version": "0"}, headers=JSON
        )
        assert stale.status_code == 409, stale.text
        assert stale.json()["version"] == 1 and "alice saved version 1" in stale.json()["detail"]
        assert stale.json()["changes"] == ["everything: the first version"]
        assert drafts(api.services).latest(pm_id) == kept  # nothing written over

        # Past the limits: refused naming the field, nothing saved.
        long_title = form_of(first) | {"item-0-title": "x" * 300, "csrf": csrf, "version": "1"}
        too_long = await alice.post(editor, data=long_title, headers=JSON)
        assert too_long.status_code == 422
        assert "action_items[0].title" in too_long.json()["detail"]
        assert drafts(api.services).latest(pm_id) == kept

    # A new app instance (a restart, another browser) reads the saved draft.
    restarted_store = Store(store.url)
    try:
        async with (
            api_for(api.services.client, restarted_store, api.services.settings) as restarted,
            browser(restarted, "alice") as alice,
        ):
            page = await alice.get(editor)
            assert data["impact"] in page.text and 'name="version" value="1"' in page.text
            assert "Improve monitoring of the checkout service" in page.text

            # Without scripts: the form's Submit button saves and submits; refused first ...
            refused_submit = await alice.post(
                editor,
                data=form_of(first) | {"csrf": csrf_of(page), "version": "1", "intent": "submit"},
            )
            said = await flash(alice, refused_submit)
            assert "is not measurable" in said["error"]
            assert stored_postmortem(api, pm_id).state.value == "drafting"

            # ... then fixed and accepted.
            page = await alice.get(editor)
            submitted = await alice.post(
                editor,
                data=form_of(data) | {"csrf": csrf_of(page), "version": "2", "intent": "submit"},
            )
            assert "Submitted draft version 1" in (await flash(alice, submitted))["done"]
    finally:
        restarted_store.close()
    pm = stored_postmortem(api, pm_id)
    assert pm.state.value == "in_review" and pm.draft == parse_draft(data)

    review = f"/postmortems/{pm_id}/review"
    async with browser(api, "erin") as erin, browser(api, "alice") as alice:
        page = await erin.get(review)
        seen = text_of(page)
        assert "This is the first version you see" in seen
        assert "Canary load-balancer config pushes" in seen and '"verifier": "pat"' in page.text
        commented = await erin.post(
            f"{review}/comment",
            data={"csrf": csrf_of(page), "section": "impact", "text": "How many orders, exactly?"},
        )
        assert "Comment on impact kept" in (await flash(erin, commented))["done"]
        page = await erin.get(review)
        assert "How many orders, exactly?" in page.text
        assert "No changes since you last looked" in text_of(page)
        bad_section = await erin.post(
            f"{review}/comment", data={"csrf": csrf_of(page), "section": "x", "text": "y"}
        )
        assert "section: 'x' is not one of" in (await flash(erin, bad_section))["error"]

        sent_back = await erin.post(
            f"{review}/request-changes", data={"csrf": csrf_of(page), "text": "Needs numbers"}
        )
        assert "changes requested" in (await flash(erin, sent_back))["done"]
        pm = stored_postmortem(api, pm_id)
        assert pm.state.value == "changes_requested"
        assert "Needs numbers" in pm.reviews[-1].comment
        assert "- impact (erin): How many orders, exactly?" in pm.reviews[-1].comment

        # The owner edits what was submitted and resubmits.
        page = await alice.get(editor)  # saves 2 (refused on submit) and 3 (submitted)
        assert 'name="version" value="3"' in page.text
        resubmitted = data | {"impact": data["impact"] + " Exactly 4,112 orders."}
        submitted = await alice.post(
            editor,
            data=form_of(resubmitted) | {"csrf": csrf_of(page), "version": "3", "intent": "submit"},
        )
        assert "Submitted draft version 2" in (await flash(alice, submitted))["done"]

        page = await erin.get(review)
        assert "Changed since version 1" in text_of(page) and "impact changed" in page.text
        approved = await erin.post(
            f"/postmortems/{pm_id}/approve",
            data={"csrf": csrf_of(page), "back": review, "text": "Good"},
        )
        assert "now tracking" in (await flash(erin, approved))["done"]
    assert stored_postmortem(api, pm_id).state.value == "tracking"


async def test_the_draft_exports_as_yaml_the_cli_submits(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    import yaml

    pm_id = await open_postmortem(api, time_skipping)
    now = await time_skipping.get_current_time()
    data = with_kinds(draft_data(now))
    async with browser(api, "alice") as alice:
        page = await alice.get(f"/postmortems/{pm_id}/draft")
        form = form_of(data) | {"csrf": csrf_of(page), "version": "0"}
        assert (await alice.post(f"/postmortems/{pm_id}/draft", data=form)).status_code == 303
        exported = await alice.get(f"/postmortems/{pm_id}/draft.yaml")
    assert exported.status_code == 200
    assert parse_draft(yaml.safe_load(exported.text)) == parse_draft(data)


def test_two_saves_of_the_same_version_never_both_land(store: Store) -> None:
    """Co-authors saving at once, on SQLite and PostgreSQL: exactly one save of each version."""
    saved_drafts = DraftStore(store.db)
    at = datetime.fromisoformat("2026-11-20T12:00:00+00:00")
    barrier = threading.Barrier(4)

    def save(n: int) -> int | None:
        barrier.wait()
        try:
            return saved_drafts.save("pm-1", 0, {"impact": f"by {n}"}, f"p{n}", at, 0).version
        except StaleDraft as stale:
            assert stale.latest is not None and stale.latest.version == 1
            return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(save, range(4)))
    assert sorted(outcomes, key=str) == [1, None, None, None]
    latest = saved_drafts.latest("pm-1")
    assert latest is not None and latest.version == 1
    assert latest.draft["impact"] == f"by {outcomes.index(1)}"

    # What a reviewer saw is replaced, not added to.
    saved_drafts.mark_seen("pm-1", "erin", Seen(draft_version=1, draft={"impact": "a"}))
    saved_drafts.mark_seen("pm-1", "erin", Seen(draft_version=2, draft={"impact": "b"}))
    assert saved_drafts.seen("pm-1", "erin") == Seen(draft_version=2, draft={"impact": "b"})


async def test_a_broken_communication_contract_is_shown_with_its_answer(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    """SEV1: the first update within 15 min of detection, then every 30 (the default policy)."""
    pm_id = await open_postmortem(api, time_skipping, severity="SEV1")
    now = await time_skipping.get_current_time()
    url = f"/api/postmortems/{pm_id}/draft"
    data = draft_data(now)
    detected = stored_postmortem(api, pm_id).incident.detected_at
    assert detected is not None
    # Updates 25 and 40 min after detection; mitigated 100 min after it.
    opened = detected + timedelta(hours=3, minutes=40)  # the `now` the incident was made with
    data["timeline"] += status_updates_data(opened, 25, 40)
    refused = await api.post(url, "alice", data)
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    # Due 15 min after detection, sent at 25: 10 min late; 40 -> 100 (mitigation): 60 min.
    assert "the SEV1 contract wants it within 15 min: 10 min late" in detail
    assert "no status update for 60 min" in detail
    data["action_items"][1]["communication"] = True
    accepted = await api.post(url, "alice", data)
    assert accepted.is_success, accepted.text

    async with browser(api, "erin") as erin:
        for page in (f"/postmortems/{pm_id}/review", f"/postmortems/{pm_id}"):
            shown = text_of(await erin.get(page))
            assert "The SEV1 contract: the first within 15 min of detected" in shown, page
            assert "The contract was broken" in shown
            assert "10 min late" in shown and "no status update for 60 min" in shown
            assert "Answered by: Canary load-balancer config pushes." in shown
