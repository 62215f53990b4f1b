"""The queryable record, one class per concern over one engine:

    store.records     postmortems, action items and their audit trail; search; ids people type
    store.facts       the dashboard's and the metrics' lean reads
    store.outbox      notices, claimed once, then marked sent or failed
    store.tokens      the HTTP API's tokens          store.sessions   the dashboard's sessions
    store.links       one-click links' nonces         store.deliveries webhook deliveries seen
    store.themes      factor tags and recurring themes
    store.slos        imported SLOs
    store.preferences how each person takes non-urgent notices, and those held for a digest
    store.slack       notices posted to Slack
    store.chat        the incident channel's transcript, kept with the postmortem
    store.timeline    events collected from an incident's sources, and how each source went
    store.narratives  the council's narrative of each quarter, for its report
    store.publications where each postmortem is published (its Confluence page)
    store.deploys     deploys from the deploy webhooks, for the timeline and the change metrics
    store.decisions   the council's decisions, and the freezes they hold
    store.alerts      alert events from Alertmanager and Grafana, for the alert-quality review
    store.identity    sign-ins under way at the identity provider; roles its groups granted
    store.directory   the people and groups the identity provider provisioned (SCIM)
    store.audit       the administrative audit log: tokens, SLOs, policy changes, items closed

A transaction never spans two of them: what must change together (a snapshot, its search entry
and its audit event) is one method of one of them.
"""

from __future__ import annotations

from sqlalchemy import delete, false, select

from followthrough.storage.access import SessionStore, TokenStore
from followthrough.storage.alerts import AlertStore
from followthrough.storage.audit_log import AuditLogStore
from followthrough.storage.chat import ChatStore
from followthrough.storage.database import Database
from followthrough.storage.decisions import DecisionStore
from followthrough.storage.deliveries import DeliveryStore
from followthrough.storage.deploys import DeployStore
from followthrough.storage.directory import DirectoryStore
from followthrough.storage.facts import FactStore
from followthrough.storage.identity import IdentityStore
from followthrough.storage.links import LinkStore
from followthrough.storage.narratives import NarrativeStore
from followthrough.storage.outbox import OutboxStore
from followthrough.storage.preferences import PreferenceStore
from followthrough.storage.publications import PublicationStore
from followthrough.storage.records import RecordStore
from followthrough.storage.slack import SlackStore
from followthrough.storage.slos import SloStore
from followthrough.storage.tables import ApiTokenRow
from followthrough.storage.themes import ThemeStore
from followthrough.storage.timeline import TimelineStore


class Store:
    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.url = url
        self.engine = self.db.engine
        self.records = RecordStore(self.db)
        self.facts = FactStore(self.db)
        self.outbox = OutboxStore(self.db)
        self.tokens = TokenStore(self.db)
        self.sessions = SessionStore(self.db)
        self.links = LinkStore(self.db)
        self.deliveries = DeliveryStore(self.db)
        self.themes = ThemeStore(self.db)
        self.slos = SloStore(self.db)
        self.preferences = PreferenceStore(self.db)
        self.slack = SlackStore(self.db)
        self.chat = ChatStore(self.db)
        self.timeline = TimelineStore(self.db)
        self.narratives = NarrativeStore(self.db)
        self.publications = PublicationStore(self.db)
        self.deploys = DeployStore(self.db)
        self.decisions = DecisionStore(self.db)
        self.alerts = AlertStore(self.db)
        self.identity = IdentityStore(self.db)
        self.directory = DirectoryStore(self.db)
        self.audit = AuditLogStore(self.db)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(select(1))

    def check_writable(self) -> None:
        """Raise unless the database takes a write; the write (deleting no rows) is rolled back,
        so readiness checks leave nothing behind."""
        with self.engine.connect() as connection, connection.begin() as transaction:
            connection.execute(delete(ApiTokenRow).where(false()))
            transaction.rollback()
