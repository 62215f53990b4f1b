"""The council's quarterly narrative: council members write it in the browser (or by the API),
everyone reads it, two writers never overwrite each other silently, and it becomes the "From the
council" section of that quarter's report, escaped as everything people type is."""

from __future__ import annotations

from datetime import UTC, datetime

from followthrough.domain.narrative import NarrativeEdit
from followthrough.domain.policy import Policy
from followthrough.reporting.report import quarterly_report
from followthrough.storage import Store
from tests.api_support import Api
from tests.test_dashboard import browser, csrf_of, flash, text_of

AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
WORDS = "We paused checkout releases for <b>two weeks</b>.\n\nNext quarter: *alerting* [x](http://evil.example)"


def test_saves_are_versioned_and_a_stale_one_loses(store: Store) -> None:
    assert store.narratives.read("2026Q4").version == 0
    first = store.narratives.save(
        NarrativeEdit(quarter="2026Q4", text="one", version=0, by="grace"), AT
    )
    assert first is not None and first.version == 1
    # heidi opened version 0 too: her save loses, and grace's stays.
    assert (
        store.narratives.save(
            NarrativeEdit(quarter="2026Q4", text="two", version=0, by="heidi"), AT
        )
        is None
    )
    second = store.narratives.save(
        NarrativeEdit(quarter="2026Q4", text="three", version=1, by="heidi"), AT
    )
    assert second is not None and second.version == 2
    kept = store.narratives.read("2026Q4")
    assert (kept.text, kept.version, kept.written_by, kept.written_at) == ("three", 2, "heidi", AT)
    assert store.narratives.read("2026Q3").text == ""


async def test_only_the_council_writes_and_every_refusal_names_its_field(api: Api) -> None:
    path = "/api/council/narratives/2026Q4"
    saved = await api.http.put(path, json={"text": WORDS, "version": 0}, headers=_as(api, "grace"))
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1

    for person, body, code, named in [
        ("dan", {"text": "mine", "version": 1}, 403, "only the reliability council"),
        ("heidi", {"text": "late", "version": 0}, 409, "grace saved version 1"),
        ("heidi", {"text": "x" * 20_001, "version": 1}, 422, "text"),
        ("heidi", {"text": "bell \x07", "version": 1}, 422, "text: contains a control character"),
        ("heidi", {"text": "ok", "version": -1}, 422, "version"),
    ]:
        refused = await api.http.put(path, json=body, headers=_as(api, person))
        assert refused.status_code == code, (body, refused.text)
        assert named in refused.text, refused.text
    bad_quarter = await api.http.put(
        "/api/council/narratives/2026Q5", json={"text": "", "version": 1}, headers=_as(api, "grace")
    )
    assert bad_quarter.status_code == 422
    read = await api.http.get(path, headers=_as(api, "dan"))
    assert read.status_code == 200 and read.json()["text"] == WORDS and read.json()["version"] == 1


async def test_written_in_the_browser_and_read_by_everyone(api: Api) -> None:
    api.services.clock = lambda: AT
    async with browser(api, "grace") as grace, browser(api, "dan") as dan:
        page = await grace.get("/council/narrative?quarter=2026q4")
        assert page.status_code == 200 and 'id="narrative-form"' in page.text
        form = {"csrf": csrf_of(page), "quarter": "2026Q4", "version": "0", "text": WORDS}
        said = await flash(grace, await grace.post("/council/narrative", data=form))
        assert said == {"done": "Saved version 1: it is part of the 2026Q4 report."}
        # A second save from the same, now stale, page is refused by name and changes nothing.
        stale = await flash(
            grace, await grace.post("/council/narrative", data=form | {"text": "x"})
        )
        assert "version: grace saved version 1 since you opened version 0" in stale["error"]

        read = await dan.get("/council/narrative?quarter=2026Q4")
        assert 'id="narrative-form"' not in read.text
        assert "We paused checkout releases for &lt;b&gt;two weeks&lt;/b&gt;." in read.text
        assert "Version 1, written by grace" in text_of(read)
        refused = await flash(
            dan,
            await dan.post(
                "/council/narrative", data=form | {"csrf": csrf_of(read), "version": "1"}
            ),
        )
        assert "only the reliability council" in refused["error"]
        assert api.services.store.narratives.read("2026Q4").text == WORDS
        assert (await dan.get("/council/narrative?quarter=2026Q9")).status_code == 422
        metrics = await dan.get("/reliability?quarter=2026Q4")
        assert 'href="/council/narrative?quarter=2026Q4"' in metrics.text


def test_the_narrative_is_a_section_of_its_quarters_report(store: Store, policy: Policy) -> None:
    as_of = datetime(2027, 1, 5, 9, 0, tzinfo=UTC)
    before = quarterly_report(store, policy, "2026Q4", as_of)
    assert "From the council" not in before.html and "From the council" not in before.markdown
    store.narratives.save(NarrativeEdit(quarter="2026Q4", text=WORDS, version=0, by="grace"), AT)

    report = quarterly_report(store, policy, "2026Q4", as_of)
    assert "<h2>From the council</h2>" in report.html
    assert "<p>We paused checkout releases for &lt;b&gt;two weeks&lt;/b&gt;.</p>" in report.html
    assert "http://evil.example" in report.html and 'href="http://evil.example"' not in report.html
    assert "Written by grace, 2026-12-03 12:00 (version 1)." in report.html
    section = report.markdown.split("## From the council", 1)[1].split("## ", 1)[0]
    assert "We paused checkout releases for \\<b\\>two weeks\\</b\\>." in section
    assert "\\[x\\](http" in section and "\\*alerting\\*" in section
    # Another quarter's report does not carry it.
    assert "From the council" not in quarterly_report(store, policy, "2026Q3", as_of).html


def _as(api: Api, person: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token(person)}"}
