"""Full-text search on SQLite (FTS5) and PostgreSQL (tsvector): what is found, how it is marked,
how it stays current with the record, and what bad input gets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, inspect, text

from followthrough.domain.draft import ContributingFactor, Draft, TimelineEntry
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItem, Postmortem
from followthrough.domain.tickets import TicketRef
from followthrough.storage import Store
from followthrough.storage.migrate import _config, upgrade
from followthrough.storage.search import SearchHit, fts5_query, search_words, segments
from followthrough.storage.tables import ActionItemRow, PostmortemRow
from tests.test_storage import T0, item_change, make_item, make_postmortem, pm_change


def draft(
    summary: str = "Payments stalled while the ledger was read-only.",
    factors: list[tuple[str, list[str]]] | None = None,
    **sections: Any,
) -> Draft:
    written = [("Config pushes skip the canary stage", ["deploy"])] if factors is None else factors
    return Draft(
        summary=summary,
        impact=sections.get("impact", "4,100 orders failed over 2 hours."),
        timeline=[
            TimelineEntry(
                at=T0 - timedelta(hours=3),
                kind="decision",
                description=sections.get("decision", "Rolled back instead of scaling out."),
            )
        ],
        contributing_factors=[ContributingFactor(description=d, tags=t) for d, t in written],
        detection_gaps=[sections.get("gap", "Nothing paged on the 5xx ratio.")],
        recovery_steps=[sections.get("step", "Reverted the config.")],
    )


def with_draft(pm: Postmortem, written: Draft) -> Postmortem:
    return pm.model_copy(update={"draft": written})


def titled(pm: Postmortem, title: str) -> Postmortem:
    return pm.model_copy(update={"incident": pm.incident.model_copy(update={"title": title})})


def item_with(
    pm: Postmortem, number: int = 1, *, seq: int = 1, description: str = "", title: str = ""
) -> ActionItem:
    item = make_item(pm, number, seq=seq)
    spec = item.spec.model_copy(
        update={"description": description, "title": title or item.spec.title}
    )
    return item.model_copy(update={"spec": spec})


def matched(pieces: list[tuple[str, bool]]) -> list[str]:
    return [piece for piece, is_match in pieces if is_match]


def whole(pieces: list[tuple[str, bool]]) -> str:
    return "".join(piece for piece, _ in pieces)


def found(hits: list[SearchHit]) -> list[tuple[str, str, str]]:
    return [(hit.kind, hit.ref_id, hit.postmortem_id) for hit in hits]


def check_fts_index(store: Store) -> None:
    """SQLite only: FTS5 finds its index consistent with search_documents (raises if not)."""
    if store.engine.dialect.name == "sqlite":
        with store.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO search_fts(search_fts) VALUES ('integrity-check')")
            )


# --- the pure parts -------------------------------------------------------------------------------


def test_segments_split_on_the_markers_and_drop_them() -> None:
    assert segments("a \ue000b\ue001 c\ue000d\ue001") == [
        ("a ", False),
        ("b", True),
        (" c", False),
        ("d", True),
    ]
    assert segments("") == []
    assert segments("<b>no match</b>") == [("<b>no match</b>", False)]


def test_every_typed_word_is_quoted_for_fts5() -> None:
    assert search_words('NEAR("ledger" AND *') == ["NEAR", "ledger", "AND"]
    assert fts5_query(["NEAR", "ledger", "AND"]) == '"NEAR" "ledger" "AND"'
    assert search_words("snake_case café") == ["snake", "case", "café"]


# --- what is found --------------------------------------------------------------------------------


def test_stemming_finds_timeout_when_timeouts_is_typed(store: Store, policy: Policy) -> None:
    pm = with_draft(make_postmortem(policy), draft(summary="The ledger hit a timeout on writes."))
    store.records.record_postmortem(pm_change(pm, 1))

    hits = store.records.search("timeouts")

    assert found(hits) == [("postmortem", pm.id, pm.id)]
    assert matched(hits[0].snippet) == ["timeout"]


def test_a_match_in_each_kind_is_found_with_its_ids(store: Store, policy: Policy) -> None:
    pm = with_draft(
        make_postmortem(policy, "INC-11"),
        draft(
            summary="Writes to the ledger stalled.",
            factors=[
                ("Config pushes skip the canary stage", ["deploy"]),
                ("Client retries amplified the load", ["capacity", "dependency"]),
            ],
        ),
    )
    store.records.record_postmortem(pm_change(pm, 1))
    item = item_with(pm, 2, description="Make payment writes idempotent")
    store.records.record_action_item(item_change(item))

    assert found(store.records.search("ledger")) == [("postmortem", pm.id, pm.id)]
    assert found(store.records.search("idempotent")) == [("action_item", item.id, pm.id)]
    factor_hits = store.records.search("amplified")
    assert found(factor_hits) == [("contributing_factor", f"{pm.id}#factor-2", pm.id)]
    assert whole(factor_hits[0].title) == "capacity, dependency"
    assert matched(factor_hits[0].snippet) == ["amplified"]
    # The factor's tags are its title; the incident id and title are the postmortem's.
    assert found(store.records.search("dependency")) == [
        ("contributing_factor", f"{pm.id}#factor-2", pm.id)
    ]
    # make_item's title, "Action 2 for INC-11", names the incident too.
    assert sorted(found(store.records.search("INC-11"))) == [
        ("action_item", item.id, pm.id),
        ("postmortem", pm.id, pm.id),
    ]


def test_an_action_item_is_found_by_owner_team_criterion_and_ticket(
    store: Store, policy: Policy
) -> None:
    pm = make_postmortem(policy)
    store.records.record_postmortem(pm_change(pm, 1))
    item = make_item(pm, 1, owner="bob", team="payments").model_copy(
        update={"ticket": TicketRef(key="PAY-4321", url="https://jira.example.com/browse/PAY-4321")}
    )
    store.records.record_action_item(item_change(item))

    expected = [("action_item", item.id, pm.id)]
    assert found(store.records.search("bob", kinds={"action_item"})) == expected
    assert found(store.records.search("payments", kinds={"action_item"})) == expected
    # make_item's criterion: "p99 below 300 ms for 7 days".
    assert found(store.records.search("p99 below 300 ms")) == expected
    assert found(store.records.search("PAY-4321")) == expected


def test_highlights_mark_exactly_the_matched_words(store: Store, policy: Policy) -> None:
    pm = with_draft(
        titled(make_postmortem(policy, "INC-21"), "Timeouts in checkout, then more timeouts"),
        draft(summary="A timeout (the first) led to retries."),
    )
    store.records.record_postmortem(pm_change(pm, 1))

    [hit] = store.records.search("timeouts")

    assert whole(hit.title) == "INC-21 Timeouts in checkout, then more timeouts"
    assert matched(hit.title) == ["Timeouts", "timeouts"]
    assert matched(hit.snippet) == ["timeout"]
    assert "timeout (the first)" in whole(hit.snippet)


def test_highlights_are_plain_text_and_stored_markers_cannot_fake_one(
    store: Store, policy: Policy
) -> None:
    """Markup comes back as text for the page to escape; private markers are not stored."""
    pm = titled(make_postmortem(policy), "The \ue000ledger\ue001 <b>bold</b> & stalled writes")
    pm = with_draft(pm, draft(summary="The ledger <b>stalled</b> on writes."))
    store.records.record_postmortem(pm_change(pm, 1))

    [by_title] = store.records.search("writes")
    [by_body] = store.records.search("ledger stalled")

    assert by_title.title == [("INC-7 The ledger <b>bold</b> & stalled ", False), ("writes", True)]
    assert matched(by_body.snippet) == ["ledger", "stalled"]
    assert "ledger <b>stalled</b> on writes" in whole(by_body.snippet)


def test_a_title_match_ranks_above_a_body_match(store: Store, policy: Policy) -> None:
    in_body = with_draft(
        titled(make_postmortem(policy, "INC-31"), "Checkout errors"),
        draft(summary="The ledger was read-only; the ledger replica lagged."),
    )
    in_title = with_draft(
        titled(make_postmortem(policy, "INC-32"), "Ledger writes failed"),
        draft(summary="Payments stalled for an hour."),
    )
    store.records.record_postmortem(pm_change(in_body, 1))
    store.records.record_postmortem(pm_change(in_title, 1))

    hits = store.records.search("ledger")

    assert [hit.ref_id for hit in hits] == [in_title.id, in_body.id]
    assert hits[0].rank > hits[1].rank


def test_of_more_matches_than_are_ranked_the_newest_are(store: Store, policy: Policy) -> None:
    oldest = titled(make_postmortem(policy, "INC-41"), "Ledger writes failed")
    store.records.record_postmortem(pm_change(oldest, 1))
    newer = []
    for number in (42, 43):
        pm = with_draft(
            make_postmortem(policy, f"INC-{number}"), draft(summary="The ledger lagged.")
        )
        store.records.record_postmortem(pm_change(pm, 1))
        newer.append(pm.id)

    # All three ranked: the title match first.
    assert store.records.search("ledger")[0].ref_id == oldest.id
    # Only the two written last ranked: the oldest, best as it would be, is not among them.
    assert sorted(hit.ref_id for hit in store.records.search("ledger", ranked=2)) == newer
    with pytest.raises(ValueError, match="rank at least one match, not 0"):
        store.records.search("ledger", ranked=0)


def test_the_kinds_filter_and_limit(store: Store, policy: Policy) -> None:
    pm = with_draft(
        make_postmortem(policy),
        draft(
            summary="The ledger stalled.", factors=[("The ledger had one primary", ["capacity"])]
        ),
    )
    store.records.record_postmortem(pm_change(pm, 1))
    item = item_with(pm, 1, description="Give the ledger a standby")
    store.records.record_action_item(item_change(item))
    factor = ("contributing_factor", f"{pm.id}#factor-1", pm.id)

    assert found(store.records.search("ledger", kinds={"action_item"})) == [
        ("action_item", item.id, pm.id)
    ]
    assert sorted(
        found(store.records.search("ledger", kinds={"postmortem", "contributing_factor"}))
    ) == [
        factor,
        ("postmortem", pm.id, pm.id),
    ]
    assert len(store.records.search("ledger")) == 3
    assert len(store.records.search("ledger", limit=2)) == 2
    with pytest.raises(ValueError, match="unknown kind incident"):
        store.records.search("ledger", kinds={"incident"})
    with pytest.raises(ValueError, match="at least one kind"):
        store.records.search("ledger", kinds=set())
    with pytest.raises(ValueError, match="limit must be between 1 and 200"):
        store.records.search("ledger", limit=0)


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "AND OR NOT (",
        '"; DROP TABLE search_documents; --',
        "NEAR(ledger",
        "NEAR(ledger writes, 2)",
        "ledger*",
        "title:ledger",
        "^ledger",
        "ledger -",
        "-ledger",
        "ledger OR",
        '"ledger',
        "(ledger))",
        "{title body}: ledger",
        "café naïve 日本語 🔥 Ωmega",
        "a\x00b\ue000c",
        "\\ledger/ % _ ' ;",
    ],
)
def test_hostile_input_never_raises_a_database_error(
    store: Store, policy: Policy, query: str
) -> None:
    pm = with_draft(make_postmortem(policy), draft(summary="The ledger stalled on writes."))
    store.records.record_postmortem(pm_change(pm, 1))

    hits = store.records.search(query)

    assert all(hit.postmortem_id == pm.id for hit in hits)
    assert found(store.records.search("ledger")) == [
        ("postmortem", pm.id, pm.id)
    ]  # nothing was dropped


@pytest.mark.parametrize("query", ["ledger*", "(ledger))", '"ledger', "^ledger"])
def test_syntax_around_a_word_still_finds_it(store: Store, policy: Policy, query: str) -> None:
    pm = with_draft(make_postmortem(policy), draft(summary="The ledger stalled on writes."))
    store.records.record_postmortem(pm_change(pm, 1))

    assert found(store.records.search(query)) == [("postmortem", pm.id, pm.id)]


@pytest.mark.parametrize("query", ["", "   ", "\n\t", "*", '"', "'", '"" ()', "-- ; ' _"])
def test_a_query_without_a_word_is_refused(store: Store, query: str) -> None:
    with pytest.raises(ValueError, match="type at least one word to search for"):
        store.records.search(query)


def test_a_too_long_query_is_refused(store: Store, policy: Policy) -> None:
    pm = with_draft(make_postmortem(policy), draft(summary="The ledger stalled."))
    store.records.record_postmortem(pm_change(pm, 1))
    longest = "ledger " + "." * 193  # 200 characters

    assert found(store.records.search(longest)) == [("postmortem", pm.id, pm.id)]
    with pytest.raises(ValueError, match="201 characters long; keep it to 200"):
        store.records.search(longest + "y")


# --- kept current with the record -----------------------------------------------------------------


def test_a_newer_snapshot_replaces_the_old_text(store: Store, policy: Policy) -> None:
    pm = make_postmortem(policy)
    store.records.record_postmortem(
        pm_change(with_draft(pm, draft(summary="The ledger stalled.")), 1)
    )
    item = item_with(pm, 1, seq=1, description="Add a ledger standby")
    store.records.record_action_item(item_change(item))

    newer = with_draft(pm, draft(summary="The warehouse stalled."))
    store.records.record_postmortem(pm_change(newer, 2))
    store.records.record_postmortem(pm_change(newer, 2))  # a retry
    newer_item = item_with(pm, 1, seq=2, description="Add a warehouse standby")
    store.records.record_action_item(item_change(newer_item))
    store.records.record_action_item(item_change(newer_item))  # a retry

    assert store.records.search("ledger") == []
    assert sorted(found(store.records.search("warehouse"))) == [
        ("action_item", newer_item.id, pm.id),
        ("postmortem", pm.id, pm.id),
    ]
    assert len(store.records.search("stalled")) == 1
    check_fts_index(store)


def test_an_older_snapshot_arriving_late_does_not_replace_newer_text(
    store: Store, policy: Policy
) -> None:
    pm = make_postmortem(policy)
    store.records.record_postmortem(
        pm_change(with_draft(pm, draft(summary="The warehouse stalled.")), 3)
    )
    store.records.record_action_item(
        item_change(item_with(pm, 1, seq=3, description="warehouse standby"))
    )

    store.records.record_postmortem(
        pm_change(with_draft(pm, draft(summary="The ledger stalled.")), 2)
    )
    store.records.record_action_item(
        item_change(item_with(pm, 1, seq=2, description="ledger standby"))
    )

    assert store.records.search("ledger") == []
    assert sorted(hit.kind for hit in store.records.search("warehouse")) == [
        "action_item",
        "postmortem",
    ]
    check_fts_index(store)


def test_a_factor_removed_from_the_draft_disappears(store: Store, policy: Policy) -> None:
    pm = make_postmortem(policy)
    two = draft(factors=[("Config pushes skip the canary", ["deploy"]), ("Retries amplified", [])])
    store.records.record_postmortem(pm_change(with_draft(pm, two), 1))
    assert len(store.records.search("amplified")) == 1

    one = draft(factors=[("Config pushes skip the canary", ["deploy"])])
    store.records.record_postmortem(pm_change(with_draft(pm, one), 2))

    assert store.records.search("amplified") == []
    assert found(store.records.search("canary")) == [
        ("contributing_factor", f"{pm.id}#factor-1", pm.id)
    ]
    check_fts_index(store)


def test_a_postmortem_without_a_draft_is_found_by_its_incident(
    store: Store, policy: Policy
) -> None:
    pm = make_postmortem(policy)  # the incident: "a bad load-balancer config ...", checkout
    store.records.record_postmortem(pm_change(pm, 1))

    assert found(store.records.search("load-balancer backends")) == [("postmortem", pm.id, pm.id)]
    assert found(store.records.search("checkout", kinds={"postmortem"})) == [
        ("postmortem", pm.id, pm.id)
    ]
    assert store.records.search("checkout", kinds={"contributing_factor"}) == []


# --- the migration --------------------------------------------------------------------------------


def _insert_snapshots(store: Store, pm: Postmortem, item: ActionItem) -> None:
    """The rows as revision 0007 held them, written without the search documents."""
    with store.engine.begin() as connection:
        connection.execute(
            insert(PostmortemRow).values(
                id=pm.id,
                title=pm.incident.title,
                severity=pm.severity,
                team=pm.team,
                owner=pm.owner,
                state=pm.state.value,
                opened_at=pm.opened_at,
                draft_due=pm.draft_due,
                last_seq=pm.last_seq,
                data=pm.model_dump(mode="json"),
            )
        )
        connection.execute(
            insert(ActionItemRow).values(
                id=item.id,
                postmortem_id=item.postmortem_id,
                title=item.spec.title,
                owner=item.owner,
                team=item.team,
                priority=item.spec.priority.value,
                due=item.due,
                state=item.state.value,
                opened_at=item.opened_at,
                last_seq=item.last_seq,
                data=item.model_dump(mode="json"),
            )
        )


def test_migration_0008_fills_documents_for_existing_records(
    database_url: str, policy: Policy
) -> None:
    command.upgrade(_config(database_url), "0007")
    pm = with_draft(
        make_postmortem(policy),
        draft(summary="The ledger stalled.", factors=[("Retries amplified the load", [])]),
    ).model_copy(update={"last_seq": 4})
    item = item_with(pm, 1, seq=2, description="Make writes idempotent")
    store = Store(database_url)
    try:
        _insert_snapshots(store, pm, item)

        upgrade(database_url)

        assert found(store.records.search("ledger")) == [("postmortem", pm.id, pm.id)]
        assert found(store.records.search("amplified")) == [
            ("contributing_factor", f"{pm.id}#factor-1", pm.id)
        ]
        assert found(store.records.search("idempotent")) == [("action_item", item.id, pm.id)]
        # The filled documents know their snapshot's seq: an older one arriving now is ignored.
        store.records.record_postmortem(
            pm_change(with_draft(pm, draft(summary="The warehouse.")), 3)
        )
        assert store.records.search("warehouse") == []
        check_fts_index(store)

        command.downgrade(_config(database_url), "0007")
        tables = set(inspect(store.engine).get_table_names())
        assert not {"search_documents", "search_fts"} & tables
        upgrade(database_url)
        assert found(store.records.search("ledger")) == [("postmortem", pm.id, pm.id)]
    finally:
        store.close()


# --- at scale -------------------------------------------------------------------------------------

# About 60 words, as a postmortem's or action item's text runs.
_LONG_BODY = (
    "The ledger stalled while checkout retried payments against a read-only primary. "
    "Connections piled up in the pool, timeouts spread to the order service, and the "
    "canary did not catch the config change because it only sampled one zone. Recovery "
    "took a failover, a drained node pool and a manual replay of the queued payment events "
    "for incident number "
)


def test_many_matches_give_the_best_hits_with_their_snippets(store: Store) -> None:
    """Every document matches; the limited hits come back, each with its snippet.

    How fast that stays at scale is bench/dashboard.py's question (search at 10,000 postmortems,
    about 60,000 documents), not a timed test's: ts_headline over every match, rather than over
    the hits kept after the LIMIT, took 2.5 s there instead of 0.07 s.
    """
    numbers = (
        "SELECT generate_series(1, 2000) AS i"
        if store.engine.dialect.name == "postgresql"
        else "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
        "SELECT i FROM n"
    )
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO search_documents"
                " (kind, ref_id, postmortem_id, source_seq, title, body)"
                " SELECT 'action_item', 'item-' || i, 'pm-' || i, 1, 'Action item ' || i,"
                f" :body || i FROM ({numbers}) AS numbers"
            ),
            {"body": _LONG_BODY},
        )
        if store.engine.dialect.name == "postgresql":
            connection.execute(text("ANALYZE search_documents"))

    hits = store.records.search("ledger timeouts", limit=50)

    assert len(hits) == 50
    assert len({hit.ref_id for hit in hits}) == 50
    assert all(matched(hit.snippet)[:1] == ["ledger"] for hit in hits)
