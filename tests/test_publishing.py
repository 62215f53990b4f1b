"""Published and shared: approving a postmortem publishes its page in the team's Confluence space
(through the real workflow, the PUBLISH_POSTMORTEM activity and `atlassian-python-api` against a
Confluence-compatible server) and sends each audience of its severity one short summary with the
page's link (a real SMTP server); the history replays; the policy's sections are validated."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
import yaml
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from followthrough.actions import act
from followthrough.domain.draft import parse_draft
from followthrough.domain.handoffs import audience_notices
from followthrough.domain.incident import parse_incident
from followthrough.domain.notice import NoticeKind
from followthrough.domain.policy import DEFAULT_POLICY_PATH, InvalidPolicy, Policy, parse_policy
from followthrough.domain.postmortem import (
    Approval,
    Postmortem,
    PostmortemState,
    RiskAcceptanceRequest,
    open_postmortem,
)
from followthrough.domain.publishing import page_label
from followthrough.domain.tickets import TicketRef
from followthrough.integrations.confluence import ConfluenceConfig
from followthrough.integrations.jira import JiraConfig
from followthrough.notices.delivery import Mailer
from followthrough.notices.render import Links
from followthrough.reporting.document import postmortem_document, render_confluence
from followthrough.storage import Store
from tests.api_support import Api
from tests.conftest import SmtpCapture, eventually, running_worker
from tests.factories import draft_data, incident_data
from tests.lifecycle import start, submit, wait_for_item
from tests.servers.confluence_server import STORAGE_NAMESPACES, TOKEN, USER, ConfluenceServer
from tests.servers.jira_server import JiraServer
from workflows.action_item import ActionItemWorkflow
from workflows.postmortem import PostmortemWorkflow

JIRA_USER, JIRA_TOKEN = "followthrough@example.com", "jira-s3cret-token"


def sharing_policy(**changes: Any) -> Policy:
    """The shipped policy, publishing to PM (payments to PAY) and telling SEV2's audiences."""
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    data["publishing"] = {"space": "PM", "by_team": {"payments": {"space": "PAY"}}}
    data["audiences"] = {"product": ["pat", "product-leads@corp.example"], "executives": ["grace"]}
    data["severities"]["SEV2"]["audiences"] = ["product", "executives"]
    data.update(changes)
    return parse_policy(data)


def ticket_of(store: Store, item_id: str) -> TicketRef | None:
    item = store.records.action_item(item_id)
    return item.ticket if item else None


def summaries(smtp: SmtpCapture) -> list[Any]:
    return [
        m for m in smtp.messages if m["X-Followthrough-Kind"] == NoticeKind.AUDIENCE_SUMMARY.value
    ]


async def test_approval_publishes_the_page_and_tells_each_audience_once(
    time_skipping: WorkflowEnvironment, store: Store, smtp_mailer: Mailer, smtp_server: SmtpCapture
) -> None:
    client = time_skipping.client
    now: datetime = await time_skipping.get_current_time()
    policy = sharing_policy()
    with (
        ConfluenceServer(cloud=False, spaces={"PM", "PAY"}) as wiki,
        JiraServer(users={JIRA_USER: JIRA_TOKEN}) as jira,
    ):
        config = ConfluenceConfig(url=wiki.base_url, user=USER, token=TOKEN, cloud=False)
        tickets = JiraConfig(
            url=jira.url, user=JIRA_USER, token=JIRA_TOKEN, project="PM", deployment="server"
        )
        async with running_worker(
            client, store, smtp_mailer, confluence=config, jira=tickets
        ) as queue:
            pm_id = await start(client, policy, queue, now, commander="alice")
            await submit(client, pm_id, "alice", draft_data(now))
            wiki.rate_limit_next(1, retry_after=1)  # Confluence is busy at first: retried
            approved = await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
            assert approved.state is PostmortemState.TRACKING  # answered without waiting

            await eventually(lambda: len(summaries(smtp_server)) >= 2, seconds=60)
            publication = await eventually(lambda: store.publications.of(pm_id), seconds=30)

            # It closes (the council accepts both items' risk): the page is brought up to date.
            for number in (1, 2):
                item_id = (await wait_for_item(client, f"{pm_id}-item-{number}")).id
                await eventually(partial(ticket_of, store, item_id))
                accepted = RiskAcceptanceRequest(by="grace", reason="Retired with checkout v1")
                await act(client, item_id, ActionItemWorkflow.accept_risk, accepted)
            handle = client.get_workflow_handle_for(PostmortemWorkflow.run, pm_id)
            assert (await handle.result()).state is PostmortemState.CLOSED
            history = await handle.fetch_history()
            keys = sorted(jira.issues)

            def linked() -> list[str]:
                return [
                    c["body"]
                    for key in keys
                    for c in jira.issue(key)["fields"]["comment"]["comments"]
                    if "published in Confluence" in c["body"]
                ]

            await eventually(lambda: len(linked()) >= 2, seconds=30)

    # One page, in the owning team's space, labelled to be found again; updated once it closed.
    [page] = wiki.pages.values()
    assert page.space == "PAY" and page.labels == [page_label(pm_id)]
    assert page.version == 2 and "closed" in page.body and "risk accepted" in page.body
    assert page.title == f"Postmortem: Checkout returned 502s after a config push ({pm_id})"
    assert "38% of checkout requests failed" in page.body
    assert publication.url is not None and page.id in publication.url
    assert store.publications.of(pm_id).version == 2  # type: ignore[union-attr]
    # Each item's ticket links the page, once (both publishings knew of the tickets by then).
    assert len(keys) == 2 and len(linked()) == 2
    assert all(f"|{publication.url}]" in body for body in linked())
    assert ("GET", "/rest/api/content/search") in [(m, p) for m, p, _ in wiki.requests]
    assert wiki.rate_limited == 1  # the 429 was answered, and the activity tried again

    # Each audience once, with the page's link: people at their address, plain addresses as is.
    told = {
        frozenset(a.strip() for a in str(m["To"]).split(",")): m for m in summaries(smtp_server)
    }
    assert set(told) == {
        frozenset({"pat@example.com", "product-leads@corp.example"}),
        frozenset({"grace@example.com"}),
    }
    text = next(iter(told.values())).get_body(("plain",)).get_content()
    assert publication.url in text and "2 action items" in text
    assert "38% of checkout requests failed" in text

    # The recorded history replays under today's code.
    replayer = Replayer(workflows=[PostmortemWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(
        WorkflowHistory.from_json(pm_id, history.to_json_dict()), raise_on_replay_failure=False
    )
    assert result.replay_failure is None


async def test_without_confluence_the_audiences_get_the_dashboard_document(
    time_skipping: WorkflowEnvironment, store: Store, smtp_mailer: Mailer, smtp_server: SmtpCapture
) -> None:
    client = time_skipping.client
    now: datetime = await time_skipping.get_current_time()
    links = Links(temporal_ui="http://127.0.0.1:8233", public_url="http://127.0.0.1:8000")
    mailer = dataclasses.replace(smtp_mailer, links=links)
    async with running_worker(client, store, mailer) as queue:  # no Confluence
        pm_id = await start(client, sharing_policy(), queue, now, commander="alice")
        await submit(client, pm_id, "alice", draft_data(now))
        await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
        await eventually(lambda: len(summaries(smtp_server)) >= 2, seconds=60)
    assert store.publications.of(pm_id) is None
    mail = summaries(smtp_server)
    assert len({m["X-Followthrough-Key"] for m in mail}) == len(mail) == 2
    text = mail[0].get_body(("plain",)).get_content()
    assert f"http://127.0.0.1:8000/postmortems/{pm_id}/document" in text


def written_postmortem(policy: Policy, **draft: Any) -> Postmortem:
    now = datetime.now(UTC)
    pm = open_postmortem(parse_incident(incident_data(now), policy), policy, now)
    return pm.model_copy(update={"draft": parse_draft(draft_data(now, **draft))})


def test_the_page_body_is_well_formed_storage_format_whatever_people_wrote(
    policy: Policy,
) -> None:
    impact = 'Orders <lost> & "refunded" \x07 see https://status.example/x?a=1&b=2'
    pm = written_postmortem(policy, impact=impact)
    body = render_confluence(
        postmortem_document(pm, [], policy, pm.opened_at), "https://ft.example/postmortems/x"
    )
    ET.fromstring(f"<root {STORAGE_NAMESPACES}>{body}</root>")  # parses: every tag closed
    assert "Orders &lt;lost&gt; &amp; &#34;refunded&#34;" in body and "\x07" not in body
    assert '<a href="https://status.example/x?a=1&amp;b=2"' in body


def test_audiences_name_the_summary_once_each(policy: Policy) -> None:
    pm = written_postmortem(policy)
    assert pm.severity == "SEV2"
    notices = audience_notices(pm, sharing_policy(), "https://wiki.example/p/1", pm.opened_at)
    assert [n.dedupe_key for n in notices] == [
        f"{pm.id}/audience-product/approved",
        f"{pm.id}/audience-executives/approved",
    ]
    assert audience_notices(pm, policy, None, pm.opened_at) == []  # the shipped policy: none


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"audiences": {"product": ["nobody-here"]}}, "'nobody-here' is neither a person"),
        ({"audiences": {"Product Team": ["pat"]}}, "audiences.Product Team: a name of"),
        ({"audiences": {"product": []}}, "between 1 and 200"),
        (
            {"publishing": {"space": "PM", "by_team": {"growth": {"space": "GR"}}}},
            "publishing.by_team.growth: unknown team",
        ),
        ({"publishing": {"space": "P M"}}, "publishing.space"),
    ],
)
def test_the_policy_refuses_audiences_and_spaces_it_cannot_use(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidPolicy, match=problem):
        sharing_policy(**changes)


def test_a_severity_naming_an_unknown_audience_is_refused() -> None:
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    data["severities"]["SEV1"]["audiences"] = ["board"]
    refused = r"severities\.SEV1\.audiences: unknown audience 'board'"
    with pytest.raises(InvalidPolicy, match=refused):
        parse_policy(data)


async def test_a_space_confluence_refuses_is_recorded_and_the_postmortem_goes_on(
    time_skipping: WorkflowEnvironment, store: Store, smtp_mailer: Mailer, smtp_server: SmtpCapture
) -> None:
    client = time_skipping.client
    now: datetime = await time_skipping.get_current_time()
    with ConfluenceServer(cloud=True, spaces={"PM", "PAY"}, read_only_spaces={"PAY"}) as wiki:
        url = wiki.base_url.removesuffix("/wiki")
        config = ConfluenceConfig(url=url, user=USER, token=TOKEN, cloud=True)
        async with running_worker(client, store, smtp_mailer, confluence=config) as queue:
            pm_id = await start(client, sharing_policy(), queue, now, commander="alice")
            await submit(client, pm_id, "alice", draft_data(now))
            await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
            refused = await eventually(lambda: store.publications.of(pm_id), seconds=30)
            await eventually(lambda: len(summaries(smtp_server)) >= 2, seconds=60)
            # Not retried: one create, refused for good. The items started all the same.
            await eventually(lambda: len(store.records.action_items(postmortem_id=pm_id)) == 2)
    creates = [p for m, p in wiki.writes() if m == "POST" and p.rstrip("/").endswith("/content")]
    assert creates == ["/wiki/rest/api/content"] and wiki.pages == {}
    assert refused.url is None and refused.error is not None
    assert "forbids publisher@example.com this (403)" in refused.error
    assert "not permitted to create page in space PAY" in refused.error


def test_the_printable_document_links_its_published_page(policy: Policy) -> None:
    from followthrough.reporting.document import render_html

    pm = written_postmortem(policy)
    document = postmortem_document(pm, [], policy, pm.opened_at)
    assert "published in Confluence" not in render_html(document)
    page = "https://acme.atlassian.net/wiki/spaces/PAY/pages/65537/x"
    html = render_html(document.model_copy(update={"published_url": page}))
    assert f'<a href="{page}">published in Confluence</a>' in html


async def test_the_activity_publishes_from_the_record_and_names_the_tickets_to_link(
    store: Store, policy: Policy
) -> None:
    from temporalio.testing import ActivityEnvironment

    from activities.publishing import PublishingActivities
    from followthrough.domain.postmortem import ActionItemChange, ActionItemState, AuditEvent
    from followthrough.domain.publishing import PageDestination, PageRequest
    from followthrough.domain.tickets import TicketComment
    from followthrough.integrations.jira.wording import comment_text
    from tests.recorded import at, record_item, record_postmortem

    opened = at(2026, 11, 2)
    pm = record_postmortem(store, policy, "INC-51", "SEV2", {"resolved": opened})
    item = record_item(store, pm, 1, state=ActionItemState.OPEN, opened=opened, due=opened.date())
    ticketed = item.model_copy(
        update={"ticket": TicketRef(key="REL-7", url="http://jira/REL-7"), "last_seq": 2}
    )
    event = AuditEvent(
        workflow_id=item.id, postmortem_id=pm.id, seq=2, at=opened, actor="system", action="t"
    )
    store.records.record_action_item(ActionItemChange(item=ticketed, event=event))
    request = PageRequest(postmortem_id=pm.id, destination=PageDestination(space="PM"), at=opened)

    unconfigured = PublishingActivities(store, policy, None)
    assert await ActivityEnvironment().run(unconfigured.publish_postmortem, request) is None

    with ConfluenceServer(spaces={"PM"}) as wiki:
        config = ConfluenceConfig(url=wiki.base_url, user=USER, token=TOKEN, cloud=False)
        activities = PublishingActivities(store, policy, config, "https://ft.example")
        page = await ActivityEnvironment().run(activities.publish_postmortem, request)
        again = await ActivityEnvironment().run(activities.publish_postmortem, request)
    assert page is not None and again is not None
    assert page.tickets == {item.id: "REL-7"} and again.page_id == page.page_id
    assert not again.changed and len(wiki.pages) == 1  # the same facts: nothing rewritten
    [stored] = wiki.pages.values()
    assert item.spec.title in stored.body
    assert f'<a href="https://ft.example/postmortems/{pm.id}">' in stored.body
    recorded = store.publications.of(pm.id)
    assert recorded is not None and recorded.url == page.url and recorded.version == 1
    words = comment_text(TicketComment(key="REL-7", dedupe_key="k", published=page.url))
    assert f"|{page.url}]" in words


async def test_the_dashboard_links_the_published_page_or_says_why_it_is_not(
    api: Api, policy: Policy
) -> None:
    from followthrough.domain.publishing import PublishedPage
    from tests.recorded import at, record_postmortem
    from tests.test_dashboard import browser

    store = api.services.store
    pm = record_postmortem(store, policy, "INC-61", "SEV2", {"resolved": at(2026, 11, 2)})
    url = "https://acme.atlassian.net/wiki/spaces/PAY/pages/65537/Postmortem"
    async with browser(api, "dan") as dan:
        store.publications.refused(pm.id, "Confluence forbids svc this (403)", at(2026, 11, 3))
        page = await dan.get(f"/postmortems/{pm.id}")
        assert "Confluence refused the last publishing: Confluence forbids svc" in page.text
        assert "published in Confluence" not in page.text

        published = PublishedPage(
            postmortem_id=pm.id,
            space="PAY",
            page_id="65537",
            title="t",
            url=url,
            version=1,
            changed=True,
        )
        store.publications.published(published, at(2026, 11, 4))
        page = await dan.get(f"/postmortems/{pm.id}")
        assert f'<a href="{url}">published in Confluence</a>' in page.text
        assert "Confluence refused" not in page.text
        document = await dan.get(f"/postmortems/{pm.id}/document")
        assert f'<a href="{url}">published in Confluence</a>' in document.text
