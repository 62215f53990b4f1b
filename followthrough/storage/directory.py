"""The directory the identity provider provisions over SCIM, and the effective policy from it.

`DirectoryStore` keeps SCIM users and groups as they were sent (the resource, for reading back)
with the columns they are found by; every change bumps one version number, so each process
(`LivePolicy`) rebuilds its effective policy only when the directory changed. Deprovisioning a
person revokes their API tokens and ends their dashboard sessions in the same transaction, and
notes a departure whose open items are still to be handed to their manager.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import JSON, BigInteger, Boolean, String, delete, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from followthrough.domain.policy import Policy
from followthrough.domain.provisioning import (
    Provisioned,
    ProvisionedPerson,
    ProvisionedTeam,
    overlay,
)
from followthrough.logging import get_logger
from followthrough.storage.database import Database
from followthrough.storage.tables import ApiTokenRow, Base, DashboardSessionRow, UTCDateTime

log = get_logger(__name__)

# How often a process asks the database whether the directory changed: a departure's tokens and
# sessions end at once regardless (they are rows, checked on every request); this bounds only how
# long another process (the worker) words a notice with the directory as it was.
RECHECK_SECONDS = 2.0


class ScimUserRow(Base):
    __tablename__ = "scim_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person: Mapped[str] = mapped_column(String(64), unique=True)
    user_name: Mapped[str] = mapped_column(String(256))
    user_name_key: Mapped[str] = mapped_column(String(256), unique=True)  # lower case
    external_id: Mapped[str | None] = mapped_column(String(256), index=True)
    active: Mapped[bool] = mapped_column(Boolean)
    manager: Mapped[str | None] = mapped_column(String(256))  # the manager's value as sent
    email: Mapped[str | None] = mapped_column(String(256))
    resource: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScimGroupRow(Base):
    __tablename__ = "scim_groups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(256))
    display_key: Mapped[str] = mapped_column(String(256), unique=True)  # lower case
    external_id: Mapped[str | None] = mapped_column(String(256), index=True)
    members: Mapped[list[str]] = mapped_column(JSON)  # user ids
    resource: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScimDepartureRow(Base):
    """A deprovisioned person whose open items are (still) to be handed to their manager."""

    __tablename__ = "scim_departures"

    person: Mapped[str] = mapped_column(String(64), primary_key=True)
    manager: Mapped[str | None] = mapped_column(String(64))  # whom they reported to, when known
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    handed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScimStateRow(Base):
    __tablename__ = "scim_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class ScimUser(BaseModel):
    """A stored user: what it is found by, and the resource as the provider reads it back."""

    id: str
    person: str
    user_name: str
    external_id: str | None = None
    active: bool = True
    manager: str | None = None
    email: str | None = None
    resource: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class ScimGroup(BaseModel):
    id: str
    display_name: str
    external_id: str | None = None
    members: list[str] = Field(default_factory=list)
    resource: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class Taken(Exception):
    """A userName, person or displayName another resource already has (SCIM's 409 uniqueness)."""


# The attributes a list may be filtered by, as SCIM names them -> the column.
Row = TypeVar("Row", ScimUserRow, ScimGroupRow)  # a page of either table

USER_FILTERS = {
    "username": ScimUserRow.user_name_key,
    "externalid": ScimUserRow.external_id,
    "id": ScimUserRow.id,
}
GROUP_FILTERS = {
    "displayname": ScimGroupRow.display_key,
    "externalid": ScimGroupRow.external_id,
    "id": ScimGroupRow.id,
}
CASE_INSENSITIVE = {"username", "displayname"}  # RFC 7643: caseExact false


class DirectoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    # --- reading ------------------------------------------------------------------------------

    def version(self) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(ScimStateRow.version).where(ScimStateRow.id == 1)) or 0

    def user(self, user_id: str) -> ScimUser | None:
        with Session(self.engine) as session:
            row = session.get(ScimUserRow, user_id)
            return None if row is None else _user(row)

    def group(self, group_id: str) -> ScimGroup | None:
        with Session(self.engine) as session:
            row = session.get(ScimGroupRow, group_id)
            return None if row is None else _group(row)

    def users(
        self, where: tuple[str, str] | None, start: int, count: int
    ) -> tuple[int, list[ScimUser]]:
        """(total matching, the page from 1-based `start`); `where` is (attribute, value)."""
        total, rows = self._page(ScimUserRow, USER_FILTERS, where, start, count)
        return total, [_user(row) for row in rows]

    def groups(
        self, where: tuple[str, str] | None, start: int, count: int
    ) -> tuple[int, list[ScimGroup]]:
        total, rows = self._page(ScimGroupRow, GROUP_FILTERS, where, start, count)
        return total, [_group(row) for row in rows]

    def _page(
        self,
        table: type[Row],
        filters: Mapping[str, Any],
        where: tuple[str, str] | None,
        start: int,
        count: int,
    ) -> tuple[int, list[Row]]:
        """One page of users or groups, oldest first, and how many match in all."""
        query = select(table)
        if where is not None:
            name, value = where
            value = value.lower() if name in CASE_INSENSITIVE else value
            query = query.where(filters[name] == value)
        with Session(self.engine) as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            page = query.order_by(table.created_at, table.id)
            return total, list(session.scalars(page.offset(start - 1).limit(count)))

    def existing_users(self, ids: Sequence[str]) -> set[str]:
        with Session(self.engine) as session:
            found = session.scalars(select(ScimUserRow.id).where(ScimUserRow.id.in_(list(ids))))
            return set(found)

    def provisioned(self) -> Provisioned:
        """Everyone and every group, by our names; a manager is found by our id for the user,
        else by their externalId, else by their userName."""
        with Session(self.engine) as session:
            users = list(session.scalars(select(ScimUserRow)))
            groups = list(session.scalars(select(ScimGroupRow).order_by(ScimGroupRow.created_at)))
            departures = list(session.scalars(select(ScimDepartureRow)))
        by_key: dict[str, str] = {}
        for user in users:
            by_key.setdefault(user.user_name_key, user.person)
        for user in users:
            if user.external_id:
                by_key[user.external_id] = user.person
        for user in users:
            by_key[user.id] = user.person
        person_of = {user.id: user.person for user in users}
        people = [
            ProvisionedPerson(
                person=user.person,
                email=user.email,
                manager=by_key.get(user.manager or "") or by_key.get((user.manager or "").lower()),
                active=user.active,
            )
            for user in users
        ]
        provisioned = {user.person for user in users}
        people += [  # deleted users: gone, and whom they reported to
            ProvisionedPerson(person=gone.person, manager=gone.manager, active=False)
            for gone in departures
            if gone.person not in provisioned
        ]
        teams = [
            ProvisionedTeam(
                name=group.display_name,
                members=[person_of[m] for m in group.members if m in person_of],
            )
            for group in groups
        ]
        return Provisioned(people=people, teams=teams)

    def pending_departures(self) -> list[str]:
        with Session(self.engine) as session:
            return list(
                session.scalars(
                    select(ScimDepartureRow.person)
                    .where(ScimDepartureRow.handed_over_at.is_(None))
                    .order_by(ScimDepartureRow.at)
                )
            )

    # --- writing: each one transaction, bumping the version ------------------------------------

    def save_user(self, user: ScimUser, *, new: bool) -> ScimUser:
        """Create or replace a user; deactivating one ends their access in the same transaction.
        Raises Taken when the userName or person is another user's."""
        try:
            with self.db.transaction() as session:
                row = session.get(ScimUserRow, user.id)
                was_active = row.active if row is not None else True
                if new:
                    row = ScimUserRow(id=user.id, created_at=user.created_at)
                    session.add(row)
                elif row is None:
                    raise KeyError(user.id)
                row.person = user.person
                row.user_name = user.user_name
                row.user_name_key = user.user_name.lower()
                row.external_id = user.external_id
                row.active = user.active
                row.manager = user.manager
                row.email = user.email
                row.resource = user.resource
                row.updated_at = user.updated_at
                session.flush()
                if was_active and not user.active:
                    _depart(session, user.person, user.updated_at, user.manager)
                elif user.active:
                    session.execute(
                        delete(ScimDepartureRow).where(ScimDepartureRow.person == user.person)
                    )
                _bump(session)
                return _user(row)
        except IntegrityError:
            raise Taken(user.user_name) from None

    def delete_user(self, user_id: str, at: datetime) -> ScimUser | None:
        """The user is gone: their access ends, their open items go to their manager (the
        departure remembers whom they reported to), and the groups no longer list them."""
        with self.db.transaction() as session:
            row = session.get(ScimUserRow, user_id)
            if row is None:
                return None
            gone = _user(row)
            for group in session.scalars(select(ScimGroupRow)):
                if user_id in group.members:
                    group.members = [m for m in group.members if m != user_id]
            if gone.active:
                _depart(session, gone.person, at, gone.manager)
            session.delete(row)
            _bump(session)
            return gone

    def save_group(self, group: ScimGroup, *, new: bool) -> ScimGroup:
        try:
            with self.db.transaction() as session:
                row = session.get(ScimGroupRow, group.id)
                if new:
                    row = ScimGroupRow(id=group.id, created_at=group.created_at)
                    session.add(row)
                elif row is None:
                    raise KeyError(group.id)
                row.display_name = group.display_name
                row.display_key = group.display_name.lower()
                row.external_id = group.external_id
                row.members = list(group.members)
                row.resource = group.resource
                row.updated_at = group.updated_at
                session.flush()
                _bump(session)
                return _group(row)
        except IntegrityError:
            raise Taken(group.display_name) from None

    def delete_group(self, group_id: str) -> bool:
        with self.db.transaction() as session:
            row = session.get(ScimGroupRow, group_id)
            if row is None:
                return False
            session.delete(row)
            _bump(session)
            return True

    def handed_over(self, person: str, at: datetime) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(ScimDepartureRow)
                .where(ScimDepartureRow.person == person)
                .values(handed_over_at=at)
            )


def _depart(session: Session, person: str, at: datetime, manager: str | None) -> None:
    """Access ends now: every API token revoked, every dashboard session ended; the open items
    are noted to be handed over."""
    session.execute(
        update(ApiTokenRow)
        .where(ApiTokenRow.person == person, ApiTokenRow.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    session.execute(delete(DashboardSessionRow).where(DashboardSessionRow.person == person))
    reported = _person_of(session, manager) if manager else None
    found = session.get(ScimDepartureRow, person)
    if found is None:
        session.add(ScimDepartureRow(person=person, manager=reported, at=at, handed_over_at=None))
    else:
        found.manager, found.at, found.handed_over_at = reported, at, None


def _person_of(session: Session, manager: str) -> str | None:
    """Our name for the user a manager value names: by id, externalId or userName."""
    for column, value in (
        (ScimUserRow.id, manager),
        (ScimUserRow.external_id, manager),
        (ScimUserRow.user_name_key, manager.lower()),
    ):
        found = session.scalar(select(ScimUserRow.person).where(column == value).limit(1))
        if found is not None:
            return found
    return None


def _bump(session: Session) -> None:
    state = session.get(ScimStateRow, 1, with_for_update=True)
    if state is None:
        session.add(ScimStateRow(id=1, version=1))
    else:
        state.version += 1


def _user(row: ScimUserRow) -> ScimUser:
    return ScimUser.model_validate(row, from_attributes=True)


def _group(row: ScimGroupRow) -> ScimGroup:
    return ScimGroup.model_validate(row, from_attributes=True)


class LivePolicy:
    """The effective policy: the policy file's, overlaid with what SCIM provisioned; rebuilt
    when the directory's version moves, which is asked at most every RECHECK_SECONDS (and at
    once after `changed`, which this process's SCIM writes call)."""

    def __init__(
        self,
        file_policy: Policy,
        store: DirectoryStore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.file_policy = file_policy
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._version = 0
        self._policy = file_policy
        self._checked: float | None = None
        self.problems: list[str] = []

    def changed(self) -> None:
        self._checked = None

    def __call__(self) -> Policy:
        now = self.clock()
        if self._checked is not None and now - self._checked < RECHECK_SECONDS:
            return self._policy
        with self._lock:
            try:
                version = self.store.version()
            except SQLAlchemyError as err:  # a database not migrated yet, or away a moment
                log.warning("directory version unread", error=str(err).splitlines()[0])
                return self._policy
            if version != self._version:
                try:
                    self._policy, self.problems = overlay(
                        self.file_policy, self.store.provisioned()
                    )
                except ValueError as err:  # kept as it was: the last directory that made sense
                    log.error("directory not applied", error=str(err))
                    self.problems = [str(err)]
                self._version = version
                for problem in self.problems:
                    log.warning("directory group not a team", problem=problem)
            self._checked = now
            return self._policy
