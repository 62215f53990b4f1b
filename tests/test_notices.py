"""Every kind of notice renders, in text and HTML, with what its reader needs to act."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from markupsafe import escape

from followthrough.domain.access import read_link
from followthrough.domain.checks import CheckResult
from followthrough.domain.draft import action_item_specs, parse_draft
from followthrough.domain.incident import parse_incident
from followthrough.domain.notice import (
    ItemFacts,
    Notice,
    NoticeKind,
    OutboxMessage,
    OutboxStatus,
    Recipient,
)
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    ActionItem,
    ActionItemStart,
    Postmortem,
    open_action_item,
    open_postmortem,
)
from followthrough.domain.slo import budget_findings, incident_impact
from followthrough.domain.slo_review import SloAssessment
from followthrough.notices.delivery import SmtpServer, build_email
from followthrough.notices.render import Links, render_notice
from tests.factories import draft_data, incident_data
from tests.servers.sli import CHECKOUT

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LINKS = Links(temporal_ui="http://127.0.0.1:8233")


# The digests have their own renderers (tested in test_follow_up.py and test_monthly_digest.py),
# the exhausted budget and the unmapped severity (test_unmapped_severity.py) their own tests;
# an audience's summary, for readers outside engineering, too (test_publishing.py).
OWN_TESTS = (
    NoticeKind.COUNCIL_DIGEST,
    NoticeKind.MONTHLY_DIGEST,
    NoticeKind.BUDGET_EXHAUSTED,
    NoticeKind.SEVERITY_UNMAPPED,
    NoticeKind.AUDIENCE_SUMMARY,
)


def postmortem_with_an_item(policy: Policy, incident: str) -> tuple[Postmortem, ActionItem]:
    """A postmortem with its draft, and its first action item open."""
    pm = open_postmortem(parse_incident(incident_data(NOW, id=incident), policy), policy, NOW)
    pm.draft = parse_draft(draft_data(NOW))
    spec = action_item_specs(pm.draft)[0]
    item = open_action_item(
        ActionItemStart(item_id=f"{pm.id}-item-1", postmortem_id=pm.id, spec=spec, policy=policy),
        NOW,
    )
    return pm, item


@pytest.mark.parametrize("kind", [k for k in NoticeKind if k not in OWN_TESTS])
def test_every_kind_renders_with_the_item_and_a_way_to_act(
    policy: Policy, kind: NoticeKind
) -> None:
    pm, item = postmortem_with_an_item(policy, "INC-7")
    notice = Notice(
        dedupe_key="k",
        kind=kind,
        at=NOW,
        to=[Recipient(name="bob", email="bob@example.com")],
        postmortem_id=pm.id,
        action_item_id=None if kind is NoticeKind.POSTMORTEM_OVERDUE else item.id,
        step="draft" if kind is NoticeKind.POSTMORTEM_OVERDUE else "due",
        notify="owner",
        due=item.due,
        days_overdue=3,
        note="A note for the reader.",
    )
    email = render_notice(notice, pm, item if notice.action_item_id else None, [], LINKS)
    assert "INC-7" in email.subject
    for body in (email.text, email.html):
        assert pm.id in body
        assert LINKS.workflow(notice.action_item_id or pm.id) in body
    if notice.action_item_id:
        assert "A page fires within 5 minutes" in email.text
        assert "3 business days overdue" in email.text or kind is not NoticeKind.ITEM_STEP


FAILED = CheckResult(passed=False, at=NOW, asked="GET https://status/<x>", answer="", reason="503")
UNTIL = date(2026, 12, 24)

# Each event of an item: its facts, and the words the email says them in ({due}: the item's).
ITEM_EVENTS: dict[str, tuple[NoticeKind, dict[str, Any], str]] = {
    "queued": (
        NoticeKind.WIP_QUEUED,
        {"team": "payments", "wip_cap": 3, "place_in_line": 2},
        "Team payments already has 3 open action items, its WIP cap, so 'Alert on checkout 5xx "
        "ratio' waits in line (number 2) with its clock stopped. It starts when a slot frees up: "
        "verifying the team's open items, or the council accepting their risk, makes room.",
    ),
    "check failed": (
        NoticeKind.CHECK_FAILED,
        {"check": FAILED, "check_number": 1, "checks_required": 3},
        "Your done claim was checked and the check failed, so the item is open again. Check 1 of "
        "3 failed. Asked: GET https://status/<x>. Answer: (none). Why: 503. Fix it and claim it "
        "done again.",
    ),
    "re-check failed": (
        NoticeKind.CHECK_FAILED,
        {"check": FAILED},
        "Your done claim was checked and the check failed, so the item is open again. The "
        "re-check after verification failed. Asked: GET https://status/<x>. Answer: (none). "
        "Why: 503. Fix it and claim it done again.",
    ),
    "regressed": (
        NoticeKind.REGRESSED,
        {"check": FAILED, "owner": "carol"},
        "'Alert on checkout 5xx ratio' was verified, but its re-check failed: the fix regressed. "
        "Asked: GET https://status/<x>. Why: 503. It is open again, owned by carol, due {due}.",
    ),
    "extension requested": (
        NoticeKind.EXTENSION_REQUESTED,
        {"by": "bob", "until": UNTIL, "reason": "waiting on the vendor"},
        "bob asks to move the due date from {due} to 2026-12-24: waiting on the vendor. Decide "
        "with `followthrough action decide-extension {item} --approve|--deny --reason ...`.",
    ),
    "extension approved": (
        NoticeKind.EXTENSION_DECIDED,
        {"by": "maria", "approved": True, "until": UNTIL, "reason": "fair"},
        "maria approved your request to move the due date to 2026-12-24: fair. It is now due "
        "{due}.",
    ),
    "extension denied": (
        NoticeKind.EXTENSION_DECIDED,
        {"by": "maria", "approved": False, "until": UNTIL},
        "maria denied your request to move the due date to 2026-12-24. It is still due {due}.",
    ),
    "reassigned": (
        NoticeKind.REASSIGNED,
        {"by": "pat", "previous_owner": "bob", "reason": "bob moved teams"},
        "pat made you the owner of this follow-up (it was bob's): bob moved teams. It is due "
        "{due}.",
    ),
    "risk accepted": (
        NoticeKind.RISK_ACCEPTED,
        {"by": "heidi", "reason": "the service retires in January"},
        "The reliability council (heidi) closed this follow-up without the fix, accepting the "
        "risk: the service retires in January",
    ),
}


@pytest.mark.parametrize("event", ITEM_EVENTS)
def test_each_item_event_is_worded_by_the_templates_from_its_facts(
    policy: Policy, event: str
) -> None:
    """The workflow sends facts; the item_event templates hold the words, once per message."""
    kind, facts, words = ITEM_EVENTS[event]
    pm, item = postmortem_with_an_item(policy, "INC-7")
    notice = Notice(
        dedupe_key="k",
        kind=kind,
        at=NOW,
        to=[Recipient(name="bob", email="bob@example.com")],
        postmortem_id=pm.id,
        action_item_id=item.id,
        due=item.due,
        facts=ItemFacts(**facts),
    )
    assert notice.note == ""
    email = render_notice(notice, pm, item, [], LINKS)
    said = words.format(due=item.due.isoformat(), item=item.id)
    assert email.text.count(said) == 1
    assert email.html.count(f"<p>{escape(said)}</p>") == 1

    # A notice recorded before the facts (a history, a pending activity) keeps its own words.
    recorded = notice.model_dump(mode="json", exclude={"facts"}) | {"note": "Earlier words."}
    earlier = render_notice(Notice.model_validate(recorded), pm, item, [], LINKS)
    assert "Earlier words." in earlier.text and said not in earlier.text
    assert "<p>Earlier words.</p>" in earlier.html


@pytest.mark.parametrize(
    ("stage", "waiting_on"), [("draft", "the owner's draft"), ("review", "a review")]
)
def test_an_overdue_postmortem_says_what_it_waits_on(
    policy: Policy, stage: str, waiting_on: str
) -> None:
    pm = open_postmortem(parse_incident(incident_data(NOW, id="INC-7"), policy), policy, NOW)
    notice = Notice(
        dedupe_key="k",
        kind=NoticeKind.POSTMORTEM_OVERDUE,
        at=NOW,
        to=[Recipient(name="bob", email="bob@example.com")],
        postmortem_id=pm.id,
        step=stage,
        notify="owner",
        due=NOW.date(),
        days_overdue=2,
    )
    email = render_notice(notice, pm, None, [], LINKS)
    assert email.text.count(f"It is waiting on {waiting_on}.") == 1
    assert email.html.count(f"It is waiting on {escape(waiting_on)}.") == 1


def test_an_exhausted_budget_tells_the_council_to_freeze_releases(policy: Policy) -> None:
    pm = open_postmortem(parse_incident(incident_data(NOW, id="INC-9"), policy), policy, NOW)
    slo = CHECKOUT
    impact = incident_impact(
        slo,
        duration=timedelta(minutes=45),
        error_ratio=0.3,
        traffic_weight=1.2,
        budget_remaining_before=0.2,
    )
    pm.slo_review = [
        SloAssessment(
            slo=slo,
            method="estimated",
            impact=impact,
            findings=budget_findings(impact, slo),
            notes=["estimated from the draft: no Prometheus to ask"],
        )
    ]
    notice = Notice(
        dedupe_key=f"{pm.id}/budget-exhausted/{slo.id}",
        kind=NoticeKind.BUDGET_EXHAUSTED,
        at=NOW,
        to=[Recipient(name="heidi", email="heidi@example.com")],
        postmortem_id=pm.id,
        notify="council",
        slo_id=slo.id,
    )
    email = render_notice(notice, pm, None, [], LINKS)
    assert email.subject == (
        "[INC-9 SEV2] Error budget exhausted: checkout-availability; release freeze recommended"
    )
    text = " ".join(email.text.split())
    assert "Freeze releases of checkout, except P0 and security fixes" in text
    assert "Budget consumed 37.5 %" in text
    assert "Remaining before 20.0 % Remaining after -17.5 %" in text
    assert "budget_exhausted: budget remaining after the incident: -17.5%" in text
    assert "estimated from the draft: no Prometheus to ask" in text
    assert "<strong>-17.5 %</strong>" in email.html and LINKS.workflow(pm.id) in email.html


def test_owner_emails_carry_one_click_links_that_a_retry_renders_the_same(policy: Policy) -> None:
    pm, item = postmortem_with_an_item(policy, "INC-8")  # its item is bob's
    links = Links(
        temporal_ui="http://127.0.0.1:8233", public_url="https://ft.example", link_secret="k" * 32
    )

    def notice(to: str, step: str) -> Notice:
        return Notice(
            dedupe_key=f"{item.id}/{step}/plan-1",
            kind=NoticeKind.ITEM_STEP,
            at=NOW,
            to=[Recipient(name=to, email=f"{to}@example.com")],
            postmortem_id=pm.id,
            action_item_id=item.id,
            step=step,
            notify="owner" if to == "bob" else "manager",
            due=item.due,
        )

    due = render_notice(notice("bob", "due"), pm, item, [], links)
    acknowledge, extend = re.findall(r"https://ft\.example/act/(\S+)", due.text)
    read = read_link(acknowledge, "k" * 32, NOW)
    assert (read.action, read.person, read.action_item_id) == ("acknowledge", "bob", item.id)
    assert read.expires_at == NOW + timedelta(days=7)
    assert read_link(extend, "k" * 32, NOW).action == "request_extension"
    assert f"https://ft.example/act/{acknowledge}" in due.html
    assert render_notice(notice("bob", "due"), pm, item, [], links) == due  # a retry: same links
    other = render_notice(notice("bob", "reminder"), pm, item, [], links).text
    assert acknowledge not in other  # each email's links are its own (one use each)

    item.acknowledged_by, item.acknowledged_at = "bob", NOW
    after = render_notice(notice("bob", "due"), pm, item, [], links).text
    assert "Acknowledge:" not in after and "Ask for more time:" in after
    assert "/act/" not in render_notice(notice("maria", "manager"), pm, item, [], links).text
    assert "/act/" not in render_notice(notice("bob", "due"), pm, item, [], LINKS).text


def test_copies_of_one_notice_share_a_message_id() -> None:
    message = OutboxMessage(
        dedupe_key="postmortem-generic-INC-7-item-1/due/plan-1",
        kind=NoticeKind.ITEM_STEP,
        postmortem_id="postmortem-generic-INC-7",
        action_item_id=None,
        recipients=["b@x.io"],
        subject="s",
        text="t",
        html="<p>h</p>",
        status=OutboxStatus.PENDING,
        created_at=NOW,
        sent_at=None,
    )
    first, again = build_email(message, "F <f@x.io>"), build_email(message, "F <f@x.io>")
    assert first["Message-ID"] == again["Message-ID"]
    assert first.get_body(preferencelist=("plain",)) is not None
    assert first.get_body(preferencelist=("html",)) is not None


def test_smtp_urls_are_read_or_refused_clearly() -> None:
    server = SmtpServer.from_url("smtp://ops%40corp:s3cret@mail.corp:2525?starttls=false")
    assert (server.hostname, server.port, server.username, server.password) == (
        "mail.corp",
        2525,
        "ops@corp",
        "s3cret",
    )
    assert server.start_tls is False and not server.use_tls
    implicit = SmtpServer.from_url("smtps://mail.corp")
    assert (implicit.port, implicit.use_tls) == (465, True)
    with pytest.raises(ValueError, match="must look like smtp://user:password@host:587"):
        SmtpServer.from_url("mail.corp:25")
