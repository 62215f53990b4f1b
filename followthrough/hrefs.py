"""Which URLs from the record may become links, in pages, emails and reports: http(s) only.

An incident's `url`, a ticket's URL or any other address that came from outside becomes a link
only through `safe_url` (the `safe_url` filter of every template environment); anything else (a
`javascript:` or `data:` URL, one with spaces, quotes or control characters) is shown as text.
"""

from __future__ import annotations

import re

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


def linked(text: str) -> Markup:
    """People's text (a done claim's evidence, a note) as HTML, escaped, with each http(s) URL
    in it a link; every other scheme (javascript:, data:, file:) stays text."""
    parts: list[str] = []
    at = 0
    for found in _URL_IN_TEXT.finditer(text):
        url = found.group(0).rstrip(_TRAILING)
        end = found.start() + len(url)
        parts.append(str(escape(text[at : found.start()])))
        href = safe_url(url)
        if href is None:
            parts.append(str(escape(url)))
        else:
            parts.append(f'<a href="{escape(href)}" rel="noopener noreferrer">{escape(url)}</a>')
        at = end
    parts.append(str(escape(text[at:])))
    return Markup("".join(parts))
