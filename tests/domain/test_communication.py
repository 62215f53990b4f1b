"""The communication contract (domain/communication.py): when the first status update was due,
the gaps longer than the cadence, and what the draft must answer. Times are hand-computed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from followthrough.domain.communication import (
    StatusUpdateContract,
    UpdateGap,
    first_communication,
    review_communication,
    status_updates,
)
from followthrough.domain.draft import (
    Draft,
    TimelineEntry,
    TimelineKind,
    communication_answers,
    communication_review,
    parse_draft,
)
from followthrough.domain.draft_form import draft_from_form, form_rows
from followthrough.domain.policy import Policy
from tests.domain.examples import NOW, make_incident, problems_of
from tests.factories import draft_data, status_updates_data

SEV1 = StatusUpdateContract(first_within_minutes=15, every_minutes=30)
T0 = datetime(2026, 11, 5, 10, 0, tzinfo=UTC)


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def entry(kind: TimelineKind, minutes: float) -> TimelineEntry:
    return TimelineEntry(at=t(minutes), kind=kind, description=kind)


def timeline(*updates: float, communicated: float | None = None) -> list[TimelineEntry]:
    """Started 10:00, detected 10:05, mitigated 11:35, resolved 12:00, and the updates."""
    entries = [
        entry("started", 0),
        entry("detected", 5),
        entry("mitigated", 95),
        entry("resolved", 120),
        *(entry("status_update", m) for m in updates),
    ]
    if communicated is not None:
        entries.append(entry("communicated", communicated))
    return entries


def test_updates_on_time_and_often_enough_keep_the_contract() -> None:
    # First due 10:05 + 15 = 10:20; updates 10:20, 10:50, 11:20: gaps 30, 30, then 15 to 11:35.
    review = review_communication(timeline(80, 20, 50), "SEV1", SEV1)
    assert review is not None
    assert review.updates == [t(20), t(50), t(80)]
    assert review.first_due == t(20)
    assert review.held and review.findings() == []


def test_a_late_first_update_is_late_by_how_much() -> None:
    # Due 10:20; went out 10:32: 12 min late. Then 10:32 -> 11:00 (28) -> 11:29 (29) -> 11:35.
    review = review_communication(timeline(32, 60, 89), "SEV1", SEV1)
    assert review is not None and not review.held
    assert review.first_late_by == timedelta(minutes=12)
    assert review.gaps == []
    assert review.findings() == [
        "the first status update went out at 2026-11-05T10:32+00:00, 27 min after detected; "
        "the SEV1 contract wants it within 15 min: 12 min late"
    ]


def test_gaps_longer_than_the_cadence_between_updates_and_to_mitigation() -> None:
    # 10:10 on time; 10:10 -> 10:55 is 45 min (> 30); 10:55 -> 11:25 is 30 (not longer);
    # 11:25 -> 11:35 mitigation is 10. Then 10:10 alone: 10:10 -> 11:35 is 85 min.
    review = review_communication(timeline(10, 55, 85), "SEV1", SEV1)
    assert review is not None
    assert review.first_late_by is None
    assert review.gaps == [UpdateGap(after=t(10), until=t(55), next_update=t(55))]
    assert review.gaps[0].length == timedelta(minutes=45)
    alone = review_communication(timeline(10), "SEV1", SEV1)
    assert alone is not None
    assert alone.gaps == [UpdateGap(after=t(10), until=t(95), next_update=None)]
    assert alone.findings() == [
        "no status update for 85 min, from 2026-11-05T10:10+00:00 until mitigated at "
        "2026-11-05T11:35+00:00; the SEV1 contract wants one every 30 min"
    ]


def test_an_update_after_mitigation_ends_the_gap_at_mitigation() -> None:
    # 10:15, then 11:50 (after mitigation at 11:35): the gap is 10:15 -> 11:35, 80 min.
    review = review_communication(timeline(15, 110), "SEV1", SEV1)
    assert review is not None
    assert review.gaps == [UpdateGap(after=t(15), until=t(95), next_update=t(110))]
    assert "until mitigated at 2026-11-05T11:35+00:00" in review.findings()[0]


def test_no_update_at_all_is_a_breach_when_one_was_due_before_mitigation() -> None:
    review = review_communication(timeline(), "SEV1", SEV1)
    assert review is not None
    # Due 10:20, never sent; still owed at mitigation 11:35: 75 min.
    assert review.first_late_by == timedelta(minutes=75)
    assert review.findings() == [
        "no status update is on the timeline; the SEV1 contract wants the first within 15 min "
        "of detected (2026-11-05T10:05+00:00), by 2026-11-05T10:20+00:00"
    ]
    # Mitigated at 10:15, before the first update was due (10:20): nothing was owed.
    short = [entry("started", 0), entry("detected", 5), entry("mitigated", 15)]
    quick = review_communication(short, "SEV1", SEV1)
    assert quick is not None and quick.held


def test_the_communicated_milestone_stands_in_only_when_there_are_no_status_updates() -> None:
    only_milestone = timeline(communicated=18)
    assert status_updates(only_milestone) == [t(18)]
    assert first_communication(only_milestone) == t(18)
    # With status updates, the milestone is not an update: the first is the 10:40 one.
    both = timeline(40, communicated=18)
    assert status_updates(both) == [t(40)]
    assert first_communication(both) == t(40)
    assert first_communication(timeline()) is None
    # The milestone alone: on time (10:18 <= 10:20), then 10:18 -> 11:35 is 77 min unbroken.
    review = review_communication(only_milestone, "SEV1", SEV1)
    assert review is not None and review.first_late_by is None
    assert [g.length for g in review.gaps] == [timedelta(minutes=77)]


def test_the_clock_falls_back_to_the_start_and_the_window_to_resolution() -> None:
    entries = [entry("started", 0), entry("resolved", 50), entry("status_update", 14)]
    review = review_communication(entries, "SEV1", SEV1)
    assert review is not None
    assert (review.clock_start_kind, review.window_end_kind) == ("started", "resolved")
    # Due 10:15, sent 10:14; 10:14 -> 10:50 is 36 min.
    assert review.first_late_by is None
    assert [g.length for g in review.gaps] == [timedelta(minutes=36)]
    assert review_communication([entry("started", 0)], "SEV1", SEV1) is None


# --- the draft must answer a breach -----------------------------------------------------------


def sev1_draft(**overrides: Any) -> dict[str, Any]:
    return draft_data(NOW, **overrides)


def test_a_breach_is_a_problem_until_an_action_item_answers_it(policy: Policy) -> None:
    # The factory's incident: detected 3h40 before NOW, mitigated 2h before; no updates at all.
    incident = make_incident(policy, severity="SEV1")
    [problem] = [p for p in problems_of(policy, sev1_draft(), incident) if "communication" in p]
    assert problem.startswith("communication: no status update is on the timeline")
    assert "Add an action item with communication: true" in problem
    answered = sev1_draft()
    answered["action_items"][0]["communication"] = True
    assert not [p for p in problems_of(policy, answered, incident) if "communication" in p]


def test_status_updates_that_keep_the_contract_need_no_answer(policy: Policy) -> None:
    incident = make_incident(policy, severity="SEV1")
    # Every 30 min from 10 min after detection until mitigation (100 min after detection).
    kept = sev1_draft()
    kept["timeline"] += status_updates_data(NOW)
    assert not [p for p in problems_of(policy, kept, incident) if "communication" in p]
    review = communication_review(incident, parse(kept), policy)
    assert review is not None and review.held
    # One missing (the 70-min one): 40 -> 100 is 60 min without an update.
    broken = sev1_draft()
    broken["timeline"] += status_updates_data(NOW, 10, 40, 100)
    [problem] = [p for p in problems_of(policy, broken, incident) if "communication" in p]
    assert "no status update for 60 min" in problem


def test_a_severity_without_a_contract_is_not_judged(policy: Policy) -> None:
    incident = make_incident(policy)  # SEV2: the default policy sets no contract for it
    assert communication_review(incident, parse(sev1_draft()), policy) is None
    assert not [p for p in problems_of(policy, sev1_draft(), incident) if "communication" in p]


def parse(draft: dict[str, Any]) -> Draft:
    return parse_draft(draft)


def test_the_editor_ticks_and_reads_back_the_communication_answer() -> None:
    form = {
        "item-0-title": "Name a communications lead",
        "item-0-communication": "on",  # a ticked checkbox; an unticked one is not sent
        "item-1-title": "Canary the config",
    }
    draft = draft_from_form(form, "UTC")
    assert [a.communication for a in draft.action_items] == [True, False]
    assert communication_answers(draft) == ["Name a communications lead"]
    rows = form_rows(draft, "UTC")["items"]
    assert [r["communication"] for r in rows] == ["on", "", ""]  # the last: the blank row
