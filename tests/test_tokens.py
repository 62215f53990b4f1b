"""Scoped, expiring API tokens and the administrative audit log: the rules as pure functions,
and the store on SQLite and PostgreSQL (written once however often retried, never changed)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import column, insert, select, table
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from followthrough.api.auth import create_token
from followthrough.cli import app
from followthrough.domain.access import (
    ApiToken,
    TokenScope,
    expires_in_days,
    hash_token,
    new_token_problems,
    token_refusal,
)
from followthrough.domain.audit_log import (
    AdminAction,
    AdminActionKind,
    InvalidAuditCursor,
    audit_cursor,
    bounded_detail,
    read_audit_cursor,
    slo_imported,
)
from followthrough.domain.limits import AUDIT_DETAIL_CHARS as DETAIL_CHARS
from followthrough.domain.limits import MAX_TOKEN_DAYS
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItemState, AuditAction
from followthrough.domain.problems import Problems
from followthrough.domain.slo_specs import load_slo_specs
from followthrough.runtime import note_policy
from followthrough.settings import Settings
from followthrough.storage import Store
from followthrough.storage.migrate import _config, upgrade
from followthrough.storage.tables import AdminActionRow
from tests.processes import ROOT
from tests.test_storage import item_change, make_item, make_postmortem, pm_change

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def token(scope: TokenScope = TokenScope.ACT, expires_at: datetime | None = None) -> ApiToken:
    return ApiToken(
        id="t1", person="bob", name="ci", created_at=NOW, scope=scope, expires_at=expires_at
    )


# --- the rules ---------------------------------------------------------------------------------


def test_a_read_token_only_reads_and_an_expired_one_nothing() -> None:
    read = token(TokenScope.READ, NOW + timedelta(days=1))
    for method in ("GET", "HEAD", "OPTIONS", "get"):
        assert token_refusal(read, method, NOW) is None
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        refused = token_refusal(read, method, NOW)
        assert refused is not None and refused.status == 403
        assert "scope is 'read'" in str(refused) and method in str(refused)
    act = token(TokenScope.ACT, NOW + timedelta(days=1))
    assert token_refusal(act, "DELETE", NOW) is None
    expired = token_refusal(act, "GET", NOW + timedelta(days=1))
    assert expired is not None and expired.status == 401 and "expired on" in str(expired)
    # Tokens from before expiries never expire.
    assert token_refusal(token(), "POST", NOW + timedelta(days=10_000)) is None


def test_expiries_are_bounded_and_names_one_line() -> None:
    assert expires_in_days("90") == expires_in_days("90d") == 90
    assert expires_in_days(" 12W ") == 84
    assert expires_in_days(str(MAX_TOKEN_DAYS)) == MAX_TOKEN_DAYS
    for typed, said in [
        ("366d", f"at most {MAX_TOKEN_DAYS} days"),
        ("53w", f"at most {MAX_TOKEN_DAYS} days"),
        ("0", "not a number of days"),
        ("-1", "not a number of days"),
        ("never", "not a number of days"),
        ("1e9", "not a number of days"),
        ("9" * 500, "not a number of days"),
    ]:
        with pytest.raises(ValueError, match=said):
            expires_in_days(typed)
    assert new_token_problems("deploy script", 90) == []
    assert new_token_problems("  ", 90) == [
        "name: say what the token is for (e.g. the script or machine)"
    ]
    assert new_token_problems("a\nb", 90)[0].startswith("name: one line")
    assert new_token_problems("x" * 65, 90)[0].startswith("name: one line")
    assert new_token_problems("ok", 0) == [f"expires_in: from 1 to {MAX_TOKEN_DAYS} days"]


def test_details_are_bounded_lines_and_cursors_are_checked() -> None:
    assert bounded_detail("a\x00b\nc\td") == "a b c d"
    assert len(bounded_detail("x" * 10_000)) == DETAIL_CHARS
    entry = AdminAction(
        key="k|with|bars", at=NOW, actor="sam", kind=AdminActionKind.TOKEN_CREATED, target="t"
    )
    assert read_audit_cursor(audit_cursor(entry)) == (NOW, "k|with|bars")
    for bad in ("!!!", "bm90IGEgY3Vyc29y", "x" * 401, audit_cursor(entry)[:-3] + "@@@"):
        with pytest.raises(InvalidAuditCursor, match="cursor: "):
            read_audit_cursor(bad)


# --- the store -------------------------------------------------------------------------------


def entries(store: Store) -> list[AdminAction]:
    return store.audit.page(200)


def test_making_and_revoking_a_token_is_logged_once(store: Store, policy: Policy) -> None:
    raw, made = create_token(
        store, policy, "bob", "deploy", NOW, scope=TokenScope.READ, days=30, by="sam"
    )
    assert made.expires_at == NOW + timedelta(days=30)
    held = store.tokens.used(hash_token(raw), NOW)
    assert held is not None and (held.id, held.scope, held.expires_at) == (
        made.id,
        TokenScope.READ,
        NOW + timedelta(days=30),
    )
    assert store.tokens.all("bob")[0].last_used_at == NOW  # its use is noted
    (created,) = entries(store)
    assert (created.kind, created.actor, created.target) == (
        AdminActionKind.TOKEN_CREATED,
        "sam",
        f"token {made.id} of bob",
    )
    assert created.detail == f"scope read, expires {NOW + timedelta(days=30):%Y-%m-%d}"

    later = NOW + timedelta(hours=1)
    first = store.tokens.revoke(made.id, later, by="bob")
    again = store.tokens.revoke(made.id, later + timedelta(hours=1), by="sam")
    assert first is not None and again is not None
    assert first.revoked_at == again.revoked_at == later  # the first revocation stands
    assert [(e.kind, e.actor) for e in entries(store)] == [
        (AdminActionKind.TOKEN_REVOKED, "bob"),
        (AdminActionKind.TOKEN_CREATED, "sam"),
    ]
    assert store.tokens.used(hash_token(raw), later) is None
    assert store.tokens.revoke("nope", later, by="sam") is None

    with pytest.raises(Problems, match="name: say what the token is for"):
        create_token(store, policy, "bob", " ", NOW)
    with pytest.raises(LookupError, match="not in the policy's directory"):
        create_token(store, policy, "mallory", "x", NOW)
    assert len(entries(store)) == 2 and len(store.tokens.all()) == 1


def test_lists_are_oldest_first_and_bounded_to_the_newest(store: Store, policy: Policy) -> None:
    ids = [
        create_token(store, policy, "bob", f"t{n}", NOW + timedelta(minutes=n))[1].id
        for n in range(3)
    ]
    assert [t.id for t in store.tokens.all("bob")] == ids
    assert [t.id for t in store.tokens.all(newest=2)] == ids[1:]


def test_an_expired_token_is_found_but_its_use_not_noted_and_its_session_ends(
    store: Store, policy: Policy
) -> None:
    raw, _ = create_token(store, policy, "bob", "laptop", NOW, days=1)
    session_hash = hash_token(secrets.token_urlsafe(32))
    store.sessions.start(session_hash, "bob", hash_token(raw), NOW, NOW + timedelta(hours=48))
    assert store.sessions.open(session_hash, NOW + timedelta(hours=23)) is not None

    after = NOW + timedelta(days=1)
    found = store.tokens.used(hash_token(raw), after)
    assert found is not None and found.expired(after)
    assert store.tokens.all("bob")[0].last_used_at is None  # a refused use is not a use
    assert store.sessions.open(session_hash, after) is None


def test_the_log_pages_newest_first_without_gaps_or_repeats(store: Store) -> None:
    # Many entries at the same moment: the key orders them, and no page boundary loses one.
    moments = [NOW] * 7 + [NOW + timedelta(minutes=m) for m in range(1, 6)]
    written = [
        AdminAction(
            key=f"test:{n:02d}",
            at=at,
            actor="sam",
            kind=AdminActionKind.SLO_IMPORTED,
            target=f"file-{n}",
        )
        for n, at in enumerate(moments)
    ]
    for entry in written + written[:3]:  # a retried write adds nothing
        store.audit.record(entry)
    seen: list[AdminAction] = []
    after = None
    for _ in range(10):  # bounded: 12 entries, pages of 5
        page = store.audit.page(5, after)
        seen += page
        if len(page) < 5:
            break
        after = read_audit_cursor(audit_cursor(page[-1]))
    expected = sorted(written, key=lambda e: (e.at, e.key), reverse=True)
    assert [e.key for e in seen] == [e.key for e in expected]


def test_a_policy_change_is_logged_once_per_change(store: Store, tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    shipped = (ROOT / "followthrough" / "default_policy.yaml").read_text(encoding="utf-8")
    policy_file.write_text(shipped, encoding="utf-8")
    settings = Settings(data_dir=tmp_path, policy=policy_file, user="ops-alice")

    note_policy(store, settings)
    note_policy(store, settings)  # the API and the worker both start: one entry
    (first,) = entries(store)
    assert (first.kind, first.actor, first.target) == (
        AdminActionKind.POLICY_CHANGED,
        "ops-alice",
        str(policy_file),
    )
    assert "(none recorded) ->" in first.detail

    policy_file.write_text(shipped + "\n# operators changed their minds\n", encoding="utf-8")
    note_policy(store, settings)
    note_policy(store, settings)
    policy_file.write_text(shipped, encoding="utf-8")  # and back again: a change too
    note_policy(store, settings)
    changes = [e for e in entries(store) if e.kind is AdminActionKind.POLICY_CHANGED]
    assert len(changes) == 3
    back, changed, _ = changes
    assert changed.detail.split(" -> ")[1] == back.detail.split(" ")[1]

    # Two processes that saw the same previous entry record the same change once.
    with Session(store.engine) as session:
        assert session.scalar(select(AdminActionRow.key).where(AdminActionRow.key == back.key))
    store.audit.record(back)
    assert len([e for e in entries(store) if e.kind is AdminActionKind.POLICY_CHANGED]) == 3


def test_an_item_closed_by_risk_acceptance_is_logged_once_per_event(
    store: Store, policy: Policy
) -> None:
    pm = make_postmortem(policy)
    store.records.record_postmortem(pm_change(pm, 1))
    item = make_item(pm, 1, state=ActionItemState.OPEN)
    store.records.record_action_item(item_change(item))  # not administrative: not logged
    accepted = make_item(pm, 1, state=ActionItemState.RISK_ACCEPTED, seq=2)
    change = item_change(accepted, action=AuditAction.ITEM_RISK_ACCEPTED.value)
    change = change.model_copy(update={"event": change.event.model_copy(update={"actor": "grace"})})
    store.records.record_action_item(change)
    store.records.record_action_item(change)  # the record activity, retried
    (closed,) = entries(store)
    assert (closed.kind, closed.actor, closed.target) == (
        AdminActionKind.ITEM_RISK_ACCEPTED,
        "grace",
        accepted.id,
    )


def test_an_slo_import_is_logged_with_the_slos(store: Store) -> None:
    path = ROOT / "tests" / "slo_examples" / "sloth-valid.yaml"
    slos = load_slo_specs(path)
    entry = slo_imported(str(path), [s.id for s in slos], "abc", "ops-alice", NOW)
    store.slos.save(slos, NOW, entry)
    store.slos.save(slos, NOW, entry)
    (logged,) = entries(store)
    assert logged.kind is AdminActionKind.SLO_IMPORTED and logged.actor == "ops-alice"
    assert logged.detail.startswith(f"{len(slos)} SLOs: {slos[0].id}")


def test_tokens_from_before_scopes_keep_acting_without_expiry(database_url: str) -> None:
    command.upgrade(_config(database_url), "0025")
    tokens = table(
        "api_tokens",
        column("id"),
        column("person"),
        column("name"),
        column("token_hash"),
        column("created_at"),
    )
    store = Store(database_url)
    try:
        with store.engine.begin() as connection:
            connection.execute(
                insert(tokens).values(
                    id="old1",
                    person="bob",
                    name="laptop",
                    token_hash=hash_token("ft_old"),
                    created_at=NOW - timedelta(days=800),
                )
            )
        upgrade(database_url)
        found = store.tokens.used(hash_token("ft_old"), NOW)
        assert found is not None
        assert (found.scope, found.expires_at) == (TokenScope.ACT, None)
        assert token_refusal(found, "POST", NOW) is None
        assert store.audit.page(10) == []
    finally:
        store.close()


# --- the command line ----------------------------------------------------------------------------


def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """The command line in this process (as tests/test_readme.py runs it): no start-up cost."""
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_makes_scoped_expiring_tokens_and_lists_the_audit_log(tmp_path: Path) -> None:
    env = {"FOLLOWTHROUGH_DATA_DIR": str(tmp_path), "FOLLOWTHROUGH_USER": "sam"}
    code, out, err = cli(
        env, "token", "create", "--for", "erin", "--scope", "read", "--expires-in", "2w"
    )
    assert code == 0 and out.strip().startswith("ft_")
    assert "for erin, scope read, expires" in err
    code, _, err = cli(env, "token", "create", "--for", "erin", "--expires-in", "400d")
    assert code == 2 and "error: --expires-in: at most 365 days" in err
    code, out, _ = cli(env, "token", "list", "--json")
    (listed,) = json.loads(out)
    assert listed["scope"] == "read" and listed["expires_at"] is not None

    assert "revoked" in cli(env, "token", "revoke", listed["id"])[1]
    cli(env, "slo", "import", str(ROOT / "tests" / "slo_examples" / "sloth-valid.yaml"))
    first = json.loads(cli(env, "audit", "list", "--limit", "2", "--json")[1])
    rest = json.loads(cli(env, "audit", "list", "--after", first["next"], "--json")[1])
    assert [(e["kind"], e["actor"]) for e in first["entries"] + rest["entries"]] == [
        ("slo.imported", "sam"),
        ("token.revoked", "sam"),
        ("token.created", "sam"),
    ]
    assert rest["next"] is None
    code, out, _ = cli(env, "audit", "list")
    assert code == 0 and "sam          token.created      token " in out
    code, _, err = cli(env, "audit", "list", "--after", "@@")
    assert code == 2 and "error: --after: not one this log gave" in err
