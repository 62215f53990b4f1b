"""Which URLs from the record may become links, in pages, emails and reports: http(s) only.

An incident's `url`, a ticket's URL or any other address that came from outside becomes a link
only through `safe_url` (the `safe_url` filter of every template environment); anything else (a
`javascript:` or `data:` URL, one with spaces, quotes or control characters) is shown as text.
People's text keeps its http(s) URLs as links: `linked` in HTML, `markdown_linked` in Markdown.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from markupsafe import Markup, escape

# Besides what ends an href or breaks Markdown, control characters: browsers drop tabs and
# newlines from a URL, so "java\tscript:" would still run.
_UNSAFE_URL = re.compile(r"[\s<>()\[\]{}\"'`\\|^\x00-\x1f\x7f]")


def safe_url(url: object) -> str | None:
    """The URL if it is a plain http(s) address that can stand in an href and in Markdown
    unchanged; else None, and the page shows the text without a link."""
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None
    return None if _UNSAFE_URL.search(url) else url


_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""  # sentence punctuation after a URL is not part of it


def _urls_in(text: str) -> Iterator[tuple[str, str]]:
    """The text as (text, URL after it) pieces: each http(s) URL without the sentence
    punctuation that follows it; the last piece's URL is empty."""
    at = 0
    for found in _URL_IN_TEXT.finditer(text):
        url = found.group(0).rstrip(_TRAILING)
        yield text[at : found.start()], url
        at = found.start() + len(url)
    yield text[at:], ""


def linked(text: str) -> Markup:
    """People's text (a done claim's evidence, a note) as HTML, escaped, with each http(s) URL
    in it a link; every other scheme (javascript:, data:, file:) stays text."""
    parts: list[str] = []
    for before, url in _urls_in(text):
        parts.append(str(escape(before)))
        href = safe_url(url)
        if href is None:
            parts.append(str(escape(url)))
        else:
            parts.append(f'<a href="{escape(href)}" rel="noopener noreferrer">{escape(url)}</a>')
    return Markup("".join(parts))


# What could start a link, an image, HTML, emphasis, code or a table cell inside a line; the
# rest (hyphens in ids, parentheses) is left readable.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>!|~])")


def markdown_escape(value: object) -> str:
    """Text as Markdown shows it literally, on one line (a line break would end a table row):
    no link, image, tag or emphasis can come of it."""
    return _escape_markdown(" ".join(str(value).split()))


def markdown_linked(value: object) -> str:
    """People's text in Markdown as `markdown_escape` shows it, except that each http(s) URL in
    it stays a link (an autolink, <url>): `linked`'s twin. Every other scheme is only text."""
    parts: list[str] = []
    for before, url in _urls_in(" ".join(str(value).split())):
        href = safe_url(url)
        parts.append(_escape_markdown(before) + (f"<{href}>" if href else _escape_markdown(url)))
    return "".join(parts)


def _escape_markdown(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
