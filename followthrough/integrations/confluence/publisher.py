"""A postmortem's Confluence page: created once, found again, brought up to date.

    publisher = ConfluencePublisher(config)
    page = publisher.publish(PageContent(postmortem_id, destination, title, body))

Found again the way tickets are: by its label `ft-<postmortem id>` (CQL), and, because Cloud's
search index lags a create by seconds to minutes, by its title too (titles are unique in a
space, and the title carries the postmortem's id). Only when neither finds it is a page created;
a create whose answer was lost is found by its title on the retry. After a create the label is
searched again: should two pages carry it (two workers raced, or a page was copied), the lowest
id wins, every time, and the others are labelled `ft-duplicate` and left for a person.

An existing page is rewritten only when its body differs (Confluence's version + 1, marked as a
minor edit with the body's digest as the version's message), so a retry or a re-publish of the
same facts writes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from followthrough.domain.publishing import PageDestination, PublishedPage, page_label
from followthrough.integrations.confluence.client import connect, translate
from followthrough.integrations.confluence.config import ConfluenceConfig
from followthrough.integrations.confluence.errors import ConfluenceError, ConfluenceRefused
from followthrough.logging import get_logger

log = get_logger(__name__)

DUPLICATE_LABEL = "ft-duplicate"
# Pages carrying one postmortem's label: one, rarely two; more is a person's doing. Read that many.
MOST_LABELLED = 50


@dataclass(frozen=True)
class PageContent:
    postmortem_id: str
    destination: PageDestination
    title: str
    body: str  # Confluence storage format (XHTML)

    @property
    def label(self) -> str:
        return page_label(self.postmortem_id)

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.title}\n{self.body}".encode()).hexdigest()[:32]


class ConfluencePublisher:
    def __init__(self, config: ConfluenceConfig, client: Any = None) -> None:
        self.config = config
        self.client = client if client is not None else connect(config)

    def publish(self, content: PageContent) -> PublishedPage:
        pm = content.postmortem_id
        found = self._labelled(content) or self._titled(content)
        if found:
            page = self._winner(content, found, created=None)
            return self._bring_up_to_date(content, page)
        created, adopted = self._create(content)
        if adopted:  # a page of that title appeared meanwhile: it is ours
            return self._bring_up_to_date(content, created)
        again = self._labelled(content)
        page = self._winner(content, again, created=created)
        if page["id"] != created["id"]:
            return self._bring_up_to_date(content, page)
        log.info("confluence page created", postmortem_id=pm, page_id=page["id"])
        return self._published(content, created, changed=True)

    # --- finding -------------------------------------------------------------------------------

    def _labelled(self, content: PageContent) -> list[dict[str, Any]]:
        """Pages with the postmortem's label, through CQL (paged by `_links.next`)."""
        cql = f'type=page AND label="{content.label}"'
        params = {"cql": cql, "limit": 25, "expand": "version,space"}

        def search() -> list[dict[str, Any]]:
            found = []
            for page in self.client._get_paged("rest/api/content/search", params=params):
                found.append(page)
                if len(found) >= MOST_LABELLED:
                    break
            return found

        found: list[dict[str, Any]] = self._call(
            f"searching for the page labelled {content.label}", search
        )
        return found

    def _titled(self, content: PageContent) -> list[dict[str, Any]]:
        """The page of that title in the space (read directly, not from the lagging index);
        labelled on the spot, so the next search finds it."""
        space = content.destination.space
        page = self._call(
            f"looking for the page '{content.title}' in {space}",
            lambda: self.client.get_page_by_title(space, content.title, expand="version,space"),
        )
        if not page:
            return []
        self._label(page["id"], content.label)
        return [page]

    def _winner(
        self, content: PageContent, found: list[dict[str, Any]], created: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The lowest id among the labelled pages (and the one just created, which the search
        may not show yet); the others are labelled as duplicates and left alone."""
        pages = {str(p["id"]): p for p in found}
        if created is not None:
            pages.setdefault(str(created["id"]), created)
        ordered = sorted(pages.values(), key=lambda p: int(p["id"]))
        for extra in ordered[1:]:
            log.warning(
                "confluence page is a duplicate, left alone",
                postmortem_id=content.postmortem_id,
                page_id=extra["id"],
                kept=ordered[0]["id"],
            )
            self._label(extra["id"], DUPLICATE_LABEL)
        return ordered[0]

    # --- writing -------------------------------------------------------------------------------

    def _create(self, content: PageContent) -> tuple[dict[str, Any], bool]:
        """The page created (and labelled), or the page of its title adopted (True)."""
        space = content.destination.space
        parent = self._parent_id(content.destination)
        try:
            created: dict[str, Any] = self._call(
                f"creating the page of {content.postmortem_id} in {space}",
                lambda: self.client.create_page(
                    space, content.title, content.body, parent_id=parent, representation="storage"
                ),
            )
        except ConfluenceRefused:
            # Refused because the title is taken: a create we did not hear back from, or
            # another worker's. It is found by its title; any other refusal stands.
            titled = self._titled(content)
            if titled:
                return titled[0], True
            raise
        self._label(created["id"], content.label)
        return created, False

    def _bring_up_to_date(self, content: PageContent, page: dict[str, Any]) -> PublishedPage:
        page_id = str(page["id"])
        current = self._call(
            f"reading the page {page_id}",
            lambda: self.client.get_page_by_id(page_id, expand="body.storage,version,space"),
        )
        version = current.get("version") or {}
        stored = ((current.get("body") or {}).get("storage") or {}).get("value") or ""
        same = current.get("title") == content.title and (
            stored.strip() == content.body.strip()
            or version.get("message") == f"followthrough {content.digest}"
        )
        if same:
            return self._published(content, current, changed=False)
        updated = self._call(
            f"updating the page {page_id} of {content.postmortem_id}",
            lambda: self.client.update_page(
                page_id,
                content.title,
                content.body,
                representation="storage",
                minor_edit=True,
                version_comment=f"followthrough {content.digest}",
                always_update=True,
            ),
        )
        log.info(
            "confluence page updated",
            postmortem_id=content.postmortem_id,
            page_id=page_id,
            version=(updated.get("version") or {}).get("number"),
        )
        return self._published(content, updated, changed=True)

    def _label(self, page_id: str, label: str) -> None:
        self._call(
            f"labelling the page {page_id} {label}",
            lambda: self.client.set_page_label(page_id, label),
        )

    def _parent_id(self, destination: PageDestination) -> str | None:
        parent = destination.parent_page
        if parent is None or parent.isdigit():
            return parent
        found = self._call(
            f"looking for the parent page '{parent}' in {destination.space}",
            lambda: self.client.get_page_by_title(destination.space, parent),
        )
        if not found:
            raise ConfluenceRefused(
                f"there is no page '{parent}' in the space {destination.space} to publish "
                "under (the policy's publishing.parent_page)"
            )
        return str(found["id"])

    # --- answers -------------------------------------------------------------------------------

    def _published(
        self, content: PageContent, page: dict[str, Any], *, changed: bool
    ) -> PublishedPage:
        links = page.get("_links") or {}
        base = str(links.get("base") or self.config.base_url).rstrip("/")
        webui = str(links.get("webui") or f"/pages/viewpage.action?pageId={page['id']}")
        space = (page.get("space") or {}).get("key") or content.destination.space
        return PublishedPage(
            postmortem_id=content.postmortem_id,
            space=str(space),
            page_id=str(page["id"]),
            title=str(page.get("title") or content.title),
            url=base + webui,
            version=int((page.get("version") or {}).get("number") or 1),
            changed=changed,
        )

    def _call(self, doing: str, call: Any) -> Any:
        try:
            return call()
        except ConfluenceError:
            raise
        except Exception as err:
            found = translate(err, doing=doing, config=self.config)
            if found is None:
                raise
            raise found from None
