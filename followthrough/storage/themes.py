"""Recurring themes: approved postmortems' factor tags, and the windows in which a tag recurred
often enough to be a theme."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from followthrough.domain.themes import FactorTags, Theme, theme_window
from followthrough.storage.database import Database
from followthrough.storage.tables import FactorTagRow, ThemeRow


class ThemeStore:
    """Factor tags by postmortem, and the themes they reached."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def note_factor_tags(self, note: FactorTags) -> list[Theme]:
        """Record an approved postmortem's factor tags; the themes its approval reached.

        Idempotent: a tag is recorded once per postmortem, a theme once per tag and window start,
        and a retry of the same note returns the same themes (those it reached), so the caller's
        notices, keyed per theme, go out once.
        """
        window = timedelta(days=note.window_days)
        reached = []
        with self.db.transaction() as session:
            for tag in sorted(set(note.tags)):
                session.execute(
                    self.db.insert(FactorTagRow)
                    .values(
                        postmortem_id=note.postmortem_id,
                        tag=tag,
                        resolved_at=note.resolved_at,
                        severity=note.severity,
                        team=note.team,
                        services=note.services,
                        recorded_at=note.at,
                    )
                    .on_conflict_do_nothing(index_elements=["postmortem_id", "tag"])
                )
            session.flush()
            for tag in sorted(set(note.tags)):
                theme = self._theme_reached(session, tag, note, window)
                if theme is not None:
                    reached.append(theme)
        return reached

    def _theme_reached(
        self, session: Session, tag: str, note: FactorTags, window: timedelta
    ) -> Theme | None:
        themes = session.scalars(select(ThemeRow).where(ThemeRow.tag == tag)).all()
        at = session.scalar(
            select(FactorTagRow.resolved_at).where(
                FactorTagRow.postmortem_id == note.postmortem_id, FactorTagRow.tag == tag
            )
        )
        assert at is not None
        for row in themes:
            if row.window_start <= at <= row.window_end:  # already part of a theme
                return self._theme(session, row) if row.reached_by == note.postmortem_id else None
        seen = session.execute(
            select(FactorTagRow.postmortem_id, FactorTagRow.resolved_at).where(
                FactorTagRow.tag == tag,
                FactorTagRow.resolved_at >= at - window,
                FactorTagRow.resolved_at <= at + window,
            )
        ).all()
        uncovered = [
            (pm, t)
            for pm, t in seen
            if not any(row.window_start <= t <= row.window_end for row in themes)
        ]
        found = theme_window(uncovered, at, note.threshold, window)
        if found is None:
            return None
        start, _ = found
        session.execute(
            self.db.insert(ThemeRow)
            .values(
                tag=tag,
                window_start=start,
                window_end=start + window,
                reached_at=note.at,
                reached_by=note.postmortem_id,
            )
            .on_conflict_do_nothing(index_elements=["tag", "window_start"])
        )
        row = session.get_one(ThemeRow, (tag, start))
        return self._theme(session, row) if row.reached_by == note.postmortem_id else None

    def _theme(self, session: Session, row: ThemeRow) -> Theme:
        members = session.execute(
            select(FactorTagRow.postmortem_id, FactorTagRow.resolved_at)
            .where(
                FactorTagRow.tag == row.tag,
                FactorTagRow.resolved_at >= row.window_start,
                FactorTagRow.resolved_at <= row.window_end,
            )
            .order_by(FactorTagRow.resolved_at, FactorTagRow.postmortem_id)
        ).all()
        return Theme(
            tag=row.tag,
            window_start=row.window_start,
            window_end=row.window_end,
            reached_at=row.reached_at,
            reached_by=row.reached_by,
            postmortem_ids=[pm_id for pm_id, _ in members],
            last_resolved_at=members[-1][1] if members else None,
        )

    def all(self, tag: str | None = None) -> list[Theme]:
        """Recorded recurring themes, oldest first, each with its postmortems (oldest first)."""
        query = select(ThemeRow).order_by(ThemeRow.reached_at, ThemeRow.tag)
        if tag:
            query = query.where(ThemeRow.tag == tag)
        with Session(self.engine) as session:
            return [self._theme(session, row) for row in session.scalars(query).all()]

    def get(self, tag: str, window_start: datetime) -> Theme | None:
        with Session(self.engine) as session:
            row = session.get(ThemeRow, (tag, window_start))
            return self._theme(session, row) if row is not None else None
