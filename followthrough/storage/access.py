"""Who is signed in: the HTTP API's tokens and the dashboard's sessions (each tied to a token)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from followthrough.domain.access import ApiToken
from followthrough.domain.audit_log import token_created, token_revoked
from followthrough.logging import get_logger
from followthrough.storage.audit_log import append
from followthrough.storage.database import Database
from followthrough.storage.tables import ApiTokenRow, DashboardSessionRow

log = get_logger(__name__)

# A token's last use is noted at most this often: who still uses it is a question of days, and a
# write on every request would make each read wait for the database's write lock.
TOKEN_USE_RESOLUTION = timedelta(minutes=5)


@dataclass(frozen=True)
class OpenSession:
    """A live dashboard session: who it is, and the message its next page shows once."""

    person: str
    flash: tuple[str, str] | None  # ("done" or "error", the text)


class TokenStore:
    """API tokens, stored by hash; making and revoking one is in the audit log, in the same
    transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def add(self, token: ApiToken, token_hash: str, by: str) -> None:
        entry = token_created(
            token.id, token.person, by, token.created_at, token.scope.value, token.expires_at
        )
        with self.db.transaction() as session:
            session.add(ApiTokenRow(**token.model_dump(), token_hash=token_hash))
            session.flush()
            append(self.db, session, [entry])

    def used(self, token_hash: str, at: datetime) -> ApiToken | None:
        """The (unrevoked) token of this hash, expired or not: the caller says which. Notes when
        a live one was last used, at most every TOKEN_USE_RESOLUTION and best effort: a database
        that takes no writes (a read-only replica, a full disk) must not turn every signed-in
        read into an error."""
        with Session(self.engine) as session:
            row = session.scalar(
                select(ApiTokenRow).where(
                    ApiTokenRow.token_hash == token_hash, ApiTokenRow.revoked_at.is_(None)
                )
            )
            if row is None:
                return None
            token = ApiToken.model_validate(row, from_attributes=True)
        last_used = token.last_used_at
        if not token.expired(at) and (last_used is None or at - last_used >= TOKEN_USE_RESOLUTION):
            try:
                with self.db.transaction() as session:
                    session.execute(
                        update(ApiTokenRow)
                        .where(ApiTokenRow.token_hash == token_hash)
                        .values(last_used_at=at)
                    )
            except SQLAlchemyError as err:
                log.warning("token use not noted", error=str(err).splitlines()[0])
        return token

    def all(self, person: str | None = None, newest: int | None = None) -> list[ApiToken]:
        """Oldest first: every token (of a person), or only the `newest` so many."""
        query = select(ApiTokenRow).order_by(ApiTokenRow.created_at.desc(), ApiTokenRow.id.desc())
        if person:
            query = query.where(ApiTokenRow.person == person)
        if newest is not None:
            query = query.limit(newest)
        with Session(self.engine) as session:
            found = [
                ApiToken.model_validate(row, from_attributes=True) for row in session.scalars(query)
            ]
        return found[::-1]

    def get(self, token_id: str) -> ApiToken | None:
        with Session(self.engine) as session:
            row = session.get(ApiTokenRow, token_id)
            return ApiToken.model_validate(row, from_attributes=True) if row else None

    def revoke(self, token_id: str, at: datetime, *, by: str) -> ApiToken | None:
        """Revoke a token (again: nothing changes, its first revocation stands)."""
        with self.db.transaction() as session:
            row = session.get(ApiTokenRow, token_id, with_for_update=True)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = at
                append(self.db, session, [token_revoked(row.id, row.person, by, at)])
            return ApiToken.model_validate(row, from_attributes=True)


class SessionStore:
    """Signed-in browsers: a session lives while its token is neither revoked nor expired."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def start(
        self,
        id_hash: str,
        person: str,
        token_hash: str | None,
        at: datetime,
        expires_at: datetime,
        id_token: str | None = None,
    ) -> None:
        """A signed-in browser, by API token or (token_hash None) through the identity provider,
        whose ID token is kept for its logout; sessions that have expired go at the same time."""
        with self.db.transaction() as session:
            session.execute(delete(DashboardSessionRow).where(DashboardSessionRow.expires_at <= at))
            session.add(
                DashboardSessionRow(
                    id_hash=id_hash,
                    person=person,
                    token_hash=token_hash,
                    id_token=id_token,
                    created_at=at,
                    expires_at=expires_at,
                )
            )

    def open(self, id_hash: str, at: datetime) -> OpenSession | None:
        """The session if it is live and its API token (if it was opened with one) neither
        revoked nor expired; its one-time message is taken, so only this page shows it."""
        with self.db.transaction() as session:
            row = session.scalar(
                select(DashboardSessionRow)
                .outerjoin(ApiTokenRow, ApiTokenRow.token_hash == DashboardSessionRow.token_hash)
                .where(
                    DashboardSessionRow.id_hash == id_hash,
                    DashboardSessionRow.expires_at > at,
                    or_(
                        DashboardSessionRow.token_hash.is_(None),
                        and_(
                            ApiTokenRow.token_hash.is_not(None),
                            ApiTokenRow.revoked_at.is_(None),
                            or_(ApiTokenRow.expires_at.is_(None), ApiTokenRow.expires_at > at),
                        ),
                    ),
                )
            )
            if row is None:
                return None
            flash = None
            if row.flash_kind and row.flash_text is not None:
                flash = (row.flash_kind, row.flash_text)
                row.flash_kind = row.flash_text = None
            return OpenSession(person=row.person, flash=flash)

    def flash(self, id_hash: str, kind: str, text: str) -> None:
        """What the session's next page says about the form just posted."""
        with self.db.transaction() as session:
            row = session.get(DashboardSessionRow, id_hash)
            if row is not None:
                row.flash_kind, row.flash_text = kind, text

    def end(self, id_hash: str) -> str | None:
        """The session ends; its ID token (for the provider's logout), if it was opened there."""
        with self.db.transaction() as session:
            row = session.get(DashboardSessionRow, id_hash)
            if row is None:
                return None
            id_token = row.id_token
            session.delete(row)
            return id_token
