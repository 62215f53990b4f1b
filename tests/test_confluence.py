"""Publishing to Confluence through `atlassian-python-api`, against a Confluence-REST-compatible
server on loopback in both its shapes (Cloud under /wiki, Data Center at the root): one page per
postmortem, found again by its label or its title, updated only when it changed, and each
failure either permanent (refused) or one to retry (429, 409, 5xx)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from followthrough.domain.publishing import PageDestination, page_label, page_title
from followthrough.integrations.confluence import (
    DUPLICATE_LABEL,
    ConfluenceConfig,
    ConfluencePublisher,
    ConfluenceRefused,
    ConfluenceUnavailable,
    PageContent,
)
from tests.servers.confluence_server import TOKEN, USER, ConfluenceServer

PM = "postmortem-generic-INC-7"


@pytest.fixture(params=["cloud", "datacenter"])
def wiki(request: pytest.FixtureRequest) -> Iterator[ConfluenceServer]:
    with ConfluenceServer(cloud=request.param == "cloud", spaces={"PM", "PAY"}) as server:
        yield server


def publisher(wiki: ConfluenceServer, token: str = TOKEN) -> ConfluencePublisher:
    # The site's URL as a person writes it: on Cloud without /wiki (the config adds it).
    url = wiki.base_url.removesuffix("/wiki")
    return ConfluencePublisher(ConfluenceConfig(url=url, user=USER, token=token, cloud=wiki.cloud))


def content(
    body: str = "<p>Checkout returned 502s &amp; retried.</p>",
    space: str = "PM",
    parent: str | None = None,
) -> PageContent:
    return PageContent(
        postmortem_id=PM,
        destination=PageDestination(space=space, parent_page=parent),
        title=page_title("Checkout returned 502s", PM),
        body=body,
    )


def test_publishing_creates_one_labelled_page_in_the_space(wiki: ConfluenceServer) -> None:
    page = publisher(wiki).publish(content(space="PAY"))

    [stored] = wiki.pages.values()
    assert stored.space == "PAY" and stored.title == f"Postmortem: Checkout returned 502s ({PM})"
    assert stored.labels == [page_label(PM)] == ["ft-postmortem-generic-inc-7"]
    assert page.page_id == stored.id and page.version == 1 and page.changed
    assert page.url.startswith(wiki.base_url) and stored.id in page.url
    # Cloud's REST API is under /wiki; Data Center's at the root.
    assert all(path.startswith(wiki.prefix + "/rest/api/") for _, path, _ in wiki.requests)


def test_publishing_again_finds_the_page_and_writes_nothing_when_nothing_changed(
    wiki: ConfluenceServer,
) -> None:
    first = publisher(wiki).publish(content())
    before = len(wiki.writes())
    again = publisher(wiki).publish(content())
    assert again.page_id == first.page_id and not again.changed and again.version == 1
    assert len(wiki.writes()) == before and len(wiki.pages) == 1


def test_a_change_updates_the_page_with_the_next_version(wiki: ConfluenceServer) -> None:
    first = publisher(wiki).publish(content())
    updated = publisher(wiki).publish(content(body="<p>Closed: every follow-up verified.</p>"))
    [stored] = wiki.pages.values()
    assert updated.page_id == first.page_id and updated.changed and updated.version == 2
    assert stored.version == 2 and stored.body == "<p>Closed: every follow-up verified.</p>"
    assert stored.minor_edit and stored.message.startswith("followthrough ")
    # The same change published again (a retry) writes nothing more.
    assert not publisher(wiki).publish(content(body=stored.body)).changed
    assert stored.version == 2


def test_a_create_whose_answer_was_lost_is_found_again_while_search_lags() -> None:
    with ConfluenceServer(cloud=True, lag_search=True) as wiki:
        wiki.lose_next_create()
        with pytest.raises(ConfluenceUnavailable, match="504"):
            publisher(wiki).publish(content())
        # The retry: search does not see the page yet; its title does, and it is adopted.
        page = publisher(wiki).publish(content())
        [stored] = wiki.pages.values()
        assert page.page_id == stored.id and stored.labels == [page_label(PM)]
        assert [
            m for m, p in wiki.writes() if p.endswith("/content") or p.endswith("/content/")
        ] == ["POST"]


def test_two_labelled_pages_resolve_to_the_lowest_id_and_the_other_is_marked(
    wiki: ConfluenceServer,
) -> None:
    older = wiki.add_page("PM", "Copied postmortem")
    older.labels.append(page_label(PM))
    newer = wiki.add_page("PM", "Another copy")
    newer.labels.append(page_label(PM))
    wiki.index()
    page = publisher(wiki).publish(content())
    assert page.page_id == older.id and len(wiki.pages) == 2
    assert DUPLICATE_LABEL in newer.labels and DUPLICATE_LABEL not in older.labels
    assert older.title == content().title and older.version == 2  # brought up to date


def test_many_search_results_are_read_page_by_page(wiki: ConfluenceServer) -> None:
    pages = [wiki.add_page("PM", f"Copy {n}") for n in range(30)]
    for page in pages:
        page.labels.append(page_label(PM))
    wiki.index()
    published = publisher(wiki).publish(content())
    assert published.page_id == pages[0].id
    searches = [q for m, p, q in wiki.requests if p.endswith("/content/search")]
    assert len(searches) == 2  # 25 a page: the second followed `_links.next`
    assert ("cursor" in searches[1]) == wiki.cloud and ("start" in searches[1]) != wiki.cloud


def test_the_parent_page_is_found_by_title(wiki: ConfluenceServer) -> None:
    parent = wiki.add_page("PM", "Postmortems")
    publisher(wiki).publish(content(parent="Postmortems"))
    [published] = [p for p in wiki.pages.values() if p.id != parent.id]
    assert published.ancestors == [parent.id]
    with pytest.raises(ConfluenceRefused, match="no page 'Archive' in the space PM"):
        publisher(wiki).publish(
            PageContent(PM + "-b", PageDestination(space="PM", parent_page="Archive"), "B", "")
        )


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda w: None, "credentials of publisher@example.com \\(401\\)"),
        (lambda w: w.read_only_spaces.add("PM"), "forbids .* \\(403\\).*not permitted"),
        (lambda w: w.spaces.discard("PM"), "refused this \\(404\\).*No space with key : PM"),
    ],
    ids=["401", "403", "404"],
)
def test_a_refusal_is_permanent_and_says_why(
    wiki: ConfluenceServer, setup: object, words: str
) -> None:
    token = "wrong" if "401" in words else TOKEN
    setup(wiki)  # type: ignore[operator]
    with pytest.raises(ConfluenceRefused, match=words) as refused:
        publisher(wiki, token).publish(content())
    assert TOKEN not in refused.value.message and wiki.pages == {}


def test_a_body_confluence_cannot_parse_is_refused(wiki: ConfluenceServer) -> None:
    with pytest.raises(ConfluenceRefused, match=r"400.*Error parsing xhtml"):
        publisher(wiki).publish(content(body="<p>unclosed"))


def test_rate_limits_and_outages_are_to_be_retried(wiki: ConfluenceServer) -> None:
    wiki.rate_limit_next(1, retry_after=7)
    with pytest.raises(ConfluenceUnavailable, match="429") as limited:
        publisher(wiki).publish(content())
    assert limited.value.retry_after == 7
    wiki.fail_next(1, status=503)
    with pytest.raises(ConfluenceUnavailable, match="503"):
        publisher(wiki).publish(content())
    assert publisher(wiki).publish(content()).version == 1 and len(wiki.pages) == 1


def test_a_page_edited_meanwhile_is_a_conflict_to_retry(wiki: ConfluenceServer) -> None:
    first = publisher(wiki).publish(content())
    wiki.edit_before_next_update()
    with pytest.raises(ConfluenceUnavailable, match=r"409.*Version must be incremented"):
        publisher(wiki).publish(content(body="<p>new</p>"))
    # The retry reads the version anew.
    assert publisher(wiki).publish(content(body="<p>new</p>")).version == 3
    assert wiki.pages[first.page_id].body == "<p>new</p>"


def test_a_confluence_that_is_not_there_is_unavailable() -> None:
    with ConfluenceServer() as wiki:
        url = wiki.base_url
    config = ConfluenceConfig(url=url, user=USER, token=TOKEN, cloud=False, timeout=2)
    with pytest.raises(ConfluenceUnavailable, match="could not reach Confluence"):
        ConfluencePublisher(config).publish(content())


def test_cloud_is_detected_from_the_site() -> None:
    cloud = ConfluenceConfig(url="https://acme.atlassian.net", user=USER, token=TOKEN)
    assert cloud.is_cloud and cloud.base_url == "https://acme.atlassian.net/wiki"
    dc = ConfluenceConfig(url="https://wiki.acme.example/", user=USER, token=TOKEN)
    assert not dc.is_cloud and dc.base_url == "https://wiki.acme.example"


def test_a_title_is_one_line_and_fits_confluence() -> None:
    title = page_title("Checkout\n502s\x07 " + "x" * 400, PM)
    assert title.startswith("Postmortem: Checkout 502s x") and title.endswith(f"… ({PM})")
    assert len(title) == 255 and "\n" not in title and "\x07" not in title
    assert page_label("PM/INC 7!") == "ft-pm-inc-7"
