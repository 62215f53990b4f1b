"""Restricted postmortems: a security incident's postmortem is readable only by its group and the
people on it. The leak test tries every read path as someone outside the group (every GET of the
API's OpenAPI document, every dashboard page, search, CSV, the outbox) and finds nothing of its
title, id or text, while a member of the group, and someone on it, see it. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.routing import APIRoute
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.notices import NoticeActivities
from activities.publishing import PublishingActivities
from activities.slack import SlackDelivery
from activities.tickets import Restrictions, TicketActivities
from followthrough.domain.access import may_read, readable_of
from followthrough.domain.decisions import (
    Choice,
    Decision,
    DecisionRequest,
    DecisionState,
    budget_decision_id,
    budget_opening,
    theme_opening,
)
from followthrough.domain.incident import InvalidIncident, parse_incident
from followthrough.domain.metrics import period_of
from followthrough.domain.notice import Notice, NoticeKind, OutboxMessage, OutboxStatus, Recipient
from followthrough.domain.policy import (
    DEFAULT_POLICY_PATH,
    InvalidPolicy,
    Policy,
    load_policy,
    parse_policy,
)
from followthrough.domain.postmortem import (
    ActionItemState,
    AuditEvent,
    Postmortem,
    PostmortemChange,
    PostmortemState,
    open_postmortem,
)
from followthrough.domain.postmortem import Decision as Verdict
from followthrough.domain.publishing import PageDestination, PageRequest, PublishedPage
from followthrough.domain.restricted import Readable
from followthrough.domain.themes import Theme
from followthrough.domain.tickets import TicketRequest, TicketRoute
from followthrough.integrations.confluence import ConfluenceConfig
from followthrough.integrations.github import GitHubConfig, GitHubTracker
from followthrough.integrations.jira import JiraConfig, JiraTracker
from followthrough.integrations.slack import SlackApi, SlackConfig
from followthrough.integrations.trackers import Trackers
from followthrough.notices.delivery import Mailer
from followthrough.notices.render import Links, render_digest, render_monthly_digest
from followthrough.notices.themes import theme_email
from followthrough.reporting.digest import build_digest
from followthrough.reporting.metrics_view import measure
from followthrough.reporting.report import quarterly_report
from followthrough.storage import Store
from tests.api_support import Api, api_for, api_settings, link_mailer, loopback_policy_file
from tests.conftest import SmtpCapture, running_worker
from tests.recorded import record_item, record_postmortem
from tests.servers.confluence_server import TOKEN as WIKI_TOKEN
from tests.servers.confluence_server import USER as WIKI_USER
from tests.servers.confluence_server import ConfluenceServer
from tests.servers.github_server import GitHubServer
from tests.servers.jira_server import JiraServer
from tests.servers.slack_server import SlackServer
from tests.test_dashboard import browser
from tests.test_webhooks import resolved
from tests.webhook_signing import load_payload

NOW = datetime.now(UTC).replace(microsecond=0)
GITHUB_TOKEN = "ghp_followthroughTestToken0123456789"
SECRET_ID = "INC-ZEBRA-9"
SECRET_TITLE = "Zebracorn credential exfiltration"
SECRET_WORDS = ("ZEBRA", "Zebracorn", "zebracorn", "exfiltration", "Rotate zebracorn")
PUBLIC_ID = "INC-OPEN-1"
PUBLIC_TITLE = "Checkout latency after a cache flush"
GROUP = ["erin", "grace"]
OUTSIDER = "carol"  # platform, not in the group, on nothing of it
OPERATOR = "sam"  # sees every email in the outbox, but not those about what he may not read
ITEM_OWNER = "bob"  # owns one of its action items: on it, not in the group


def restricted_policy_data(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        loopback_policy_file(directory).read_text(encoding="utf-8")
    )
    data["groups"] = {"security": GROUP}
    data["restricted"] = [
        {
            "severities": [],
            "labels": ["security"],
            "group": "security",
            "jira_security_level": "Security incidents",
        }
    ]
    return data


def restricted_policy(directory: Path) -> Path:
    path = directory / "restricted-policy.yaml"
    path.write_text(yaml.safe_dump(restricted_policy_data(directory)), encoding="utf-8")
    return path


def restricted_to(policy: Policy) -> str | None:
    return "security" if policy.restricted else None


def record_both(store: Store, policy: Policy) -> tuple[Postmortem, Postmortem]:
    """A restricted postmortem (labelled security) with two action items, and a public one."""
    milestones = {"started": NOW - timedelta(hours=5), "resolved": NOW - timedelta(hours=2)}
    secret = record_postmortem(
        store,
        policy,
        SECRET_ID,
        "SEV1",
        milestones,
        title=SECRET_TITLE,
        labels=["security"],
        summary="An attacker read the zebracorn vault's keys.",
        commander="alice",
    )
    public = record_postmortem(
        store, policy, PUBLIC_ID, "SEV2", milestones, title=PUBLIC_TITLE, commander="alice"
    )
    assert secret.restricted_to == restricted_to(policy) and public.restricted_to is None
    due = NOW.date() - timedelta(days=3)  # overdue: on the overview and the backlog
    for pm, word in ((secret, "Rotate zebracorn keys"), (public, "Warm the cache")):
        record_item(store, pm, 1, state=ActionItemState.OPEN, opened=NOW, due=due, title=word)
        record_item(
            store,
            pm,
            2,
            state=ActionItemState.DONE_CLAIMED,
            opened=NOW,
            due=date.today() + timedelta(days=9),
            owner="erin" if pm is secret else "carol",
            team="sre" if pm is secret else "platform",
            title=f"{word}, second",
        )
        store.outbox.claim(
            OutboxMessage(
                dedupe_key=f"test/{pm.id}",
                kind=NoticeKind.ITEM_ASSIGNED,
                postmortem_id=pm.id,
                action_item_id=pm.action_item_id(1),
                recipients=["bob@example.com"],
                subject=f"New action item from {pm.incident.title}",
                text=f"{pm.incident.title}: {pm.incident.id}",
                html="",
                status=OutboxStatus.KEPT,
                created_at=NOW,
                sent_at=NOW,
            )
        )
    # The council's: the secret one's exhausted budget, frozen; a theme over both.
    budget = budget_opening(secret.id, "zebracorn-availability", "checkout", 0.0, NOW)
    store.decisions.save(
        Decision(
            opening=budget,
            state=DecisionState.IN_FORCE,
            decided=DecisionRequest(
                by="grace",
                choice=Choice.FREEZE_RELEASES,
                services=["checkout"],
                reason="until the zebracorn vault is rotated",
            ),
            decided_at=NOW,
        )
    )
    theme = Theme(
        tag="credentials",
        window_start=NOW - timedelta(days=3),
        window_end=NOW,
        reached_at=NOW,
        reached_by=secret.id,
        postmortem_ids=[public.id, secret.id],
    )
    store.decisions.save(Decision(opening=theme_opening(theme, ["checkout"], NOW)))
    return secret, public


@pytest.fixture
async def restricted_api(
    time_skipping: WorkflowEnvironment, store: Store, tmp_path: Path
) -> AsyncIterator[Api]:
    settings_path = restricted_policy(tmp_path)
    async with running_worker(time_skipping.client, store, link_mailer(tmp_path / "o")) as queue:
        settings = api_settings(tmp_path, queue, policy=settings_path)
        async with api_for(time_skipping.client, store, settings) as api:
            yield api


def get_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every GET route of the app, through the routers it includes (FastAPI keeps an included
    router as one entry whose own routes are its original router's)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from get_routes(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute) and "GET" in (route.methods or set()):
            yield prefix + route.path, route


def leaks(text: str) -> list[str]:
    return [word for word in SECRET_WORDS if word in text]


ABSENT = {"ZEBRA": "QUAGGA", "zebracorn": "quaggacorn"}  # words of nothing in the record


def swapped(text: str) -> str:
    for word, absent in ABSENT.items():
        text = text.replace(word, absent)
    return text


def names_it(url: str) -> bool:
    return any(word in url for word in ABSENT)


async def same_as_absent(
    url: str, answer: httpx.Response, get: Callable[[str], Awaitable[httpx.Response]]
) -> None:
    """What `url` answered, naming the restricted postmortem, is what it answers for one that
    does not exist (the name it was asked for echoed back is no news)."""
    absent = await get(swapped(url))
    echoed = swapped(answer.text)
    assert (answer.status_code, echoed) == (absent.status_code, absent.text), url
    assert not leaks(echoed), f"{url} leaks {leaks(echoed)}: {answer.text[:300]}"


def filled(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "x"), path)


def parameters(secret: Postmortem) -> list[dict[str, str]]:
    """Each path parameter as the restricted postmortem's full id, its tail, and its item's."""
    quarter = f"{NOW.year}Q{(NOW.month - 1) // 3 + 1}"
    common = {"quarter": quarter, "token": "x.y", "service": "checkout"}
    budget = budget_decision_id(secret.id, "zebracorn-availability")
    return [
        {
            **common,
            "postmortem": secret.id,
            "item": secret.action_item_id(1),
            "decision_id": budget,
        },
        {**common, "postmortem": SECRET_ID, "item": f"{SECRET_ID}-item-1", "decision_id": budget},
        {**common, "postmortem": "ZEBRA-9", "item": "ZEBRA-9-item-2", "decision_id": "decision-x"},
    ]


async def test_nothing_of_a_restricted_postmortem_reaches_an_outsider(
    restricted_api: Api, store: Store
) -> None:
    api = restricted_api
    secret, _ = record_both(store, api.services.policy)
    app = api.http._transport.app  # type: ignore[attr-defined]
    # Every GET the API documents, found in the OpenAPI document so new routes are covered.
    schema = app.openapi()
    api_paths = [p for p, ops in schema["paths"].items() if "get" in ops]
    assert "/api/postmortems/{postmortem}" in api_paths and len(api_paths) >= 15
    tried = 0
    for values in parameters(secret):
        for path in api_paths:
            url = filled(path, values)
            answer = await api.get(url, OUTSIDER)
            tried += 1
            if names_it(url):
                assert answer.status_code == 404, f"{url}: {answer.status_code}"
                await same_as_absent(url, answer, lambda u: api.get(u, OUTSIDER))
            else:
                found = leaks(answer.text)
                assert not found, f"{url} leaks {found}: {answer.text[:300]}"
    # Every dashboard page (the routes the schema leaves out), signed in as the outsider and as
    # an operator, who sees every email but not those about what he may not read.
    pages = [
        path
        for path, route in get_routes(app.routes)
        if not route.include_in_schema and path not in {"/docs", "/login"}
    ]
    assert "/postmortems/{postmortem}" in pages and "/search" in pages, pages
    extra = [
        "/search?q=zebracorn",
        "/search?q=zebracorn&kind=action_item",
        f"/search?q={SECRET_ID}",
        "/action-items?overdue=true",
        "/postmortems?state=tracking",
        "/outbox",
    ]
    for person in (OUTSIDER, OPERATOR):
        async with browser(api, person) as client:
            for values in parameters(secret):
                for url in [filled(p, values) for p in pages] + extra:
                    page = await client.get(url)
                    tried += 1
                    if names_it(url):  # it names the postmortem: as if it did not exist
                        await same_as_absent(url, page, client.get)
                    else:
                        found = leaks(page.text)
                        assert not found, f"{url} as {person} leaks {found}: {page.text[:300]}"
    # The JSON search, the CSVs, and the reads with filters that name it.
    for url in (
        "/api/freezes?service=checkout",
        "/api/decisions?state=open",
        "/api/backlog.csv",
        f"/api/action-items?postmortem={SECRET_ID}",
        "/api/action-items?owner=erin",
        "/api/postmortems?state=tracking",
    ):
        answer = await api.get(url, OUTSIDER)
        if names_it(url):
            await same_as_absent(url, answer, lambda u: api.get(u, OUTSIDER))
        assert not leaks(swapped(answer.text)), f"{url}: {answer.text[:300]}"
    # Counted, not shown: a freeze still holds for a CI gate; the theme keeps the public one.
    frozen = (await api.get("/api/freezes?service=checkout", OUTSIDER)).json()
    assert frozen["frozen"] and frozen["freezes"][0]["reason"] == ""
    [theme] = (await api.get("/api/decisions?state=open", OUTSIDER)).json()
    assert theme["opening"]["postmortem_ids"] == [f"postmortem-generic-{PUBLIC_ID}"]
    assert tried > 100


@pytest.mark.parametrize("person", [*GROUP, ITEM_OWNER, "alice"])
async def test_the_group_and_the_people_on_it_read_it(
    restricted_api: Api, store: Store, person: str
) -> None:
    api = restricted_api
    secret, _ = record_both(store, api.services.policy)
    shown = await api.get(f"/api/postmortems/{SECRET_ID}", person)
    assert shown.status_code == 200 and SECRET_TITLE in shown.text
    listed = await api.get("/api/postmortems", person)
    assert secret.id in listed.text
    budget = budget_decision_id(secret.id, "zebracorn-availability")
    decided = await api.get(f"/api/decisions/{budget}", person)
    assert decided.status_code == 200 and secret.id in decided.text
    frozen = (await api.get("/api/freezes?service=checkout", person)).json()
    assert frozen["frozen"] and frozen["freezes"][0]["decision_id"] == budget
    async with browser(api, person) as client:
        page = await client.get(f"/postmortems/{secret.id}")
        assert page.status_code == 200 and SECRET_TITLE in page.text
        found = await client.get("/search?q=zebracorn")
        assert secret.id in found.text
        csv = await client.get("/backlog.csv")
        assert "Rotate zebracorn keys" in csv.text


async def test_an_outsider_cannot_act_on_it_and_hears_it_does_not_exist(
    restricted_api: Api, store: Store
) -> None:
    api = restricted_api
    record_both(store, api.services.policy)
    for url, body in (
        (f"/api/postmortems/{SECRET_ID}/approve", {"comment": ""}),
        (f"/api/action-items/{SECRET_ID}-item-2/verify", {"note": "looks fine"}),
    ):
        answer = await api.post(url, OUTSIDER, json=body)
        assert answer.status_code == 404, answer.text

        async def post(to: str, sent: dict[str, str] = body) -> httpx.Response:
            return await api.post(to, OUTSIDER, json=sent)

        await same_as_absent(url, answer, post)
    # The public one is still found by the same person.
    assert (await api.get(f"/api/postmortems/{PUBLIC_ID}", OUTSIDER)).status_code == 200


# --- the one rule, and the policy that names it -------------------------------------------------


def test_may_read_is_the_group_or_the_people_on_it(policy: Policy, tmp_path: Path) -> None:
    restricted = parse_policy(restricted_policy_data(tmp_path))
    readable = Readable(restricted_to="security", people=frozenset({"bob"}))
    assert may_read(readable, "erin", restricted) and may_read(readable, "bob", restricted)
    assert not may_read(readable, "carol", restricted)
    assert may_read(Readable(), "carol", restricted)  # unrestricted: everyone
    assert not may_read(Readable(restricted_to="gone"), "erin", restricted)  # no such group


def test_the_people_on_it_are_its_owner_commander_reviewers_owners_and_verifiers(
    store: Store, tmp_path: Path
) -> None:
    restricted = parse_policy(restricted_policy_data(tmp_path))
    secret, _ = record_both(store, restricted)
    items = store.records.action_items(postmortem_id=secret.id)
    verified = items[1].model_copy(
        update={
            "previous_owners": ["dan"],
            "decisions": [Verdict(by="frank", verified=True, note="", at=NOW)],
        }
    )
    people = readable_of(secret, [items[0], verified]).people
    assert secret.owner == "alice"  # the commander
    assert people == {"alice", "bob", "erin", "dan", "frank"}
    assert "carol" not in people


def test_the_sql_filter_says_what_may_read_says(store: Store, tmp_path: Path) -> None:
    """Every person of the policy: the postmortems the record lists for them are exactly those
    may_read allows, on both databases."""
    restricted = parse_policy(restricted_policy_data(tmp_path))
    record_both(store, restricted)
    everything = store.records.postmortems()
    for person in sorted(restricted.people):
        reader = restricted.reader(person)
        listed = {pm.id for pm in store.records.postmortems(reader=reader)}
        expected = {
            pm.id
            for pm in everything
            if may_read(
                readable_of(pm, store.records.action_items(postmortem_id=pm.id)),
                person,
                restricted,
            )
        }
        assert listed == expected, person
        searched = {hit.postmortem_id for hit in store.records.search("zebracorn", reader=reader)}
        assert searched <= expected


def test_the_policy_refuses_rules_it_cannot_follow(tmp_path: Path) -> None:
    data = restricted_policy_data(tmp_path)
    data["groups"] = {"security": ["mallory"], "Bad Name": ["erin"]}
    data["restricted"] = [
        {"labels": [], "group": "nobody"},
        {"severities": ["SEV9"], "group": "security"},
    ]
    with pytest.raises(InvalidPolicy) as refused:
        parse_policy(data)
    said = str(refused.value)
    for expected in (
        "groups.security: 'mallory' is not a member",
        "groups.Bad Name: a name of lower-case letters",
        "restricted[0].group: unknown group 'nobody'",
        "restricted[0]: name at least one severity or label",
        "restricted[1].severities: unknown severity 'SEV9'",
    ):
        assert expected in said, said
    assert load_policy().restriction_for("SEV1", ["security"]) == "security"
    assert load_policy().restriction_for("SEV1", ["database"]) is None


# --- what leaves Followthrough: emails, digests, reports, Jira, GitHub, Confluence ---------------


async def test_notices_go_only_to_those_who_may_read_it(
    store: Store, smtp_mailer: Mailer, smtp_server: SmtpCapture, tmp_path: Path
) -> None:
    """An escalation to carol (the manager, not on it), erin (the group) and an audience's plain
    address: only erin hears of it. One to nobody who may read it is withheld, not sent."""
    restricted = parse_policy(restricted_policy_data(tmp_path))
    secret, public = record_both(store, restricted)
    activities = NoticeActivities(store, smtp_mailer, restricted)
    run = ActivityEnvironment().run
    to = [
        Recipient(name="carol", email="carol@example.com"),
        Recipient(name="erin", email="erin@example.com"),
        Recipient(name="partners@example.org", email="partners@example.org"),
    ]
    for pm in (secret, public):
        notice = Notice(
            dedupe_key=f"{pm.id}/overdue",
            kind=NoticeKind.POSTMORTEM_OVERDUE,
            at=NOW,
            to=to,
            postmortem_id=pm.id,
            step="draft",
        )
        await run(activities.send_notice, notice)
    sent = {m.dedupe_key: m.recipients for m in store.outbox.messages()}
    assert sent[f"{secret.id}/overdue"] == ["erin@example.com"]
    assert sent[f"{public.id}/overdue"] == [r.email for r in to]
    mailed = [m for m in smtp_server.messages if SECRET_TITLE in m.as_string()]
    assert [m["To"] for m in mailed] == ["erin@example.com"]
    withheld = Notice(
        dedupe_key=f"{secret.id}/to-outsiders",
        kind=NoticeKind.POSTMORTEM_OVERDUE,
        at=NOW,
        to=to[:1],
        postmortem_id=secret.id,
        step="draft",
    )
    await run(activities.send_notice, withheld)
    assert store.outbox.message(withheld.dedupe_key) is None


def test_digests_and_the_quarterly_report_count_it_and_show_nothing(
    store: Store, tmp_path: Path
) -> None:
    restricted = parse_policy(restricted_policy_data(tmp_path))
    secret, _ = record_both(store, restricted)
    items = store.records.action_items()
    weekly = build_digest(NOW, items, {pm.id: pm for pm in store.records.postmortems()}, restricted)
    assert weekly.open_items == 4  # both postmortems' items counted
    email = render_digest(weekly)
    assert not leaks(email.text + email.html + email.subject)
    quarter = f"{NOW.year}Q{(NOW.month - 1) // 3 + 1}"
    report = quarterly_report(store, restricted, quarter, NOW, public_url="http://ft.test")
    assert report.metrics.incidents == 2  # counted
    assert not leaks(report.html) and not leaks(report.markdown)
    assert PUBLIC_TITLE in report.html or PUBLIC_ID in report.html or report.overdue
    hidden = [o for o in report.overdue if o.postmortem.title == "a restricted postmortem"]
    assert hidden and all(secret.id not in o.item.id for o in hidden)
    period = period_of(NOW.date(), restricted.calendar, month=f"{NOW.year}-{NOW.month:02d}")
    monthly = render_monthly_digest(
        period, measure(store, restricted, period, NOW), Links(temporal_ui="http://t")
    )
    assert not leaks(monthly.text + monthly.html)


@pytest.fixture(params=["Server", "Cloud"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraServer]:
    with JiraServer(
        users={"followthrough@example.com": "jira-token"}, deployment_type=request.param
    ) as server:
        yield server


def _ticket(pm: Postmortem, route: TicketRoute | None = None) -> TicketRequest:
    return TicketRequest(
        action_item_id=pm.action_item_id(1),
        postmortem_id=pm.id,
        postmortem_title=pm.incident.title,
        summary="Rotate zebracorn keys" if pm.restricted_to else "Warm the cache",
        priority="P1",
        due=date(2027, 1, 15),
        owner="bob",
        owner_email="bob@example.com",
        route=route,
    )


async def test_its_jira_ticket_has_the_rules_security_level_and_no_github_issue(
    store: Store, jira: JiraServer, tmp_path: Path
) -> None:
    restricted = parse_policy(restricted_policy_data(tmp_path))
    secret, public = record_both(store, restricted)
    config = JiraConfig(
        url=jira.url, user="followthrough@example.com", token="jira-token", project="PM"
    )
    with GitHubServer(tokens={GITHUB_TOKEN}, users={"bob"}, repos={"acme/payments"}) as github:
        trackers = Trackers(
            {
                "jira": JiraTracker(config),
                "github": GitHubTracker(
                    GitHubConfig(
                        token=GITHUB_TOKEN, url=github.url, repository="acme/payments", timeout=5
                    )
                ),
            }
        )
        activities = TicketActivities(trackers, restrictions=Restrictions(store, restricted))
        run = ActivityEnvironment().run
        ref = await run(activities.open_ticket, _ticket(secret))
        opened = await run(activities.open_ticket, _ticket(public))
        assert ref is not None and opened is not None
        assert jira.issue(ref.key)["fields"]["security"]["name"] == "Security incidents"
        assert "security" not in jira.issue(opened.key)["fields"]
        # The retry finds the same ticket (its label), at the same level.
        assert await run(activities.open_ticket, _ticket(secret)) == ref
        # GitHub: no issue of a restricted postmortem (a repository's readers are not its group).
        to_github = TicketRoute(tracker="github", project="acme/payments")
        assert await run(activities.open_ticket, _ticket(secret, to_github)) is None
        assert await run(activities.open_ticket, _ticket(public, to_github)) is not None
        assert not leaks(repr(github.repos)) and len(repr(github.repos)) > 100
    # A rule naming a level Jira does not have is refused in Jira's words, for good.
    data = restricted_policy_data(tmp_path)
    data["restricted"][0]["jira_security_level"] = "Nobody"
    wrong = TicketActivities(
        Trackers({"jira": JiraTracker(config)}),
        restrictions=Restrictions(store, parse_policy(data)),
    )
    other = _ticket(secret).model_copy(update={"action_item_id": secret.action_item_id(2)})
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(wrong.open_ticket, other)
    assert refused.value.non_retryable and "Security Level" in refused.value.message
    # No level in its rule: no Jira ticket at all (the built-in tracker keeps the item).
    del data["restricted"][0]["jira_security_level"]
    none = TicketActivities(
        Trackers({"jira": JiraTracker(config)}),
        restrictions=Restrictions(store, parse_policy(data)),
    )
    assert await ActivityEnvironment().run(none.open_ticket, other) is None


async def test_slack_tells_only_its_readers_and_no_channel(store: Store, tmp_path: Path) -> None:
    """The team's channel hears of the public postmortem's step, never of the restricted one's;
    the readers among the recipients get their DMs."""
    data = restricted_policy_data(tmp_path)
    data["people"] = {"erin": {"slack": "U0ERIN"}, "bob": {"slack": "U0BOB"}}
    data["teams"]["payments"]["slack_channel"] = "C0PAYMENTS"
    restricted = parse_policy(data)
    secret, public = record_both(store, restricted)
    users = {"U0ERIN": "erin@example.com", "U0BOB": "bob@example.com"}
    with SlackServer(token="xoxb-test", users=users, channels={"C0PAYMENTS"}) as slack:
        config = SlackConfig(token="xoxb-test", signing_secret="s" * 32, api_url=slack.api_url)
        links = Links(temporal_ui="http://t", public_url="http://ft.test")
        delivery = SlackDelivery(store, SlackApi(config), restricted, links)
        activities = NoticeActivities(store, link_mailer(tmp_path / "out"), restricted, delivery)
        to = [Recipient(name="bob", email="bob@example.com")]
        for pm in (secret, public):
            notice = Notice(
                dedupe_key=f"{pm.id}/item-step",
                kind=NoticeKind.ITEM_STEP,
                at=NOW,
                to=to,
                postmortem_id=pm.id,
                action_item_id=pm.action_item_id(1),
                step="reminder",
                notify="owner",
                due=NOW.date(),
            )
            await ActivityEnvironment().run(activities.send_notice, notice)
        channel = [m for m in slack.posted if m["channel"] == "C0PAYMENTS"]
        assert channel and not any(leaks(json.dumps(m)) for m in channel)
        dms = [m for m in slack.posted if m["channel"] != "C0PAYMENTS"]
        assert any("Rotate zebracorn" in json.dumps(m) for m in dms)  # bob owns its item 1


async def test_confluence_publishes_it_only_to_its_rules_space(
    store: Store, tmp_path: Path
) -> None:
    data = restricted_policy_data(tmp_path)
    restricted = parse_policy(data)
    secret, public = record_both(store, restricted)
    with ConfluenceServer(cloud=False, spaces={"PM", "SEC"}) as wiki:
        config = ConfluenceConfig(url=wiki.base_url, user=WIKI_USER, token=WIKI_TOKEN, cloud=False)
        team_space = PageDestination(space="PM")

        async def publish(policy: Policy, pm: Postmortem) -> PublishedPage | None:
            activities = PublishingActivities(store, policy, config, "https://ft.example")
            request = PageRequest(postmortem_id=pm.id, destination=team_space, at=NOW)
            return await ActivityEnvironment().run(activities.publish_postmortem, request)

        assert await publish(restricted, secret) is None  # its rule names no space
        refused = store.publications.of(secret.id)
        assert refused is not None and "restricted" in (refused.error or "")
        assert (await publish(restricted, public)) is not None
        assert not any(leaks(page.title + page.body) for page in wiki.pages.values())
        data["restricted"][0]["confluence_space"] = "SEC"
        page = await publish(parse_policy(data), secret)
        assert page is not None and page.space == "SEC"
        spaces = {p.space for p in wiki.pages.values() if SECRET_TITLE in p.title + p.body}
        assert spaces == {"SEC"}


def test_the_incidents_labels_come_from_its_source_and_are_bounded(tmp_path: Path) -> None:
    """Opsgenie's tags are the incident's labels (a `security` tag restricts its postmortem);
    the generic incident names its own, each refused by name when it is too long."""
    restricted = parse_policy(restricted_policy_data(tmp_path))
    payload = json.loads(load_payload("opsgenie_close"))
    # postmortem:true: an Opsgenie alert starts one only when alerts.postmortem_when names it
    payload["alert"]["tags"] = ["service:billing", "security", "  ", "x" * 500, "postmortem:true"]
    result = resolved("opsgenie", json.dumps(payload).encode(), policy=restricted)
    incident = result.incident
    assert incident.labels[:2] == ["service:billing", "security"]
    assert all(len(label) <= 128 for label in incident.labels)  # cut to fit, never refused
    assert open_postmortem(incident, restricted, NOW).restricted_to == "security"
    generic = json.loads(load_payload("generic_resolved"))
    generic["labels"] = ["database", "l" * 200]
    with pytest.raises(InvalidIncident, match=r"labels\[1\]: at most 128 characters"):
        parse_incident(generic, restricted)
    generic["labels"] = ["database"]
    plain = parse_incident(generic, restricted)
    assert open_postmortem(plain, restricted, NOW).restricted_to is None


async def test_the_councils_theme_and_decision_emails_count_it_and_show_nothing(
    store: Store, smtp_mailer: Mailer, tmp_path: Path
) -> None:
    restricted = parse_policy(restricted_policy_data(tmp_path))
    secret, public = record_both(store, restricted)
    council = [Recipient(name=p, email=f"{p}@example.com") for p in ("grace", "heidi")]
    theme = Theme(
        tag="credentials",
        window_start=NOW - timedelta(days=3),
        window_end=NOW,
        reached_at=NOW,
        reached_by=public.id,
        postmortem_ids=[public.id, secret.id],
    )
    told = Notice(
        dedupe_key="theme/credentials",
        kind=NoticeKind.RECURRING_THEME,
        at=NOW,
        to=council,
        postmortem_id=public.id,
        theme=theme,
    )
    email = theme_email(store.records, restricted, told, Links(temporal_ui="http://t"))
    assert PUBLIC_TITLE in email.text and "in 2 postmortems" in email.subject
    assert "1 restricted postmortem, not shown" in email.text
    assert not leaks(email.text + email.html + email.subject)
    # The secret one's budget decision: only grace (the council, and its group) hears of it.
    budget = store.decisions.get(budget_decision_id(secret.id, "zebracorn-availability"))
    assert budget is not None
    decided = Notice(
        dedupe_key="decision/budget",
        kind=NoticeKind.COUNCIL_DECISION,
        at=NOW,
        to=council,
        postmortem_id=budget.id,
        step="decided",
        decision=budget,
    )
    activities = NoticeActivities(store, smtp_mailer, restricted)
    await ActivityEnvironment().run(activities.send_notice, decided)
    sent = store.outbox.message("decision/budget")
    assert sent is not None and sent.recipients == ["grace@example.com"]


def test_the_readmes_policy_example_is_a_valid_policy() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Restricted postmortems", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    data.update(yaml.safe_load(example))
    written = parse_policy(data)
    assert written.restriction_for("SEV1", []) == "security"
    rule = written.restriction_rule("security")
    assert rule is not None and rule.confluence_space == "SECOPS"


def test_a_rule_added_later_restricts_what_was_recorded_before_it(
    store: Store, tmp_path: Path
) -> None:
    """Recorded under a policy without the rule, then the worker starts with it: the postmortem,
    its items, its search documents and its readers are restricted, and a later snapshot from
    its workflow (which knows no restriction) does not lift it."""
    before = parse_policy({**restricted_policy_data(tmp_path), "restricted": []})
    secret, _ = record_both(store, before)
    assert secret.restricted_to is None
    carol = parse_policy(restricted_policy_data(tmp_path)).reader(OUTSIDER)
    assert any(pm.id == secret.id for pm in store.records.postmortems(reader=carol))
    restricted = parse_policy(restricted_policy_data(tmp_path))
    assert store.records.restrict_existing(restricted) == 1
    assert store.records.restrict_existing(restricted) == 0  # once
    later = secret.model_copy(update={"last_seq": 2, "state": PostmortemState.TRACKING})
    event = AuditEvent(
        workflow_id=secret.id, postmortem_id=secret.id, seq=2, at=NOW, actor="x", action="y"
    )
    store.records.record_postmortem(PostmortemChange(postmortem=later, event=event))
    assert store.records.postmortem(secret.id, reader=carol) is None
    assert store.records.action_items(postmortem_id=secret.id, reader=carol) == []
    assert store.records.search("zebracorn", reader=carol) == []
    found = store.records.postmortem(secret.id)  # the system's read carries the restriction
    assert found is not None and found.restricted_to == "security"
    bob = restricted.reader(ITEM_OWNER)  # on it: owns its first item
    assert store.records.postmortem(secret.id, reader=bob) is not None
    assert {h.postmortem_id for h in store.records.search("zebracorn", reader=bob)} == {secret.id}
