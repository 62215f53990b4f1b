"""Signing in through the identity provider: the sign-ins under way, and the roles each person's
provider groups granted at their last sign-in (migration 0027)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from followthrough.domain.directory import Role
from followthrough.storage.database import Database
from followthrough.storage.tables import OidcSignInRow, SignInRoleRow


@dataclass(frozen=True)
class PendingSignIn:
    """What a browser sent to the provider must come back with."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str


class IdentityStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def begin(
        self, browser_hash: str, pending: PendingSignIn, at: datetime, expires_at: datetime
    ) -> None:
        """A sign-in leaves for the provider; a browser has one at a time (a new one replaces an
        earlier), and those that never came back go at the same time."""
        with self.db.transaction() as session:
            session.execute(
                delete(OidcSignInRow).where(
                    (OidcSignInRow.expires_at <= at) | (OidcSignInRow.browser_hash == browser_hash)
                )
            )
            session.add(
                OidcSignInRow(
                    browser_hash=browser_hash,
                    state=pending.state,
                    nonce=pending.nonce,
                    code_verifier=pending.code_verifier,
                    next_path=pending.next_path,
                    expires_at=expires_at,
                )
            )

    def take(self, browser_hash: str, at: datetime) -> PendingSignIn | None:
        """The browser's sign-in under way, used up (a replayed callback finds nothing); None
        when there is none or it is too old."""
        with self.db.transaction() as session:
            row = session.get(OidcSignInRow, browser_hash)
            if row is None:
                return None
            session.delete(row)
            if row.expires_at <= at:
                return None
            return PendingSignIn(row.state, row.nonce, row.code_verifier, row.next_path)

    def grant(self, person: str, roles: frozenset[Role], at: datetime) -> None:
        """The roles the person's groups grant now, replacing what an earlier sign-in granted."""
        with self.db.transaction() as session:
            row = session.get(SignInRoleRow, person)
            if row is None:
                row = SignInRoleRow(person=person, reviewer=False, council=False, signed_in_at=at)
                session.add(row)
            row.reviewer = Role.REVIEWER in roles
            row.council = Role.COUNCIL in roles
            row.signed_in_at = at

    def roles(self) -> dict[str, frozenset[Role]]:
        """Person -> the roles their last sign-in granted (people granted none are left out)."""
        query = select(SignInRoleRow).where(SignInRoleRow.reviewer | SignInRoleRow.council)
        with Session(self.engine) as session:
            return {
                row.person: frozenset(
                    r
                    for r, held in ((Role.REVIEWER, row.reviewer), (Role.COUNCIL, row.council))
                    if held
                )
                for row in session.scalars(query)
            }
