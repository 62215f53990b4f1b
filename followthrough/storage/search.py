"""Full-text search over postmortems, action items and contributing factors.

One search document per thing a person looks for, kept in `search_documents` and rewritten in the
same transaction as the snapshot it comes from (RecordStore.record_postmortem / record_action_item):

- a postmortem (ref = its id): the incident's id and title; the incident's summary and services,
  the draft's summary, impact, timeline, detection gaps and recovery steps;
- an action item (ref = its id): its title; description, owner, team, priority, acceptance
  criterion and ticket key;
- a contributing factor of the postmortem's current draft (ref = "<postmortem id>#factor-<n>",
  n counting from 1 in the draft): its tags; its description.

Each document remembers the sequence number of the snapshot it was built from (`source_seq`), so
an older snapshot arriving late, or a repeat, leaves the search text alone, as the snapshot row is
left alone (RecordStore._upsert_snapshot).

PostgreSQL keeps a weighted tsvector (title A, body B, 'english') as a generated column with a GIN
index. SQLite keeps an FTS5 index ('porter unicode61') over the same table as external content,
kept in step by triggers: a rewrite deletes by rowid instead of scanning the index. Migration 0008
creates both. Alembic's batch mode recreates a table, which would drop those triggers: a later
migration touching search_documents on SQLite must recreate them and rebuild the index.

Highlighted text comes back as segments (text, is_match), never as HTML: the matches are marked
with private-use characters that are stripped from every stored text, and split on them here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, Literal, get_args

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TextClause,
    and_,
    bindparam,
    delete,
    insert,
    select,
    text,
)
from sqlalchemy.sql.elements import ColumnElement

from followthrough.domain.postmortem import ActionItem, Postmortem
from followthrough.domain.restricted import Reader
from followthrough.storage.restricted import READABLE_SQL

SearchKind = Literal["postmortem", "action_item", "contributing_factor"]
KINDS: Final[tuple[SearchKind, ...]] = get_args(SearchKind)
MAX_QUERY_LENGTH = 200
MAX_LIMIT = 200
# At most this many matches are ranked: the most recently written ones. Ranking reads every
# candidate's text, so a common word ("timeout") cost three times as much at 10,000 postmortems as
# at 1,000 (bench/README.md, "Dashboard"); past this many, more words narrow it better than rank.
RANKED_MOST = 1000

Segments = list[tuple[str, bool]]

# Private-use characters mark where a match starts and stops in a headline or snippet.
_START = "\ue000"
_STOP = "\ue001"
_MARKS = re.compile(f"([{_START}{_STOP}])")
# PostgreSQL's parser reads "<...>" as an HTML tag, which it does not index (0008 indexes '<' as a
# blank) and ts_headline drops: it gets a '<' stand-in, swapped back in its output.
_LESS_THAN = "\ue002"
# Private characters, NUL and other control characters (but newlines, tabs) are never stored.
_UNSTORABLE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f{_START}{_STOP}{_LESS_THAN}]")
# A searchable word: letters and digits (the FTS5 tokenizer splits on everything else).
_WORD = re.compile(r"[^\W_]+")

_metadata = MetaData()
# The columns both databases share (migration 0008 adds PostgreSQL's tsvector, SQLite's FTS5).
documents = Table(
    "search_documents",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("ref_id", String(240), nullable=False),
    Column("postmortem_id", String(200), nullable=False),
    Column("source_seq", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    # Migration 0030: its postmortem's restriction. Written beside the documents (never by
    # write_documents, which migration 0008 calls before the column exists).
    Column("restricted_to", String(64), nullable=True),
)


class SearchDocument(BaseModel):
    """What one search finds, as it is indexed."""

    model_config = ConfigDict(frozen=True)

    kind: SearchKind
    ref_id: str
    postmortem_id: str
    source_seq: int
    title: str
    body: str


class SearchHit(BaseModel):
    """One match, best first; title and snippet as (text, is_match) segments for the page."""

    model_config = ConfigDict(frozen=True)

    kind: SearchKind
    ref_id: str
    postmortem_id: str
    title: Segments
    snippet: Segments
    rank: float  # higher is better; comparable only within one search's hits


# --- documents (pure) --------------------------------------------------------------------------


def postmortem_documents(pm: Postmortem) -> list[SearchDocument]:
    """The postmortem's own document, then one per contributing factor of its current draft."""
    incident = pm.incident
    draft = pm.draft
    body = [incident.summary, " ".join(incident.services)]
    if draft is not None:
        body += [draft.summary, draft.impact]
        body += [entry.description for entry in draft.timeline]
        body += [*draft.detection_gaps, *draft.recovery_steps]
    found = [
        _document(
            "postmortem", pm.id, pm, title=[incident.id, incident.title], body=body, seq=pm.last_seq
        )
    ]
    factors = draft.contributing_factors if draft is not None else []
    for number, factor in enumerate(factors, start=1):
        if factor.description.strip() or factor.tags:
            found.append(
                _document(
                    "contributing_factor",
                    f"{pm.id}#factor-{number}",
                    pm,
                    title=[", ".join(factor.tags)],
                    body=[factor.description],
                    seq=pm.last_seq,
                )
            )
    return found


def action_item_document(item: ActionItem) -> SearchDocument:
    spec = item.spec
    criterion = spec.acceptance_criterion
    body = [
        spec.description,
        item.owner,
        item.team,
        spec.priority.value,
        f"{criterion.kind.replace('_', ' ')}: {criterion.summary()}",
        item.ticket.key if item.ticket else "",
    ]
    return SearchDocument(
        kind="action_item",
        ref_id=item.id,
        postmortem_id=item.postmortem_id,
        source_seq=item.last_seq,
        title=_joined([spec.title], " "),
        body=_joined(body, "\n"),
    )


def _document(
    kind: SearchKind, ref_id: str, pm: Postmortem, *, title: list[str], body: list[str], seq: int
) -> SearchDocument:
    return SearchDocument(
        kind=kind,
        ref_id=ref_id,
        postmortem_id=pm.id,
        source_seq=seq,
        title=_joined(title, " "),
        body=_joined(body, "\n"),
    )


def _joined(parts: Iterable[str], separator: str) -> str:
    return separator.join(_UNSTORABLE.sub("", p).strip() for p in parts if p and p.strip())


# --- queries and highlights (pure) -------------------------------------------------------------


def search_words(query: str) -> list[str]:
    """The words of what a person typed; ValueError naming what is wrong with it."""
    typed = query.strip()
    if len(typed) > MAX_QUERY_LENGTH:
        raise ValueError(
            f"the search is {len(typed)} characters long; keep it to {MAX_QUERY_LENGTH}"
        )
    words = _WORD.findall(typed)
    if not words:
        raise ValueError("type at least one word to search for")
    return words


def fts5_query(words: list[str]) -> str:
    """Every word quoted, so nothing typed is read as FTS5 syntax; all of them must match."""
    return " ".join(f'"{word}"' for word in words)


def segments(marked: str) -> Segments:
    """Text with start/stop markers as (text, is_match) pieces, markers dropped."""
    pieces: Segments = []
    matching = False
    for part in _MARKS.split(marked.replace(_LESS_THAN, "<")):
        if part == _START:
            matching = True
        elif part == _STOP:
            matching = False
        elif part:
            pieces.append((part, matching))
    return pieces


# --- writes ------------------------------------------------------------------------------------


def index_postmortem(
    connection: Connection, pm: Postmortem, restricted_to: str | None = None
) -> None:
    """Rewrite the postmortem's and its factors' documents, unless they are as new already."""
    owned = and_(
        documents.c.postmortem_id == pm.id,
        documents.c.kind.in_(("postmortem", "contributing_factor")),
    )
    found = postmortem_documents(pm)
    restricted = restricted_to or pm.restricted_to
    _replace(connection, "postmortem", pm.id, pm.last_seq, owned, found, restricted)


def index_action_item(
    connection: Connection, item: ActionItem, restricted_to: str | None = None
) -> None:
    """Rewrite the action item's document, unless it is as new already."""
    owned = and_(documents.c.kind == "action_item", documents.c.ref_id == item.id)
    found = [action_item_document(item)]
    _replace(connection, "action_item", item.id, item.last_seq, owned, found, restricted_to)


def _replace(
    connection: Connection,
    kind: SearchKind,
    ref_id: str,
    seq: int,
    owned: ColumnElement[bool],
    found: list[SearchDocument],
    restricted_to: str | None,
) -> None:
    # The snapshot row was upserted just before in this transaction, which holds its lock, so no
    # other writer of this postmortem or item can slip in between this read and the rewrite.
    indexed = connection.scalar(
        select(documents.c.source_seq).where(documents.c.kind == kind, documents.c.ref_id == ref_id)
    )
    if indexed is not None and indexed >= seq:
        return  # a repeat, or an older snapshot arriving late: the snapshot was not stored either
    connection.execute(delete(documents).where(owned))
    if found:
        rows = [{**d.model_dump(), "restricted_to": restricted_to} for d in found]
        connection.execute(insert(documents), rows)


def write_documents(connection: Connection, found: list[SearchDocument]) -> None:
    if found:
        connection.execute(insert(documents), [d.model_dump() for d in found])


# --- reads -------------------------------------------------------------------------------------

# The newest :ranked matches (walking the primary key down, or the GIN index for a rare word),
# ranked; LIMIT, then ts_headline for those rows only: it re-parses each text and is costly. (The
# planner may postpone it past a LIMIT by itself; the subquery does not leave that to chance.)
_POSTGRES_SEARCH = """
    SELECT hit.kind, hit.ref_id, hit.postmortem_id, hit.rank,
           ts_headline('english', replace(hit.title, '<', :less_than),
                       websearch_to_tsquery('english', :query), :title_options) AS title,
           ts_headline('english', replace(hit.body, '<', :less_than),
                       websearch_to_tsquery('english', :query), :snippet_options) AS snippet
    FROM (
        SELECT d.id, d.kind, d.ref_id, d.postmortem_id, d.title, d.body,
               ts_rank(d.document, websearch_to_tsquery('english', :query)) AS rank
        FROM (
            SELECT d.id, d.kind, d.ref_id, d.postmortem_id, d.title, d.body, d.document
            FROM search_documents AS d
            WHERE d.document @@ websearch_to_tsquery('english', :query) AND d.kind IN :kinds
                  AND READABLE
            ORDER BY d.id DESC
            LIMIT :ranked
        ) AS d
        ORDER BY rank DESC, d.id
        LIMIT :limit
    ) AS hit
    ORDER BY hit.rank DESC, hit.id
    """

_POSTGRES_TITLE = f"StartSel={_START}, StopSel={_STOP}, HighlightAll=true"
_POSTGRES_SNIPPET = f"StartSel={_START}, StopSel={_STOP}, MaxWords=35, MinWords=15"

# The newest :ranked matches first, as on PostgreSQL. FTS5 returns rows in rank order itself (no
# sort of every match), so highlight() and snippet() run only for the rows the LIMIT keeps. bm25
# weighs a title match ten times a body match.
_SQLITE_SEARCH = """
    SELECT d.kind, d.ref_id, d.postmortem_id, -search_fts.rank AS rank,
           highlight(search_fts, 0, :start, :stop) AS title,
           snippet(search_fts, 1, :start, :stop, '…', 32) AS snippet
    FROM search_fts JOIN search_documents AS d ON d.id = search_fts.rowid
    WHERE search_fts MATCH :query AND search_fts.rank MATCH 'bm25(10.0, 1.0)'
          AND search_fts.rowid IN (
              SELECT d.id FROM search_fts JOIN search_documents AS d ON d.id = search_fts.rowid
              WHERE search_fts MATCH :query AND d.kind IN :kinds AND READABLE
              ORDER BY search_fts.rowid DESC
              LIMIT :ranked
          )
    ORDER BY search_fts.rank
    LIMIT :limit
    """


def _statement(sql: str, *, for_reader: bool) -> TextClause:
    """The search as a reader may see it (storage/restricted.py), or whole, for the system."""
    if not for_reader:
        return text(sql.replace("READABLE", "TRUE")).bindparams(bindparam("kinds", expanding=True))
    return text(sql.replace("READABLE", READABLE_SQL)).bindparams(
        bindparam("kinds", expanding=True), bindparam("groups", expanding=True, type_=String)
    )


_SEARCHES = {
    (dialect, for_reader): _statement(sql, for_reader=for_reader)
    for dialect, sql in (("postgresql", _POSTGRES_SEARCH), ("sqlite", _SQLITE_SEARCH))
    for for_reader in (False, True)
}


def search(
    connection: Connection,
    query: str,
    *,
    reader: Reader | None,
    kinds: set[str] | None = None,
    limit: int = 50,
    ranked: int = RANKED_MOST,
) -> list[SearchHit]:
    """The best `limit` matches of what a person typed, best first, of what `reader` may read
    (None: of everything, for the system and its tests); of the `ranked` most recently written
    matches, when more match."""
    readers: dict[str, object] = (
        {} if reader is None else {"reader": reader.person, "groups": sorted(reader.groups)}
    )
    words = search_words(query)
    wanted = _kinds(kinds)
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if ranked < 1:
        raise ValueError(f"rank at least one match, not {ranked}")
    if connection.dialect.name == "postgresql":
        rows = connection.execute(
            _SEARCHES["postgresql", reader is not None],
            {
                "query": _UNSTORABLE.sub(" ", query.strip()),
                "kinds": wanted,
                "limit": limit,
                "ranked": ranked,
                **readers,
                "title_options": _POSTGRES_TITLE,
                "snippet_options": _POSTGRES_SNIPPET,
                "less_than": _LESS_THAN,
            },
        )
    else:
        rows = connection.execute(
            _SEARCHES["sqlite", reader is not None],
            {
                "query": fts5_query(words),
                "kinds": wanted,
                "limit": limit,
                "ranked": ranked,
                **readers,
                "start": _START,
                "stop": _STOP,
            },
        )
    return [
        SearchHit(
            kind=row.kind,
            ref_id=row.ref_id,
            postmortem_id=row.postmortem_id,
            title=segments(row.title or ""),
            snippet=segments(row.snippet or ""),
            rank=float(row.rank),
        )
        for row in rows
    ]


def _kinds(kinds: set[str] | None) -> list[str]:
    if kinds is None:
        return list(KINDS)
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise ValueError(f"unknown kind {', '.join(unknown)}; search {', '.join(KINDS)}")
    if not kinds:
        raise ValueError(f"choose at least one kind to search: {', '.join(KINDS)}")
    return sorted(kinds)
