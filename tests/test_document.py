"""The postmortem document: a printable page and its Markdown (dashboard and CLI), readable
outside engineering; people's URLs are links only when they are http(s)."""

from __future__ import annotations

import re

import httpx
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from followthrough.cli import app
from followthrough.hrefs import linked, markdown_escape, markdown_linked
from tests.api_support import Api
from tests.conftest import eventually
from tests.test_api import stored_item, stored_postmortem, tracked_postmortem
from tests.test_dashboard import browser, text_of

EVIDENCE = "PR https://git.example.com/pay/pull/42, and see javascript:alert(1) too."


def test_only_http_urls_in_text_become_links() -> None:
    html = str(linked(EVIDENCE + ' <b>"x"</b> ftp://files.example/x data:text/html,hi'))
    assert re.findall(r'href="([^"]+)"', html) == ["https://git.example.com/pay/pull/42"]
    assert "pull/42</a>, and" in html  # the comma after a URL is not part of it
    assert "<b>" not in html and "&lt;b&gt;" in html  # the rest is escaped text
    assert "javascript:alert(1)" in html and "ftp://files.example/x" in html
    bad = str(linked('http://x.example/"onmouseover=alert(1)'))
    # A quote ends the URL: the rest is escaped text after the link, never an attribute.
    assert re.findall(r"<a [^>]*>", bad) == [
        '<a href="http://x.example/" rel="noopener noreferrer">'
    ]
    assert "&#34;onmouseover" in bad


def test_the_markdown_escapes_what_people_typed_and_keeps_only_http_links() -> None:
    """The report's escape (no link at all) and the document's (http(s) URLs stay links) differ
    only in the URLs: the same characters are escaped the same way."""
    said = "see https://git.example.com/a_b, ![x](javascript:alert(1)) or ftp://f.example/a_b"
    escaped = r"\!\[x\](javascript:alert(1)) or ftp://f.example/a\_b"
    assert markdown_linked(said) == f"see <https://git.example.com/a_b>, {escaped}"
    assert markdown_escape(said) == rf"see https://git.example.com/a\_b, {escaped}"
    assert markdown_linked("two\nlines  and\ttabs |") == markdown_escape("two lines and tabs |")


async def test_the_document_tells_the_story_and_the_follow_ups(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id, bob_item, carol_item = await tracked_postmortem(api, time_skipping)
    claimed = await api.post(
        f"/api/action-items/{bob_item}/claim-done", "bob", {"evidence": EVIDENCE}
    )
    assert claimed.is_success, claimed.text
    assert (await api.post(f"/api/action-items/{bob_item}/verify", "carol", {})).is_success
    await eventually(lambda: stored_item(api, bob_item).state.value == "verified")
    pm = stored_postmortem(api, pm_id)
    assert pm.draft is not None
    async with browser(api, "dan") as dan:
        page = await dan.get(f"/postmortems/{pm_id}")
        assert f'href="/postmortems/{pm_id}/document"' in page.text

        document = await dan.get(f"/postmortems/{pm_id}/document")
        assert document.status_code == 200
        assert "<script" not in document.text and "@media print" in document.text
        text = text_of(document)
        for heading in ("Summary", "Impact", "Timeline", "Why it happened", "What we are doing"):
            assert heading in text
        assert pm.incident.title in text and pm.draft.impact in text
        assert pm.draft.contributing_factors[0].description in text
        assert "Follow-ups done 1 of 2" in text
        assert "verified done" in text and "in progress" in text
        assert stored_item(api, carol_item).spec.acceptance_criterion.summary() in text
        hrefs = re.findall(r'href="([^"]+)"', document.text)
        assert "https://git.example.com/pay/pull/42" in hrefs
        assert not any(h.startswith("javascript") for h in hrefs)

        markdown = await dan.get(f"/postmortems/{pm_id}/document.md")
        assert markdown.headers["content-type"].startswith("text/markdown")
        md = markdown.text
        assert md.startswith(f"# {pm.incident.id}")
        assert "## What we are doing about it" in md and "| P" in md
        assert "<https://git.example.com/pay/pull/42>" in md
        assert "[" not in md.split("Evidence:")[1].split("|")[0].replace("\\[", "")

        anonymous_refused = await (await _anonymous(api)).get(f"/postmortems/{pm_id}/document")
        assert anonymous_refused.status_code == 303

    env = {"FOLLOWTHROUGH_DATABASE_URL": str(api.services.store.engine.url)}
    runner = CliRunner()
    as_html = runner.invoke(app, ["postmortem", "export", pm.incident.id], env=env)
    as_md = runner.invoke(app, ["postmortem", "export", pm_id, "--markdown"], env=env)
    assert as_html.exit_code == 0 and as_md.exit_code == 0, as_html.output + as_md.output
    assert as_html.output.startswith("<!doctype html>") and "Why it happened" in as_html.output
    assert as_md.output == md
    missing = runner.invoke(app, ["postmortem", "export", "INC-nope"], env=env)
    assert missing.exit_code != 0


async def _anonymous(api: Api) -> httpx.AsyncClient:
    http = api.http
    return httpx.AsyncClient(transport=http._transport, base_url=http.base_url)
